//! Kibana 8 saved objects for wirebeat's events: a data view over the configured
//! index pattern and Packetbeat's four dashboards (Statistics, Search, MySQL
//! Performance, PgSQL Performance), built from the fields wirebeat emits
//! ([`crate::output::elasticsearch::template::FIELDS`]). [`export`] writes them as
//! NDJSON, the format of Kibana's `POST /api/saved_objects/_import`.
//!
//! Charts are Lens visualizations, described here by [`Vis`]: one layer of
//! columns (an optional date histogram, an optional top-values split, metrics) on
//! the data view, filtered by a KQL query.

use serde_json::{Value, json};

pub mod kibana;

/// The saved-object id of the data view.
pub const DATA_VIEW_ID: &str = "wirebeat-data-view";

/// Kibana version whose object layout this is: importing into it or a later
/// version runs only the later migrations.
const MIGRATION: &str = "8.9.0";

/// What one Lens chart shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chart {
    /// Stacked bars over time.
    Bars,
    /// Lines over time.
    Lines,
    /// Stacked areas over time.
    Areas,
    /// Bars over time, each split into the shares of its series (a rate).
    ShareBars,
    /// A table: one row per top value of the split.
    Table,
}

/// An aggregation of the rows of a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Count,
    Sum(&'static str),
    Avg(&'static str),
    Max(&'static str),
    Percentile(&'static str, u8),
}

impl Op {
    /// The field it reads, if any.
    pub fn field(self) -> Option<&'static str> {
        match self {
            Op::Count => None,
            Op::Sum(f) | Op::Avg(f) | Op::Max(f) | Op::Percentile(f, _) => Some(f),
        }
    }
}

/// A Lens visualization.
#[derive(Clone, Debug)]
pub struct Vis {
    pub id: &'static str,
    pub title: &'static str,
    pub chart: Chart,
    /// Top values of this field split the chart (series, or table rows).
    pub split: Option<(&'static str, u32)>,
    /// Each metric with its label; the split is ordered by the first.
    pub metrics: Vec<(&'static str, Op)>,
    /// KQL filter of the chart.
    pub query: &'static str,
}

/// A dashboard: its panels, each a visualization or the saved search, laid out
/// two per row.
pub struct Dashboard {
    pub id: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub panels: Vec<Panel>,
}

pub enum Panel {
    Vis(Vis),
    /// The saved search of transactions ([`SEARCH_ID`]), full width.
    Search,
}

/// The saved search of transactions.
pub const SEARCH_ID: &str = "wirebeat-search-transactions";

/// Columns of the saved search.
pub const SEARCH_COLUMNS: &[&str] = &[
    "type",
    "method",
    "query",
    "status",
    "event.duration",
    "client.ip",
    "server.ip",
    "server.port",
    "source.bytes",
    "destination.bytes",
];

fn per_method(id: &'static str, title: &'static str, proto: &'static str) -> Vis {
    Vis {
        id,
        title,
        chart: Chart::Bars,
        split: Some(("method", 10)),
        metrics: vec![("Transactions", Op::Count)],
        query: proto,
    }
}

fn slowest(id: &'static str, title: &'static str, query: &'static str) -> Vis {
    Vis {
        id,
        title,
        chart: Chart::Table,
        split: Some(("query", 20)),
        metrics: vec![
            ("p99 duration (ns)", Op::Percentile("event.duration", 99)),
            ("Average duration (ns)", Op::Avg("event.duration")),
            ("Transactions", Op::Count),
        ],
        query,
    }
}

fn latency(id: &'static str, title: &'static str, query: &'static str) -> Vis {
    Vis {
        id,
        title,
        chart: Chart::Lines,
        split: None,
        metrics: vec![
            ("p50 (ns)", Op::Percentile("event.duration", 50)),
            ("p90 (ns)", Op::Percentile("event.duration", 90)),
            ("p99 (ns)", Op::Percentile("event.duration", 99)),
        ],
        query,
    }
}

/// The four dashboards.
pub fn dashboards() -> Vec<Dashboard> {
    vec![
        Dashboard {
            id: "wirebeat-statistics",
            title: "[wirebeat] Statistics",
            description: "Transactions, response times, errors and bytes, per protocol (Packetbeat Statistics).",
            panels: vec![
                Panel::Vis(Vis {
                    id: "wirebeat-transactions-per-protocol",
                    title: "Transactions per protocol",
                    chart: Chart::Bars,
                    split: Some(("network.protocol", 10)),
                    metrics: vec![("Transactions", Op::Count)],
                    query: "",
                }),
                Panel::Vis(latency(
                    "wirebeat-response-time-percentiles",
                    "Response time percentiles",
                    "",
                )),
                Panel::Vis(Vis {
                    id: "wirebeat-errors-over-time",
                    title: "Error rate (share of transactions by status)",
                    chart: Chart::ShareBars,
                    split: Some(("status", 5)),
                    metrics: vec![("Transactions", Op::Count)],
                    query: "",
                }),
                Panel::Vis(Vis {
                    id: "wirebeat-bytes",
                    title: "Bytes in and out",
                    chart: Chart::Areas,
                    split: None,
                    metrics: vec![
                        ("Bytes from clients", Op::Sum("source.bytes")),
                        ("Bytes from servers", Op::Sum("destination.bytes")),
                    ],
                    query: "",
                }),
                Panel::Vis(slowest(
                    "wirebeat-slowest-endpoints",
                    "Slowest endpoints",
                    "",
                )),
                Panel::Vis(Vis {
                    id: "wirebeat-failing-endpoints",
                    title: "Failing endpoints",
                    chart: Chart::Table,
                    split: Some(("query", 20)),
                    metrics: vec![("Errors", Op::Count)],
                    query: "status : \"Error\"",
                }),
            ],
        },
        Dashboard {
            id: "wirebeat-search",
            title: "[wirebeat] Search",
            description: "Every transaction, searchable by keyword (Packetbeat Search).",
            panels: vec![
                Panel::Vis(Vis {
                    id: "wirebeat-search-per-type",
                    title: "Transactions per type",
                    chart: Chart::Bars,
                    split: Some(("type", 10)),
                    metrics: vec![("Transactions", Op::Count)],
                    query: "",
                }),
                Panel::Search,
            ],
        },
        Dashboard {
            id: "wirebeat-mysql",
            title: "[wirebeat] MySQL Performance",
            description: "MySQL query rate, slowest queries, errors and rows (Packetbeat MySQL Performance).",
            panels: vec![
                Panel::Vis(per_method(
                    "wirebeat-mysql-per-method",
                    "MySQL queries per method",
                    "type : \"mysql\"",
                )),
                Panel::Vis(latency(
                    "wirebeat-mysql-latency",
                    "MySQL response time percentiles",
                    "type : \"mysql\"",
                )),
                Panel::Vis(slowest(
                    "wirebeat-mysql-slowest",
                    "Slowest MySQL queries",
                    "type : \"mysql\"",
                )),
                Panel::Vis(Vis {
                    id: "wirebeat-mysql-errors",
                    title: "MySQL errors by code",
                    chart: Chart::Table,
                    split: Some(("mysql.error_code", 20)),
                    metrics: vec![("Errors", Op::Count)],
                    query: "type : \"mysql\" and status : \"Error\"",
                }),
                Panel::Vis(Vis {
                    id: "wirebeat-mysql-rows",
                    title: "MySQL rows returned and affected",
                    chart: Chart::Areas,
                    split: None,
                    metrics: vec![
                        ("Rows returned", Op::Sum("mysql.num_rows")),
                        ("Rows affected", Op::Sum("mysql.affected_rows")),
                    ],
                    query: "type : \"mysql\"",
                }),
            ],
        },
        Dashboard {
            id: "wirebeat-pgsql",
            title: "[wirebeat] PgSQL Performance",
            description: "PostgreSQL query rate, slowest queries, errors and rows (Packetbeat PgSQL Performance).",
            panels: vec![
                Panel::Vis(per_method(
                    "wirebeat-pgsql-per-method",
                    "PostgreSQL queries per method",
                    "type : \"pgsql\"",
                )),
                Panel::Vis(latency(
                    "wirebeat-pgsql-latency",
                    "PostgreSQL response time percentiles",
                    "type : \"pgsql\"",
                )),
                Panel::Vis(slowest(
                    "wirebeat-pgsql-slowest",
                    "Slowest PostgreSQL queries",
                    "type : \"pgsql\"",
                )),
                Panel::Vis(Vis {
                    id: "wirebeat-pgsql-errors",
                    title: "PostgreSQL errors by code",
                    chart: Chart::Table,
                    split: Some(("pgsql.error_code", 20)),
                    metrics: vec![("Errors", Op::Count)],
                    query: "type : \"pgsql\" and status : \"Error\"",
                }),
                Panel::Vis(Vis {
                    id: "wirebeat-pgsql-rows",
                    title: "PostgreSQL rows returned",
                    chart: Chart::Areas,
                    split: None,
                    metrics: vec![("Rows returned", Op::Sum("pgsql.num_rows"))],
                    query: "type : \"pgsql\"",
                }),
            ],
        },
    ]
}

const LAYER: &str = "layer1";

/// Lens's data type of a field, from the template's mapping of it.
fn data_type(field: &str) -> &'static str {
    use crate::output::elasticsearch::template::{Kind, lookup};
    match lookup(field) {
        Some(Kind::Long) => "number",
        Some(Kind::Ip) => "ip",
        Some(Kind::Date) => "date",
        Some(Kind::Boolean) => "boolean",
        _ => "string",
    }
}

fn metric_column(label: &str, op: Op) -> Value {
    let (kind, field) = match op {
        Op::Count => ("count", "___records___"),
        Op::Sum(f) => ("sum", f),
        Op::Avg(f) => ("average", f),
        Op::Max(f) => ("max", f),
        Op::Percentile(f, _) => ("percentile", f),
    };
    let mut c = json!({
        "label": label,
        "customLabel": true,
        "dataType": "number",
        "operationType": kind,
        "sourceField": field,
        "isBucketed": false,
        "scale": "ratio",
        "params": {"emptyAsNull": true},
    });
    if let Op::Percentile(_, p) = op {
        c["params"] = json!({"percentile": p});
    }
    c
}

impl Vis {
    /// The Lens saved object.
    pub fn saved_object(&self) -> Value {
        let mut columns = serde_json::Map::new();
        let mut order = Vec::new();
        let time = self.chart != Chart::Table;
        if time {
            columns.insert(
                "time".into(),
                json!({
                    "label": "@timestamp",
                    "dataType": "date",
                    "operationType": "date_histogram",
                    "sourceField": "@timestamp",
                    "isBucketed": true,
                    "scale": "interval",
                    "params": {"interval": "auto", "includeEmptyRows": true, "dropPartials": false},
                }),
            );
        }
        if let Some((field, size)) = self.split {
            columns.insert(
                "split".into(),
                json!({
                    "label": format!("Top {size} values of {field}"),
                    "dataType": data_type(field),
                    "operationType": "terms",
                    "sourceField": field,
                    "isBucketed": true,
                    "scale": "ordinal",
                    "params": {
                        "size": size,
                        "orderBy": {"type": "column", "columnId": "m0"},
                        "orderDirection": "desc",
                        "otherBucket": true,
                        "missingBucket": false,
                    },
                }),
            );
            order.push("split".to_string());
        }
        if time {
            order.push("time".to_string());
        }
        let metric_ids: Vec<String> = (0..self.metrics.len()).map(|i| format!("m{i}")).collect();
        for (id, (label, op)) in metric_ids.iter().zip(&self.metrics) {
            columns.insert(id.clone(), metric_column(label, *op));
            order.push(id.clone());
        }
        let (vis_type, visualization) = match self.chart {
            Chart::Table => (
                "lnsDatatable",
                json!({
                    "layerId": LAYER,
                    "layerType": "data",
                    "columns": order.iter().map(|c| json!({"columnId": c})).collect::<Vec<_>>(),
                }),
            ),
            chart => {
                let series = match chart {
                    Chart::Bars => "bar_stacked",
                    Chart::ShareBars => "bar_percentage_stacked",
                    Chart::Lines => "line",
                    _ => "area_stacked",
                };
                let mut layer = json!({
                    "layerId": LAYER,
                    "layerType": "data",
                    "seriesType": series,
                    "xAccessor": "time",
                    "accessors": metric_ids,
                });
                if self.split.is_some() {
                    layer["splitAccessor"] = json!("split");
                }
                (
                    "lnsXY",
                    json!({
                        "legend": {"isVisible": true, "position": "right"},
                        "valueLabels": "hide",
                        "preferredSeriesType": series,
                        "layers": [layer],
                    }),
                )
            }
        };
        json!({
            "type": "lens",
            "id": self.id,
            "attributes": {
                "title": self.title,
                "description": "",
                "visualizationType": vis_type,
                "state": {
                    "datasourceStates": {"formBased": {"layers": {LAYER: {
                        "columns": columns,
                        "columnOrder": order,
                        "incompleteColumns": {},
                    }}}},
                    "visualization": visualization,
                    "query": {"query": self.query, "language": "kuery"},
                    "filters": [],
                    "adHocDataViews": {},
                    "internalReferences": [],
                },
            },
            "references": [{
                "type": "index-pattern",
                "id": DATA_VIEW_ID,
                "name": format!("indexpattern-datasource-layer-{LAYER}"),
            }],
            "coreMigrationVersion": MIGRATION,
            "typeMigrationVersion": MIGRATION,
        })
    }
}

fn search_source(index_ref: bool) -> String {
    let mut s = json!({"query": {"query": "", "language": "kuery"}, "filter": []});
    if index_ref {
        s["indexRefName"] = json!("kibanaSavedObjectMeta.searchSourceJSON.index");
    }
    s.to_string()
}

impl Dashboard {
    pub fn saved_object(&self) -> Value {
        let (mut panels, mut refs) = (Vec::new(), Vec::new());
        let (mut x, mut y) = (0, 0);
        for (i, p) in self.panels.iter().enumerate() {
            let idx = format!("p{i}");
            let (kind, id, w, h) = match p {
                Panel::Vis(v) => ("lens", v.id, 24, 15),
                Panel::Search => ("search", SEARCH_ID, 48, 30),
            };
            if x + w > 48 {
                (x, y) = (0, y + 15);
            }
            panels.push(json!({
                "type": kind,
                "gridData": {"x": x, "y": y, "w": w, "h": h, "i": idx},
                "panelIndex": idx,
                "embeddableConfig": {"enhancements": {}},
                "panelRefName": format!("panel_{idx}"),
            }));
            refs.push(json!({"name": format!("{idx}:panel_{idx}"), "type": kind, "id": id}));
            x += w;
            if x >= 48 {
                (x, y) = (0, y + h);
            }
        }
        json!({
            "type": "dashboard",
            "id": self.id,
            "attributes": {
                "title": self.title,
                "description": self.description,
                "panelsJSON": Value::Array(panels).to_string(),
                "optionsJSON": json!({"useMargins": true, "syncColors": false, "syncCursor": true, "syncTooltips": false, "hidePanelTitles": false}).to_string(),
                "timeRestore": false,
                "version": 1,
                "kibanaSavedObjectMeta": {"searchSourceJSON": search_source(false)},
            },
            "references": refs,
            "coreMigrationVersion": MIGRATION,
            "typeMigrationVersion": "8.9.0",
        })
    }
}

/// The data view over `pattern` (the template's index pattern), by `@timestamp`.
pub fn data_view(pattern: &str) -> Value {
    json!({
        "type": "index-pattern",
        "id": DATA_VIEW_ID,
        "attributes": {"title": pattern, "name": "wirebeat", "timeFieldName": "@timestamp"},
        "references": [],
        "coreMigrationVersion": MIGRATION,
        "typeMigrationVersion": "8.0.0",
    })
}

/// The saved search of transactions, newest first.
pub fn search() -> Value {
    json!({
        "type": "search",
        "id": SEARCH_ID,
        "attributes": {
            "title": "[wirebeat] Transactions",
            "description": "",
            "columns": SEARCH_COLUMNS,
            "sort": [["@timestamp", "desc"]],
            "kibanaSavedObjectMeta": {"searchSourceJSON": search_source(true)},
        },
        "references": [{
            "name": "kibanaSavedObjectMeta.searchSourceJSON.index",
            "type": "index-pattern",
            "id": DATA_VIEW_ID,
        }],
        "coreMigrationVersion": MIGRATION,
        "typeMigrationVersion": "8.0.0",
    })
}

/// Every saved object, the ones referred to before those that refer to them.
pub fn objects(pattern: &str) -> Vec<Value> {
    let mut out = vec![data_view(pattern), search()];
    let boards = dashboards();
    for d in &boards {
        for p in &d.panels {
            if let Panel::Vis(v) = p {
                out.push(v.saved_object());
            }
        }
    }
    out.extend(boards.iter().map(Dashboard::saved_object));
    out
}

/// The saved objects as NDJSON, one object per line.
pub fn export(pattern: &str) -> String {
    let mut s = String::new();
    for o in objects(pattern) {
        s.push_str(&o.to_string());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_and_ids_are_unique() {
        let objs = objects("wb-*");
        let ids: Vec<(String, String)> = objs
            .iter()
            .map(|o| {
                (
                    o["type"].as_str().unwrap().into(),
                    o["id"].as_str().unwrap().into(),
                )
            })
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "duplicate ids");
        for (i, o) in objs.iter().enumerate() {
            for r in o["references"].as_array().unwrap() {
                let want = (
                    r["type"].as_str().unwrap().to_string(),
                    r["id"].as_str().unwrap().to_string(),
                );
                let at = ids
                    .iter()
                    .position(|x| *x == want)
                    .unwrap_or_else(|| panic!("{want:?} missing"));
                assert!(at < i, "{want:?} comes after {}", o["id"]);
            }
        }
        assert_eq!(objs[0]["attributes"]["title"], "wb-*");
        // Each dashboard panel names one of its references.
        for o in objs.iter().filter(|o| o["type"] == "dashboard") {
            let panels: Vec<Value> =
                serde_json::from_str(o["attributes"]["panelsJSON"].as_str().unwrap()).unwrap();
            let names: Vec<&str> = o["references"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap())
                .collect();
            assert!(!panels.is_empty());
            for p in &panels {
                let name = format!(
                    "{}:{}",
                    p["panelIndex"].as_str().unwrap(),
                    p["panelRefName"].as_str().unwrap()
                );
                assert!(names.contains(&name.as_str()), "{name}");
                let g = &p["gridData"];
                assert!(g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 48);
            }
        }
    }

    #[test]
    fn lens_layers_are_complete() {
        for o in objects("p-*").iter().filter(|o| o["type"] == "lens") {
            let st = &o["attributes"]["state"];
            let layer = &st["datasourceStates"]["formBased"]["layers"][LAYER];
            let cols = layer["columns"].as_object().unwrap();
            let order: Vec<&str> = layer["columnOrder"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            assert_eq!(order.len(), cols.len(), "{}", o["id"]);
            assert!(order.iter().all(|c| cols.contains_key(*c)));
            let vis = &st["visualization"];
            let accessors: Vec<&str> = match o["attributes"]["visualizationType"].as_str().unwrap()
            {
                "lnsXY" => {
                    let l = &vis["layers"][0];
                    let mut a: Vec<&str> = l["accessors"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap())
                        .collect();
                    a.push(l["xAccessor"].as_str().unwrap());
                    if let Some(s) = l["splitAccessor"].as_str() {
                        a.push(s);
                    }
                    a
                }
                "lnsDatatable" => vis["columns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["columnId"].as_str().unwrap())
                    .collect(),
                t => panic!("{t}"),
            };
            let mut a = accessors.clone();
            a.sort();
            let mut b = order.clone();
            b.sort();
            assert_eq!(a, b, "{}: every column is shown", o["id"]);
        }
    }
}
