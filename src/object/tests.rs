//! Unit tests of the object layer: allocation, counts, variable-size objects.

use super::*;

unsafe extern "C" fn free_it(obj: *mut ObjectHeader) {
    // SAFETY: called at refcount zero on an untracked object from object_alloc.
    unsafe { object_free(obj) }
}

static PLAIN: TypeObject = TypeObject {
    name: c"plain".as_ptr(),
    basic_size: 24,
    flags: 0,
    weaklist_offset: 0,
    traverse: None,
    clear: None,
    finalize: None,
    del: None,
    dealloc: free_it,
    item_size: 0,
};

static VAR: TypeObject = TypeObject {
    name: c"var".as_ptr(),
    basic_size: 24,
    item_size: 8,
    flags: TPFLAGS_HAVE_GC,
    ..PLAIN
};

#[test]
fn variable_size_objects_small_and_large() {
    for n in [0usize, 1, 10, 100, 5000] {
        // SAFETY: static type; the object is used only while live.
        unsafe {
            let o = object_alloc_var(&VAR, n);
            assert!(!o.is_null());
            let payload = o.cast::<u8>().add(size_of::<ObjectHeader>());
            payload.write_bytes(0xAB, 8 + 8 * n);
            assert_eq!(*payload.add(8 * n), 0xAB);
            object_free(o);
        }
    }
    // SAFETY: static type; a size that overflows gives null.
    assert!(unsafe { object_alloc_var(&VAR, usize::MAX / 4) }.is_null());
}

static WITH_GC: TypeObject = TypeObject {
    name: c"with_gc".as_ptr(),
    basic_size: 16,
    flags: TPFLAGS_HAVE_GC,
    ..PLAIN
};

#[test]
fn alloc_incref_decref_free() {
    for ty in [&PLAIN, &WITH_GC] {
        // SAFETY: static types; the object is used only while live.
        unsafe {
            let o = object_alloc(ty);
            assert!(!o.is_null());
            assert_eq!(o as usize % OBJECT_ALIGN, 0);
            assert_eq!((*o).refcnt, 1);
            assert!(!is_tracked(o));
            assert!(!is_finalized(o));
            assert!(weaklist_slot(o).is_null());
            if ty.is_gc() {
                assert_eq!(from_gc(as_gc(o)), o);
            }
            incref(o);
            decref(o);
            assert_eq!((*o).refcnt, 1);
            decref(o);
        }
    }
    // SAFETY: WITH_GC's name is a C string literal.
    assert_eq!(unsafe { WITH_GC.name_str() }, "with_gc");
}
