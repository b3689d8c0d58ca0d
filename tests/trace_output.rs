//! The outputs: the pprof profile decoded back by a small protobuf reader written here (sample
//! types, the values summing to the snapshot's totals, the functions and lines of this file's
//! call sites), and folded stacks (one line per stack, bytes summing to the total, this file's
//! functions named, callers before callees). Exact and sampled. One test: the tracer is
//! process-wide.

#![cfg(feature = "trace")]

#[global_allocator]
static A: arenagc::ArenaAlloc = arenagc::ArenaAlloc;

use arenagc::trace::{self, Snapshot};
use std::collections::HashMap;
use std::hint::black_box;

/// A protobuf field's value: a varint or bytes.
#[derive(Debug, Clone)]
enum Val {
    Int(u64),
    Bytes(Vec<u8>),
}

fn varint(b: &[u8], at: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let c = b[*at];
        *at += 1;
        v |= ((c & 0x7f) as u64) << shift;
        if c < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// A message's fields, in order.
fn fields(b: &[u8]) -> Vec<(u64, Val)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < b.len() {
        let key = varint(b, &mut at);
        match key & 7 {
            0 => out.push((key >> 3, Val::Int(varint(b, &mut at)))),
            2 => {
                let n = varint(b, &mut at) as usize;
                out.push((key >> 3, Val::Bytes(b[at..at + n].to_vec())));
                at += n;
            }
            w => panic!("wire type {w}"),
        }
    }
    out
}

fn int(v: &Val) -> u64 {
    match v {
        Val::Int(i) => *i,
        Val::Bytes(_) => panic!("not a varint"),
    }
}

fn bytes(v: &Val) -> &[u8] {
    match v {
        Val::Bytes(b) => b,
        Val::Int(_) => panic!("not bytes"),
    }
}

fn packed(v: &Val) -> Vec<u64> {
    let b = bytes(v);
    let mut at = 0;
    let mut out = Vec::new();
    while at < b.len() {
        out.push(varint(b, &mut at));
    }
    out
}

fn get(m: &[(u64, Val)], f: u64) -> Option<&Val> {
    m.iter().find(|(k, _)| *k == f).map(|(_, v)| v)
}

/// The decoded profile: sample types, samples as (function names leaf first, lines, values).
struct Profile {
    types: Vec<(String, String)>,
    samples: Vec<(Vec<String>, Vec<u64>, Vec<u64>)>,
    period: u64,
    default_type: String,
}

fn decode(buf: &[u8]) -> Profile {
    let top = fields(buf);
    let strings: Vec<String> = top
        .iter()
        .filter(|(k, _)| *k == 6)
        .map(|(_, v)| String::from_utf8(bytes(v).to_vec()).unwrap())
        .collect();
    assert_eq!(strings[0], "");
    let s = |i: u64| strings[i as usize].clone();
    let mut functions = HashMap::new();
    let mut locations = HashMap::new();
    for (k, v) in &top {
        let m = match k {
            4 | 5 => fields(bytes(v)),
            _ => continue,
        };
        let id = int(get(&m, 1).unwrap());
        if *k == 5 {
            functions.insert(id, s(int(get(&m, 2).unwrap())));
        } else {
            let line = fields(bytes(get(&m, 4).unwrap()));
            let f = int(get(&line, 1).unwrap());
            let l = int(get(&line, 2).unwrap());
            locations.insert(id, (f, l));
        }
    }
    let mut p = Profile {
        types: Vec::new(),
        samples: Vec::new(),
        period: 0,
        default_type: String::new(),
    };
    for (k, v) in &top {
        match k {
            1 => {
                let m = fields(bytes(v));
                p.types
                    .push((s(int(get(&m, 1).unwrap())), s(int(get(&m, 2).unwrap()))));
            }
            2 => {
                let m = fields(bytes(v));
                let locs = packed(get(&m, 1).unwrap());
                let names = locs.iter().map(|l| functions[&locations[l].0].clone());
                let lines = locs.iter().map(|l| locations[l].1).collect();
                p.samples
                    .push((names.collect(), lines, packed(get(&m, 2).unwrap())));
            }
            12 => p.period = int(v),
            14 => p.default_type = s(int(v)),
            _ => {}
        }
    }
    p
}

#[inline(never)]
fn leaf_site(keep: &mut Vec<Vec<u8>>, n: usize, size: usize) -> u32 {
    for _ in 0..n {
        keep.push(black_box(vec![0u8; size]));
    }
    line!() - 2
}

#[inline(never)]
fn caller_site(keep: &mut Vec<Vec<u8>>) -> u32 {
    leaf_site(keep, 30, 700)
}

fn check(snap: &Snapshot, exact: bool) {
    let (total_bytes, total_count) = snap.total();
    let mut pb = Vec::new();
    snap.write_pprof(&mut pb).unwrap();
    let p = decode(&pb);
    let types: Vec<(&str, &str)> = p
        .types
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("alloc_objects", "count"),
            ("alloc_space", "bytes"),
            ("inuse_objects", "count"),
            ("inuse_space", "bytes")
        ]
    );
    assert_eq!(p.default_type, "inuse_space");
    assert_eq!(p.period, snap.sample_mean().unwrap_or(1) as u64);
    let sum = |i: usize| p.samples.iter().map(|s| s.2[i]).sum::<u64>();
    // Each sample's value is rounded: in sampled mode the sums differ by under 1 per sample.
    let slack = if exact { 0 } else { p.samples.len() as u64 };
    assert!(
        sum(3).abs_diff(total_bytes as u64) <= slack,
        "{} {total_bytes}",
        sum(3)
    );
    assert!(sum(2).abs_diff(total_count as u64) <= slack);
    assert_eq!((sum(0), sum(1)), (sum(2), sum(3)));
    // This file's two call sites: the leaf named, its caller below it.
    let mine = p
        .samples
        .iter()
        .find(|s| s.0[0].contains("trace_output::leaf_site"))
        .expect("a sample at leaf_site");
    assert!(
        mine.0[1].contains("trace_output::caller_site"),
        "{:?}",
        mine.0
    );
    assert!(mine.1[0] > 0);
    if exact {
        assert_eq!((mine.2[2], mine.2[3]), (30, 30 * 700));
    }

    let mut folded = Vec::new();
    snap.write_folded(&mut folded).unwrap();
    let folded = String::from_utf8(folded).unwrap();
    let mut total = 0u64;
    for line in folded.lines() {
        let (stack, n) = line.rsplit_once(' ').unwrap();
        assert!(!stack.is_empty());
        total += n.parse::<u64>().unwrap();
    }
    assert!(total.abs_diff(total_bytes as u64) <= slack);
    let line = folded
        .lines()
        .find(|l| l.contains("trace_output::leaf_site"))
        .expect("a folded stack at leaf_site");
    let caller = line.find("trace_output::caller_site").unwrap();
    assert!(
        caller < line.find("trace_output::leaf_site").unwrap(),
        "{line}"
    );
    if exact {
        assert!(line.ends_with(" 21000"), "{line}");
    }
}

#[test]
fn pprof_and_folded_stacks() {
    let mut keep = Vec::with_capacity(5000);
    trace::start(16).unwrap();
    let line = caller_site(&mut keep);
    let snap = trace::take_snapshot();
    trace::stop();
    assert!(snap.statistics("lineno").iter().any(|s| {
        let f = &s.traceback.frames()[0];
        f.filename() == file!() && f.lineno() == line && s.size == 21_000
    }));
    check(&snap, true);
    keep.clear();

    trace::start_sampled(2048, 16).unwrap();
    trace::reseed_sampler(7);
    for _ in 0..100 {
        caller_site(&mut keep);
    }
    let snap = trace::take_snapshot();
    trace::stop();
    assert_eq!(snap.sample_mean(), Some(2048));
    check(&snap, false);
}
