//! The collector side by side, in one process run: every round runs each shape once per
//! contender, interleaved (the order rotates each round), and the tables give the median per
//! contender and ratios of medians, so that a loaded, shared machine moves both sides of a ratio
//! alike. CPython runs the same shapes in a `python3` subprocess (`benches/gc_cpython.py SHAPE`).
//!
//!   cargo bench -p arenagc-bench --bench gc_side_by_side
//!   ROUNDS=20 ONLY=young_pauses cargo bench -p arenagc-bench --bench gc_side_by_side
//!
//! `ROUNDS` (default 5) sets the rounds, `ONLY` runs the shapes whose name contains it,
//! `ARENAGC_BENCH_N` the cycles per shape (default 1,000,000), `PYTHON` the interpreter.
//!
//! Shapes (N two-object cycles):
//! - `collect_garbage`: collect 2N garbage objects (made with automatic collection off, outside
//!   the timing); ns per object.
//! - `full_collect_live`: one full collection over 2N live tracked objects; ns per live object.
//!   rust-cc, bacon_rajan_cc and dumpster scan only candidate roots (objects whose count went
//!   down): with none, their collection does no work, so only gcmodule and CPython are compared.
//! - `new_clone_drop_drop`: `new`, `clone`, `drop`, `drop` of a small object; ns per iteration,
//!   the best of 3 runs of 1M in each round (the median is then taken over rounds).
//! - `young_pauses`: the pauses of the young collections (generations 0 and 1) while N cycles are
//!   made with 2N live objects in the oldest generation, automatic collection on, as CPU time of
//!   the thread (a busy machine's preemption is not a pause of the collector); p50, p99 and max
//!   per run, in µs; the table gives medians over runs and the worst max of all runs.

#[path = "gc_common.rs"]
mod gc_common;

use std::cell::RefCell;
use std::hint::black_box;
use std::process::Command;
use std::rc::Rc;
use std::time::Instant;

use gc_common::{Lib, libs, n, ours, setup_no_auto_collection};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The CPython side: one run of `shape` in a fresh interpreter; the numbers it prints.
fn cpython(shape: &str) -> Vec<f64> {
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/gc_cpython.py");
    let out = Command::new(py)
        .arg(script)
        .arg(shape)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{shape}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|w| w.parse().expect("a number"))
        .collect()
}

/// Thread CPU time in ns.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn collect_garbage(lib: &Lib, n: usize) -> f64 {
    (lib.make_garbage)(n);
    let t = Instant::now();
    (lib.collect)();
    t.elapsed().as_nanos() as f64 / (2 * n) as f64
}

fn full_collect_live(lib: &Lib, n: usize) -> f64 {
    let free = (lib.make_live)(n);
    (lib.collect)();
    let t = Instant::now();
    (lib.collect)();
    let ns = t.elapsed().as_nanos() as f64 / (2 * n) as f64;
    free();
    ns
}

/// ns per new + clone + drop + drop of a one-word object.
fn new_clone_drop_drop(name: &str) -> f64 {
    use gc_common::leaves::*;
    // The best of 3 back-to-back runs of 1M: a run is 10-60 ms, short enough for one
    // preemption on a busy machine to double it, so a round keeps its least disturbed run.
    macro_rules! time {
        ($new:expr) => {{
            let m = 1_000_000;
            (0..3)
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..m {
                        let a = $new;
                        let c = a.clone();
                        drop(black_box(c));
                        drop(a);
                    }
                    t.elapsed().as_nanos() as f64 / m as f64
                })
                .fold(f64::INFINITY, f64::min)
        }};
    }
    let ns = match name {
        "arenagc" => {
            arenagc::gc::enable();
            let ns = time!(arenagc::Gc::new(Leaf(black_box(1))));
            arenagc::gc::disable();
            ns
        }
        "Rc" => time!(Rc::new(black_box(1u64))),
        "gcmodule" => time!(gcmodule::Cc::new(GLeaf(black_box(1)))),
        "rust-cc" => time!(rust_cc::Cc::new(RLeaf(black_box(1)))),
        "bacon_rajan_cc" => {
            let ns = time!(bacon_rajan_cc::Cc::new(BLeaf(black_box(1))));
            bacon_rajan_cc::collect_cycles();
            ns
        }
        "dumpster" => time!(dumpster::unsync::Gc::new(DLeaf(black_box(1)))),
        _ => unreachable!(),
    };
    black_box((Leaf(0).0, GLeaf(0).0, RLeaf(0).0, DLeaf(0).0, BLeaf(0).0));
    ns
}

/// One run of the pause scenario for arenagc: (p50, p99, max) in µs of thread CPU time.
fn young_pauses(n: usize) -> Vec<f64> {
    use arenagc::gc::{self, Phase};
    gc::enable();
    let live: Vec<_> = (0..n).map(|_| ours::pair()).collect();
    gc::collect(2).unwrap();
    let pauses = Rc::new(RefCell::new(Vec::new()));
    let start = Rc::new(RefCell::new(0u64));
    let (p, s) = (pauses.clone(), start.clone());
    let id = gc::add_callback(move |phase, info| {
        if info.generation >= 2 {
            return;
        }
        match phase {
            Phase::Start => *s.borrow_mut() = thread_cpu_ns(),
            Phase::Stop => p
                .borrow_mut()
                .push((thread_cpu_ns() - *s.borrow()) as f64 / 1e3),
        }
    });
    for _ in 0..n {
        black_box(ours::pair());
    }
    gc::remove_callback(id);
    gc::disable();
    drop(live);
    gc::collect(2).unwrap();
    let mut v = pauses.borrow().clone();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    vec![at(0.5), at(0.99), v[v.len() - 1]]
}

/// The medians of one shape: (contender, per-round values).
type Results = Vec<(String, Vec<f64>)>;

fn push(r: &mut Results, name: &str, x: f64) {
    match r.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => v.push(x),
        None => r.push((name.to_string(), vec![x])),
    }
}

fn med(r: &Results, name: &str) -> f64 {
    r.iter()
        .find(|(n, _)| n == name)
        .map_or(f64::NAN, |(_, v)| median(v))
}

fn table(title: &str, unit: &str, r: &Results, crates: &[&str], extra: &[(&str, &str)]) {
    println!("\n### {title} ({unit}, median of {} rounds)\n", {
        r.first().map_or(0, |(_, v)| v.len())
    });
    println!("| contender | median | min | max |\n|---|---|---|---|");
    for (name, v) in r {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        println!("| {name} | {:.2} | {lo:.2} | {hi:.2} |", median(v));
    }
    let ours = med(r, "arenagc");
    let mut ratios = vec![];
    if r.iter().any(|(n, _)| n == "CPython") {
        ratios.push(format!("arenagc / CPython {:.3}", ours / med(r, "CPython")));
    }
    if let Some((fast, m)) = crates
        .iter()
        .map(|c| (*c, med(r, c)))
        .filter(|(_, m)| m.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
    {
        ratios.push(format!("arenagc / fastest crate ({fast}) {:.3}", ours / m));
    }
    for (label, other) in extra {
        ratios.push(format!("arenagc / {label} {:.3}", ours / med(r, other)));
    }
    println!("\nratios of medians: {}", ratios.join(", "));
}

const CRATES: [&str; 4] = ["gcmodule", "rust-cc", "bacon_rajan_cc", "dumpster"];

fn run() {
    let rounds = env_usize("ROUNDS", 5);
    let only = std::env::var("ONLY").unwrap_or_default();
    let want = |shape: &str| shape.contains(only.as_str());
    let n = n();
    setup_no_auto_collection();
    let libs: Vec<Lib> = libs().into_iter().filter(|l| l.name != "Rc").collect();
    let nlibs = libs.len() + 1; // + CPython
    let (mut garbage, mut full, mut ncdd) = (Results::new(), Results::new(), Results::new());
    let (mut p50, mut p99, mut pmax) = (Results::new(), Results::new(), Results::new());
    let ncdd_names = [
        "arenagc",
        "Rc",
        "gcmodule",
        "rust-cc",
        "bacon_rajan_cc",
        "dumpster",
    ];
    for round in 0..rounds {
        eprintln!("round {} of {rounds}", round + 1);
        for k in 0..nlibs {
            // Rotate the order each round; index libs.len() is CPython.
            let i = (k + round) % nlibs;
            let lib = libs.get(i);
            if want("collect_garbage") {
                match lib {
                    Some(l) => push(&mut garbage, l.name, collect_garbage(l, n)),
                    None => push(&mut garbage, "CPython", cpython("collect_garbage")[0]),
                }
            }
            if want("full_collect_live") {
                match lib {
                    Some(l) if l.name == "arenagc" || l.name == "gcmodule" => {
                        push(&mut full, l.name, full_collect_live(l, n))
                    }
                    Some(_) => {}
                    None => push(&mut full, "CPython", cpython("full_collect_live")[0]),
                }
            }
            if want("young_pauses") {
                let v = match lib {
                    Some(l) if l.name == "arenagc" => young_pauses(n),
                    None => cpython("young_pauses"),
                    Some(_) => continue,
                };
                let name = if lib.is_some() { "arenagc" } else { "CPython" };
                push(&mut p50, name, v[0]);
                push(&mut p99, name, v[1]);
                push(&mut pmax, name, v[2]);
            }
        }
        if want("new_clone_drop_drop") {
            for k in 0..ncdd_names.len() {
                let name = ncdd_names[(k + round) % ncdd_names.len()];
                push(&mut ncdd, name, new_clone_drop_drop(name));
            }
        }
    }
    // Keep the tables in a fixed order.
    let order = |r: &mut Results| {
        let key = |n: &str| {
            ["arenagc", "CPython", "Rc"]
                .iter()
                .chain(CRATES.iter())
                .position(|x| *x == n)
        };
        r.sort_by_key(|(n, _)| key(n));
    };
    for r in [
        &mut garbage,
        &mut full,
        &mut ncdd,
        &mut p50,
        &mut p99,
        &mut pmax,
    ] {
        order(r);
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "## gc_side_by_side: N = {n} cycles, {rounds} rounds, load average at the end: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    if !garbage.is_empty() {
        table(
            "collect garbage",
            "ns per object",
            &garbage,
            &CRATES,
            &[("gcmodule", "gcmodule")],
        );
    }
    if !full.is_empty() {
        table(
            "full collection, live objects",
            "ns per live object",
            &full,
            &[],
            &[("gcmodule", "gcmodule")],
        );
    }
    if !ncdd.is_empty() {
        table(
            "new + clone + drop + drop",
            "ns",
            &ncdd,
            &CRATES,
            &[("Rc", "Rc")],
        );
    }
    if !p50.is_empty() {
        table("young pauses, p50", "µs CPU", &p50, &[], &[]);
        table("young pauses, p99", "µs CPU", &p99, &[], &[]);
        table("young pauses, max of a run", "µs CPU", &pmax, &[], &[]);
        let worst = |name: &str| {
            pmax.iter()
                .find(|(n, _)| n == name)
                .map_or(f64::NAN, |(_, v)| v.iter().copied().fold(0.0, f64::max))
        };
        println!(
            "\nworst young pause over all {rounds} runs: arenagc {:.1} µs, CPython {:.1} µs (ratio {:.3})",
            worst("arenagc"),
            worst("CPython"),
            worst("arenagc") / worst("CPython")
        );
    }
}

fn main() {
    // Some of the compared crates recurse while collecting: give them a big stack.
    std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}
