// `#[trace(crate = path)]`: the generated code names the crate through `path`, so the derive
// works when `arenagc` is reachable under another name: a renamed dependency, or a re-export
// (here both are imitated with `use`; `fail_crate_path.rs` shows the path is really used).
use ::arenagc as collector;

mod inner {
    pub use ::arenagc as gc_crate;
}

use collector::{Gc, GcCell};

#[derive(collector::Trace)]
#[trace(crate = collector)]
struct Node {
    next: GcCell<Option<Gc<Node>>>,
    #[trace(skip)]
    _note: std::fs::File,
}

#[derive(collector::Trace)]
#[trace(crate = "inner::gc_crate", finalize = Leaf::finalize)]
enum Leaf {
    A(u8),
    B { child: Gc<Leaf> },
}

impl Leaf {
    fn finalize(_: &Gc<Leaf>) {}
}

fn main() {
    let a = Gc::new(Node { next: GcCell::new(None), _note: std::fs::File::open("/").unwrap() });
    a.next.set(Some(a.clone()));
    drop(a);
    assert_eq!(collector::gc::collect_all(), 1);
    let l = Gc::new(Leaf::B { child: Gc::new(Leaf::A(1)) });
    assert_eq!(collector::gc::get_referents(&l).len(), 1);
}
