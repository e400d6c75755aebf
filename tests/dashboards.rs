//! `wirebeat export dashboards`: Kibana saved objects whose every field is one the
//! exported index template maps, with a type that fits its use.

mod common;

use std::collections::HashMap;

use common::fake_kibana::FakeKibana;
use common::wirebeat;
use serde_json::Value;
use wirebeat::config::KibanaConfig;
use wirebeat::dashboards::{self, kibana};

/// Every leaf of the template's mappings: dotted path to type.
fn mapped(props: &Value, prefix: &str, out: &mut HashMap<String, String>) {
    for (k, v) in props.as_object().expect("properties") {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (v.get("properties"), v["type"].as_str()) {
            (Some(p), _) => mapped(p, &path, out),
            (None, Some(t)) => {
                out.insert(path, t.to_string());
            }
            (None, None) => panic!("{path}: no type"),
        }
    }
}

/// Every field a saved object reads, with what it is used for.
fn uses(o: &Value) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    let a = &o["attributes"];
    if let Some(cols) = a["columns"].as_array() {
        out.extend(
            cols.iter()
                .map(|c| (c.as_str().unwrap().to_string(), "column")),
        );
    }
    if let Some(t) = a["timeFieldName"].as_str() {
        out.push((t.to_string(), "date"));
    }
    if let Some(layers) = a["state"]["datasourceStates"]["formBased"]["layers"].as_object() {
        for l in layers.values() {
            for c in l["columns"].as_object().unwrap().values() {
                let f = c["sourceField"].as_str().unwrap();
                if f == "___records___" {
                    continue;
                }
                let use_ = match c["operationType"].as_str().unwrap() {
                    "date_histogram" => "date",
                    "terms" => "terms",
                    _ => "number",
                };
                out.push((f.to_string(), use_));
            }
        }
    }
    // Chart filters are `field : "value"` terms joined by `and`.
    if let Some(q) = a["state"]["query"]["query"].as_str() {
        for term in q.split(" and ").filter(|t| !t.is_empty()) {
            let (f, _) = term.split_once(" : ").expect("field : value");
            out.push((f.to_string(), "filter"));
        }
    }
    out
}

#[test]
fn every_field_of_the_dashboards_is_mapped_by_the_template_with_a_fitting_type() {
    let run = wirebeat(&["export", "template"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t: Value = serde_json::from_slice(&run.stdout).unwrap();
    let mut types = HashMap::new();
    mapped(&t["template"]["mappings"]["properties"], "", &mut types);

    let run = wirebeat(&["export", "dashboards"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = String::from_utf8(run.stdout).unwrap();
    let objs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let kinds = |k: &str| objs.iter().filter(|o| o["type"] == k).count();
    assert_eq!(kinds("index-pattern"), 1);
    assert_eq!(kinds("search"), 1);
    assert_eq!(kinds("dashboard"), 4);
    assert!(kinds("lens") >= 15, "{}", kinds("lens"));
    let mut n = 0;
    for o in &objs {
        for (f, use_) in uses(o) {
            n += 1;
            let ty = types
                .get(&f)
                .unwrap_or_else(|| panic!("{}: {f} is not in the template", o["id"]));
            let fits = match use_ {
                "date" => ty == "date",
                "number" => ty == "long",
                "terms" | "filter" => matches!(ty.as_str(), "keyword" | "long" | "ip"),
                _ => ty != "flattened",
            };
            assert!(fits, "{}: {f} ({ty}) used as {use_}", o["id"]);
        }
    }
    assert!(n > 50, "{n} field uses checked");
    for title in [
        "[wirebeat] Statistics",
        "[wirebeat] Search",
        "[wirebeat] MySQL Performance",
        "[wirebeat] PgSQL Performance",
    ] {
        assert!(
            objs.iter().any(|o| o["attributes"]["title"] == title),
            "{title}"
        );
    }
}

/// The data view that `export dashboards` prints with the settings `sets`.
fn data_view(sets: &[&str]) -> Value {
    let mut args = vec![
        "export",
        "dashboards",
        "-E",
        "output.elasticsearch.enabled=false",
    ];
    for s in sets {
        args.extend(["-E", s]);
    }
    let run = wirebeat(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = String::from_utf8(run.stdout).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

#[test]
fn the_data_view_follows_the_template_pattern() {
    let v = data_view(&["setup.template.pattern=wb-*"]);
    assert_eq!(v["type"], "index-pattern");
    assert_eq!(v["attributes"]["title"], "wb-*");
    assert_eq!(v["attributes"]["timeFieldName"], "@timestamp");
    // Only the index changed: its pattern.
    let v = data_view(&["output.elasticsearch.index=gw"]);
    assert_eq!(v["attributes"]["title"], "gw-*");
}

fn setup_into(kb: &FakeKibana, extra: &[&str]) -> common::Run {
    let host = format!("setup.kibana.host={}", kb.host());
    let mut args = vec!["setup", "--dashboards", "-E", host.as_str()];
    args.extend_from_slice(extra);
    wirebeat(&args)
}

#[test]
fn setup_imports_the_dashboards_with_overwrite() {
    let kb = FakeKibana::start();
    let run = setup_into(&kb, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        out.contains("Imported 23 saved objects into Kibana"),
        "{out}"
    );
    assert!(out.contains("[wirebeat] PgSQL Performance"), "{out}");
    assert_eq!(kb.objects("default", "dashboard").len(), 4);
    assert_eq!(kb.objects("default", "index-pattern").len(), 1);
    assert_eq!(kb.objects("default", "search").len(), 1);
    assert_eq!(kb.state().objects.len(), 23);
    {
        let s = kb.state();
        let (method, target, headers) = &s.requests[0];
        assert_eq!(method, "POST");
        assert_eq!(target, "/api/saved_objects/_import?overwrite=true");
        assert!(headers.iter().any(|(k, _)| k == "kbn-xsrf"));
        assert!(!headers.iter().any(|(k, _)| k == "authorization"));
    }
    // Again: the objects are overwritten, not refused.
    let run = setup_into(&kb, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(kb.state().objects.len(), 23);
    // Without --index-management no Elasticsearch is contacted: the configuration
    // has none, and nothing else was asked of Kibana.
    assert_eq!(kb.state().requests.len(), 2);
}

#[test]
fn setup_uses_the_space_and_the_credentials() {
    let kb = FakeKibana::start();
    // "elastic:changeme"
    kb.state().require_auth = Some("Basic ZWxhc3RpYzpjaGFuZ2VtZQ==".into());
    let run = setup_into(
        &kb,
        &[
            "-E",
            "setup.kibana.space.id=ops",
            "-E",
            "setup.kibana.username=elastic",
            "-E",
            "setup.kibana.password=changeme",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(kb.objects("ops", "dashboard").len(), 4);
    assert!(kb.objects("default", "dashboard").is_empty());
    assert!(
        kb.state().requests[0]
            .1
            .starts_with("/s/ops/api/saved_objects/_import")
    );

    let run = setup_into(
        &kb,
        &[
            "-E",
            "setup.kibana.username=elastic",
            "-E",
            "setup.kibana.password=wrong",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("401"), "{}", run.stderr);
    assert!(
        run.stderr.contains("setup.kibana.username"),
        "{}",
        run.stderr
    );

    // An API key is sent as Elasticsearch and Kibana expect it.
    kb.state().require_auth = Some("ApiKey aWQ6a2V5".into());
    let run = setup_into(&kb, &["-E", "setup.kibana.api_key=id:key"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn without_overwrite_existing_objects_are_reported_one_by_one() {
    let kb = FakeKibana::start();
    let mut cfg = KibanaConfig {
        host: kb.host(),
        ..Default::default()
    };
    let ndjson = dashboards::export("packetbeat-*");
    let first = kibana::import(&cfg, &ndjson, false).unwrap();
    assert_eq!(first.count, 23);
    assert!(first.errors.is_empty());
    let again = kibana::import(&cfg, &ndjson, false).unwrap();
    assert_eq!(again.count, 0);
    assert_eq!(again.errors.len(), 23);
    assert!(
        again
            .errors
            .iter()
            .any(|e| e == "dashboard/wirebeat-statistics: conflict"),
        "{:?}",
        again.errors
    );
    assert_eq!(kibana::import(&cfg, &ndjson, true).unwrap().count, 23);
    // A Kibana that refuses the request as a whole is an error, not a result.
    cfg.host = format!("{}/nothing-here", kb.host());
    let e = kibana::import(&cfg, &ndjson, true).unwrap_err();
    assert!(e.contains("404"), "{e}");
}

#[test]
fn an_unreachable_kibana_fails_at_once_with_a_clear_message() {
    let t0 = std::time::Instant::now();
    let run = wirebeat(&[
        "setup",
        "--dashboards",
        "-E",
        "setup.kibana.host=127.0.0.1:1",
        "-E",
        "setup.kibana.timeout=5s",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("could not be reached"),
        "{}",
        run.stderr
    );
    assert!(t0.elapsed() < std::time::Duration::from_secs(10));
    let run = wirebeat(&["setup", "--dashboards", "-E", "setup.kibana.host=ftp://x"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("setup.kibana.host"), "{}", run.stderr);
}

/// Opt-in: imports into a real Kibana when `WIREBEAT_KIBANA_URL` is set (with
/// `WIREBEAT_KIBANA_USER` / `WIREBEAT_KIBANA_PASSWORD` when it needs them).
#[test]
fn real_kibana() {
    let Ok(url) = std::env::var("WIREBEAT_KIBANA_URL") else {
        eprintln!("real_kibana: WIREBEAT_KIBANA_URL is not set; skipped");
        return;
    };
    let cfg = KibanaConfig {
        host: url,
        username: std::env::var("WIREBEAT_KIBANA_USER").ok(),
        password: std::env::var("WIREBEAT_KIBANA_PASSWORD").ok(),
        ..Default::default()
    };
    let done = kibana::import(&cfg, &dashboards::export("packetbeat-*"), true).unwrap();
    assert!(done.errors.is_empty(), "{:?}", done.errors);
    assert_eq!(done.count, 23);
}
