//! The C examples in `ffi/examples`, compiled against `include/arenagc.h`, linked to
//! `libarenagc.so` and to `libarenagc.a`, run (allocator in normal and debug mode) and checked
//! line by line.

mod common;

use common::{Link, cc, root, run_ok};
use std::process::Command;

/// What `objsys` prints. A line ending in `*` matches any line starting with what precedes it
/// (the collector's exact count there depends on when automatic collections ran).
const OBJSYS: &str = concat!(
    "objsys on arenagc ",
    env!("CARGO_PKG_VERSION"),
    "\n",
    "\
[1] self-referencing list and pair
  list: 2 items, refcount 3, tracked 1; int tracked 0
  after dropping our references: 3 objects alive (unreachable cycles)
  gc callback: generation 0 done, 2 collected, 0 uncollectable
  collect(0) found 2 unreachable
  after collect: 0 objects alive
[2] a ring of 1000 pairs
  pairs tracked: 1000; pair #500 reached through a weak reference (it has 1)
  objects alive before collect: 2000
  weakref callback: pair #7 is gone (referent now NULL)
  gc callback: generation 2 done, 1000 collected, 0 uncollectable
  collect(2) found 1000 unreachable
  objects alive after collect: 0; weak reference to pair #500: dead
[3] finalizers
  finalizer: closing resource 'db'
  gc callback: generation 2 done, 2 collected, 0 uncollectable
  collect(2) found 2 unreachable
  objects alive: 0
  finalizer: closing resource 'log'
  finalizer: resource 'log' resurrected into the graveyard
  resource 'log' alive in the graveyard: open 0, finalized 1
  objects alive: 0
[4] garbage
  gc callback: generation 2 done, 2 collected, 0 uncollectable
  collect(2) found 2 unreachable
  garbage holds 2 objects
  garbage[0] is a list of 1 items
  gc callback: generation 2 done, 2 collected, 0 uncollectable
  collect(2) after clearing garbage found 2 unreachable
[5] automatic collection
  10000 self-cycles made; objects alive: fewer than 10000; collections so far: many
  gc callback: generation 2 done, *
  collect(2) found the rest
  after collect(2): 0 objects alive
[6] statistics
  generation 0: some collections, some collected, 0 uncollectable
  generation 1: some collections, *
  generation 2: some collections, some collected, 0 uncollectable
  gc callback saw all collections
  allocator: some arenas mapped, consistent
objsys: done, 0 objects alive
"
);

fn check_lines(got: &str, want: &str, what: &str) {
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    for (i, (gl, wl)) in g.iter().zip(w.iter()).enumerate() {
        let ok = match wl.strip_suffix('*') {
            Some(prefix) => gl.starts_with(prefix),
            None => gl == wl,
        };
        assert!(
            ok,
            "{what}: line {}:\n  got:  {gl}\n  want: {wl}\nfull output:\n{got}",
            i + 1
        );
    }
    assert_eq!(
        g.len(),
        w.len(),
        "{what}: number of lines; full output:\n{got}"
    );
}

#[test]
fn objsys_example_builds_runs_and_prints_what_it_should() {
    let src = root().join("ffi/examples/objsys.c");
    let flags = ["-std=c99", "-pedantic"];
    for (name, link) in [
        ("objsys_shared", Link::Shared),
        ("objsys_static", Link::Static),
    ] {
        let exe = cc(name, &src, link, &flags);
        for debug in ["0", "1"] {
            let (out, _) = run_ok(Command::new(&exe).env("ARENAGC_DEBUG", debug));
            check_lines(&out, OBJSYS, &format!("{name}, ARENAGC_DEBUG={debug}"));
        }
    }
}
