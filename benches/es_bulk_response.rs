//! Reading Elasticsearch bulk responses: 2048 items (the default `bulk_max_size`)
//! all created, the same with a few failures (429, 400 mapping errors, 409
//! conflicts), and that one laid out like `?pretty`. wirebeat's reader
//! (`bulk::outcomes`, serde_json) next to the same typed walk driven by simd-json,
//! and, for scale, parsing into a `serde_json::Value`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use wirebeat::output::elasticsearch::bulk::{self, Outcome};

const N: usize = 2048;

/// One item as Elasticsearch 8 answers it.
fn item(i: usize, status: u16) -> Value {
    let index = "packetbeat-2026.11.24";
    let id = format!("{:016x}", 0x3f9a_0c1d_2e4b_0000u64 + i as u64);
    let mut it = json!({
        "_index": index,
        "_id": id,
        "status": status,
    });
    match status {
        201 => {
            it["_version"] = json!(1);
            it["result"] = json!("created");
            it["_shards"] = json!({"total": 2, "successful": 1, "failed": 0});
            it["_seq_no"] = json!(100_000 + i);
            it["_primary_term"] = json!(1);
        }
        409 => {
            it["error"] = json!({
                "type": "version_conflict_engine_exception",
                "reason": format!("[{id}]: version conflict, document already exists (current version [1])"),
                "index_uuid": "hQ3vJqj9T8qyE4Z0wB5m7g",
                "shard": "0",
                "index": index,
            });
        }
        429 => {
            it["error"] = json!({
                "type": "es_rejected_execution_exception",
                "reason": "rejected execution of coordinating operation [coordinating_and_primary_bytes=104857600, replica_bytes=0, all_bytes=104857600, coordinating_operation_bytes=2481, max_coordinating_and_primary_bytes=104857600]",
            });
        }
        _ => {
            it["error"] = json!({
                "type": "document_parsing_exception",
                "reason": "[1:431] failed to parse field [http.response.status_code] of type [long] in document with id 'x'. Preview of field's value: 'OK'",
                "caused_by": {
                    "type": "illegal_argument_exception",
                    "reason": "For input string: \"OK\"",
                },
            });
        }
    }
    json!({ "create": it })
}

fn response(fail_every: Option<usize>) -> Value {
    let mut errors = false;
    let items: Vec<Value> = (0..N)
        .map(|i| {
            let status = match fail_every {
                Some(k) if i % k == k - 1 => {
                    errors = true;
                    [429, 400, 409, 429][(i / k) % 4]
                }
                _ => 201,
            };
            item(i, status)
        })
        .collect();
    json!({"took": 35, "errors": errors, "items": items})
}

/// `?pretty`: two-space indent, newlines, `"key" : value`.
fn pretty(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"  ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(v, &mut ser).unwrap();
    String::from_utf8(out)
        .unwrap()
        .replace("\": ", "\" : ")
        .into_bytes()
}

fn count(o: &[Outcome<'_>]) -> (usize, usize) {
    let ok = o
        .iter()
        .filter(|x| matches!(x, Outcome::Ok | Outcome::Duplicate))
        .count();
    (ok, o.len() - ok)
}

#[cfg(feature = "bench-simd-json")]
fn with_simd_json(buf: &mut [u8]) -> (usize, usize) {
    let mut de = simd_json::Deserializer::from_slice(buf).expect("simd-json tape");
    let walked = bulk::walk(&mut de, N).map_err(|e| e.to_string());
    let o = bulk::judge(walked, N).expect("simd-json outcomes");
    count(&o)
}

fn bench(c: &mut Criterion) {
    let few = response(Some(128));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("all_created", response(None).to_string().into_bytes()),
        ("few_failures", few.to_string().into_bytes()),
        ("few_failures_pretty", pretty(&few)),
    ];
    for (name, body) in &cases {
        // Both readers agree, and see the failures.
        let want = count(&bulk::outcomes(body, N).expect("outcomes"));
        assert_eq!(want.0 + want.1, N);
        #[cfg(feature = "bench-simd-json")]
        assert_eq!(with_simd_json(&mut body.clone()), want);

        let mut g = c.benchmark_group(format!("es_bulk_response/{name}"));
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function("serde_json_typed", |b| {
            b.iter(|| count(&bulk::outcomes(black_box(body), N).unwrap()))
        });
        #[cfg(feature = "bench-simd-json")]
        g.bench_function("simd_json_typed", |b| {
            // simd-json parses in place: each run gets a fresh copy, not timed
            // (the output owns the response body, so it would not copy either).
            b.iter_batched_ref(
                || body.clone(),
                |buf| with_simd_json(black_box(buf)),
                BatchSize::LargeInput,
            )
        });
        g.bench_function("serde_json_value", |b| {
            b.iter_batched_ref(
                || (),
                |_| serde_json::from_slice::<Value>(black_box(body)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
