//! The arenagc tour: `cargo run --release --example tour`.
//!
//! Installs `ArenaAlloc` as this program's global allocator, runs a real workload (strings,
//! vectors, maps, several threads, objects freed on other threads than the ones that made
//! them) and prints the allocator's statistics before and after; then the cycle collector at
//! work (`gc.rs`): cycles, counts, collection, statistics, a finalizer, a weak reference, and
//! "why is this alive" (counts by type, growth, `path_to`, a Graphviz picture of the referrers,
//! rendered to SVG when `dot` is installed) and `garbage` with a legacy finalizer and its leak
//! report.

mod gc;
#[cfg(feature = "trace")]
mod trace;

use arenagc::ArenaAlloc;
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::time::Instant;

#[global_allocator]
static GLOBAL: ArenaAlloc = ArenaAlloc;

fn section(title: &str) {
    println!(
        "\n=== {title} {}",
        "=".repeat(70usize.saturating_sub(title.len()))
    );
}

fn main() {
    section("allocator: statistics at start");
    println!("{}", arenagc::alloc::stats());

    section("allocator: workload");
    let t0 = Instant::now();
    // 1. Strings and vectors on the main thread.
    let words: Vec<String> = (0..200_000)
        .map(|i| format!("word-{i}-{}", "x".repeat(i % 23)))
        .collect();
    let mut index: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, w) in words.iter().enumerate() {
        index.entry(&w[..w.len().min(8)]).or_default().push(i);
    }
    println!(
        "main thread: {} strings, {} index keys",
        words.len(),
        index.len()
    );
    let mid = arenagc::alloc::stats();
    println!(
        "while live: {} small blocks in use ({} KiB), {} arenas mapped, {} KiB in the system allocator",
        mid.blocks_in_use(),
        mid.bytes_in_use() >> 10,
        mid.arenas.current,
        mid.large_bytes >> 10
    );

    // 2. Worker threads build B-trees of vectors and send them to a consumer thread, which frees
    //    them: every one of those frees is a cross-thread (remote) free.
    let (tx, rx) = mpsc::channel::<BTreeMap<u32, Vec<u32>>>();
    let consumer = std::thread::spawn(move || {
        let mut checked = 0u64;
        for tree in rx {
            for (k, v) in &tree {
                assert!(v.iter().all(|x| x == k));
                checked += v.len() as u64;
            }
            drop(tree); // freed here, not on the thread that made it
        }
        checked
    });
    let workers: Vec<_> = (0..4u32)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for round in 0..25u32 {
                    let tree: BTreeMap<u32, Vec<u32>> = (0..2000u32)
                        .map(|k| (k, vec![k; ((k + round + t) % 40) as usize]))
                        .collect();
                    tx.send(tree).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for w in workers {
        w.join().unwrap();
    }
    let checked = consumer.join().unwrap();
    println!(
        "4 workers x 25 trees sent to a consumer thread: {checked} values checked and freed remotely"
    );

    drop(index);
    drop(words);
    arenagc::alloc::trim();
    println!("workload took {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);

    section("allocator: statistics after everything was freed");
    let end = arenagc::alloc::stats();
    println!("{end}");
    println!(
        "arenas: {} mapped in total, {} given back to the OS, {} still mapped (peak {})",
        end.arenas.allocated_total, end.arenas.released_total, end.arenas.current, end.arenas.peak
    );
    arenagc::alloc::validate().expect("allocator invariants");

    gc::run();
    #[cfg(feature = "trace")]
    trace::run();
}
