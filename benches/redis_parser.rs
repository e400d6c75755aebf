//! Redis parser throughput: pipelined GET/SET requests and their replies, fed in
//! packet-sized pieces through the engine's parser contract.

mod support;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use support::bench_replay;
use wirebeat::config::Config;
use wirebeat::protos::testing::{Conversation, Harness, test_conn};
use wirebeat::protos::{Dir, factory};

const MSS: usize = 1448;

fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// 1,000 pipelined commands (SET then GET of 100-byte values) and their replies.
fn conversation() -> (Vec<u8>, Vec<u8>) {
    let value = vec![b'v'; 100];
    let mut req = Vec::new();
    let mut rep = Vec::new();
    for i in 0..500 {
        let key = format!("key:{i:06}");
        req.extend_from_slice(&resp(&[b"SET", key.as_bytes(), &value]));
        rep.extend_from_slice(b"+OK\r\n");
        req.extend_from_slice(&resp(&[b"GET", key.as_bytes()]));
        rep.extend_from_slice(b"$100\r\n");
        rep.extend_from_slice(&value);
        rep.extend_from_slice(b"\r\n");
    }
    (req, rep)
}

/// Packet-sized pieces, requests one segment ahead of their replies.
fn segments(req: &[u8], rep: &[u8]) -> Conversation {
    let mut rq = req.chunks(MSS);
    let mut rp = rep.chunks(MSS);
    let mut v = Vec::new();
    loop {
        let a = rq.next();
        let b = rp.next();
        if a.is_none() && b.is_none() {
            break;
        }
        if let Some(a) = a {
            v.push((Dir::ToServer, a.to_vec()));
        }
        if let Some(b) = b {
            v.push((Dir::ToClient, b.to_vec()));
        }
    }
    v
}

fn bench(c: &mut Criterion) {
    let cfg = Config::default();
    let factory = factory("redis", &cfg).expect("redis enabled");
    let conn = test_conn(6379);
    let (req, rep) = conversation();
    let conv = segments(&req, &rep);
    let mut g = c.benchmark_group("redis");
    g.throughput(Throughput::Bytes((req.len() + rep.len()) as u64));
    let mut h = Harness::from_factory(factory.as_ref(), conn.clone());
    let run = |h: &mut Harness<_>| {
        h.restart(factory.new_parser(&conn));
        h.replay(&conv, MSS, 1)
    };
    bench_replay(&mut g, "pipelined_get_set_1000", &mut h, run, |n| {
        assert!(n > 0)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
