//! The tour's tracemalloc section: a cache that was meant to be bounded keeps growing; two
//! snapshots and `compare_to` name the line that leaks, as tracemalloc's tutorial does for
//! Python.
//!
//! Lines need line tables: `cargo run --example tour` (debug) or `--profile profiling` show
//! `examples/tour/trace.rs:NN`; the release profile ships without debug info, so there each
//! frame shows its function instead (`<tour::trace::Cache::lookup>`).

use std::collections::HashMap;

use arenagc::trace::{self, Filter};

use super::section;

/// A cache of 100 pages (bounded), and a log of every lookup (the leak: never trimmed).
struct Cache {
    pages: HashMap<u64, Vec<u8>>,
    log: Vec<String>,
}

impl Cache {
    #[inline(never)]
    fn lookup(&mut self, key: u64) -> usize {
        let page = self
            .pages
            .entry(key % 100)
            .or_insert_with(|| vec![0u8; 1024]);
        self.log
            .push(format!("looked up key {key:>8}, page {}", key % 100));
        page.len()
    }
}

pub fn run() {
    section("trace: where did my memory go (tracemalloc)");
    trace::start(8).expect("8 frames is within bounds");
    let mut cache = Cache {
        pages: HashMap::new(),
        log: Vec::new(),
    };
    for key in 0..1_000 {
        cache.lookup(key);
    }
    let first = trace::take_snapshot();
    for key in 1_000..51_000 {
        cache.lookup(key);
    }
    let second = trace::take_snapshot();
    let (current, peak) = trace::get_traced_memory();
    println!(
        "traced: {} now, {} at the peak; the tracer's own tables: {}",
        trace::format_size(current as f64, false),
        trace::format_size(peak as f64, false),
        trace::format_size(trace::get_tracemalloc_memory() as f64, false)
    );

    // Only this file's lines (in a real program: filters drop the library's own frames).
    let mine = [Filter::include("*tour*")];
    let diff = second
        .filter_traces(&mine)
        .compare_to(&first.filter_traces(&mine), "lineno");
    println!("top 3 lines by growth between the two snapshots:");
    for stat in diff.iter().take(3) {
        println!("  {stat}");
    }
    let top = &diff[0];
    println!(
        "the leak: {} new blocks at {}; its traceback, most recent call first:",
        top.count_diff, top.traceback
    );
    let leak = second
        .filter_traces(&mine)
        .statistics("traceback")
        .into_iter()
        .find(|s| s.traceback.frames()[0] == top.traceback.frames()[0])
        .expect("the leaking line is in the snapshot");
    for line in leak.traceback.format(true).iter().take(6) {
        println!("{line}");
    }
    trace::stop();
    drop(cache);

    // Sampled mode, cheap enough to leave on: one sample per 64 KiB allocated on average
    // (jemalloc's scheme; 512 KiB is the default), each sample weighed so the figures estimate
    // the real totals. The same leak, found from about 50 samples instead of 100k traces.
    trace::start_sampled(64 << 10, 8).expect("8 frames is within bounds");
    let before = trace::heap_stats();
    let mut cache = Cache {
        pages: HashMap::new(),
        log: Vec::new(),
    };
    let first = trace::take_snapshot();
    for key in 0..50_000 {
        cache.lookup(key);
    }
    let second = trace::take_snapshot();
    let stats = trace::heap_stats();
    let size = |n: u64| trace::format_size(n as f64, false);
    println!(
        "sampled mode: {} estimated allocated in {} blocks ({} samples held), {} estimated live",
        size(stats.total_bytes - before.total_bytes),
        stats.total_blocks - before.total_blocks,
        second.traces().len(),
        size(stats.curr_bytes as u64)
    );
    let diff = second
        .filter_traces(&mine)
        .compare_to(&first.filter_traces(&mine), "lineno");
    if let Some(top) = diff.first() {
        println!("  the top line by estimated growth: {top}");
    }
    trace::stop();
    drop(cache);
}
