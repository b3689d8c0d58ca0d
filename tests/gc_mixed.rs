//! One heap for C and Rust objects (issue 12): cycles through both kinds are found and
//! collected in one collection, with finalizers and weak references on both sides; a C legacy
//! finalizer pins a mixed cycle whole; weakref callbacks with a traced state; the rule for a
//! panic in a `Drop` the collector runs; and a property test on random mixed graphs with
//! `path_to`. C objects are built here as a C program builds them (a `TypeObject` with
//! `extern "C"` functions, `gc::raw`). Each test runs on a fresh thread.

use core::ffi::{c_int, c_void};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use arenagc::gc::{self, AnyGc, AsObject, PathTo, WeakCallback, raw};
use arenagc::object::{self, ObjectHeader, TPFLAGS_HAVE_GC, TypeObject, VisitProc};
use arenagc::{Gc, GcCell, Trace, Weak};
use proptest::prelude::*;

fn isolated(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().unwrap();
}

/// Per-id counters of one test thread: finalizer runs, frees, weakref callbacks.
#[derive(Default)]
struct Counters {
    finalized: Vec<u32>,
    freed: Vec<u32>,
    called: Vec<u32>,
}

thread_local! {
    static COUNT: RefCell<Counters> = RefCell::new(Counters::default());
}

fn reset(n: usize) {
    COUNT.with(|c| {
        let mut c = c.borrow_mut();
        c.finalized = vec![0; n];
        c.freed = vec![0; n];
        c.called = vec![0; n];
    });
}

fn bump(f: impl FnOnce(&mut Counters) -> &mut Vec<u32>, id: usize) {
    COUNT.with(|c| f(&mut c.borrow_mut())[id] += 1);
}

fn counters() -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    COUNT.with(|c| {
        let c = c.borrow();
        (c.finalized.clone(), c.freed.clone(), c.called.clone())
    })
}

// ---- the C side --------------------------------------------------------------------------

/// A C object: any number of references (a boxed vector, as a C program would keep an array),
/// a weak-list slot and an id.
#[repr(C)]
struct CNode {
    header: ObjectHeader,
    weaklist: *mut ObjectHeader,
    refs: *mut Vec<*mut ObjectHeader>,
    id: usize,
}

unsafe fn cnode<'a>(o: *mut ObjectHeader) -> &'a mut CNode {
    // SAFETY: the caller passes a live CNode.
    unsafe { &mut *(o as *mut CNode) }
}

unsafe extern "C" fn c_traverse(o: *mut ObjectHeader, visit: VisitProc, arg: *mut c_void) -> c_int {
    // SAFETY: a live CNode; its refs are references it owns.
    unsafe {
        let n = cnode(o);
        if !n.refs.is_null() {
            for &r in (*n.refs).iter() {
                let rc = visit(r, arg);
                if rc != 0 {
                    return rc;
                }
            }
        }
    }
    0
}

unsafe extern "C" fn c_clear(o: *mut ObjectHeader) -> c_int {
    // SAFETY: a live CNode; the vector is taken out before its references are given up.
    unsafe {
        let n = cnode(o);
        let refs = core::mem::replace(&mut n.refs, core::ptr::null_mut());
        if !refs.is_null() {
            for r in *Box::from_raw(refs) {
                object::decref(r);
            }
        }
    }
    0
}

unsafe extern "C" fn c_finalize(o: *mut ObjectHeader) {
    // SAFETY: a live CNode (a reference is lent).
    bump(|c| &mut c.finalized, unsafe { cnode(o).id });
}

unsafe extern "C" fn c_del(o: *mut ObjectHeader) {
    // SAFETY: as c_finalize.
    let _ = unsafe { cnode(o).id };
}

unsafe extern "C" fn c_dealloc(o: *mut ObjectHeader) {
    // SAFETY: refcount 0: the CPython dealloc sequence.
    unsafe {
        if raw::finalize_from_dealloc(o) {
            return;
        }
        raw::untrack(o);
        bump(|c| &mut c.freed, cnode(o).id);
        c_clear(o);
        raw::del_object(o);
    }
}

const C_BASE: TypeObject = TypeObject {
    name: c"cnode".as_ptr(),
    basic_size: size_of::<CNode>(),
    flags: TPFLAGS_HAVE_GC,
    weaklist_offset: core::mem::offset_of!(CNode, weaklist) as isize,
    traverse: Some(c_traverse),
    clear: Some(c_clear),
    finalize: Some(c_finalize),
    del: None,
    dealloc: c_dealloc,
    item_size: 0,
};

static C_TYPE: TypeObject = C_BASE;

/// The same with a legacy finalizer (`tp_del`): a cycle through it is uncollectable.
static C_LEGACY_TYPE: TypeObject = TypeObject {
    name: c"clegacy".as_ptr(),
    finalize: None,
    del: Some(c_del),
    ..C_BASE
};

fn new_c(ty: &'static TypeObject, id: usize) -> AnyGc {
    // SAFETY: a static type; the payload is initialized before tracking.
    unsafe {
        let o = raw::new_object(ty);
        assert!(!o.is_null());
        (&raw mut (*(o as *mut CNode)).weaklist).write(core::ptr::null_mut());
        (&raw mut (*(o as *mut CNode)).refs).write(Box::into_raw(Box::default()));
        (&raw mut (*(o as *mut CNode)).id).write(id);
        raw::track(o);
        adopt(o)
    }
}

/// Adopt a reference the caller owns.
///
/// # Safety
/// `o` is live; the caller gives up one reference it owns.
unsafe fn adopt(o: *mut ObjectHeader) -> AnyGc {
    // SAFETY: caller's contract.
    unsafe {
        let a = AnyGc::from_borrowed(o);
        object::decref(o);
        a
    }
}

/// The C object `c` takes a reference to `to`.
fn c_link(c: &AnyGc, to: &impl AsObject) {
    // SAFETY: c is a live CNode; to is live.
    unsafe {
        object::incref(to.as_object());
        (*cnode(c.as_object()).refs).push(to.as_object());
    }
}

unsafe extern "C" fn c_weak_callback(_wr: *mut ObjectHeader, arg: *mut c_void) {
    bump(|c| &mut c.called, arg as usize);
}

/// A C weak reference to `obj` whose callback counts for `id`.
fn c_weakref(obj: &AnyGc, id: usize) -> AnyGc {
    let cb = WeakCallback::C(c_weak_callback, id as *mut c_void);
    // SAFETY: a live object of this runtime; the callback accepts the id as its argument.
    unsafe { adopt(raw::weakref_new(obj.as_object(), Some(cb))) }
}

fn c_weak_dead(wr: &AnyGc) -> bool {
    // SAFETY: a live weakref object.
    unsafe { raw::weakref_get(wr.as_object()).is_null() }
}

// ---- the Rust side -----------------------------------------------------------------------

#[derive(Trace)]
#[trace(finalize = r_finalize)]
struct RNode {
    refs: GcCell<Vec<AnyGc>>,
    #[trace(skip)]
    id: usize,
}

fn r_finalize(this: &Gc<RNode>) {
    bump(|c| &mut c.finalized, this.id);
}

impl Drop for RNode {
    fn drop(&mut self) {
        bump(|c| &mut c.freed, self.id);
    }
}

fn new_r(id: usize) -> Gc<RNode> {
    Gc::new(RNode {
        refs: GcCell::new(Vec::new()),
        id,
    })
}

fn r_link(r: &Gc<RNode>, to: &impl AsObject) {
    // SAFETY: to is live, of this runtime.
    r.refs
        .borrow_mut()
        .push(unsafe { AnyGc::from_borrowed(to.as_object()) });
}

// ---- one collection for both -------------------------------------------------------------

#[test]
fn a_ring_alternating_c_and_rust_objects_is_collected_in_one_collection() {
    isolated(|| {
        const N: usize = 1000;
        reset(N);
        gc::disable();
        // Even ids are C objects, odd ids Rust ones; each holds the next, the last the first.
        let cs: Vec<Option<AnyGc>> = (0..N)
            .map(|i| (i % 2 == 0).then(|| new_c(&C_TYPE, i)))
            .collect();
        let rs: Vec<Option<Gc<RNode>>> = (0..N).map(|i| (i % 2 == 1).then(|| new_r(i))).collect();
        let any = |i: usize| -> AnyGc {
            match (&cs[i], &rs[i]) {
                (Some(c), _) => c.clone(),
                (_, Some(r)) => Gc::to_any(r),
                _ => unreachable!(),
            }
        };
        for i in 0..N {
            let next = any((i + 1) % N);
            match (&cs[i], &rs[i]) {
                (Some(c), _) => c_link(c, &next),
                (_, Some(r)) => r_link(r, &next),
                _ => unreachable!(),
            }
        }
        // A weak reference with a callback to every object: C ones from C, Rust ones from Rust.
        let c_weaks: Vec<(usize, AnyGc)> = (0..N)
            .filter_map(|i| cs[i].as_ref().map(|c| (i, c_weakref(c, i))))
            .collect();
        let r_weaks: Vec<Weak<RNode>> = (0..N)
            .filter_map(|i| {
                rs[i]
                    .as_ref()
                    .map(|r| Gc::downgrade_with_callback(r, move || bump(|c| &mut c.called, i)))
            })
            .collect();
        // Why is the middle alive? This test's vectors hold every object.
        let mid = any(N / 2);
        let b = match gc::path_to(&mid).unwrap() {
            PathTo::Path(b) => b,
            PathTo::Garbage => panic!("the ring is held by this test"),
        };
        assert_eq!(
            (b.chain.len(), b.external),
            (1, 1),
            "a root: held by `cs`/`rs`"
        );
        drop(b);
        drop((cs, rs));
        assert!(matches!(gc::path_to(&mid).unwrap(), PathTo::Garbage));
        drop(mid);

        assert_eq!(gc::collect(2), Ok(N), "the whole ring, exactly");
        let (fin, freed, called) = counters();
        assert!(
            fin.iter().all(|&n| n == 1),
            "every finalizer ran once: {fin:?}"
        );
        assert!(freed.iter().all(|&n| n == 1), "every object freed once");
        assert!(
            called.iter().all(|&n| n == 1),
            "every weakref callback ran once"
        );
        assert!(c_weaks.iter().all(|(_, w)| c_weak_dead(w)));
        assert!(r_weaks.iter().all(Weak::is_dead));
        assert_eq!(
            gc::get_objects(None).unwrap().len(),
            N,
            "only the weakref objects"
        );
        drop((c_weaks, r_weaks));
        assert_eq!(gc::get_objects(None).unwrap().len(), 0);
        assert_eq!(gc::get_stats()[2].uncollectable, 0);
    });
}

#[test]
fn a_mixed_cycle_pinned_by_a_c_legacy_finalizer_goes_to_garbage_whole() {
    isolated(|| {
        const N: usize = 10;
        reset(N);
        let build = || {
            // Id 0 is the C object with `del`; odd ids are Rust objects, even ones C objects.
            let nodes: Vec<(AnyGc, Option<Gc<RNode>>)> = (0..N)
                .map(|i| match i {
                    0 => (new_c(&C_LEGACY_TYPE, 0), None),
                    i if i % 2 == 0 => (new_c(&C_TYPE, i), None),
                    i => {
                        let r = new_r(i);
                        (Gc::to_any(&r), Some(r))
                    }
                })
                .collect();
            for i in 0..N {
                let next = &nodes[(i + 1) % N].0;
                match &nodes[i].1 {
                    Some(r) => r_link(r, next),
                    None => c_link(&nodes[i].0, next),
                }
            }
            nodes[0].0.clone()
        };

        // Without SAVEALL: the C object with `del` goes to garbage, everything it reaches is kept.
        let c0 = build();
        let w = c_weakref(&c0, 0);
        drop(c0);
        assert_eq!(gc::collect(2), Ok(N), "N uncollectable");
        assert_eq!(gc::get_stats()[2].uncollectable, N);
        assert_eq!(gc::garbage_len(), 1);
        assert_eq!(gc::garbage()[0].type_name(), "clegacy");
        let (fin, freed, called) = counters();
        assert!(
            fin.iter().chain(&freed).chain(&called).all(|&n| n == 0),
            "nothing ran"
        );
        assert!(!c_weak_dead(&w), "its weak reference is not cleared");
        let r = gc::leak_report();
        assert_eq!(r.groups.len(), 1);
        assert_eq!(r.groups[0].pinned_by[0].type_name(), "clegacy");
        drop(r); // it holds c0

        // With DEBUG_LEAK: the whole cycle, C and Rust, in garbage, one group pinned by c0.
        gc::set_debug(gc::DEBUG_SAVEALL);
        let c0 = gc::take_garbage().pop().unwrap();
        drop(c0);
        assert_eq!(gc::collect(2), Ok(N));
        gc::set_debug(0);
        assert_eq!(gc::garbage_len(), N);
        let r = gc::leak_report();
        assert_eq!(r.groups.len(), 1);
        assert_eq!(r.groups[0].objects, N);
        let mut types = r.groups[0].by_type.clone();
        types.sort();
        assert_eq!(
            types,
            vec![
                ("RNode".to_string(), 5),
                ("clegacy".to_string(), 1),
                ("cnode".to_string(), 4)
            ]
        );
        assert_eq!(r.collectable, 0);
        drop(r);
        // Break the cycle at the C object with `del`, then everything goes.
        let c0 = gc::garbage()
            .into_iter()
            .find(|o| o.type_name() == "clegacy")
            .unwrap();
        gc::clear_garbage();
        // SAFETY: a live CNode of this runtime.
        unsafe { c_clear(c0.as_object()) };
        drop(c0);
        assert_eq!(gc::collect(2), Ok(0), "freed by reference counting");
        let (fin, freed, called) = counters();
        assert_eq!(freed.iter().sum::<u32>(), N as u32);
        assert_eq!(
            fin.iter().sum::<u32>(),
            N as u32 - 1,
            "every finalizer but c0's (none)"
        );
        assert_eq!(called[0], 1, "c0's weakref callback ran when it died");
        drop(w);
        assert_eq!(gc::get_objects(None).unwrap().len(), 0);
    });
}

// ---- weakref callbacks that keep objects ---------------------------------------------------

#[derive(Trace)]
struct Owner {
    me: GcCell<Option<Weak<Owner>>>,
    #[trace(skip)]
    dropped: Rc<Cell<u32>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.dropped.set(self.dropped.get() + 1);
    }
}

#[test]
fn a_traced_weakref_callback_that_holds_its_referent_is_collected() {
    isolated(|| {
        let dropped = Rc::new(Cell::new(0));
        let o = Gc::new(Owner {
            me: GcCell::new(None),
            dropped: dropped.clone(),
        });
        // The callback's state holds the referent, and the referent holds the weak reference.
        let w = Gc::downgrade_with_state(&o, o.clone(), |o: Gc<Owner>| {
            o.dropped.set(100); // never runs: the weak reference is garbage too
        });
        o.me.set(Some(w));
        assert_eq!(gc::get_referents(&o).len(), 1, "o -> its weakref");
        drop(o);
        assert_eq!(gc::collect(2), Ok(2), "the owner and its weak reference");
        assert_eq!(dropped.get(), 1);
        assert_eq!(gc::get_objects(None).unwrap().len(), 0);

        // The same with an opaque closure: the cycle is never found (why the traced form exists).
        let o = Gc::new(Owner {
            me: GcCell::new(None),
            dropped: dropped.clone(),
        });
        let captured = o.clone();
        let w = Gc::downgrade_with_callback(&o, move || drop(captured));
        let keep = w.clone();
        o.me.set(Some(w));
        drop(o);
        assert_eq!(gc::collect(2), Ok(0));
        let o = keep.upgrade().expect("kept alive by the closure");
        assert!(
            matches!(gc::path_to(&o).unwrap(), PathTo::Path(b) if b.chain.len() == 1 && b.external == 1)
        );
        o.me.set(None);
        drop((o, keep));
        assert_eq!(dropped.get(), 2);
    });
}

#[test]
fn a_traced_weakref_callback_runs_with_its_state_when_the_referent_dies() {
    isolated(|| {
        #[derive(Trace)]
        struct Log {
            #[trace(skip)]
            lines: RefCell<Vec<String>>,
        }
        let log = Gc::new(Log {
            lines: RefCell::new(Vec::new()),
        });
        let dropped = Rc::new(Cell::new(0));
        let o = Gc::new(Owner {
            me: GcCell::new(None),
            dropped: dropped.clone(),
        });
        let w = Gc::downgrade_with_state(&o, log.clone(), |log: Gc<Log>| {
            log.lines.borrow_mut().push("referent died".into())
        });
        // The weakref traces its state: log is a referent of the weakref object.
        let wr = gc::get_referrers(&log);
        assert_eq!(wr.len(), 1);
        assert_eq!(wr[0].type_name(), "weakref");
        drop(wr);
        drop(o);
        assert!(w.is_dead());
        assert_eq!(*log.lines.borrow(), vec!["referent died".to_string()]);
        assert_eq!(
            Gc::strong_count(&log),
            1,
            "the state was consumed by the callback"
        );
        // Through the untyped C-style entry point too.
        let o = Gc::new(Owner {
            me: GcCell::new(None),
            dropped,
        });
        let cb = gc::TracedCallback::new(log.clone(), |log: Gc<Log>| {
            log.lines.borrow_mut().push("again".into())
        });
        // SAFETY: a live object of this runtime.
        let wr = unsafe {
            adopt(raw::weakref_new(
                o.as_object(),
                Some(WeakCallback::Traced(cb)),
            ))
        };
        drop(o);
        assert_eq!(log.lines.borrow().len(), 2);
        drop((wr, w));
    });
}

// ---- a panic in a Drop the collector runs --------------------------------------------------

#[derive(Trace)]
struct Peer {
    other: GcCell<Option<Gc<Peer>>>,
    #[trace(skip)]
    name: &'static str,
    #[trace(skip)]
    log: Rc<RefCell<Vec<String>>>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Dereferences the partner: the second of a garbage pair to go finds it cleared.
        let partner = self.other.borrow().as_ref().map(|p| p.name);
        self.log
            .borrow_mut()
            .push(format!("{} saw {partner:?}", self.name));
    }
}

/// A panic payload's message.
fn text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

fn peer_pair(log: &Rc<RefCell<Vec<String>>>) {
    let a = Gc::new(Peer {
        other: GcCell::new(None),
        name: "a",
        log: log.clone(),
    });
    let b = Gc::new(Peer {
        other: GcCell::new(Some(a.clone())),
        name: "b",
        log: log.clone(),
    });
    a.other.set(Some(b));
}

#[test]
fn a_drop_that_dereferences_a_cleared_partner_panics_from_collect_after_the_collection() {
    isolated(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        peer_pair(&log);
        let r = std::panic::catch_unwind(|| gc::collect(2));
        let payload = r.expect_err("the panic resumes from collect");
        let msg = text(&*payload);
        assert!(
            msg.contains("after the cycle collector cleared it"),
            "{msg}"
        );
        assert_eq!(
            *log.borrow(),
            vec!["a saw Some(\"b\")".to_string()],
            "b's Drop panicked"
        );
        assert_eq!(gc::get_stats()[2].collected, 2, "the collection finished");
        assert_eq!(
            gc::get_objects(None).unwrap().len(),
            0,
            "a freed; b untracked (leaked)"
        );
        // The collector is usable afterwards, and the mark is reset.
        let d = Rc::new(RefCell::new(Vec::new()));
        peer_pair(&d);
        assert!(std::panic::catch_unwind(|| gc::collect(2)).is_err());
        assert_eq!(d.borrow().len(), 1);

        // From an automatic collection: the allocation that ran it panics, after it finished.
        gc::set_threshold(1, 1, 1);
        let d = Rc::new(RefCell::new(Vec::new()));
        peer_pair(&d);
        let r = std::panic::catch_unwind(|| {
            let mut keep = Vec::new();
            for _ in 0..100 {
                keep.push(Gc::new(Peer {
                    other: GcCell::new(None),
                    name: "x",
                    log: Rc::new(RefCell::new(Vec::new())),
                }));
            }
        });
        assert!(r.is_err());
        assert!(d.borrow()[0].starts_with("a saw"));
        gc::set_threshold(700, 10, 10);
        assert_eq!(gc::collect(2), Ok(0));
    });
}

#[test]
fn two_panics_in_one_collection_resume_the_first() {
    isolated(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        peer_pair(&log);
        peer_pair(&log);
        let payload = std::panic::catch_unwind(|| gc::collect(2)).expect_err("one resumes");
        assert!(text(&*payload).contains("after the cycle collector cleared it"));
        assert_eq!(
            log.borrow().len(),
            2,
            "one Drop of each pair ran to the end"
        );
        assert_eq!(
            gc::collect(2),
            Ok(0),
            "nothing is held over to the next collection"
        );
    });
}

/// Outside a collection, a panic behind a type's `extern "C"` dealloc cannot unwind: it aborts
/// with a message naming the object and the rule (a child process).
#[test]
fn a_drop_panicking_under_an_untyped_decref_outside_a_collection_aborts_naming_it() {
    const CHILD: &str = "ARENAGC_DROP_ABORT_CHILD";
    if std::env::var_os(CHILD).is_some() {
        #[derive(Trace)]
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("bomb");
            }
        }
        let any = Gc::to_any(&Gc::new(Bomb));
        println!("dropping");
        drop(any); // the last reference, dropped through the type's dealloc
        println!("not reached");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_drop_panicking_under_an_untyped_decref_outside_a_collection_aborts_naming_it",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.signal(), Some(6), "{stdout}\n{stderr}");
    assert!(stdout.contains("dropping") && !stdout.contains("not reached"));
    assert!(
        stderr.contains("the Drop of the value of <Bomb at 0x")
            && stderr.contains("only a collection can hold such a panic"),
        "{stderr}"
    );
}

// ---- property: random mixed graphs ---------------------------------------------------------

fn check(n: usize, is_c: &[bool], edges: &[(usize, usize)], roots: &[bool]) {
    reset(n);
    let rust: Vec<Option<Gc<RNode>>> = (0..n).map(|i| (!is_c[i]).then(|| new_r(i))).collect();
    let objs: Vec<AnyGc> = (0..n)
        .map(|i| match &rust[i] {
            Some(r) => Gc::to_any(r),
            None => new_c(&C_TYPE, i),
        })
        .collect();
    for &(a, b) in edges {
        match &rust[a] {
            Some(r) => r_link(r, &objs[b]),
            None => c_link(&objs[a], &objs[b]),
        }
    }
    drop(rust);
    let weaks: Vec<AnyGc> = objs
        .iter()
        .enumerate()
        .map(|(i, o)| c_weakref(o, i))
        .collect();
    let kept: Vec<AnyGc> = objs
        .into_iter()
        .zip(roots)
        .filter(|(_, r)| **r)
        .map(|(o, _)| o)
        .collect();
    // Distances from the roots in the model.
    let mut dist = vec![usize::MAX; n];
    let mut queue: std::collections::VecDeque<usize> = (0..n).filter(|&i| roots[i]).collect();
    for &i in &queue {
        dist[i] = 0;
    }
    while let Some(i) = queue.pop_front() {
        for &(a, b) in edges {
            if a == i && dist[b] == usize::MAX {
                dist[b] = dist[i] + 1;
                queue.push_back(b);
            }
        }
    }
    gc::collect(2).unwrap();
    let (_, freed, _) = counters();
    for i in 0..n {
        assert_eq!(freed[i], u32::from(dist[i] == usize::MAX), "object {i}");
        // SAFETY: a live weakref object.
        let r = unsafe { raw::weakref_get(weaks[i].as_object()) };
        assert_eq!(r.is_null(), dist[i] == usize::MAX, "weak of object {i}");
        if r.is_null() {
            continue;
        }
        // SAFETY: a live referent.
        let obj = unsafe { AnyGc::from_borrowed(r) };
        let b = match gc::path_to(&obj).unwrap() {
            PathTo::Path(b) => b,
            PathTo::Garbage => panic!("survivor {i} without a root"),
        };
        assert!(
            kept.iter().any(|k| k.is(&b.chain[0])),
            "chain of {i} starts at a real root"
        );
        assert_eq!(b.external, 1, "held by the test's `kept` only");
        assert_eq!(b.chain.len() - 1, dist[i], "a shortest chain to {i}");
        for w in b.chain.windows(2) {
            assert!(gc::get_referents(&w[0]).iter().any(|r| r.is(&w[1])));
        }
    }
    drop(kept);
    gc::collect(2).unwrap();
    let (_, freed, _) = counters();
    assert!(
        freed.iter().all(|&f| f == 1),
        "every object freed exactly once"
    );
    drop(weaks);
    assert_eq!(gc::get_objects(None).unwrap().len(), 0);
}

/// A random graph: its size, which nodes are C objects, its edges, which nodes are roots.
type Graph = (usize, Vec<bool>, Vec<(usize, usize)>, Vec<bool>);

fn graph() -> impl Strategy<Value = Graph> {
    (1usize..30).prop_flat_map(|n| {
        (
            Just(n),
            prop::collection::vec(any::<bool>(), n),
            prop::collection::vec((0..n, 0..n), 0..3 * n),
            prop::collection::vec(prop::bool::weighted(0.2), n),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn collect_frees_exactly_the_unreachable_and_path_to_starts_at_a_real_root(
        (n, is_c, edges, roots) in graph()
    ) {
        std::thread::spawn(move || check(n, &is_c, &edges, &roots)).join().unwrap();
    }
}
