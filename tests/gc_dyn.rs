//! `Gc<dyn Trait>` (issue 16): made by `Gc::unsize` / `gc_dyn!`, it derefs to the concrete
//! type's methods, shares the object's count, is traced as an edge (a cycle through trait
//! objects is collected, each `Drop` once), drops the value as the concrete type (finalizer
//! included), and has `Rc`'s std traits when `dyn Trait` has them.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt::{self, Debug, Display};
use std::panic::{AssertUnwindSafe, catch_unwind};

use arenagc::gc::{self, AsObject};
use arenagc::{Gc, GcCell, Trace, gc_dyn};

fn isolated(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().unwrap();
}

trait Shape {
    fn area(&self) -> f64;
    fn name(&self) -> String;
}

#[derive(Trace)]
struct Circle(f64);
#[derive(Trace)]
struct Rect(f64, f64);

impl Shape for Circle {
    fn area(&self) -> f64 {
        3.0 * self.0 * self.0
    }
    fn name(&self) -> String {
        "circle".into()
    }
}
impl Shape for Rect {
    fn area(&self) -> f64 {
        self.0 * self.1
    }
    fn name(&self) -> String {
        "rect".into()
    }
}

/// Equality of shapes by area: `Gc<dyn Shape>` gets `PartialEq` from `dyn Shape`'s.
impl PartialEq for dyn Shape {
    fn eq(&self, o: &dyn Shape) -> bool {
        self.area() == o.area()
    }
}
impl Debug for dyn Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.area())
    }
}

#[test]
fn deref_calls_the_concrete_types_methods() {
    isolated(|| {
        let c = Gc::new(Circle(1.0));
        let shapes: Vec<Gc<dyn Shape>> = vec![
            Gc::unsize::<dyn Shape>(c.clone(), |b| b),
            gc_dyn!(Gc::new(Rect(2.0, 3.0)) => dyn Shape),
        ];
        let names: Vec<String> = shapes.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["circle", "rect"]);
        assert_eq!(shapes.iter().map(|s| s.area()).sum::<f64>(), 9.0);
        // One object, two handles: the count is shared, the address is the same.
        assert_eq!(Gc::strong_count(&c), 2);
        assert_eq!(Gc::strong_count(&shapes[0]), 2);
        assert_eq!(Gc::as_ptr(&c), Gc::as_ptr(&shapes[0]));
        let again: Gc<dyn Shape> = Gc::unsize(c.clone(), |b| b as _);
        assert!(Gc::ptr_eq(&again, &shapes[0]));
        assert!(!Gc::ptr_eq(&again, &shapes[1]));
        assert!(Gc::try_get(&again).is_some());
        drop(shapes);
        assert_eq!(Gc::strong_count(&c), 2);
        drop(again);
        assert_eq!(Gc::strong_count(&c), 1);
    });
}

#[test]
fn std_traits_follow_the_trait_object() {
    isolated(|| {
        let a: Gc<dyn Shape> = gc_dyn!(Gc::new(Rect(1.0, 3.0)) => dyn Shape);
        let b: Gc<dyn Shape> = gc_dyn!(Gc::new(Circle(1.0)) => dyn Shape);
        let c: Gc<dyn Shape> = gc_dyn!(Gc::new(Rect(1.0, 1.0)) => dyn Shape);
        assert!(a == b); // equal areas, different types and objects
        assert!(a != c);
        assert_eq!(format!("{a:?}"), "rect(3)");
        let d: Gc<dyn Display> = gc_dyn!(Gc::new(String::from("hi")) => dyn Display);
        assert_eq!(format!("<{d}>"), "<hi>");
        let e: Gc<dyn Debug> = gc_dyn!(Gc::new(vec![1u8, 2]) => dyn Debug);
        assert_eq!(format!("{e:?}"), "[1, 2]");
        assert_eq!(format!("{e:p}"), format!("{:p}", Gc::as_ptr(&e)));
        // Slices fall out: `[E; N]` unsizes to `[E]`.
        let s: Gc<[u32]> = Gc::unsize(Gc::new([1u32, 2, 3]), |b| b as _);
        assert_eq!(s.len(), 3);
        assert_eq!(&s[..], &[1, 2, 3]);
        let t = Gc::unsize::<[u32]>(Gc::new([1u32, 2, 3]), |b| b);
        assert!(s == t && s <= t);
        let borrowed: &[u32] = s.as_ref();
        assert_eq!(borrowed.iter().sum::<u32>(), 6);
    });
}

#[test]
fn any_downcasts_back_to_the_concrete_handle() {
    isolated(|| {
        let a: Gc<dyn Any> = gc_dyn!(Gc::new(7u64) => dyn Any);
        let a = a.downcast::<u32>().unwrap_err();
        let n: Gc<u64> = a.downcast::<u64>().unwrap();
        assert_eq!(*n, 7);
        assert_eq!(Gc::strong_count(&n), 1);
    });
}

thread_local! {
    static DROPS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

trait Node {
    fn label(&self) -> &str;
    fn set_next(&self, next: Gc<dyn Node>);
}

#[derive(Trace)]
struct A {
    next: GcCell<Option<Gc<dyn Node>>>,
    #[trace(skip)]
    label: String,
}
#[derive(Trace)]
struct B {
    next: GcCell<Option<Gc<dyn Node>>>,
    #[trace(skip)]
    weight: u64,
}

impl Node for A {
    fn label(&self) -> &str {
        &self.label
    }
    fn set_next(&self, next: Gc<dyn Node>) {
        self.next.set(Some(next));
    }
}
impl Node for B {
    fn label(&self) -> &str {
        "b"
    }
    fn set_next(&self, next: Gc<dyn Node>) {
        self.next.set(Some(next));
    }
}
/// Whether the partner this `next` holds was already cleared by the collector (read through
/// the `Gc<dyn Node>`: `try_get` never reads a cleared value).
fn partner(next: &GcCell<Option<Gc<dyn Node>>>) -> &'static str {
    match next.borrow().as_ref().map(Gc::try_get) {
        None => "",
        Some(None) => " (partner cleared)",
        Some(Some(_)) => " (partner intact)",
    }
}

impl Drop for A {
    fn drop(&mut self) {
        let p = partner(&self.next);
        DROPS.with(|d| d.borrow_mut().push(format!("{}{p}", self.label)));
    }
}
impl Drop for B {
    fn drop(&mut self) {
        let p = partner(&self.next);
        DROPS.with(|d| d.borrow_mut().push(format!("b{}{p}", self.weight)));
    }
}

fn drops() -> Vec<String> {
    let mut v = DROPS.with(|d| d.borrow().clone());
    v.sort();
    v
}

#[test]
fn a_cycle_through_trait_objects_is_collected_and_each_drop_runs_once() {
    isolated(|| {
        gc::collect_all();
        let a: Gc<dyn Node> =
            gc_dyn!(Gc::new(A { next: GcCell::new(None), label: "a".into() }) => dyn Node);
        let b: Gc<dyn Node> =
            gc_dyn!(Gc::new(B { next: GcCell::new(None), weight: 2 }) => dyn Node);
        a.set_next(b.clone());
        b.set_next(a.clone());
        // The derived Trace of A reports its Gc<dyn Node> field as an edge.
        let refs = gc::get_referents(&a);
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].as_object(), b.as_object());
        drop(refs);
        assert_eq!(a.label(), "a");
        drop((a, b));
        assert!(drops().is_empty(), "the cycle holds both");
        assert_eq!(gc::collect_all(), 2);
        // Each Drop once; the first sees its partner intact, the second sees it cleared.
        let d = drops();
        assert_eq!(d.len(), 2);
        assert!(d[0].starts_with("a (partner") && d[1].starts_with("b2 (partner"));
        assert_eq!(
            d.iter()
                .filter(|s| s.ends_with("(partner cleared)"))
                .count(),
            1
        );
        assert_eq!(gc::collect_all(), 0);
        assert_eq!(drops(), d);
    });
}

#[test]
fn a_self_cycle_through_a_trait_object_is_collected() {
    isolated(|| {
        let a: Gc<dyn Node> =
            gc_dyn!(Gc::new(A { next: GcCell::new(None), label: "self".into() }) => dyn Node);
        a.set_next(a.clone());
        drop(a);
        assert_eq!(gc::collect(2).unwrap(), 1);
        assert_eq!(drops(), ["self (partner cleared)"]);
    });
}

#[test]
fn the_last_drop_of_a_trait_object_drops_the_concrete_value_at_once() {
    isolated(|| {
        let a = Gc::new(A {
            next: GcCell::new(None),
            label: "once".into(),
        });
        let d = Gc::unsize::<dyn Node>(a.clone(), |b| b);
        drop(a);
        assert!(drops().is_empty());
        drop(d);
        assert_eq!(drops(), ["once"]);
    });
}

thread_local!(static FINALIZED: Cell<u32> = const { Cell::new(0) });

#[derive(Trace)]
#[trace(finalize = Fin::finalize)]
struct Fin(u32);

impl Fin {
    fn finalize(this: &Gc<Fin>) {
        FINALIZED.with(|n| n.set(n.get() + this.0));
    }
}

#[test]
fn the_concrete_types_finalizer_runs_when_the_trait_object_goes() {
    isolated(|| {
        let f: Gc<dyn Any> = gc_dyn!(Gc::new(Fin(5)) => dyn Any);
        drop(f);
        assert_eq!(FINALIZED.with(Cell::get), 5);
    });
}

struct Bomb;

// SAFETY: holds no Gc.
unsafe impl Trace for Bomb {
    fn trace(&self, _: &mut gc::Tracer) {}
}

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("bomb");
    }
}

#[test]
fn a_panicking_drop_unwinds_through_the_trait_objects_drop_as_through_any_drop() {
    isolated(|| {
        let b: Gc<dyn Any> = gc_dyn!(Gc::new(Bomb) => dyn Any);
        let r = catch_unwind(AssertUnwindSafe(move || drop(b)));
        let msg = r.unwrap_err();
        assert_eq!(msg.downcast_ref::<&str>(), Some(&"bomb"));
    });
}

trait Named: Any {
    fn who(&self) -> String;
}
trait Greeter: Named {
    fn greet(&self) -> String {
        format!("hello from {}", self.who())
    }
}
impl Named for Circle {
    fn who(&self) -> String {
        format!("circle {}", self.0)
    }
}
impl Greeter for Circle {}

#[test]
fn a_trait_object_upcasts_to_a_supertrait_and_downcasts_back() {
    isolated(|| {
        let g = gc_dyn!(Gc::new(Circle(2.0)) => dyn Greeter);
        assert_eq!(g.greet(), "hello from circle 2");
        let n = Gc::unsize::<dyn Named>(g.clone(), |b| b);
        assert_eq!(n.who(), "circle 2");
        assert_eq!(Gc::strong_count(&g), 2);
        let a = gc_dyn!(n => dyn Any);
        let c: Gc<Circle> = a.downcast().ok().unwrap();
        assert_eq!(c.area(), 12.0);
        assert_eq!(Gc::as_ptr(&c), Gc::as_ptr(&g));
    });
}

trait Observer {
    fn notify(&self) -> u32;
}

#[derive(Trace)]
struct Counter {
    hits: GcCell<u32>,
    /// Back to the subject, weakly: no strong cycle.
    subject: GcCell<Option<gc::Weak<dyn Any>>>,
}

impl Observer for Counter {
    fn notify(&self) -> u32 {
        let n = *self.hits.borrow() + 1;
        self.hits.set(n);
        n
    }
}

#[derive(Trace)]
struct Subject {
    observers: GcCell<Vec<gc::Weak<dyn Observer>>>,
}

#[test]
fn a_weak_trait_object_upgrades_to_the_trait_object_until_the_object_dies() {
    isolated(|| {
        let subject = Gc::new(Subject {
            observers: GcCell::new(Vec::new()),
        });
        let counter = Gc::new(Counter {
            hits: GcCell::new(0),
            subject: GcCell::new(Some(Gc::downgrade(&gc_dyn!(subject.clone() => dyn Any)))),
        });
        let obs = Gc::unsize::<dyn Observer>(counter.clone(), |b| b);
        let w = Gc::downgrade(&obs);
        assert_eq!(
            std::mem::size_of::<gc::Weak<u32>>(),
            8,
            "one word for a sized T"
        );
        subject.observers.borrow_mut().push(w.clone());
        drop(obs);
        let fire = || -> Vec<u32> {
            let list = subject.observers.borrow();
            list.iter()
                .filter_map(|w| w.upgrade())
                .map(|o| o.notify())
                .collect()
        };
        assert_eq!(fire(), [1]);
        assert_eq!(fire(), [2]);
        assert_eq!(*counter.hits.borrow(), 2);
        let back = counter
            .subject
            .borrow()
            .as_ref()
            .unwrap()
            .upgrade()
            .unwrap();
        assert!(Gc::as_ptr(&back) == Gc::as_ptr(&subject));
        drop(back);
        assert!(!w.is_dead());
        assert_eq!(Gc::weak_count(&counter), 1);
        drop(counter); // the last strong reference: freed at once, no collection needed
        assert!(w.is_dead() && w.upgrade().is_none());
        assert!(fire().is_empty());
    });
}
