// `Gc::unsize` (and `gc_dyn!`) to a trait object of a trait the value's type does not
// implement: the coercion the closure performs is refused by the compiler, at the closure.
use arenagc::{Gc, Trace, gc_dyn};

trait Shape {
    fn area(&self) -> f64;
}

#[derive(Trace)]
struct NotAShape(u8);

fn main() {
    let _s = Gc::unsize::<dyn Shape>(Gc::new(NotAShape(1)), |b| b);
    let _t = gc_dyn!(Gc::new(NotAShape(2)) => dyn Shape);
}
