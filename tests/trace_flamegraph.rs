//! The flame graph (cargo feature `flamegraph`; CI: `cargo test --features flamegraph --test
//! trace_flamegraph`): an SVG whose frames name this file's call sites, with the live bytes in
//! their titles; and an empty snapshot still gives an SVG. One test: the tracer is
//! process-wide.

#![cfg(feature = "flamegraph")]

#[global_allocator]
static A: arenagc::ArenaAlloc = arenagc::ArenaAlloc;

use arenagc::trace;
use std::hint::black_box;

#[inline(never)]
fn leaky_cache(keep: &mut Vec<Vec<u8>>) {
    for _ in 0..64 {
        keep.push(black_box(vec![0u8; 4096]));
    }
}

#[test]
fn flame_graph_of_live_memory() {
    let mut keep = Vec::with_capacity(64);
    trace::start(16).unwrap();
    leaky_cache(&mut keep);
    let snap = trace::take_snapshot();
    trace::stop();
    let mut svg = Vec::new();
    snap.write_flamegraph(&mut svg).unwrap();
    let svg = String::from_utf8(svg).unwrap();
    assert!(
        svg.starts_with("<?xml") && svg.contains("<svg"),
        "{}",
        &svg[..100]
    );
    assert!(svg.contains("arenagc: live memory by call stack"));
    // inferno's titles: "name (262,144 bytes, 99.00%)".
    assert!(svg.contains("trace_flamegraph::leaky_cache"));
    assert!(
        svg.contains("262,144 bytes"),
        "no frame with the cache's bytes"
    );

    let empty = trace::take_snapshot(); // not tracing: empty
    let mut svg = Vec::new();
    empty.write_flamegraph(&mut svg).unwrap();
    let svg = String::from_utf8(svg).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("no traced memory"),
        "{svg}"
    );
}
