//! Unit tests of the untyped (C-style) object path: types built by hand as a C program would,
//! tracked with `raw::track`, collected through their `TypeObject` functions.

use core::cell::Cell;
use core::ffi::{c_int, c_void};
use core::ptr;

use super::*;
use crate::object::{ObjectHeader, TPFLAGS_HAVE_GC, TypeObject, VisitProc};

/// A C-style object: one owned reference and a weaklist slot.
#[repr(C)]
struct CObj {
    header: ObjectHeader,
    weaklist: *mut ObjectHeader,
    other: *mut ObjectHeader,
}

thread_local! {
    static FREED: Cell<usize> = const { Cell::new(0) };
    static CALLBACKS: Cell<usize> = const { Cell::new(0) };
}

unsafe extern "C" fn c_traverse(
    obj: *mut ObjectHeader,
    visit: VisitProc,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: obj is a live CObj; `other` is null or a live object it owns.
    unsafe {
        let o = (*(obj as *mut CObj)).other;
        if !o.is_null() {
            return visit(o, arg);
        }
    }
    0
}

unsafe extern "C" fn c_clear(obj: *mut ObjectHeader) -> c_int {
    // SAFETY: obj is a live CObj; the reference is taken out before it is given up.
    unsafe {
        let o = core::mem::replace(&mut (*(obj as *mut CObj)).other, ptr::null_mut());
        if !o.is_null() {
            object::decref(o);
        }
    }
    0
}

unsafe extern "C" fn c_dealloc(obj: *mut ObjectHeader) {
    // SAFETY: obj is a CObj with refcount 0; the usual CPython dealloc sequence.
    unsafe {
        raw::untrack(obj);
        if !(*(obj as *mut CObj)).weaklist.is_null() {
            raw::clear_weakrefs(obj);
        }
        c_clear(obj);
        raw::free_object(obj);
    }
    FREED.with(|f| f.set(f.get() + 1));
}

static C_TYPE: TypeObject = TypeObject {
    name: c"cobj".as_ptr(),
    basic_size: size_of::<CObj>(),
    flags: TPFLAGS_HAVE_GC,
    weaklist_offset: core::mem::offset_of!(CObj, weaklist) as isize,
    traverse: Some(c_traverse),
    clear: Some(c_clear),
    finalize: None,
    del: None,
    dealloc: c_dealloc,
    item_size: 0,
};

fn new_cobj() -> *mut ObjectHeader {
    // SAFETY: static type; the payload is initialized before tracking.
    unsafe {
        let o = raw::new_object(&C_TYPE);
        assert!(!o.is_null());
        (*(o as *mut CObj)).weaklist = ptr::null_mut();
        (*(o as *mut CObj)).other = ptr::null_mut();
        raw::track(o);
        o
    }
}

fn in_thread(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().unwrap();
}

#[test]
fn c_style_cycle_is_collected_through_the_type_functions() {
    in_thread(|| {
        let (a, b) = (new_cobj(), new_cobj());
        // SAFETY: a and b are live; each takes a reference to the other.
        unsafe {
            object::incref(b);
            (*(a as *mut CObj)).other = b;
            object::incref(a);
            (*(b as *mut CObj)).other = a;
            assert!(object::is_tracked(a));
            assert_eq!(get_count().0, 2);
            object::decref(a);
            object::decref(b);
        }
        assert_eq!(FREED.with(|f| f.get()), 0);
        assert_eq!(collect(2), Ok(2));
        assert_eq!(FREED.with(|f| f.get()), 2);
        assert_eq!(get_count(), (0, 0, 0));
        // SAFETY: generation lists of this thread's runtime.
        unsafe {
            for i in 0..NUM_GENERATIONS {
                gc_list_is_valid(current().gen_head(i), false, false).unwrap();
            }
        }
    });
}

unsafe extern "C" fn c_callback(wr: *mut ObjectHeader, arg: *mut c_void) {
    // SAFETY: the weakref is live during its callback and already cleared.
    assert!(unsafe { raw::weakref_get(wr) }.is_null());
    assert_eq!(arg as usize, 42);
    CALLBACKS.with(|c| c.set(c.get() + 1));
}

#[test]
fn c_weakref_callback_runs_once_when_the_cycle_is_collected() {
    in_thread(|| {
        let a = new_cobj();
        // SAFETY: a is live; it refers to itself; the weakref is dropped at the end.
        unsafe {
            object::incref(a);
            (*(a as *mut CObj)).other = a;
            let wr = raw::weakref_new(a, Some(WeakCallback::C(c_callback, 42 as *mut c_void)));
            assert!(raw::is_weakref(wr));
            assert_eq!(raw::weakref_get(wr), a);
            assert_eq!(raw::getweakrefcount(a), 1);
            object::decref(a);
            assert_eq!(collect(2), Ok(1));
            assert_eq!(CALLBACKS.with(|c| c.get()), 1);
            assert!(raw::weakref_get(wr).is_null());
            object::decref(wr);
        }
        assert_eq!(collect(2), Ok(0));
        assert_eq!(CALLBACKS.with(|c| c.get()), 1);
        assert_eq!(get_objects(None).unwrap().len(), 0);
    });
}

#[test]
fn untracked_objects_are_invisible_to_the_collector() {
    in_thread(|| {
        let a = new_cobj();
        // SAFETY: a is live until the decref.
        unsafe {
            object::incref(a);
            (*(a as *mut CObj)).other = a;
            raw::untrack(a);
            assert!(!object::is_tracked(a));
            object::decref(a);
            assert_eq!(collect(2), Ok(0));
            assert_eq!(FREED.with(|f| f.get()), 0);
            raw::track(a);
            raw::track(a);
            assert_eq!(get_objects(Some(0)).unwrap().len(), 1);
            assert_eq!(collect(2), Ok(1));
        }
        assert_eq!(FREED.with(|f| f.get()), 1);
    });
}

#[test]
fn side_table_entries_live_exactly_while_an_object_has_weakrefs() {
    #[derive(Debug)]
    struct Leaf(u32);
    // SAFETY: holds no Gc.
    unsafe impl Trace for Leaf {
        fn trace(&self, _: &mut Tracer) {}
    }
    in_thread(|| {
        let table_len = || current().weak_table.borrow().len();
        let a = Gc::new(Leaf(1));
        assert_eq!(table_len(), 0);
        let w1 = Gc::downgrade(&a);
        let w2 = Gc::downgrade(&a);
        assert_eq!((table_len(), Gc::weak_count(&a)), (1, 2));
        drop(w1);
        assert_eq!((table_len(), Gc::weak_count(&a)), (1, 1));
        drop(w2);
        assert_eq!((table_len(), Gc::weak_count(&a)), (0, 0));
        let w3 = Gc::downgrade(&a);
        assert_eq!(w3.upgrade().map(|g| g.0), Some(1));
        drop(a);
        assert_eq!(table_len(), 0);
        assert!(w3.is_dead());
    });
}

/// A value holding `AnyGc`s: traced through `Tracer::visit` like any handle.
struct Holder(GcCell<Option<AnyGc>>, GcCell<Option<AnyGc>>);

// SAFETY: visits the two AnyGc it owns (GcCell and Option forward).
unsafe impl Trace for Holder {
    fn trace(&self, t: &mut Tracer) {
        self.0.trace(t);
        self.1.trace(t);
    }
}

unsafe extern "C" fn plain_dealloc(obj: *mut ObjectHeader) {
    // SAFETY: a plain object at refcount zero: no GC head, nothing held.
    unsafe { raw::del_object(obj) };
    FREED.with(|f| f.set(f.get() + 1));
}

static PLAIN_TYPE: TypeObject = TypeObject {
    name: c"plain".as_ptr(),
    basic_size: size_of::<ObjectHeader>(),
    flags: 0,
    weaklist_offset: 0,
    traverse: None,
    clear: None,
    finalize: None,
    del: None,
    dealloc: plain_dealloc,
    item_size: 0,
};

#[test]
fn any_gc_fields_are_traced_and_cycles_through_them_are_collected() {
    in_thread(|| {
        let none = || GcCell::new(None);
        let a = Gc::new(Holder(none(), none()));
        let b = Gc::new(Holder(GcCell::new(Some(Gc::to_any(&a))), none()));
        a.0.set(Some(Gc::to_any(&b)));
        // A non-GC (C) object behind an AnyGc: visited through the visit procedure, which
        // checks its type (it has no GcHead to touch).
        // SAFETY: a static type; the object is initialized (no payload) and owned by `a`.
        let plain = unsafe { raw::new_object(&PLAIN_TYPE) };
        // SAFETY: live; the AnyGc takes its own reference, ours is given up.
        unsafe {
            a.1.set(Some(AnyGc::from_borrowed(plain)));
            object::decref(plain);
        }
        assert_eq!(get_referents(&a).len(), 2);
        drop((a, b));
        assert_eq!(collect(2), Ok(2));
        assert_eq!(
            FREED.with(|f| f.get()),
            1,
            "the plain object went with its holder"
        );
        assert_eq!(get_objects(None).unwrap().len(), 0);
    });
}
