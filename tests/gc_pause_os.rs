//! A collection's pause makes no system call to give memory back: arenas it empties are not
//! unmapped inside it (`alloc::hold_os_releases`), but later (an arena event outside a pause,
//! or `trim`). The check runs in a child process (this binary again) with
//! `ARENAGC_PURGE_DELAY=0`, so that without the hold the pause would unmap at once; the count
//! of unmaps (`alloc::os::release_calls`) is read by gc callbacks at the pause's start and
//! stop. `harness = false`.

use std::cell::Cell;
use std::process::Command;
use std::rc::Rc;

use arenagc::gc::{self, Phase};
use arenagc::{ArenaAlloc, Gc, GcCell, Trace};

#[global_allocator]
static GLOBAL: ArenaAlloc = ArenaAlloc;

#[derive(Trace)]
struct Node {
    other: GcCell<Option<Gc<Node>>>,
    #[trace(skip)]
    _pad: [u64; 4],
}

fn child() {
    gc::disable();
    const PAIRS: usize = 300_000; // ~600k objects of ~96 bytes: well over 100 arenas
    for _ in 0..PAIRS {
        let a = Gc::new(Node {
            other: GcCell::new(None),
            _pad: [0; 4],
        });
        let b = Gc::new(Node {
            other: GcCell::new(Some(a.clone())),
            _pad: [0; 4],
        });
        *a.other.borrow_mut() = Some(b);
    }
    let seen = Rc::new(Cell::new((0usize, 0usize)));
    let s = seen.clone();
    let id = gc::add_callback(move |phase, _| {
        let n = arenagc::alloc::os::release_calls();
        let (start, stop) = s.get();
        match phase {
            Phase::Start => s.set((n, stop)),
            Phase::Stop => s.set((start, n)),
        }
    });
    let before = arenagc::alloc::stats().arenas.current;
    let collected = gc::collect(0).unwrap();
    assert_eq!(
        collected,
        2 * PAIRS,
        "the young collection frees every pair"
    );
    let (start, stop) = seen.get();
    assert_eq!(
        start, stop,
        "arenas unmapped during the pause: {start} -> {stop}"
    );
    gc::remove_callback(id);
    let held = arenagc::alloc::stats().arenas.current;
    arenagc::alloc::trim();
    let after = arenagc::alloc::os::release_calls();
    assert!(
        after > stop,
        "the emptied arenas are given back after the pause (trim): {stop} -> {after}; arenas \
         before {before}, after the collection {held}"
    );
    println!(
        "child ok: {} arenas unmapped after the pause, none during it",
        after - stop
    );
}

fn main() {
    if std::env::var_os("GC_PAUSE_CHILD").is_some() {
        return child();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .env("GC_PAUSE_CHILD", "1")
        .env("ARENAGC_PURGE_DELAY", "0")
        .env_remove("ARENAGC_DEBUG")
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && so.contains("child ok") {
        println!(
            "test a_collection_pause_unmaps_no_arena ... ok ({})",
            so.trim()
        );
        println!("1 passed, 0 failed");
    } else {
        println!(
            "test a_collection_pause_unmaps_no_arena ... FAILED ({:?})\n{so}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        println!("0 passed, 1 failed");
        std::process::exit(1);
    }
}
