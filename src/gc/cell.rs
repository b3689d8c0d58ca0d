//! What can live in a `Gc`: [`GcCell`], the interior mutability that works inside cycles, and
//! the [`Trace`] impls of the standard library's types (leaves, containers, tuples, cells) and
//! of the handles (`Gc`, `Weak`, `AnyGc`).
//!
//! | type                                   | trace visits                                    |
//! |----------------------------------------|-------------------------------------------------|
//! | numbers, `NonZero*`, atomics, `bool`, `char`, strings (`String`, `Box<str>`, `Cow<'static, str>`), paths, `OsString`, `CString`, `Duration`, `Instant`, `SystemTime`, `std::net` addresses, `Ordering`, `TypeId`, `PhantomData`, `&'static` `str`/`CStr`/`Path`/`OsStr` | nothing (leaves) |
//! | `Option`, `Result`, `Box`, `Box<[T]>`, arrays, tuples (to 8), `Wrapping`, `Saturating`, `Reverse`, `Range`, `RangeInclusive`, `OnceCell`, `OnceLock` | the contents |
//! | `Vec`, `VecDeque`, `LinkedList`, `BinaryHeap`, sets, maps | every element (keys and values) |
//! | `GcCell<T>` / `RefCell<T>`             | the contents, unless mutably borrowed           |
//! | `Mutex<T>` / `RwLock<T>`               | the contents, unless locked (write-locked)      |
//! | `Cell<T: Copy>`                        | nothing (a `Copy` type holds no `Gc`)            |
//! | `Rc<T>`, `Arc<T>`, their `Weak`s       | nothing: opaque (shared ownership; see `opaque!`) |
//! | `Gc<T>`, `AnyGc`                       | its object                                      |
//! | `Weak<T>`                              | its weakref object (not the referent)           |
//!
//! # Invariants
//!
//! - Each impl visits every `Gc`/`Weak`/`AnyGc` the value owns exactly once (the `Trace`
//!   contract).
//! - A `GcCell` that is mutably borrowed (a `Mutex` locked, an `RwLock` write-locked) is skipped
//!   whole: its references then count as external (the referents stay alive), which is
//!   conservative and consistent between the phases of one collection, since no user code runs
//!   between them (and a lock holding a `Gc` is `!Sync`: no other thread reaches it).
//! - What is behind an `Rc`/`Arc` is never traced: a reference shared by several holders would
//!   be subtracted once per holder for one real count (unsound); opaque is conservative.
//!
//! May touch: `handle.rs` (the `Trace` trait), `weak.rs` (`Weak`), `trace.rs` (`Tracer`),
//! `any.rs` (`AnyGc`).

use core::cell::{Ref, RefCell, RefMut};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, LinkedList, VecDeque};

use super::any::AnyGc;
use super::handle::{Gc, Trace};
use super::trace::Tracer;
use super::weak::Weak;

macro_rules! leaf {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: holds no Gc.
        unsafe impl Trace for $t {
            #[inline(always)]
            fn trace(&self, _: &mut Tracer) {}
        }
    )*};
}

leaf!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    core::num::NonZeroU8,
    core::num::NonZeroU16,
    core::num::NonZeroU32,
    core::num::NonZeroU64,
    core::num::NonZeroU128,
    core::num::NonZeroUsize,
    core::num::NonZeroI8,
    core::num::NonZeroI16,
    core::num::NonZeroI32,
    core::num::NonZeroI64,
    core::num::NonZeroI128,
    core::num::NonZeroIsize,
    core::sync::atomic::AtomicBool,
    core::sync::atomic::AtomicU8,
    core::sync::atomic::AtomicU16,
    core::sync::atomic::AtomicU32,
    core::sync::atomic::AtomicU64,
    core::sync::atomic::AtomicUsize,
    core::sync::atomic::AtomicI8,
    core::sync::atomic::AtomicI16,
    core::sync::atomic::AtomicI32,
    core::sync::atomic::AtomicI64,
    core::sync::atomic::AtomicIsize,
    core::cmp::Ordering,
    core::any::TypeId,
    String,
    &'static str,
    &'static std::ffi::CStr,
    &'static std::path::Path,
    &'static std::ffi::OsStr,
    Box<str>,
    std::borrow::Cow<'static, str>,
    std::path::PathBuf,
    Box<std::path::Path>,
    std::ffi::OsString,
    Box<std::ffi::OsStr>,
    std::ffi::CString,
    Box<std::ffi::CStr>,
    std::time::Duration,
    std::time::Instant,
    std::time::SystemTime,
    std::net::IpAddr,
    std::net::Ipv4Addr,
    std::net::Ipv6Addr,
    std::net::SocketAddr,
    std::net::SocketAddrV4,
    std::net::SocketAddrV6,
);

// SAFETY: holds no value at all.
unsafe impl<T: ?Sized + 'static> Trace for core::marker::PhantomData<T> {
    #[inline(always)]
    fn trace(&self, _: &mut Tracer) {}
}

// SAFETY: visits the one Gc it owns (`T` unsized too: a `Gc<dyn Trait>` is an edge like any).
unsafe impl<T: ?Sized + 'static> Trace for Gc<T> {
    #[inline(always)]
    fn trace(&self, t: &mut Tracer) {
        t.visit(self);
    }
}

// SAFETY: visits the one weakref object it owns.
unsafe impl<T: ?Sized + 'static> Trace for Weak<T> {
    #[inline(always)]
    fn trace(&self, t: &mut Tracer) {
        t.visit_weak(self);
    }
}

// SAFETY: visits the one reference it owns.
unsafe impl Trace for AnyGc {
    #[inline(always)]
    fn trace(&self, t: &mut Tracer) {
        t.visit(self);
    }
}

// SAFETY: forwards to the contents.
unsafe impl<T: Trace> Trace for Option<T> {
    #[inline]
    fn trace(&self, t: &mut Tracer) {
        if let Some(v) = self {
            v.trace(t);
        }
    }
}

// SAFETY: forwards to the contents.
unsafe impl<T: Trace, E: Trace> Trace for Result<T, E> {
    fn trace(&self, t: &mut Tracer) {
        match self {
            Ok(v) => v.trace(t),
            Err(e) => e.trace(t),
        }
    }
}

// SAFETY: forwards to the contents.
unsafe impl<T: Trace> Trace for Box<T> {
    #[inline]
    fn trace(&self, t: &mut Tracer) {
        (**self).trace(t);
    }
}

// SAFETY: forwards to each element.
unsafe impl<T: Trace> Trace for Box<[T]> {
    fn trace(&self, t: &mut Tracer) {
        self.iter().for_each(|v| v.trace(t));
    }
}

macro_rules! newtype {
    ($($p:ident)::* . $f:tt) => {
        // SAFETY: forwards to the one field.
        unsafe impl<T: Trace> Trace for $($p)::*<T> {
            #[inline]
            fn trace(&self, t: &mut Tracer) {
                self.$f.trace(t);
            }
        }
    };
}
newtype!(core::num::Wrapping.0);
newtype!(core::num::Saturating.0);
newtype!(core::cmp::Reverse.0);

// SAFETY: forwards to both bounds.
unsafe impl<T: Trace> Trace for core::ops::Range<T> {
    fn trace(&self, t: &mut Tracer) {
        self.start.trace(t);
        self.end.trace(t);
    }
}

// SAFETY: forwards to both bounds.
unsafe impl<T: Trace> Trace for core::ops::RangeInclusive<T> {
    fn trace(&self, t: &mut Tracer) {
        self.start().trace(t);
        self.end().trace(t);
    }
}

// SAFETY: forwards to the contents once set. Setting it takes user code, which never runs
// between the phases of a collection: the answer is the same in every phase.
unsafe impl<T: Trace> Trace for core::cell::OnceCell<T> {
    fn trace(&self, t: &mut Tracer) {
        if let Some(v) = self.get() {
            v.trace(t);
        }
    }
}

// SAFETY: as for OnceCell. A `OnceLock` of a value holding a `Gc` is `!Sync` (`Gc` is `!Send`),
// so no other thread can set it during a collection either.
unsafe impl<T: Trace> Trace for std::sync::OnceLock<T> {
    fn trace(&self, t: &mut Tracer) {
        if let Some(v) = self.get() {
            v.trace(t);
        }
    }
}

// SAFETY: forwards to the contents.
unsafe impl<T: Trace, const N: usize> Trace for [T; N] {
    fn trace(&self, t: &mut Tracer) {
        self.iter().for_each(|v| v.trace(t));
    }
}

macro_rules! seq {
    ($($c:ident),*) => {$(
        // SAFETY: forwards to each element.
        unsafe impl<T: Trace> Trace for $c<T> {
            fn trace(&self, t: &mut Tracer) {
                self.iter().for_each(|v| v.trace(t));
            }
        }
    )*};
}
seq!(Vec, VecDeque, LinkedList, BTreeSet, BinaryHeap);

// SAFETY: forwards to each element.
unsafe impl<T: Trace, S: 'static> Trace for HashSet<T, S> {
    fn trace(&self, t: &mut Tracer) {
        self.iter().for_each(|v| v.trace(t));
    }
}

// SAFETY: forwards to each key and value.
unsafe impl<K: Trace, V: Trace, S: 'static> Trace for HashMap<K, V, S> {
    fn trace(&self, t: &mut Tracer) {
        self.iter().for_each(|(k, v)| {
            k.trace(t);
            v.trace(t);
        });
    }
}

// SAFETY: forwards to each key and value.
unsafe impl<K: Trace, V: Trace> Trace for BTreeMap<K, V> {
    fn trace(&self, t: &mut Tracer) {
        self.iter().for_each(|(k, v)| {
            k.trace(t);
            v.trace(t);
        });
    }
}

macro_rules! tuple {
    ($($n:tt $t:ident),*) => {
        // SAFETY: forwards to each field.
        unsafe impl<$($t: Trace),*> Trace for ($($t,)*) {
            fn trace(&self, t: &mut Tracer) {
                $(self.$n.trace(t);)*
            }
        }
    };
}
tuple!(0 A);
tuple!(0 A, 1 B);
tuple!(0 A, 1 B, 2 C);
tuple!(0 A, 1 B, 2 C, 3 D);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H);

macro_rules! opaque {
    ($($p:ident)::*) => {
        /// Opaque: traces nothing. Shared ownership hides its count from the collector: a `Gc`
        /// behind an `Rc`/`Arc` is *one* counted reference, but every object holding a clone
        /// of the `Rc` would report it, so a traced `Rc` would make the collector subtract that
        /// one reference once per holder (two holders: twice) and could find a live object
        /// unreachable and clear it. So what an `Rc`/`Arc` holds counts as held from outside:
        /// conservative, never unsound (a missed edge only keeps objects alive). The price: a
        /// cycle that runs through an `Rc`/`Arc` is never collected. Hold `Gc`s that can form
        /// cycles in `Gc`s (clone the `Gc` instead of sharing an `Rc`).
        // SAFETY: visits nothing, which the Trace contract allows (objects only stay alive).
        unsafe impl<T: ?Sized + 'static> Trace for $($p)::*<T> {
            #[inline(always)]
            fn trace(&self, _: &mut Tracer) {}
        }
    };
}
opaque!(std::rc::Rc);
opaque!(std::rc::Weak);
opaque!(std::sync::Arc);
opaque!(std::sync::Weak);

/// Traces the contents when the lock is free (`try_lock`; a poisoned value is still owned and
/// traced); a locked mutex is skipped whole: its references count as held from outside, so
/// they stay alive. That is consistent within one collection: a `Mutex` of a value holding a
/// `Gc` is `!Sync` (`Gc` is `!Send`), so only this thread can lock or unlock it, and it runs no
/// user code between the collector's phases.
// SAFETY: traces the contents when the lock is free (a poisoned value is still owned, so it is
// traced too); a locked mutex is skipped whole, which only keeps its referents alive. The
// answer is the same in every phase of one collection: a `Mutex` of a value holding a `Gc` is
// `!Sync` (`Gc` is `!Send`), so only this thread can lock or unlock it, and this thread runs
// no user code between the phases (a guard it holds stays held throughout). `try_lock` never
// blocks, even when this thread holds the lock.
unsafe impl<T: Trace> Trace for std::sync::Mutex<T> {
    fn trace(&self, t: &mut Tracer) {
        match self.try_lock() {
            Ok(v) => v.trace(t),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().trace(t),
            Err(std::sync::TryLockError::WouldBlock) => {}
        }
    }
}

/// Traces the contents unless write-locked (`try_read`), skipped whole otherwise (kept alive),
/// consistently within one collection: see `Mutex`.
// SAFETY: as for Mutex, with a read lock: traced unless write-locked (by this thread: the only
// one that can reach a value holding a `Gc`).
unsafe impl<T: Trace> Trace for std::sync::RwLock<T> {
    fn trace(&self, t: &mut Tracer) {
        match self.try_read() {
            Ok(v) => v.trace(t),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().trace(t),
            Err(std::sync::TryLockError::WouldBlock) => {}
        }
    }
}

/// A `RefCell` for values inside `Gc`s: mutate the graph (make and break cycles) through a
/// shared `Gc`. While mutably borrowed its contents are not traced (kept alive).
///
/// # Which cell?
///
/// A value in a `Gc` is shared, so its mutable parts need a cell. Use `GcCell` for the parts
/// that hold `Gc`s (the edges of the graph). The collector reads a `GcCell` in place without
/// touching its borrow flag, so a collection writes nothing into the cells it traces; a
/// `GcCell` that is mutably borrowed while a collection runs (a `borrow_mut` guard held across
/// an allocation that triggers one) is skipped whole: its `Gc`s count as held from outside and
/// stay alive through that collection, so nothing is freed under the guard. A `RefCell` is
/// traced the same way, with the same answer when mutably borrowed, but through `try_borrow`,
/// which writes its flag on every trace: use it for state that holds no `Gc` (or where you
/// cannot choose the type). `Cell<T>` for `T: Copy` is a leaf (a `Copy` type holds no `Gc`),
/// the cheapest for counters and flags. [`GcCell::set`] drops the old value after the borrow
/// has ended, so a `Drop` that reads the same cell does not panic. (`Mutex`/`RwLock` are
/// traced too, skipped while locked, but a `Gc` is `!Send`: they buy nothing over a `GcCell`.)
///
/// ```
/// use std::cell::Cell;
/// use arenagc::{Gc, GcCell, Trace, gc};
///
/// #[derive(Trace)]
/// struct Node {
///     visits: Cell<u32>,                  // Copy data: a leaf
///     children: GcCell<Vec<Gc<Node>>>,    // edges: a GcCell
/// }
/// let root = Gc::new(Node { visits: Cell::new(0), children: GcCell::new(vec![]) });
/// root.children.borrow_mut().push(root.clone()); // a cycle through the cell
/// root.visits.set(1);
/// {
///     let _guard = root.children.borrow_mut();
///     assert!(gc::get_referents(&root).is_empty()); // skipped while mutably borrowed
/// }
/// assert_eq!(gc::get_referents(&root).len(), 1);
/// drop(root);
/// assert_eq!(gc::collect_all(), 1);
/// ```
#[derive(Default, Debug)]
pub struct GcCell<T>(RefCell<T>);

impl<T> GcCell<T> {
    /// Wrap `value`.
    pub const fn new(value: T) -> GcCell<T> {
        GcCell(RefCell::new(value))
    }

    /// Borrow immutably; panics if mutably borrowed.
    #[track_caller]
    pub fn borrow(&self) -> Ref<'_, T> {
        self.0.borrow()
    }

    /// Borrow mutably; panics if borrowed.
    #[track_caller]
    pub fn borrow_mut(&self) -> RefMut<'_, T> {
        self.0.borrow_mut()
    }

    /// Replace the value, returning the old one.
    #[track_caller]
    pub fn replace(&self, value: T) -> T {
        self.0.replace(value)
    }

    /// Replace the value, dropping the old one after the borrow ends.
    #[track_caller]
    pub fn set(&self, value: T) {
        drop(self.0.replace(value));
    }

    /// Take the value, leaving `Default`.
    #[track_caller]
    pub fn take(&self) -> T
    where
        T: Default,
    {
        self.0.take()
    }

    /// Unwrap.
    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

// SAFETY: traces the contents when readable; a mutably borrowed cell is skipped whole, which
// only keeps its referents alive (see the module invariants).
unsafe impl<T: Trace> Trace for GcCell<T> {
    #[inline]
    fn trace(&self, t: &mut Tracer) {
        // SAFETY: the shared reference lives only for this call, during which only `trace`
        // code runs, and the Trace contract forbids it to mutate (so nobody borrows mutably).
        // Not writing the borrow flag keeps a collection from dirtying every object.
        if let Ok(v) = unsafe { self.0.try_borrow_unguarded() } {
            v.trace(t);
        }
    }
}

// SAFETY: as for GcCell.
unsafe impl<T: Trace> Trace for RefCell<T> {
    #[inline]
    fn trace(&self, t: &mut Tracer) {
        if let Ok(v) = self.try_borrow() {
            v.trace(t);
        }
    }
}

// SAFETY: a Cell of a Copy type cannot hold a Gc (Gc is not Copy).
unsafe impl<T: Copy + 'static> Trace for core::cell::Cell<T> {
    #[inline(always)]
    fn trace(&self, _: &mut Tracer) {}
}
