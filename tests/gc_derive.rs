//! `#[derive(Trace)]`: structs (named, tuple, unit), enums, generics, `#[trace(skip)]`, and the
//! finalizer attributes, checked through `get_referents` and collection.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use arenagc::gc;
use arenagc::{Gc, GcCell, Trace, Weak};

fn isolated(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().unwrap();
}

#[derive(Trace)]
struct Unit;

#[derive(Trace)]
struct Tuple(Gc<Unit>, #[trace(skip)] Gc<Unit>, u32);

#[derive(Trace)]
struct Generic<T, U> {
    a: T,
    b: Vec<U>,
    #[trace(skip)]
    note: Rc<Cell<u32>>,
}

#[derive(Trace)]
enum Shape {
    Empty,
    One(Gc<Unit>),
    Two {
        left: Gc<Unit>,
        right: Option<Gc<Unit>>,
    },
    Skipped(#[trace(skip)] Gc<Unit>),
}

#[derive(Trace)]
struct Everything {
    map: HashMap<u32, Gc<Unit>>,
    tuple: (Gc<Unit>, String),
    array: [Option<Gc<Unit>>; 2],
    boxed: Box<Gc<Unit>>,
    weak: Weak<Unit>,
    cell: GcCell<Vec<Gc<Unit>>>,
}

#[test]
fn derive_visits_exactly_the_unskipped_fields() {
    isolated(|| {
        let u = Gc::new(Unit);
        let t = Gc::new(Tuple(u.clone(), u.clone(), 3));
        assert_eq!(gc::get_referents(&t).len(), 1);
        assert_eq!(t.2, 3);
        assert!(Gc::ptr_eq(&t.1, &u));

        let g = Gc::new(Generic {
            a: u.clone(),
            b: vec![u.clone(), u.clone()],
            note: Rc::new(Cell::new(1)),
        });
        assert_eq!(gc::get_referents(&g).len(), 3);
        assert_eq!(g.note.get(), 1);

        let shapes = [
            (Shape::Empty, 0),
            (Shape::One(u.clone()), 1),
            (
                Shape::Two {
                    left: u.clone(),
                    right: Some(u.clone()),
                },
                2,
            ),
            (
                Shape::Two {
                    left: u.clone(),
                    right: None,
                },
                1,
            ),
            (Shape::Skipped(u.clone()), 0),
        ];
        for (s, n) in shapes {
            let s = Gc::new(s);
            assert_eq!(gc::get_referents(&s).len(), n);
            if let Shape::Skipped(x) = &*s {
                assert!(Gc::ptr_eq(x, &u));
            }
        }

        let e = Gc::new(Everything {
            map: [(1, u.clone()), (2, u.clone())].into_iter().collect(),
            tuple: (u.clone(), "x".into()),
            array: [Some(u.clone()), None],
            boxed: Box::new(u.clone()),
            weak: Gc::downgrade(&u),
            cell: GcCell::new(vec![u.clone()]),
        });
        let r = gc::get_referents(&e);
        assert_eq!(
            r.len(),
            7,
            "2 map values, tuple, array, box, weakref object, cell"
        );
        assert_eq!(r.iter().filter(|o| o.is(&u)).count(), 6);
        assert_eq!(r.iter().filter(|o| o.type_name() == "weakref").count(), 1);
        // While the cell is mutably borrowed its contents are not traced (kept alive).
        let guard = e.cell.borrow_mut();
        assert_eq!(gc::get_referents(&e).len(), 6);
        drop(guard);
        assert_eq!(Gc::to_any(&u).type_name(), "Unit");
    });
}

#[test]
fn generic_cycle_through_derived_enum_is_collected() {
    #[derive(Trace)]
    enum Link<T: Trace> {
        End(T),
        Next(GcCell<Option<Gc<Link<T>>>>, T),
    }
    isolated(|| {
        let a = Gc::new(Link::Next(GcCell::new(None), 1u8));
        let b = Gc::new(Link::Next(GcCell::new(Some(a.clone())), 2u8));
        if let Link::Next(c, _) = &*a {
            c.set(Some(b.clone()));
        }
        let end = Gc::new(Link::End(3u8));
        drop((a, b));
        assert_eq!(gc::collect(2), Ok(2));
        assert!(matches!(*end, Link::End(3)));
    });
}

/// `#[trace(crate = path)]` with a path and with a string: the generated code names the crate
/// through it (`tests/ui/fail_crate_path.rs` shows a wrong path is an error).
mod renamed {
    pub use arenagc as collector;
}

#[derive(Trace)]
#[trace(crate = renamed::collector)]
struct ByPath(Gc<Unit>, #[trace(skip)] u8);

#[derive(Trace)]
#[trace(crate = "crate::renamed::collector")]
enum ByString {
    A(Gc<Unit>),
}

#[test]
fn crate_attribute_names_the_crate() {
    isolated(|| {
        let u = Gc::new(Unit);
        let p = Gc::new(ByPath(u.clone(), 1));
        let s = Gc::new(ByString::A(u.clone()));
        assert_eq!(gc::get_referents(&p).len(), 1);
        assert_eq!(gc::get_referents(&s).len(), 1);
        assert_eq!(p.1, 1);
        assert!(matches!(&*s, ByString::A(x) if Gc::ptr_eq(x, &u)));
        assert_eq!(Gc::to_any(&p).type_name(), "ByPath");
    });
}
