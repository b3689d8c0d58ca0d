//! Runtimes: the collector state (generations, counts, thresholds, stats, `garbage`, debug
//! flags, callbacks, the weakref side table), which one the calling thread uses, and the rule
//! that it does not change while library-run code is on the thread's stack.
//!
//! | item                  | role                                                              |
//! |-----------------------|-------------------------------------------------------------------|
//! | `GcState`             | one runtime's collector state (all `Cell`/`RefCell`), with the panic a collection holds (`unwind.rs`) and the census peaks (`census.rs`) |
//! | `current()`           | the thread's current runtime: the crate TLS word `RUNTIME` (one load; the default runtime is made on first use, on a cold path) |
//! | [`Runtime`]           | an explicit runtime threads attach to one at a time (like a GIL)  |
//! | [`AttachGuard`]       | one attachment; detaches on drop                                  |
//! | `UserCode`            | marks library-run user code on this thread (TLS word `CALL_DEPTH`) |
//! | [`check_runtime_switch`] | the re-entrancy rule, as a value                               |
//!
//! # Invariants
//!
//! - Each thread has a *current* runtime: the explicit [`Runtime`] it is attached to, else its
//!   own default runtime, created on first use. Objects are allocated into, counted against and
//!   collected by the current runtime.
//! - A runtime is touched by one thread at a time: the default one only by its thread; an
//!   explicit one only by the thread holding its attachment (`attach` waits, like a GIL).
//! - All state is reached through `&GcState` with `Cell`/`RefCell` fields, because user code
//!   (finalizers, weakref callbacks, gc callbacks, `Drop`) runs in the middle of collections and
//!   deallocations and may call back into the `gc` functions. No `RefCell` borrow is held
//!   while user code runs.
//! - The generation sentinels live in a `Box` and never move; a runtime is freed only when all
//!   its lists and `garbage` are empty (otherwise it is leaked, so objects that outlive it stay
//!   valid).
//! - **The re-entrancy rule**: the current runtime does not change while the library runs user
//!   code on this thread, that is while
//!
//!   `library code runs  <=>  TRASH_DEPTH > 0 (a deallocation)  or  CALL_DEPTH > 0`
//!
//!   where `CALL_DEPTH` counts the live `UserCode` marks: a collection with its callbacks
//!   (`schedule::Collecting`), the traversals of `get_referrers` / `get_referents`, weakref
//!   callbacks run outside a deallocation, and the C ABI's visitors (`raw::CallbackScope`).
//!   The call that runs such code holds the runtime's state and goes on with it afterwards;
//!   a switch there would let another thread into a runtime mid-collection, or run the rest of
//!   the call (and the trashcan's deferred objects) under the wrong runtime. `try_attach` and
//!   [`check_runtime_switch`] refuse with `GcError::SwitchFromLibraryCode`; `attach` panics;
//!   dropping an `AttachGuard` there aborts.
//!
//! May touch: `list.rs` (the sentinels), `any.rs` (`garbage`), `diag.rs`; the object layer's
//! trashcan state (`deallocating`, `drain_trash`); the TLS words `RUNTIME` and `CALL_DEPTH`.

use core::any::Any;
use core::cell::{Cell, RefCell, UnsafeCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::any::AnyGc;
use super::diag::{GcError, abort_with};
use super::list::{self, Head};
use crate::config::{DEFAULT_THRESHOLDS, NUM_GENERATIONS};
use crate::object::{self, GcHead, ObjectHeader};
use crate::tls::{self, CALL_DEPTH, RUNTIME};

/// Per-generation statistics (CPython's `gc.get_stats()` entries).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenStats {
    /// Collections of this generation.
    pub collections: usize,
    /// Objects freed by those collections.
    pub collected: usize,
    /// Objects found uncollectable (moved to `garbage` or kept for their legacy finalizer).
    pub uncollectable: usize,
}

/// Whether a callback is told about the start or the end of a collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the collection (collected and uncollectable are 0).
    Start,
    /// After it.
    Stop,
}

/// What a gc callback receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallbackInfo {
    /// The generation collected.
    pub generation: usize,
    /// Objects freed.
    pub collected: usize,
    /// Objects found uncollectable.
    pub uncollectable: usize,
    /// Time the collection took (zero at `Start`).
    pub duration: Duration,
}

pub(crate) type Callback = Rc<RefCell<dyn FnMut(Phase, &CallbackInfo)>>;

/// One generation: its list, threshold and count.
pub(crate) struct Generation {
    pub head: UnsafeCell<GcHead>,
    pub threshold: Cell<usize>,
    pub count: Cell<usize>,
}

/// The collector state of one runtime.
pub(crate) struct GcState {
    pub gens: [Generation; NUM_GENERATIONS],
    pub permanent: UnsafeCell<GcHead>,
    pub enabled: Cell<bool>,
    /// A collection runs (a nested one returns at once).
    pub collecting: Cell<bool>,
    pub debug: Cell<u32>,
    pub long_lived_total: Cell<usize>,
    pub long_lived_pending: Cell<usize>,
    pub stats: [Cell<GenStats>; NUM_GENERATIONS],
    pub garbage: RefCell<Vec<AnyGc>>,
    pub callbacks: RefCell<Vec<(u64, Callback)>>,
    /// Weakref list heads of side-table objects that have weakrefs (`PREV_HAS_WEAKREFS`),
    /// boxed so that a head's address is stable while it is in use.
    pub weak_table: RefCell<HashMap<usize, Box<Cell<*mut ObjectHeader>>>>,
    /// The first panic user code raised behind a type function during the running collection,
    /// resumed when it has finished (`unwind.rs`).
    pub pending_panic: Cell<Option<Box<dyn Any + Send>>>,
    /// The highest count of each type name seen by `gc::type_growth` (`census.rs`).
    pub census_peaks: RefCell<HashMap<String, usize>>,
    /// Weakref objects of this runtime now alive (made by `weakref::init`, freed by its
    /// `dealloc`): while it is 0, no object can have weakrefs, and a collection skips looking.
    pub live_weakrefs: Cell<usize>,
    /// Some object whose type has a PEP 442 finalizer or a legacy del has been tracked in this
    /// runtime (sticky): while false, a collection skips looking for them (`collect.rs`).
    pub finalizer_types: Cell<bool>,
}

impl GcState {
    fn new_boxed() -> Box<GcState> {
        let g = |t| Generation {
            head: UnsafeCell::new(GcHead { next: 0, prev: 0 }),
            threshold: Cell::new(t),
            count: Cell::new(0),
        };
        let st = Box::new(GcState {
            gens: [
                g(DEFAULT_THRESHOLDS[0]),
                g(DEFAULT_THRESHOLDS[1]),
                g(DEFAULT_THRESHOLDS[2]),
            ],
            permanent: UnsafeCell::new(GcHead { next: 0, prev: 0 }),
            enabled: Cell::new(true),
            collecting: Cell::new(false),
            debug: Cell::new(0),
            long_lived_total: Cell::new(0),
            long_lived_pending: Cell::new(0),
            stats: Default::default(),
            garbage: RefCell::new(Vec::new()),
            callbacks: RefCell::new(Vec::new()),
            weak_table: RefCell::new(HashMap::new()),
            pending_panic: Cell::new(None),
            census_peaks: RefCell::new(HashMap::new()),
            live_weakrefs: Cell::new(0),
            finalizer_types: Cell::new(false),
        });
        // SAFETY: the sentinels are inside the box and never move.
        unsafe {
            for g in &st.gens {
                list::init(g.head.get());
            }
            list::init(st.permanent.get());
        }
        st
    }

    /// The list of generation `i`.
    #[inline(always)]
    pub fn gen_head(&self, i: usize) -> Head {
        self.gens[i].head.get()
    }

    /// Count a freed tracked object: generation 0's count is allocations minus frees, never
    /// below zero.
    #[inline(always)]
    pub fn note_free(&self) {
        let g0 = &self.gens[0];
        g0.count.set(g0.count.get().saturating_sub(1));
    }

    /// Whether every list and `garbage` is empty (the state can be freed).
    fn is_idle(&self) -> bool {
        // SAFETY: the sentinels are initialized lists.
        let lists_empty = unsafe {
            (0..NUM_GENERATIONS).all(|i| list::is_empty(self.gen_head(i)))
                && list::is_empty(self.permanent.get())
        };
        lists_empty && self.garbage.borrow().is_empty() && !self.collecting.get()
    }
}

thread_local! {
    // Cold: read by the thread-exit cleanup only (the hot word is the TLS slot RUNTIME).
    static DEFAULT: Cell<*const GcState> = const { Cell::new(core::ptr::null()) };
    static DEFAULT_GUARD: DefaultGuard = const { DefaultGuard };
}

/// The current runtime pointer (the TLS word `RUNTIME`), null before first use.
#[inline(always)]
fn current_ptr() -> *const GcState {
    tls::get::<RUNTIME>() as *const GcState
}

#[inline(always)]
fn set_current(st: *const GcState) {
    tls::set::<RUNTIME>(st as usize);
}

/// Frees the thread's default runtime at thread exit when nothing of it is left.
struct DefaultGuard;

impl Drop for DefaultGuard {
    fn drop(&mut self) {
        let st = DEFAULT.with(|d| d.get());
        if st.is_null() || current_ptr() != st {
            return;
        }
        // What a panic left in the trashcan belongs to this runtime: free it while it lives.
        before_switch();
        // SAFETY: st is this thread's default runtime, created by new_boxed and leaked.
        if unsafe { (*st).is_idle() } {
            set_current(core::ptr::null());
            DEFAULT.with(|d| d.set(core::ptr::null()));
            // SAFETY: no object of this runtime remains; nothing else points at it.
            drop(unsafe { Box::from_raw(st as *mut GcState) });
        }
    }
}

/// The calling thread's current runtime.
///
/// The reference stays valid while the thread stays attached (default runtimes live until
/// thread exit and are only freed when empty).
#[inline(always)]
pub(crate) fn current() -> &'static GcState {
    let p = current_ptr();
    if p.is_null() {
        return make_default();
    }
    // SAFETY: a non-null RUNTIME word is a live runtime (see the module invariants).
    unsafe { &*p }
}

#[cold]
#[inline(never)]
fn make_default() -> &'static GcState {
    let st: &'static GcState = Box::leak(GcState::new_boxed());
    set_current(st);
    DEFAULT.with(|d| d.set(st));
    // Registering the guard fails only during thread teardown; then the runtime is leaked.
    let _ = DEFAULT_GUARD.try_with(|_| ());
    st
}

/// Marks library-run user code on this thread for as long as it lives (the TLS word
/// `CALL_DEPTH`, restored on drop, also when a panic unwinds): runtime switches are refused
/// meanwhile. Deallocations need no mark (the trashcan's depth says so).
pub(crate) struct UserCode(usize);

impl UserCode {
    #[inline]
    pub(crate) fn enter() -> UserCode {
        let d = tls::get::<CALL_DEPTH>();
        tls::set::<CALL_DEPTH>(d + 1);
        UserCode(d)
    }
}

impl Drop for UserCode {
    #[inline]
    fn drop(&mut self) {
        tls::set::<CALL_DEPTH>(self.0);
    }
}

/// Whether the library runs user code on this thread (see the re-entrancy rule above).
#[inline]
fn in_library_code() -> bool {
    tls::get::<CALL_DEPTH>() != 0 || object::deallocating()
}

/// `Ok` when the calling thread may switch runtimes (attach or detach) now: not from code the
/// library runs (a deallocation with its `Drop` impls and C `dealloc`s, a collection with its
/// finalizers, weakref and gc callbacks, a traversal for `get_referrers` / `get_referents`, a
/// visitor the C ABI calls); else `Err(GcError::SwitchFromLibraryCode)`.
pub fn check_runtime_switch() -> Result<(), GcError> {
    if in_library_code() {
        Err(GcError::SwitchFromLibraryCode)
    } else {
        Ok(())
    }
}

/// Before a runtime switch: finish what the trashcan still holds from a panic, under the
/// runtime it belongs to.
fn before_switch() {
    object::drain_trash();
}
/// An explicitly created runtime that threads attach to one at a time (like a GIL), so that
/// several threads can share one object heap.
pub struct Runtime {
    state: *const GcState,
    attached: Mutex<bool>,
    released: Condvar,
}

// SAFETY: the state is only touched by the one thread holding the attachment (Mutex-guarded).
unsafe impl Send for Runtime {}
// SAFETY: as above.
unsafe impl Sync for Runtime {}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    /// A fresh runtime with default thresholds, enabled.
    pub fn new() -> Runtime {
        Runtime {
            state: Box::into_raw(GcState::new_boxed()),
            attached: Mutex::new(false),
            released: Condvar::new(),
        }
    }

    /// Make this runtime the calling thread's current one until the guard drops, waiting while
    /// another thread is attached.
    ///
    /// # Safety
    /// Every object belongs to the runtime that was current when it was created. It (and every
    /// handle to it, such as `Gc` or `Weak`) must only be used, cloned or dropped while that
    /// runtime is the thread's current one: objects created while attached only by a thread
    /// attached to this runtime, and the thread's default-runtime objects not while it is
    /// attached here. (An object with weak references used under the wrong runtime aborts with
    /// a message; other misuse is undefined.) Values stored in this runtime's objects, their
    /// finalizers and weakref callbacks, and the gc callbacks registered on it may be dropped or
    /// run by whichever thread is attached when a collection runs: they must be safe to use from
    /// any thread that attaches (in effect `Send`). Guards of different runtimes on one thread
    /// must drop in reverse order of creation.
    ///
    /// # Panics
    /// When called from code the library runs on this thread (a `Drop` impl or C `dealloc` run
    /// by a deallocation, a finalizer, a weakref or gc callback, a `trace`/`traverse`, a C
    /// visitor): the call running it holds the current runtime and goes on with it afterwards.
    /// Nothing has changed then (no runtime attached, none waited for). [`try_attach`] returns
    /// the refusal as an error instead.
    ///
    /// [`try_attach`]: Runtime::try_attach
    #[track_caller]
    pub unsafe fn attach(&self) -> AttachGuard<'_> {
        // SAFETY: forwarded: the caller keeps attach's contract.
        match unsafe { self.try_attach() } {
            Ok(g) => g,
            Err(e) => panic!("Runtime::attach: {e}"),
        }
    }

    /// [`attach`](Runtime::attach), or `Err(GcError::SwitchFromLibraryCode)` (nothing done) when
    /// called from code the library runs.
    ///
    /// # Safety
    /// As [`attach`](Runtime::attach).
    pub unsafe fn try_attach(&self) -> Result<AttachGuard<'_>, GcError> {
        check_runtime_switch()?;
        before_switch();
        let mut a = self.attached.lock().unwrap_or_else(|e| e.into_inner());
        while *a {
            a = self.released.wait(a).unwrap_or_else(|e| e.into_inner());
        }
        *a = true;
        drop(a);
        let previous = current_ptr();
        set_current(self.state);
        Ok(AttachGuard { rt: self, previous })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // SAFETY: nobody is attached (guards borrow the runtime); state is live.
        if unsafe { (*self.state).is_idle() } {
            // SAFETY: no object of the runtime remains.
            drop(unsafe { Box::from_raw(self.state as *mut GcState) });
        }
        // Otherwise leaked: live objects still link into its lists.
    }
}

/// The attachment of the calling thread to a [`Runtime`]; detaches on drop.
///
/// Dropping it from code the library runs (see [`Runtime::attach`]) aborts the process with a
/// message: it can neither detach there nor stay attached for good (other threads would wait
/// forever), and a panic in `drop` could unwind into a collection.
pub struct AttachGuard<'a> {
    rt: &'a Runtime,
    previous: *const GcState,
}

impl Drop for AttachGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = check_runtime_switch() {
            abort_with(format_args!("an AttachGuard was dropped there: {e}"));
        }
        before_switch();
        set_current(self.previous);
        *self.rt.attached.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.rt.released.notify_one();
    }
}
