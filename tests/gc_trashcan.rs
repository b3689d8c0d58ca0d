//! The trashcan on every path a deallocation starts from: `Gc<T>`'s drop, `AnyGc`'s drop
//! (`object::decref`, the path of the C ABI and the collector), with finalizers, exact
//! generation-0 counts, and the objects a panic leaves put off. Each test runs on a fresh
//! thread.

use std::cell::{Cell, RefCell};

use arenagc::gc::{self, Runtime, TRASH_LIMIT};
use arenagc::{Gc, Trace};

fn isolated(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().unwrap();
}

thread_local! {
    static DROPS: Cell<usize> = const { Cell::new(0) };
    static FINALIZED: Cell<usize> = const { Cell::new(0) };
    static UNTRACKED_IN_FINALIZER: Cell<usize> = const { Cell::new(0) };
}

#[derive(Trace)]
struct Link {
    next: Option<Gc<Link>>,
    #[trace(skip)]
    _count: Counted,
}

struct Counted;

impl Drop for Counted {
    fn drop(&mut self) {
        DROPS.with(|d| d.set(d.get() + 1));
    }
}

fn chain(n: usize) -> Gc<Link> {
    let mut head: Option<Gc<Link>> = None;
    for _ in 0..n {
        head = Some(Gc::new(Link {
            next: head,
            _count: Counted,
        }));
    }
    head.unwrap()
}

#[test]
fn a_million_long_chain_dropped_through_any_gc_uses_bounded_stack() {
    isolated(|| {
        let head = chain(1_000_000);
        let any = Gc::to_any(&head);
        drop(head);
        assert_eq!(DROPS.with(|d| d.get()), 0);
        drop(any); // object::decref -> the trashcan -> the type's dealloc
        assert_eq!(DROPS.with(|d| d.get()), 1_000_000);
        assert_eq!(gc::get_objects(None).unwrap().len(), 0);
    });
}

#[test]
fn generation_0_is_uncounted_exactly_once_per_object_through_the_trashcan() {
    isolated(|| {
        gc::disable();
        let before = gc::get_count().0;
        let head = chain(10 * TRASH_LIMIT);
        assert_eq!(gc::get_count().0, before + 10 * TRASH_LIMIT);
        drop(head);
        assert_eq!(gc::get_count().0, before);
        assert_eq!(DROPS.with(|d| d.get()), 10 * TRASH_LIMIT);
    });
}

fn fin_finalize(this: &Gc<FinLink>) {
    FINALIZED.with(|f| f.set(f.get() + 1));
    if !gc::is_tracked(this) {
        UNTRACKED_IN_FINALIZER.with(|u| u.set(u.get() + 1));
    }
}

#[derive(Trace)]
#[trace(finalize = fin_finalize)]
struct FinLink {
    next: Option<Gc<FinLink>>,
}

#[test]
fn finalizers_of_put_off_objects_run_once_with_the_object_tracked() {
    isolated(|| {
        let n = 20 * TRASH_LIMIT;
        let mut head: Option<Gc<FinLink>> = None;
        for _ in 0..n {
            head = Some(Gc::new(FinLink { next: head }));
        }
        drop(head);
        assert_eq!(FINALIZED.with(|f| f.get()), n);
        assert_eq!(UNTRACKED_IN_FINALIZER.with(|u| u.get()), 0);
        assert_eq!(gc::get_objects(None).unwrap().len(), 0);
        assert_eq!(gc::collect(2), Ok(0));
    });
}

/// A chain whose head panics in `Drop` after its fields went: the links put off by the
/// trashcan stay put off (the panic unwound out of the outermost deallocation); the next
/// runtime switch frees them under the runtime they belong to.
#[test]
fn links_a_panic_left_put_off_are_freed_under_their_runtime_at_the_next_switch() {
    #[derive(Trace)]
    struct Head {
        next: Option<Gc<Link>>,
        #[trace(skip)]
        _bomb: Bomb,
    }
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("boom");
        }
    }
    isolated(|| {
        let rt = Runtime::new();
        let default_objects = RefCell::new(vec![Gc::to_any(&chain(3))]);
        {
            // SAFETY: every object made while attached is dropped (or left to the trashcan)
            // while attached.
            let _g = unsafe { rt.attach() };
            gc::disable();
            let n = 4 * TRASH_LIMIT;
            let head = Gc::new(Head {
                next: Some(chain(n)),
                _bomb: Bomb,
            });
            assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(head))).is_err());
            // Links up to the depth limit were freed; the rest is put off.
            let freed = DROPS.with(|d| d.get());
            assert!(freed < n, "freed {freed}");
            assert!(freed >= TRASH_LIMIT - 1, "freed {freed}");
        } // detach: drains the trashcan first, under `rt`
        assert_eq!(DROPS.with(|d| d.get()), 4 * TRASH_LIMIT);
        // SAFETY: nothing escapes.
        let _g = unsafe { rt.attach() };
        // Only the head is left (leaked by its panic, untracked): every link is gone, counted
        // against `rt` and nothing else.
        assert_eq!(gc::get_objects(None).unwrap().len(), 0);
        assert_eq!(gc::get_count().0, 1, "the head is never uncounted");
        drop(_g);
        assert_eq!(default_objects.borrow().len(), 1);
        assert_eq!(gc::get_objects(None).unwrap().len(), 3);
    });
}
