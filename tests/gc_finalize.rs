//! Finalizers, resurrection, weak references, gc callbacks and the trashcan (after CPython's
//! test_gc, test_finalization and test_weakref). Each test runs on a fresh thread.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use arenagc::gc::{self, CallbackInfo, Phase};
use arenagc::{Gc, GcCell, Trace, Weak};

fn isolated(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().unwrap();
}

thread_local! {
    static FINALIZED: Cell<usize> = const { Cell::new(0) };
    static DROPPED: Cell<usize> = const { Cell::new(0) };
    static RESURRECT: Cell<bool> = const { Cell::new(false) };
    static SAVED: RefCell<Vec<Gc<Fin>>> = const { RefCell::new(Vec::new()) };
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

#[derive(Trace)]
#[trace(finalize = fin_finalize)]
struct Fin {
    next: GcCell<Option<Gc<Fin>>>,
    #[trace(skip)]
    payload: Vec<u32>,
}

fn fin_finalize(this: &Gc<Fin>) {
    FINALIZED.with(|c| c.set(c.get() + 1));
    if RESURRECT.with(|r| r.get()) && this.payload[0] == 1 {
        SAVED.with(|s| s.borrow_mut().push(this.clone()));
    }
}

impl Drop for Fin {
    fn drop(&mut self) {
        DROPPED.with(|c| c.set(c.get() + 1));
    }
}

fn fin(payload: u32) -> Gc<Fin> {
    Gc::new(Fin {
        next: GcCell::new(None),
        payload: vec![payload; 4],
    })
}

fn finalized() -> usize {
    FINALIZED.with(|c| c.get())
}

fn dropped() -> usize {
    DROPPED.with(|c| c.get())
}

#[derive(Trace)]
struct Plain {
    other: GcCell<Option<Gc<Plain>>>,
    #[trace(skip)]
    drops: Rc<Cell<usize>>,
}

impl Drop for Plain {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

fn plain_cycle(d: &Rc<Cell<usize>>) -> (Gc<Plain>, Gc<Plain>) {
    let a = Gc::new(Plain {
        other: GcCell::new(None),
        drops: d.clone(),
    });
    let b = Gc::new(Plain {
        other: GcCell::new(Some(a.clone())),
        drops: d.clone(),
    });
    a.other.set(Some(b.clone()));
    (a, b)
}

#[test]
fn finalizer_runs_once_on_refcount_death() {
    isolated(|| {
        let a = fin(1);
        assert!(!gc::is_finalized(&a));
        drop(a);
        assert_eq!((finalized(), dropped()), (1, 1));
    });
}

#[test]
fn finalizer_resurrects_once_and_second_death_frees_without_second_call() {
    isolated(|| {
        // A cycle a -> b -> c -> a; only a's finalizer resurrects (payload 1).
        let (a, b, c) = (fin(1), fin(2), fin(3));
        a.next.set(Some(b.clone()));
        b.next.set(Some(c.clone()));
        c.next.set(Some(a.clone()));
        let wc = Gc::downgrade(&c);
        drop((a, b, c));
        RESURRECT.with(|r| r.set(true));
        assert_eq!(gc::collect(2), Ok(0));
        RESURRECT.with(|r| r.set(false));
        assert_eq!(finalized(), 3, "every finalizer in the cycle ran once");
        assert_eq!(dropped(), 0, "nothing was cleared");
        // Resurrected and intact, with everything it reaches.
        let saved = SAVED.with(|s| std::mem::take(&mut *s.borrow_mut()));
        assert_eq!(saved.len(), 1);
        let a = saved[0].clone();
        drop(saved);
        let b = a.next.borrow().clone().unwrap();
        let c = b.next.borrow().clone().unwrap();
        assert_eq!((b.payload[0], c.payload[0]), (2, 3));
        assert!(Gc::ptr_eq(c.next.borrow().as_ref().unwrap(), &a));
        assert!(gc::is_finalized(&a) && gc::is_finalized(&b) && gc::is_finalized(&c));
        // As in CPython, weakrefs to the garbage were cleared before finalizers ran.
        assert!(wc.is_dead());
        // Second death: freed without a second finalizer call.
        drop((a, b, c));
        assert_eq!(gc::collect(2), Ok(3));
        assert_eq!(finalized(), 3);
        assert_eq!(dropped(), 3);
        // Resurrection on refcount death: same rule.
        RESURRECT.with(|r| r.set(true));
        drop(fin(1));
        RESURRECT.with(|r| r.set(false));
        assert_eq!((finalized(), dropped()), (4, 3));
        SAVED.with(|s| s.borrow_mut().clear());
        assert_eq!((finalized(), dropped()), (4, 4));
    });
}

#[test]
fn resurrection_does_not_stop_other_garbage_in_the_same_pass() {
    isolated(|| {
        let d = Rc::new(Cell::new(0));
        let (p, q) = plain_cycle(&d);
        drop((p, q));
        let a = fin(1);
        a.next.set(Some(a.clone()));
        drop(a);
        RESURRECT.with(|r| r.set(true));
        assert_eq!(gc::collect(2), Ok(2));
        RESURRECT.with(|r| r.set(false));
        assert_eq!(d.get(), 2);
        assert_eq!(SAVED.with(|s| s.borrow().len()), 1);
        assert_eq!(dropped(), 0);
        SAVED.with(|s| s.borrow_mut().clear());
        assert_eq!(gc::collect(2), Ok(1));
        assert_eq!((finalized(), dropped()), (1, 1));
    });
}

#[test]
fn weakref_basics_and_callback_on_refcount_death() {
    isolated(|| {
        let d = Rc::new(Cell::new(0));
        let (a, b) = plain_cycle(&d);
        let called = Rc::new(Cell::new(0));
        let c2 = called.clone();
        let w = Gc::downgrade_with_callback(&a, move || c2.set(c2.get() + 1));
        let w2 = w.clone();
        let w3 = Gc::downgrade(&a);
        assert_eq!(Gc::weak_count(&a), 2);
        assert_eq!(gc::getweakrefcount(&a), 2);
        assert!(Gc::ptr_eq(&w.upgrade().unwrap(), &a));
        drop(w3);
        assert_eq!(Gc::weak_count(&a), 1);
        b.other.set(None);
        drop((a, b));
        assert_eq!(called.get(), 1);
        assert!(w.is_dead() && w2.upgrade().is_none());
        assert_eq!(d.get(), 2);
    });
}

#[test]
fn all_weakrefs_to_garbage_cleared_before_any_callback_runs() {
    isolated(|| {
        let d = Rc::new(Cell::new(0));
        let (a, b) = plain_cycle(&d);
        let wa_slot: Rc<RefCell<Option<Weak<Plain>>>> = Rc::new(RefCell::new(None));
        let wb_slot: Rc<RefCell<Option<Weak<Plain>>>> = Rc::new(RefCell::new(None));
        let seen = Rc::new(RefCell::new(Vec::new()));
        let (s1, o1) = (seen.clone(), wb_slot.clone());
        let wa = Gc::downgrade_with_callback(&a, move || {
            s1.borrow_mut()
                .push(o1.borrow().as_ref().unwrap().upgrade().is_none());
        });
        let (s2, o2) = (seen.clone(), wa_slot.clone());
        let wb = Gc::downgrade_with_callback(&b, move || {
            s2.borrow_mut()
                .push(o2.borrow().as_ref().unwrap().upgrade().is_none());
        });
        *wa_slot.borrow_mut() = Some(wa.clone());
        *wb_slot.borrow_mut() = Some(wb.clone());
        drop((a, b));
        assert_eq!(gc::collect(2), Ok(2));
        assert_eq!(*seen.borrow(), vec![true, true]);
        assert!(wa.is_dead() && wb.is_dead());
        wa_slot.borrow_mut().take();
        wb_slot.borrow_mut().take();
    });
}

#[derive(Trace)]
struct Holder {
    target: GcCell<Option<Gc<Plain>>>,
    weak: GcCell<Option<Weak<Plain>>>,
    #[trace(skip)]
    hidden: RefCell<Option<Weak<Plain>>>,
}

#[test]
fn callback_of_a_garbage_weakref_never_runs() {
    #[derive(Trace)]
    struct WNode {
        next: GcCell<Option<Gc<WNode>>>,
        weak: GcCell<Option<Weak<WNode>>>,
    }
    isolated(|| {
        let called = Rc::new(Cell::new(false));
        let c = called.clone();
        // a <-> b, and a owns a weakref (with a callback) to b: the weakref is garbage too.
        let a = Gc::new(WNode {
            next: GcCell::new(None),
            weak: GcCell::new(None),
        });
        let b = Gc::new(WNode {
            next: GcCell::new(Some(a.clone())),
            weak: GcCell::new(None),
        });
        a.next.set(Some(b.clone()));
        a.weak
            .set(Some(Gc::downgrade_with_callback(&b, move || c.set(true))));
        let wb = Gc::downgrade(&b);
        drop((a, b));
        assert_eq!(gc::collect(2), Ok(3), "a, b and the weakref object");
        assert!(!called.get(), "the callback of a garbage weakref ran");
        assert!(wb.is_dead());
    });
}

#[test]
fn callback_of_a_live_weakref_to_garbage_runs() {
    isolated(|| {
        let d = Rc::new(Cell::new(0));
        let called = Rc::new(Cell::new(0));
        let c = called.clone();
        let (a, b) = plain_cycle(&d);
        let w = Gc::downgrade_with_callback(&a, move || c.set(c.get() + 1));
        drop((a, b));
        assert_eq!(called.get(), 0);
        assert_eq!(gc::collect(2), Ok(2));
        assert_eq!(called.get(), 1);
        assert!(w.is_dead());
    });
}

#[test]
fn weakref_reachable_only_through_untraversed_container_is_cleared() {
    isolated(|| {
        let d = Rc::new(Cell::new(0));
        let (a, b) = plain_cycle(&d);
        let h = Gc::new(Holder {
            target: GcCell::new(None),
            weak: GcCell::new(None),
            hidden: RefCell::new(None),
        });
        // The holder hides its weakref from the collector (#[trace(skip)]).
        *h.hidden.borrow_mut() = Some(Gc::downgrade(&a));
        drop((a, b));
        assert_eq!(gc::collect(2), Ok(2));
        assert!(h.hidden.borrow().as_ref().unwrap().upgrade().is_none());
        assert_eq!(d.get(), 2);
    });
}

#[test]
fn gc_callbacks_see_generation_collected_uncollectable_and_may_empty_garbage() {
    #[derive(Trace)]
    #[trace(legacy_del = noop_del)]
    struct Uncollectable {
        partner: GcCell<Option<Gc<Uncollectable>>>,
    }
    fn noop_del(_: &Gc<Uncollectable>) {}
    fn pair(reg: &RefCell<Vec<Weak<Uncollectable>>>) {
        let a = Gc::new(Uncollectable {
            partner: GcCell::new(None),
        });
        let b = Gc::new(Uncollectable {
            partner: GcCell::new(Some(a.clone())),
        });
        a.partner.set(Some(b.clone()));
        reg.borrow_mut().push(Gc::downgrade(&a));
        reg.borrow_mut().push(Gc::downgrade(&b));
    }
    isolated(|| {
        let reg: Rc<RefCell<Vec<Weak<Uncollectable>>>> = Rc::new(RefCell::new(Vec::new()));
        let visits: Rc<RefCell<Vec<(Phase, CallbackInfo)>>> = Rc::new(RefCell::new(Vec::new()));
        let cleanup = Rc::new(Cell::new(false));
        let (v, r, cl) = (visits.clone(), reg.clone(), cleanup.clone());
        let id = gc::add_callback(move |phase, info| {
            v.borrow_mut().push((phase, *info));
            // A nested collection from a callback returns at once.
            assert_eq!(gc::collect(2), Ok(0));
            if cl.get() && phase == Phase::Stop {
                for w in r.borrow().iter() {
                    if let Some(u) = w.upgrade() {
                        u.partner.set(None);
                    }
                }
                gc::clear_garbage();
            }
        });
        pair(&reg);
        pair(&reg);
        let d = Rc::new(Cell::new(0));
        let p = Gc::new(Plain {
            other: GcCell::new(None),
            drops: d.clone(),
        });
        p.other.set(Some(p.clone()));
        drop(p);
        assert_eq!(gc::collect(2), Ok(5));
        {
            let v = visits.borrow();
            assert_eq!(v.len(), 2);
            assert_eq!(v[0].0, Phase::Start);
            assert_eq!(
                (v[0].1.generation, v[0].1.collected, v[0].1.uncollectable),
                (2, 0, 0)
            );
            assert_eq!(v[1].0, Phase::Stop);
            assert_eq!(
                (v[1].1.generation, v[1].1.collected, v[1].1.uncollectable),
                (2, 1, 4)
            );
        }
        assert_eq!(gc::garbage_len(), 4);
        assert!(
            gc::garbage()
                .iter()
                .all(|o| o.type_name() == "Uncollectable")
        );

        cleanup.set(true);
        visits.borrow_mut().clear();
        gc::clear_garbage();
        assert_eq!(gc::collect(2), Ok(4));
        {
            let v = visits.borrow();
            assert_eq!((v[1].1.collected, v[1].1.uncollectable), (0, 4));
        }
        // The callback broke the pairs and emptied garbage: all freed.
        assert_eq!(gc::garbage_len(), 0);
        assert!(reg.borrow().iter().all(|w| w.is_dead()));
        assert!(gc::remove_callback(id));
        assert!(!gc::remove_callback(id));
        gc::collect(2).unwrap();
        assert_eq!(visits.borrow().len(), 2);
    });
}

#[test]
fn finalizers_calling_collect_while_deep_nests_are_torn_down() {
    #[derive(Trace)]
    #[trace(finalize = ouch_finalize)]
    struct Ouch;
    fn ouch_finalize(_: &Gc<Ouch>) {
        let n = FINALIZED.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        if n % 17 == 0 {
            gc::collect(2).unwrap();
        }
    }
    #[derive(Trace)]
    enum Nest {
        Leaf,
        Pair(Gc<Nest>, Gc<Ouch>),
        Map(std::collections::BTreeMap<u8, Gc<Nest>>, Gc<Ouch>),
    }
    isolated(|| {
        const N: usize = 150;
        for _ in 0..2 {
            let mut t = Gc::new(Nest::Leaf);
            for _ in 0..N {
                t = Gc::new(Nest::Pair(t, Gc::new(Ouch)));
            }
            let mut u = Gc::new(Nest::Leaf);
            for _ in 0..N {
                u = Gc::new(Nest::Pair(u, Gc::new(Ouch)));
            }
            let mut v = Gc::new(Nest::Leaf);
            for _ in 0..N {
                let mut m = std::collections::BTreeMap::new();
                m.insert(1, v);
                v = Gc::new(Nest::Map(m, Gc::new(Ouch)));
            }
            drop((t, u, v));
        }
        assert_eq!(finalized(), 6 * N);
        assert_eq!(gc::get_objects(None).unwrap().len(), 0);
    });
}

#[test]
fn million_long_chain_dropped_without_stack_overflow() {
    #[derive(Trace)]
    struct Link {
        next: Option<Gc<Link>>,
    }
    isolated(|| {
        let mut head: Option<Gc<Link>> = None;
        for _ in 0..1_000_000 {
            head = Some(Gc::new(Link { next: head }));
        }
        let w = Gc::downgrade(head.as_ref().unwrap());
        drop(head);
        assert!(w.is_dead());
        assert_eq!(
            gc::get_objects(None).unwrap().len(),
            1,
            "only the weakref is left"
        );
        drop(w);
        assert_eq!(gc::get_objects(None).unwrap().len(), 0);
    });
}

#[test]
fn drop_impl_in_a_garbage_cycle_sees_cleared_partner_not_freed_memory() {
    #[derive(Trace)]
    struct Peer {
        other: GcCell<Option<Gc<Peer>>>,
        #[trace(skip)]
        name: &'static str,
    }
    impl Drop for Peer {
        fn drop(&mut self) {
            let o = self.other.borrow();
            let saw = o.as_ref().map(|p| Gc::try_get(p).map(|v| v.name));
            LOG.with(|l| l.borrow_mut().push(format!("{} saw {:?}", self.name, saw)));
        }
    }
    isolated(|| {
        let a = Gc::new(Peer {
            other: GcCell::new(None),
            name: "a",
        });
        let b = Gc::new(Peer {
            other: GcCell::new(Some(a.clone())),
            name: "b",
        });
        a.other.set(Some(b));
        drop(a);
        assert_eq!(gc::collect(2), Ok(2));
        let log = LOG.with(|l| l.borrow().clone());
        assert_eq!(log, vec!["a saw Some(Some(\"b\"))", "b saw Some(None)"]);
    });
}

#[test]
#[should_panic(expected = "after the cycle collector cleared it")]
fn deref_of_a_cleared_value_panics_clearly() {
    #[derive(Trace)]
    struct Keeper {
        other: GcCell<Option<Gc<Keeper>>>,
        #[trace(skip)]
        escaped: Rc<RefCell<Option<Gc<Keeper>>>>,
    }
    impl Drop for Keeper {
        fn drop(&mut self) {
            // Smuggle a partner out of the garbage cycle through an untraced field.
            if let Some(p) = self.other.borrow().as_ref() {
                *self.escaped.borrow_mut() = Some(p.clone());
            }
        }
    }
    let out = Rc::new(RefCell::new(None));
    let a = Gc::new(Keeper {
        other: GcCell::new(None),
        escaped: out.clone(),
    });
    let b = Gc::new(Keeper {
        other: GcCell::new(Some(a.clone())),
        escaped: Rc::new(RefCell::new(None)),
    });
    a.other.set(Some(b));
    drop(a);
    gc::collect(2).unwrap();
    let b = out.borrow_mut().take().unwrap();
    assert!(Gc::try_get(&b).is_none());
    let _ = b.other.borrow();
}

#[test]
fn a_panicking_gc_callback_propagates_and_leaves_the_collector_usable() {
    isolated(|| {
        let id = gc::add_callback(|phase, _| {
            if phase == Phase::Stop {
                panic!("callback failure");
            }
        });
        let d = Rc::new(Cell::new(0));
        let (a, b) = plain_cycle(&d);
        drop((a, b));
        let r = std::panic::catch_unwind(|| gc::collect(2));
        assert!(r.is_err());
        assert_eq!(d.get(), 2, "the collection itself completed");
        assert!(gc::remove_callback(id));
        let (a, b) = plain_cycle(&d);
        drop((a, b));
        assert_eq!(gc::collect(2), Ok(2));
        assert_eq!(d.get(), 4);
    });
}

#[test]
fn collect_from_a_finalizer_during_a_collection_returns_zero_at_once() {
    #[derive(Trace)]
    #[trace(finalize = nested_collect)]
    struct Nested {
        me: GcCell<Option<Gc<Nested>>>,
    }
    fn nested_collect(_: &Gc<Nested>) {
        LOG.with(|l| l.borrow_mut().push(format!("{:?}", gc::collect(2))));
    }
    isolated(|| {
        let a = Gc::new(Nested {
            me: GcCell::new(None),
        });
        a.me.set(Some(a.clone()));
        drop(a);
        assert_eq!(gc::collect(2), Ok(1));
        assert_eq!(LOG.with(|l| l.borrow().clone()), vec!["Ok(0)".to_string()]);
        assert_eq!(gc::get_stats()[2].collections, 1);
    });
}

#[test]
fn a_panicking_drop_leaks_its_object_but_the_runtime_keeps_working() {
    #[derive(Trace)]
    struct Bomb {
        next: Option<Gc<Bomb>>,
        #[trace(skip)]
        explode: bool,
    }
    impl Drop for Bomb {
        fn drop(&mut self) {
            if self.explode {
                panic!("boom");
            }
        }
    }
    isolated(|| {
        for _ in 0..(2 * arenagc::gc::TRASH_LIMIT) {
            let b = Gc::new(Bomb {
                next: None,
                explode: true,
            });
            assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(b))).is_err());
        }
        // The trashcan still drains: a long chain is freed completely.
        let mut head: Option<Gc<Bomb>> = None;
        for _ in 0..10_000 {
            head = Some(Gc::new(Bomb {
                next: head,
                explode: false,
            }));
        }
        let w = Gc::downgrade(head.as_ref().unwrap());
        let before = gc::get_objects(None).unwrap().len();
        drop(head);
        assert!(w.is_dead());
        assert_eq!(gc::get_objects(None).unwrap().len(), before - 10_000);
    });
}

thread_local! {
    static CHAIN_WEAKS: RefCell<Vec<Weak<Link>>> = const { RefCell::new(Vec::new()) };
    static CHAIN_STASH: RefCell<Vec<Gc<Link>>> = const { RefCell::new(Vec::new()) };
}

/// A chain link; the head's `Drop` tries to upgrade a weak reference to every link.
#[derive(Trace)]
struct Link {
    next: Option<Gc<Link>>,
    #[trace(skip)]
    id: usize,
    #[trace(skip)]
    _hook: LinkHook,
}

struct LinkHook(bool);

impl Drop for LinkHook {
    // Runs when its link's value is dropped (the field is never read otherwise).
    fn drop(&mut self) {
        if self.0 {
            let ws = CHAIN_WEAKS.with(|w| w.borrow().clone());
            for w in ws {
                if let Some(g) = w.upgrade() {
                    CHAIN_STASH.with(|s| s.borrow_mut().push(g));
                }
            }
        }
    }
}

/// Dropping a long chain: the trashcan puts off the link at depth `TRASH_LIMIT` (its count 0)
/// to the outermost deallocation, which frees it whatever its count is then. The head's `Drop`
/// runs before that and upgrades weak references to the links: the links already freed and
/// the deferred one (dying) must read as dead; the links behind it (count 1, unreachable but
/// alive) may be revived. Every object revived must stay valid (a revived deferred link was
/// freed under its new owner: use after free).
#[test]
fn a_weak_reference_never_revives_an_object_whose_count_reached_zero() {
    isolated(|| {
        let n = gc::TRASH_LIMIT + 20;
        let mut head: Option<Gc<Link>> = None;
        for id in (0..n).rev() {
            head = Some(Gc::new(Link {
                next: head.take(),
                id,
                _hook: LinkHook(id == 0),
            }));
        }
        let mut links = Vec::new();
        let mut cur = head.clone();
        while let Some(l) = cur {
            links.push(Gc::downgrade(&l));
            cur = l.next.clone();
        }
        CHAIN_WEAKS.with(|w| *w.borrow_mut() = links);
        drop(head);
        let stash = CHAIN_STASH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        let revived: Vec<usize> = stash.iter().map(|g| g.id).collect();
        // Only links behind the deferred one were alive to revive: a contiguous tail.
        assert!(
            !revived.is_empty() && revived.len() < n - 1,
            "revived {revived:?}"
        );
        let first = revived[0];
        assert_eq!(revived, (first..n).collect::<Vec<_>>());
        assert!(first > gc::TRASH_LIMIT / 2, "revived {revived:?}");
        // Fresh objects must not land on a revived one (it would have been freed).
        let fresh: Vec<Gc<Link>> = (0..4 * n)
            .map(|i| {
                Gc::new(Link {
                    next: None,
                    id: 10_000 + i,
                    _hook: LinkHook(false),
                })
            })
            .collect();
        for g in &stash {
            assert!(
                !fresh.iter().any(|f| Gc::ptr_eq(f, g)),
                "link {} was freed",
                g.id
            );
        }
        for (g, id) in stash.iter().zip(first..n) {
            assert_eq!(g.id, id);
        }
        CHAIN_WEAKS.with(|w| {
            let w = w.borrow();
            assert!(w[..first].iter().all(|w| w.is_dead()));
        });
        drop(stash);
        drop(fresh);
        CHAIN_WEAKS.with(|w| {
            let w = w.borrow();
            assert!(w.iter().all(|w| w.is_dead()));
        });
        CHAIN_WEAKS.with(|w| w.borrow_mut().clear());
    });
}

thread_local! {
    static FIN_WEAKS: RefCell<Vec<Weak<FinPeer>>> = const { RefCell::new(Vec::new()) };
    static FIN_UPGRADED: Cell<usize> = const { Cell::new(0) };
}

fn fin_peer_finalize(this: &Gc<FinPeer>) {
    FIN_WEAKS.with(|w| w.borrow_mut().push(Gc::downgrade(this)));
}

/// A cycle whose finalizers make weak references to themselves (not resurrecting them), and
/// whose values' `Drop` tries those weak references while the cycle is being cleared.
#[derive(Trace)]
#[trace(finalize = fin_peer_finalize)]
struct FinPeer {
    peer: GcCell<Option<Gc<FinPeer>>>,
    #[trace(skip)]
    _probe: FinProbe,
}

struct FinProbe;

impl Drop for FinProbe {
    fn drop(&mut self) {
        let ws = FIN_WEAKS.with(|w| w.borrow().clone());
        for w in ws {
            if w.upgrade().is_some() {
                FIN_UPGRADED.set(FIN_UPGRADED.get() + 1);
            }
        }
    }
}

/// Weak references that finalizers made to objects still garbage are cleared (without
/// callbacks) before the collector clears those objects, so nothing can reach a cleared object
/// through them (CPython clears weakrefs of `final_unreachable` too).
#[test]
fn weakrefs_made_by_finalizers_to_garbage_are_cleared_before_the_garbage_is() {
    isolated(|| {
        let a = Gc::new(FinPeer {
            peer: GcCell::new(None),
            _probe: FinProbe,
        });
        let b = Gc::new(FinPeer {
            peer: GcCell::new(Some(a.clone())),
            _probe: FinProbe,
        });
        a.peer.set(Some(b));
        drop(a);
        assert_eq!(gc::collect(2), Ok(2));
        assert_eq!(
            FIN_UPGRADED.get(),
            0,
            "a weakref reached an object being cleared"
        );
        FIN_WEAKS.with(|w| {
            let w = w.borrow();
            assert_eq!(w.len(), 2);
            assert!(w.iter().all(|w| w.is_dead()));
        });
        FIN_WEAKS.with(|w| w.borrow_mut().clear());
    });
}

/// Using a default-runtime object that has weak references while attached to another runtime
/// breaks `Runtime::attach`'s contract; its weak references cannot be found from there, so the
/// library aborts with a message instead of freeing the object under them. Runs in a child.
#[test]
fn an_object_with_weakrefs_dropped_under_another_runtime_aborts_clearly() {
    const CHILD: &str = "ARENAGC_FOREIGN_RUNTIME_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let x = Gc::new(FinProbeFree { v: 7 });
        assert_eq!(x.v, 7);
        let w = Gc::downgrade(&x);
        let rt = gc::Runtime::new();
        // SAFETY: deliberately broken: x belongs to the default runtime.
        let _g = unsafe { rt.attach() };
        drop(x);
        drop(w);
        return; // not reached
    }
    let (status, _, stderr) = run_child(
        "an_object_with_weakrefs_dropped_under_another_runtime_aborts_clearly",
        CHILD,
        false,
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(6), "status {status:?}\n{stderr}");
    assert!(
        stderr.contains("has weak references in another runtime"),
        "{stderr}"
    );
}

#[derive(Trace)]
struct FinProbeFree {
    #[trace(skip)]
    v: u32,
}

/// Run this test binary again as a child running only `test` with `var` set; returns its
/// status, stdout and stderr. `close_stderr` closes the read end of the child's stderr pipe
/// at once, so its writes there fail (EPIPE).
fn run_child(
    test: &str,
    var: &str,
    close_stderr: bool,
) -> (std::process::ExitStatus, String, String) {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(var, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    let stderr = child.stderr.take().unwrap();
    if close_stderr {
        drop(stderr);
    } else {
        let mut stderr = stderr;
        stderr.read_to_string(&mut err).unwrap();
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (child.wait().unwrap(), out, err)
}

/// A weakref callback panics with a payload whose own `Drop` panics: the collector must
/// abort (as for any panic in a callback), not let the second panic unwind through the
/// collection, whose working lists live on its stack frame.
#[test]
fn a_panic_payload_that_panics_again_in_a_weakref_callback_aborts() {
    const CHILD: &str = "ARENAGC_PAYLOAD_BOMB_CHILD";
    if std::env::var_os(CHILD).is_some() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("payload drop");
            }
        }
        let d = Rc::new(Cell::new(0));
        let (a, b) = plain_cycle(&d);
        let _w = Gc::downgrade_with_callback(&a, || std::panic::panic_any(Bomb));
        drop((a, b));
        let r = std::panic::catch_unwind(|| gc::collect(2));
        println!("collect returned (unwound: {})", r.is_err());
        return;
    }
    let (status, out, err) = run_child(
        "a_panic_payload_that_panics_again_in_a_weakref_callback_aborts",
        CHILD,
        false,
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(6), "{status:?}\n{out}\n{err}");
    assert!(!out.contains("collect returned"), "{out}");
    assert!(err.contains("a weakref callback panicked"), "{err}");
}

/// The collector's debug output (`DEBUG_STATS`, `DEBUG_COLLECTABLE`) goes to stderr; when that
/// is a broken pipe the collection still completes (a panicking `eprintln!` would unwind
/// through it).
#[test]
fn gc_debug_output_to_a_broken_stderr_does_not_break_a_collection() {
    const CHILD: &str = "ARENAGC_BROKEN_STDERR_CHILD";
    if std::env::var_os(CHILD).is_some() {
        // Let the parent close its end first.
        std::thread::sleep(std::time::Duration::from_millis(100));
        gc::set_debug(gc::DEBUG_STATS | gc::DEBUG_COLLECTABLE);
        let d = Rc::new(Cell::new(0));
        let (a, b) = plain_cycle(&d);
        drop((a, b));
        let r = std::panic::catch_unwind(|| gc::collect(2));
        println!("collect: {r:?}, dropped {}", d.get());
        return;
    }
    let (status, out, _) = run_child(
        "gc_debug_output_to_a_broken_stderr_does_not_break_a_collection",
        CHILD,
        true,
    );
    assert!(
        out.contains("collect: Ok(Ok(2)), dropped 2"),
        "{status:?}\n{out}"
    );
}
