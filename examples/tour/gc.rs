//! The GC part of the tour: reference cycles, generations, a finalizer, a weak reference and
//! an uncollectable cycle in `garbage`, with `arenagc::gc` (CPython's `gc` module, in Rust).

use std::cell::Cell;
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;

use arenagc::gc::{self, Phase};
use arenagc::{Gc, GcCell, Trace};

use super::section;

/// A node that can point at others: `GcCell` lets us close cycles through shared `Gc`s.
#[derive(Trace)]
struct Node {
    name: String,
    edges: GcCell<Vec<Gc<Node>>>,
}

fn node(name: &str) -> Gc<Node> {
    Gc::new(Node {
        name: name.to_string(),
        edges: GcCell::new(Vec::new()),
    })
}

/// A type with a PEP 442 finalizer: it runs once, before the object's cycle is torn down.
#[derive(Trace)]
#[trace(finalize = say_goodbye)]
struct Resource {
    id: u32,
    me: GcCell<Option<Gc<Resource>>>,
}

fn say_goodbye(this: &Gc<Resource>) {
    println!(
        "    finalizer: resource #{} says goodbye (is_finalized = {})",
        this.id,
        gc::is_finalized(this)
    );
}

/// A type with a legacy finalizer (`__del__` before PEP 442): its cycles are uncollectable.
#[derive(Trace)]
#[trace(legacy_del = legacy_del)]
struct Legacy {
    partner: GcCell<Option<Gc<Legacy>>>,
}

fn legacy_del(_: &Gc<Legacy>) {}

/// Print the GC tour.
pub fn run() {
    section("gc: reference counting frees at once");
    let (c0, _, _) = gc::get_count();
    let a = node("a");
    println!(
        "  Gc::new -> get_count() = {:?} (generation 0 rose by one)",
        gc::get_count()
    );
    let a2 = a.clone();
    println!("  clone   -> strong_count = {}", Gc::strong_count(&a));
    drop(a2);
    drop(a);
    println!(
        "  drop x2 -> freed at once; get_count() = {:?} (back to {c0})",
        gc::get_count()
    );

    section("gc: cycles need the collector");
    let stats = Rc::new(Cell::new((0usize, 0usize)));
    let s = stats.clone();
    let id = gc::add_callback(move |phase, info| {
        if phase == Phase::Stop {
            s.set((info.collected, info.uncollectable));
        }
    });
    gc::disable(); // no automatic collection for now: we want to see the garbage pile up
    for i in 0..1000 {
        let x = node(&format!("x{i}"));
        let y = node(&format!("y{i}"));
        x.edges.borrow_mut().push(y.clone());
        y.edges.borrow_mut().push(x.clone());
    }
    let keep = node("root");
    let (p, q) = (node("p"), node("q"));
    keep.edges.borrow_mut().push(p.clone());
    p.edges.borrow_mut().push(q.clone());
    q.edges.borrow_mut().push(p.clone());
    drop((p, q));
    println!("  made 1000 garbage two-node cycles and one live cycle under `root`");
    println!(
        "  get_count() = {:?}, thresholds = {:?}",
        gc::get_count(),
        gc::get_threshold()
    );
    let n = gc::collect(2).unwrap();
    println!(
        "  gc::collect(2) = {n}; callback saw (collected, uncollectable) = {:?}",
        stats.get()
    );
    let live = keep.edges.borrow()[0].clone();
    println!(
        "  the live cycle survived: root -> {} -> {} ; is_tracked = {}",
        live.name,
        live.edges.borrow()[0].name,
        gc::is_tracked(&live)
    );
    println!(
        "  referrers of p: {:?}",
        gc::get_referrers(&live)
            .iter()
            .map(|o| o.type_name())
            .collect::<Vec<_>>()
    );
    for (g, st) in gc::get_stats().iter().enumerate() {
        println!("  get_stats()[{g}] = {st:?}");
    }
    println!("  gc::collect(7) = {:?}", gc::collect(7));

    section("gc: a finalizer and a weak reference");
    let r = Gc::new(Resource {
        id: 7,
        me: GcCell::new(None),
    });
    r.me.set(Some(r.clone()));
    let w =
        Gc::downgrade_with_callback(&r, || println!("    weakref callback: resource #7 is gone"));
    println!(
        "  weak upgrade while alive: {:?}",
        w.upgrade().map(|r| r.id)
    );
    drop(r);
    println!("  dropped the last handle; the self-cycle keeps it alive until collect:");
    let n = gc::collect(2).unwrap();
    println!(
        "  gc::collect(2) = {n}; weak upgrade now: {:?}",
        w.upgrade().map(|r| r.id)
    );

    why_alive();

    section("gc: garbage with a legacy finalizer");
    let l1 = Gc::new(Legacy {
        partner: GcCell::new(None),
    });
    let l2 = Gc::new(Legacy {
        partner: GcCell::new(Some(l1.clone())),
    });
    l1.partner.set(Some(l2));
    drop(l1);
    let n = gc::collect(2).unwrap();
    println!(
        "  gc::collect(2) = {n}; callback saw (collected, uncollectable) = {:?}",
        stats.get()
    );
    println!("  gc::garbage() = {:?}", gc::garbage());
    // The leak report: garbage grouped by type, each group with the legacy finalizer that
    // pins it (printed by every collection under gc::DEBUG_LEAK).
    for line in gc::leak_report().to_string().lines() {
        println!("  | {line}");
    }
    for o in gc::take_garbage() {
        // Break the cycle by hand: look at the referents, then let everything go.
        println!("    {o:?} refers to {:?}", gc::get_referents(&o));
    }
    gc::remove_callback(id);
    gc::enable();
    println!("  (the legacy pair stays uncollectable: a program must break such cycles itself)");
    gc::freeze();
    println!(
        "  gc::freeze() moved {} objects to the permanent generation",
        gc::get_freeze_count()
    );
    gc::unfreeze();
    drop((live, keep));
}

/// Leak hunting in the object graph: counts by type, growth, "why is this alive" and a
/// Graphviz picture of the referrers (objgraph's answers, from the collector).
fn why_alive() {
    section("gc: why is this alive (type counts, growth, path_to, a picture)");
    // Describe Nodes by name in the reports and pictures.
    gc::set_repr::<Node>(Some(|n, out| write!(out, "{}", n.name)));
    gc::type_growth(); // the baseline: the next call reports what rose above it
    let cache = node("cache");
    let bucket = node("bucket");
    cache.edges.borrow_mut().push(bucket.clone());
    for i in 0..50 {
        bucket.edges.borrow_mut().push(node(&format!("entry{i}")));
    }
    drop(bucket);
    for t in gc::type_counts().iter().take(3) {
        println!(
            "  type_counts: {:>4} x {} ({} bytes)",
            t.count, t.name, t.bytes
        );
    }
    for g in gc::type_growth() {
        println!("  type_growth: {} {:>4} (+{})", g.name, g.count, g.delta);
    }
    let entry = cache.edges.borrow()[0].edges.borrow()[42].clone();
    let why = gc::path_to(&entry).expect("not during a collection");
    for line in why.to_string().lines() {
        println!("  path_to(entry42): {line}");
    }
    // The chain holds strong references (each would be a root of the next question): let go.
    drop(why);
    let dot = gc::dot_backrefs(&entry, 4, 20).expect("not during a collection");
    let dir = std::env::temp_dir();
    let dot_file: PathBuf = dir.join("arenagc-tour-backrefs.dot");
    let svg_file: PathBuf = dir.join("arenagc-tour-backrefs.svg");
    std::fs::write(&dot_file, &dot).expect("write the DOT file");
    println!(
        "  dot_backrefs(entry42): {} nodes, {} edges -> {}",
        dot.matches(" [label=").count(),
        dot.matches(" -> ").count(),
        dot_file.display()
    );
    let rendered = Command::new("dot")
        .arg("-Tsvg")
        .arg(&dot_file)
        .arg("-o")
        .arg(&svg_file)
        .status();
    match rendered {
        Ok(st) if st.success() => println!("  rendered with Graphviz: {}", svg_file.display()),
        _ => println!(
            "  (Graphviz's `dot` is not installed: `apt-get install graphviz`, then \
             `dot -Tsvg {} -o backrefs.svg`)",
            dot_file.display()
        ),
    }
    gc::set_repr::<Node>(None);
    drop((entry, cache));
}
