//! The std traits of `Gc<T>` (those `Rc<T>` has): each result checked exactly, and what each
//! does with a value the collector already cleared (a panic through `Deref`, never a read;
//! `{:p}` and `Debug` still work).

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};

use arenagc::gc;
use arenagc::gc::AnyGc;
use arenagc::{Gc, GcCell, Trace};

fn isolated(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().unwrap();
}

fn hash_of(v: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

#[derive(Trace, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Name(String);

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "name={}", self.0)
    }
}

fn name(s: &str) -> Gc<Name> {
    Gc::new(Name(s.to_string()))
}

#[test]
// Each operator is written out on purpose: each calls its own method (`ne`, `lt`, `le`, ...).
#[allow(clippy::nonminimal_bool, clippy::neg_cmp_op_on_partial_ord)]
fn eq_and_ord_compare_the_values() {
    let (a1, a2, b) = (name("a"), name("a"), name("b"));
    assert!(!Gc::ptr_eq(&a1, &a2));
    assert!(a1 == a2);
    assert!(!(a1 != a2));
    assert!(a1 != b);
    assert_eq!(a1.partial_cmp(&b), Some(std::cmp::Ordering::Less));
    assert_eq!(b.cmp(&a1), std::cmp::Ordering::Greater);
    assert_eq!(a1.cmp(&a2), std::cmp::Ordering::Equal);
    assert!(a1 < b && a1 <= a2 && b > a2 && a2 >= a1);
    assert!(!(a1 < a2) && !(a1 > a2));
    // PartialEq / PartialOrd without Eq: NaN is not equal to itself, even through one object.
    let nan = Gc::new(f64::NAN);
    assert!(nan != nan.clone());
    assert_eq!(nan.partial_cmp(&nan), None);
    let (one, two) = (Gc::new(1.0f64), Gc::new(2.0f64));
    assert!(one < two && two >= one && !(one > two));
}

#[test]
fn hash_is_the_values_and_sets_find_by_value() {
    let (a1, a2) = (name("a"), name("a"));
    assert_eq!(hash_of(&a1), hash_of(&Name("a".into())));
    assert_eq!(hash_of(&a1), hash_of(&a2));

    let mut set = HashSet::new();
    assert!(set.insert(a1.clone()));
    assert!(!set.insert(a2.clone()), "an equal value is already there");
    assert!(set.insert(name("b")));
    assert_eq!(set.len(), 2);
    // Borrow<T>: look up with a &Name.
    assert!(set.contains(&Name("a".into())));
    assert!(!set.contains(&Name("c".into())));
    let found = set.get(&Name("a".into())).unwrap();
    assert!(Gc::ptr_eq(found, &a1), "the first one inserted stays");

    let mut map: HashMap<Gc<Name>, u32> = HashMap::new();
    map.insert(name("x"), 1);
    *map.get_mut(&Name("x".into())).unwrap() += 1;
    assert_eq!(map[&Name("x".into())], 2);
}

#[test]
fn btree_collections_sort_by_value() {
    let mut m = BTreeMap::new();
    for (s, v) in [("c", 3), ("a", 1), ("b", 2)] {
        m.insert(name(s), v);
    }
    let keys: Vec<String> = m.keys().map(|k| k.0.clone()).collect();
    assert_eq!(keys, ["a", "b", "c"]);
    assert_eq!(m.get(&Name("b".into())), Some(&2));
    let set: BTreeSet<Gc<i32>> = [3, 1, 2, 1].into_iter().map(Gc::new).collect();
    assert_eq!(set.iter().map(|g| **g).collect::<Vec<_>>(), [1, 2, 3]);
}

#[test]
fn display_debug_and_pointer() {
    let a = name("a");
    assert_eq!(format!("{a}"), "name=a");
    assert_eq!(
        format!("[{:>8}]", Gc::new(42)),
        "[      42]",
        "flags reach the value"
    );
    assert_eq!(format!("{a:?}"), "Name(\"a\")");
    let p = format!("{a:p}");
    assert_eq!(p, format!("{:p}", Gc::as_ptr(&a)));
    assert_eq!(p, format!("{:p}", a.clone()), "one object, one address");
    assert_ne!(p, format!("{:p}", name("a")), "another object");
    assert!(p.starts_with("0x"), "{p}");
    assert_eq!(format!("{a:#p}"), format!("{:#p}", Gc::as_ptr(&a)));
}

#[test]
fn default_from_asref_borrow() {
    let d: Gc<Name> = Gc::default();
    assert_eq!(d.0, "");
    assert_eq!(Gc::strong_count(&d), 1);
    assert!(gc::is_tracked(&d));
    let v: Gc<Vec<u8>> = Default::default();
    assert!(v.is_empty());

    let f: Gc<Name> = Name("f".into()).into();
    assert_eq!(f.0, "f");
    let g = Gc::from(7u32);
    assert_eq!(*g, 7);

    fn len_of(s: impl AsRef<Name>) -> usize {
        s.as_ref().0.len()
    }
    assert_eq!(len_of(name("abc")), 3);
    let r: &Name = f.as_ref();
    assert!(std::ptr::eq(r, &*f));
    let b: &Name = f.borrow();
    assert!(std::ptr::eq(b, &*f));
}

/// One half of a two-object cycle whose `Drop` uses the partner with `op`: the collector clears
/// the first of the two while the second is intact, then the second while the first is
/// cleared, so exactly one of the two `Drop`s sees a cleared partner.
#[derive(Trace)]
struct Half {
    other: GcCell<Option<Gc<Half>>>,
    label: Name,
    #[trace(skip)]
    op: fn(&Gc<Half>),
}

impl PartialEq for Half {
    fn eq(&self, o: &Half) -> bool {
        self.label == o.label
    }
}
impl Hash for Half {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.label.hash(h)
    }
}
impl std::fmt::Debug for Half {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Half({})", self.label)
    }
}
impl std::fmt::Display for Half {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.label.fmt(f)
    }
}

thread_local! {
    static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

impl Drop for Half {
    fn drop(&mut self) {
        if let Some(o) = self.other.borrow().as_ref() {
            SEEN.with(|s| {
                let cleared = Gc::try_get(o).is_none();
                s.borrow_mut()
                    .push(format!("{} cleared={cleared}", self.label));
            });
            (self.op)(o);
        }
    }
}

/// Make a garbage cycle of two `Half`s with `op`, collect it, and return the panic message
/// the collection resumed (if any) and what the `Drop`s saw.
fn collect_cycle_using(op: fn(&Gc<Half>)) -> (Option<String>, Vec<String>) {
    let mk = |s: &str| {
        Gc::new(Half {
            other: GcCell::new(None),
            label: Name(s.into()),
            op,
        })
    };
    let (a, b) = (mk("a"), mk("b"));
    a.other.set(Some(b.clone()));
    b.other.set(Some(a.clone()));
    drop((a, b));
    let r = catch_unwind(AssertUnwindSafe(gc::collect_all));
    let msg = r.err().map(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    });
    (msg, SEEN.with(|s| s.take()))
}

fn assert_panics_on_cleared(op: fn(&Gc<Half>)) {
    isolated(move || {
        let (msg, seen) = collect_cycle_using(op);
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(
            seen.iter().filter(|s| s.ends_with("cleared=true")).count(),
            1,
            "{seen:?}"
        );
        let msg = msg.expect("using the cleared partner panics, resumed from gc::collect");
        assert!(
            msg.contains("Gc value used after the cycle collector cleared it"),
            "{msg}"
        );
        assert_eq!(gc::garbage_len(), 0);
        // The runtime is intact: an ordinary cycle is collected afterwards.
        let c = Gc::new(Half {
            other: GcCell::new(None),
            label: Name("c".into()),
            op: |_| {},
        });
        c.other.set(Some(c.clone()));
        drop(c);
        assert_eq!(gc::collect_all(), 1);
    });
}

#[test]
fn eq_on_a_cleared_value_panics_not_ub() {
    assert_panics_on_cleared(|o| {
        let _ = *o == o.clone();
    });
}

#[test]
fn hash_on_a_cleared_value_panics_not_ub() {
    assert_panics_on_cleared(|o| {
        hash_of(o);
    });
}

#[test]
fn display_on_a_cleared_value_panics_not_ub() {
    assert_panics_on_cleared(|o| {
        let _ = format!("{o}");
    });
}

#[test]
fn as_ref_and_borrow_on_a_cleared_value_panic_not_ub() {
    assert_panics_on_cleared(|o| {
        let _: &Half = o.as_ref();
    });
    assert_panics_on_cleared(|o| {
        let _: &Half = o.borrow();
    });
}

#[test]
fn pointer_and_debug_of_a_cleared_value_do_not_read_it() {
    isolated(|| {
        let (msg, seen) = collect_cycle_using(|o| {
            // `*o`: `{:p}` of the `&Gc` reference would print the reference's own address.
            let text = format!("{:p} {}", *o, Gc::try_get(o).is_none());
            assert_eq!(
                text,
                format!("{:p} {}", Gc::as_ptr(o), Gc::try_get(o).is_none())
            );
            SEEN.with(|s| s.borrow_mut().push(text));
            if Gc::try_get(o).is_none() {
                // Debug of a cleared Gc is "<cleared>" (the Debug impl never panics).
                SEEN.with(|s| s.borrow_mut().push(format!("{o:?}")));
            }
        });
        assert_eq!(msg, None, "no panic");
        assert_eq!(seen.len(), 5, "{seen:?}");
        assert!(seen.contains(&"<cleared>".to_string()), "{seen:?}");
    });
}

// ---------------------------------------------------------------------------------------------
// `Trace` for std types: collected when they should be, kept when they should be.

/// An object that holds `C` (set after creation, so `C` can hold the object itself).
#[derive(Trace)]
struct Holder<C: Trace> {
    c: GcCell<Option<C>>,
}

fn holder<C: Trace>() -> Gc<Holder<C>> {
    Gc::new(Holder {
        c: GcCell::new(None),
    })
}

/// A self-cycle through `C`: the object holds `make(itself)` (as an `AnyGc`, so `C` need not
/// name its own type). Returns the object's referents (counted before it is dropped), what a
/// full collection then finds, and whether the object is gone.
fn self_cycle<C: Trace>(make: impl FnOnce(&dyn Fn() -> AnyGc) -> C) -> (usize, usize, bool) {
    let h = holder::<C>();
    h.c.set(Some(make(&|| Gc::to_any(&h))));
    let referents = gc::get_referents(&h).len();
    let w = Gc::downgrade(&h);
    drop(h);
    let n = gc::collect_all();
    (referents, n, w.is_dead())
}

#[test]
fn forwarding_std_types_are_traced_and_their_cycles_collected() {
    use std::cell::OnceCell;
    use std::cmp::Reverse;
    use std::num::{Saturating, Wrapping};
    use std::sync::{Mutex, OnceLock, RwLock};
    isolated(|| {
        let one = (1, 1, true);
        assert_eq!(self_cycle(|h| Wrapping(h())), one);
        assert_eq!(self_cycle(|h| Saturating(h())), one);
        assert_eq!(self_cycle(|h| Reverse(h())), one);
        assert_eq!(
            self_cycle(|h| Box::<[AnyGc]>::from([h(), h()])),
            (2, 1, true)
        );
        assert_eq!(self_cycle(|h| h()..h()), (2, 1, true));
        assert_eq!(self_cycle(|h| h()..=h()), (2, 1, true));
        assert_eq!(self_cycle(|h| OnceCell::from(h())), one);
        assert_eq!(self_cycle(|h| OnceLock::from(h())), one);
        assert_eq!(
            self_cycle(|h| (1u8, 2u8, 3u8, 4u8, 5u8, 6u8, 7u8, h())),
            one
        );
        assert_eq!(
            self_cycle(|h| (h(), 0u8, h(), 1u8, h(), (), 'x')),
            (3, 1, true)
        );
        assert_eq!(self_cycle(|h| [h(), h(), h()]), (3, 1, true));
        assert_eq!(self_cycle(|h| Err::<u8, _>(h())), one);
        assert_eq!(self_cycle(|h| Ok::<_, u8>(Box::new(h()))), one);
        assert_eq!(self_cycle(|h| Mutex::new(h())), one);
        assert_eq!(self_cycle(|h| RwLock::new(h())), one);
        assert_eq!(
            self_cycle(|h| std::collections::BinaryHeap::from([
                (2u8, Keyed(h())),
                (1, Keyed(h()))
            ])),
            (2, 1, true)
        );
        // Not a cycle (the Rc is opaque): the object goes by its count, nothing to collect.
        assert_eq!(self_cycle(|_| std::rc::Rc::new(5u8)), (0, 0, true));

        // An unset OnceCell traces nothing; set later, it is traced.
        let h = holder::<OnceCell<Gc<Holder<()>>>>();
        h.c.set(Some(OnceCell::new()));
        assert_eq!(gc::get_referents(&h).len(), 0);
        let leaf = holder::<()>();
        assert!(h.c.borrow().as_ref().unwrap().set(leaf.clone()).is_ok());
        assert_eq!(gc::get_referents(&h).len(), 1);
        assert!(gc::get_referents(&h)[0].is(&leaf));
    });
}

/// An `AnyGc` that sorts as equal to every other (a `BinaryHeap` needs `Ord`).
#[derive(Trace)]
struct Keyed(AnyGc);
impl PartialEq for Keyed {
    fn eq(&self, _: &Keyed) -> bool {
        true
    }
}
impl Eq for Keyed {}
impl PartialOrd for Keyed {
    fn partial_cmp(&self, o: &Keyed) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Keyed {
    fn cmp(&self, _: &Keyed) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

#[test]
fn leaves_trace_nothing() {
    use std::num::{NonZeroI64, NonZeroU8, NonZeroUsize};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::time::{Duration, Instant, SystemTime};
    isolated(|| {
        let leaves = Gc::new((
            (
                NonZeroU8::new(1).unwrap(),
                NonZeroUsize::new(2).unwrap(),
                NonZeroI64::new(-3).unwrap(),
                AtomicUsize::new(4),
                AtomicBool::new(true),
                std::cmp::Ordering::Less,
                std::any::TypeId::of::<u8>(),
            ),
            (
                Box::<str>::from("boxed"),
                std::borrow::Cow::<'static, str>::Borrowed("cow"),
                PathBuf::from("/p"),
                Box::<Path>::from(Path::new("/q")),
                std::ffi::OsString::from("os"),
                std::ffi::CString::new("c").unwrap(),
            ),
            (
                Duration::from_millis(5),
                Instant::now(),
                SystemTime::UNIX_EPOCH,
                std::net::IpAddr::from([127, 0, 0, 1]),
                std::net::SocketAddr::from(([127, 0, 0, 1], 80)),
                std::marker::PhantomData::<Gc<Holder<()>>>,
                std::cell::Cell::new(6u32),
            ),
        ));
        assert_eq!(gc::get_referents(&leaves).len(), 0);
        assert_eq!(leaves.0.0.get(), 1);
        assert_eq!(&*leaves.1.0, "boxed");
        assert_eq!(leaves.2.0, Duration::from_millis(5));
        leaves.2.6.set(7);
        assert_eq!(leaves.2.6.get(), 7);

        let statics = Gc::new((
            "str",
            c"cstr",
            std::path::Path::new("/path"),
            std::ffi::OsStr::new("os"),
        ));
        assert_eq!(gc::get_referents(&statics).len(), 0);
        assert_eq!(statics.0, "str");
    });
}

/// The object of the test for `Rc`/`Arc`: holds a shared handle to a `Gc`.
#[derive(Trace)]
struct Sharer<S: Trace> {
    shared: S,
    back: GcCell<Option<Gc<Sharer<S>>>>,
}

/// `x` is held by one `Rc` (or `Arc`) shared by two objects `a` and `b`. Were the `Rc` traced,
/// a collection would subtract that one reference twice (once per holder). It must survive
/// every collection while reachable: through `a` and `b` alive, then from the stack alone
/// while `a` and `b` are garbage.
#[test]
fn a_gc_behind_an_rc_shared_by_two_objects_is_never_collected_while_reachable() {
    fn check<S: Trace + Clone>(wrap: fn(Gc<Holder<u32>>) -> S, get: fn(&S) -> &Gc<Holder<u32>>) {
        let x = Gc::new(Holder {
            c: GcCell::new(Some(7u32)),
        });
        let wx = Gc::downgrade(&x);
        let shared = wrap(x);
        let a = Gc::new(Sharer {
            shared: shared.clone(),
            back: GcCell::new(None),
        });
        let b = Gc::new(Sharer {
            shared,
            back: GcCell::new(None),
        });
        // a and b in a cycle too, held from the stack: reachable.
        a.back.set(Some(b.clone()));
        b.back.set(Some(a.clone()));
        assert_eq!(
            gc::get_referents(&a).len(),
            1,
            "only `back`: the Rc is opaque"
        );
        for _ in 0..3 {
            assert_eq!(gc::collect_all(), 0);
            assert!(!wx.is_dead());
            let x = get(&a.shared);
            assert_eq!(*x.c.borrow(), Some(7), "x's value is intact (not cleared)");
            assert_eq!(Gc::strong_count(x), 1);
        }
        // Now x is also held from the stack, and a, b become garbage. A traced Rc would
        // subtract x's two references (stack + Rc) through a and b, see none from outside and
        // clear x while the stack holds it (checked by hand: `try_get` is then `None`).
        let x = get(&a.shared).clone();
        drop(b);
        let wa = Gc::downgrade(&a);
        drop(a);
        assert_eq!(gc::collect_all(), 2, "a and b; x is not garbage");
        assert!(wa.is_dead());
        assert_eq!(Gc::strong_count(&x), 1, "the Rc went with a and b");
        assert_eq!(
            Gc::try_get(&x).map(|h| *h.c.borrow()),
            Some(Some(7)),
            "x intact"
        );
        drop(x);
        assert!(wx.is_dead());
    }
    isolated(|| {
        check(std::rc::Rc::new, |s| s);
        check(std::sync::Arc::new, |s| s);
    });
}

/// The price of opacity: a cycle that runs through an `Rc` is kept (never collected, never
/// freed under a user's feet); broken by hand, it is freed by reference counting.
#[test]
fn a_cycle_through_an_rc_is_kept() {
    isolated(|| {
        let cell = std::rc::Rc::new(GcCell::new(None::<AnyGc>));
        let me = holder::<std::rc::Rc<GcCell<Option<AnyGc>>>>();
        me.c.set(Some(cell.clone()));
        cell.set(Some(Gc::to_any(&me)));
        assert_eq!(gc::get_referents(&me).len(), 0, "the Rc is opaque");
        drop(cell);
        let w = Gc::downgrade(&me);
        drop(me);
        assert_eq!(
            gc::collect_all(),
            0,
            "kept: the Rc's reference counts as external"
        );
        let me = w.upgrade().expect("alive");
        me.c.borrow().as_ref().unwrap().take();
        drop(me);
        assert!(w.is_dead(), "broken by hand: freed by its count");
    });
}

#[test]
fn a_locked_mutex_or_write_locked_rwlock_keeps_its_contents() {
    use std::sync::{Mutex, RwLock};
    isolated(|| {
        let target = holder::<()>();
        let wt = Gc::downgrade(&target);
        let m = Gc::new(Mutex::new(Some(target.clone())));
        let rw = Gc::new(RwLock::new(Some(target)));
        assert_eq!(gc::get_referents(&m).len(), 1);
        assert_eq!(gc::get_referents(&rw).len(), 1);
        {
            let _g = m.lock().unwrap();
            let _w = rw.write().unwrap();
            assert_eq!(gc::get_referents(&m).len(), 0, "skipped while locked");
            assert_eq!(
                gc::get_referents(&rw).len(),
                0,
                "skipped while write-locked"
            );
            assert_eq!(gc::collect_all(), 0);
            assert!(!wt.is_dead(), "kept: counted as held from outside");
        }
        {
            let _r = rw.read().unwrap();
            assert_eq!(
                gc::get_referents(&rw).len(),
                1,
                "a read lock does not hide it"
            );
        }
        // A poisoned mutex still owns its value: traced.
        let m2 = m.clone();
        let r = catch_unwind(AssertUnwindSafe(|| {
            let _g = m2.lock().unwrap();
            panic!("poison");
        }));
        assert!(r.is_err() && m.is_poisoned());
        assert_eq!(gc::get_referents(&m).len(), 1);
        drop((m, m2, rw));
        assert!(wt.is_dead());
    });
}
