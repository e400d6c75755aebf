//! Redis parser throughput: pipelined GET/SET requests and their replies, fed in
//! packet-sized pieces through the engine's parser contract.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wirebeat::config::Config;
use wirebeat::event::{ConnInfo, Transport};
use wirebeat::protos::{Ctx, Dir, Progress};
use wirebeat::stats::Counters;
use wirebeat::time::Ts;

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

fn bench(c: &mut Criterion) {
    let cfg = Config::default();
    let factory = wirebeat::protos::factory("redis", &cfg).expect("redis enabled");
    let conn = ConnInfo::new(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        40000,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        6379,
        Transport::Tcp,
    );
    let (req, rep) = conversation();
    let mut g = c.benchmark_group("redis");
    g.throughput(Throughput::Bytes((req.len() + rep.len()) as u64));
    g.bench_function("pipelined_get_set_1000", |b| {
        b.iter(|| {
            let mut p = factory.new_parser(&conn);
            let mut out = Vec::with_capacity(1000);
            let mut counters = Counters::default();
            let mut ctx = Ctx::new(Ts(1), &mut out, &mut counters);
            // Packet-sized pieces, requests 16 at a time ahead of their replies.
            let mut rq = req.chunks(1448);
            let mut rp = rep.chunks(1448);
            loop {
                let a = rq.next();
                let b = rp.next();
                if a.is_none() && b.is_none() {
                    break;
                }
                if let Some(a) = a {
                    let r = p.parse(Dir::ToServer, a, &mut ctx);
                    debug_assert!(matches!(r, Progress::Consumed { .. }));
                }
                if let Some(b) = b {
                    p.parse(Dir::ToClient, b, &mut ctx);
                }
            }
            p.close(&mut ctx);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
