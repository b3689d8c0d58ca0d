//! The collector benches' shared part (`gc.rs`, `gc_side_by_side.rs`): the same two-object
//! cycle in arenagc, `Rc`, gcmodule, rust-cc, bacon_rajan_cc and dumpster, and one [`Lib`] per
//! library saying how to make garbage, collect and keep live pairs. Each bench uses part of it.
#![allow(dead_code)]

use std::cell::RefCell;
use std::hint::black_box;

/// N, the number of two-object cycles (`ARENAGC_BENCH_N`, default 1,000,000).
pub fn n() -> usize {
    std::env::var("ARENAGC_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// `pub fn pair()`: two `$ptr<Node>` pointing at each other through `$cell` (each module below
/// says which pointer and cell its library uses; the cycle is the same everywhere).
macro_rules! two_node_cycle {
    ($ptr:ident, $cell:ident) => {
        pub fn pair() -> ($ptr<Node>, $ptr<Node>) {
            let a = $ptr::new(Node {
                next: $cell::new(None),
            });
            let b = $ptr::new(Node {
                next: $cell::new(Some(a.clone())),
            });
            *a.next.borrow_mut() = Some(b.clone());
            (a, b)
        }
    };
}

pub mod ours {
    use arenagc::{Gc, GcCell, Trace};

    #[derive(Trace)]
    pub struct Node {
        pub next: GcCell<Option<Gc<Node>>>,
    }

    two_node_cycle!(Gc, GcCell);
}

pub mod with_rc {
    use std::cell::RefCell;
    use std::rc::Rc;

    pub struct Node {
        pub next: RefCell<Option<Rc<Node>>>,
    }

    two_node_cycle!(Rc, RefCell);
}

pub mod with_gcmodule {
    use gcmodule::{Cc, Trace, Tracer};
    use std::cell::RefCell;

    pub struct Node {
        pub next: RefCell<Option<Cc<Node>>>,
    }

    // By hand: gcmodule's derive recurses forever in `is_type_tracked` on recursive types.
    impl Trace for Node {
        fn trace(&self, tracer: &mut Tracer) {
            self.next.trace(tracer);
        }
        fn is_type_tracked() -> bool {
            true
        }
    }

    two_node_cycle!(Cc, RefCell);
}

pub mod with_rust_cc {
    use rust_cc::{Cc, Finalize, Trace};
    use std::cell::RefCell;

    #[derive(Trace, Finalize)]
    pub struct Node {
        pub next: RefCell<Option<Cc<Node>>>,
    }

    two_node_cycle!(Cc, RefCell);
}

pub mod with_bacon {
    use bacon_rajan_cc::{Cc, Trace, Tracer};
    use std::cell::RefCell;

    pub struct Node {
        pub next: RefCell<Option<Cc<Node>>>,
    }

    impl Trace for Node {
        fn trace(&self, tracer: &mut Tracer) {
            self.next.trace(tracer);
        }
    }

    two_node_cycle!(Cc, RefCell);
}

pub mod with_dumpster {
    use dumpster::Trace;
    use dumpster::unsync::Gc;
    use std::cell::RefCell;

    #[derive(Trace)]
    pub struct Node {
        pub next: RefCell<Option<Gc<Node>>>,
    }

    two_node_cycle!(Gc, RefCell);
}

/// A contender that collects cycles: `$m::pair()` makes one two-object cycle, `$collect`
/// collects everything collectable.
macro_rules! collector_lib {
    ($name:expr, $m:ident, $collect:expr) => {
        Lib {
            name: $name,
            make_garbage: |n| {
                for _ in 0..n {
                    black_box($m::pair());
                }
            },
            collect: || {
                $collect;
            },
            make_live: |n| {
                let v: Vec<_> = (0..n).map(|_| $m::pair()).collect();
                Box::new(move || {
                    drop(v);
                    $collect;
                })
            },
        }
    };
}

/// One library: how to make garbage pairs, collect, and keep live pairs.
pub struct Lib {
    pub name: &'static str,
    /// Create `n` garbage cycles (automatic collection off).
    pub make_garbage: fn(usize),
    /// Collect everything collectable.
    pub collect: fn(),
    /// Create `n` live pairs, returning an owner that frees them (cycles broken) on drop.
    pub make_live: fn(usize) -> Box<dyn FnOnce()>,
}

pub fn libs() -> Vec<Lib> {
    vec![
        collector_lib!("arenagc", ours, arenagc::gc::collect(2).unwrap()),
        Lib {
            name: "Rc",
            make_garbage: |n| {
                // Rc cannot collect: cycles are kept here and broken outside the timing.
                let v: Vec<_> = (0..n).map(|_| with_rc::pair().0).collect();
                RC_LEAK.with(|l| l.borrow_mut().extend(v));
            },
            collect: || {
                let v = RC_LEAK.with(|l| std::mem::take(&mut *l.borrow_mut()));
                for a in v {
                    a.next.borrow_mut().take();
                }
            },
            make_live: |n| {
                let v: Vec<_> = (0..n).map(|_| with_rc::pair()).collect();
                Box::new(move || {
                    for (a, _) in &v {
                        a.next.borrow_mut().take();
                    }
                })
            },
        },
        collector_lib!("gcmodule", with_gcmodule, gcmodule::collect_thread_cycles()),
        collector_lib!("rust-cc", with_rust_cc, rust_cc::collect_cycles()),
        collector_lib!(
            "bacon_rajan_cc",
            with_bacon,
            bacon_rajan_cc::collect_cycles()
        ),
        collector_lib!("dumpster", with_dumpster, dumpster::unsync::collect()),
    ]
}

thread_local! {
    static RC_LEAK: RefCell<Vec<std::rc::Rc<with_rc::Node>>> = const { RefCell::new(Vec::new()) };
}

pub fn setup_no_auto_collection() {
    arenagc::gc::disable();
    let _ = rust_cc::config::config(|c| c.set_auto_collect(false));
    dumpster::unsync::set_collect_condition(|_| false);
}

/// A one-word object in each library, for new + clone + drop + drop.
pub mod leaves {
    #[derive(arenagc::Trace)]
    pub struct Leaf(pub u64);
    #[derive(gcmodule::Trace)]
    pub struct GLeaf(pub u64);
    #[derive(rust_cc::Trace, rust_cc::Finalize)]
    pub struct RLeaf(pub u64);
    #[derive(dumpster::Trace)]
    pub struct DLeaf(pub u64);
    pub struct BLeaf(pub u64);
    impl bacon_rajan_cc::Trace for BLeaf {
        fn trace(&self, _: &mut bacon_rajan_cc::Tracer) {}
    }
}
