//! The collector's ground floor: its errors, its debug flags, and how it prints and stops.
//! Every other file of `gc` may use this one; it uses none of them.
//!
//! | item                       | role                                                          |
//! |----------------------------|---------------------------------------------------------------|
//! | [`GcError`]                | what a `gc` function refuses with (a value, never a panic)    |
//! | `DEBUG_*`                  | the `set_debug` flags (CPython's `gc.DEBUG_*`, same values)   |
//! | `gc_eprintln!`             | a line on stderr that never panics (from inside collections)  |
//! | `abort_with`               | a fatal message and `abort()`, without allocating             |
//!
//! # Invariants
//!
//! - Nothing here panics: it runs inside collections, where a panic must not start, and right
//!   before aborting.
//! - `abort_with` never allocates (it is the allocator's `abort_fmt`): it may run with the
//!   allocator in any state.
//!
//! May touch: `crate::alloc::fatal` (the non-allocating abort), `std::io::stderr`.

use crate::config::NUM_GENERATIONS;

/// Print statistics during collection.
pub const DEBUG_STATS: u32 = 1;
/// Print collectable objects found.
pub const DEBUG_COLLECTABLE: u32 = 2;
/// Print uncollectable objects found.
pub const DEBUG_UNCOLLECTABLE: u32 = 4;
/// Save all unreachable objects in `garbage` instead of freeing them.
pub const DEBUG_SAVEALL: u32 = 32;
/// Debug a leaking program: COLLECTABLE | UNCOLLECTABLE | SAVEALL.
pub const DEBUG_LEAK: u32 = DEBUG_COLLECTABLE | DEBUG_UNCOLLECTABLE | DEBUG_SAVEALL;

/// An error from the `gc` functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GcError {
    /// A generation number outside `0..NUM_GENERATIONS`.
    InvalidGeneration(usize),
    /// A runtime switch (attaching or detaching) asked for from code the library runs on this
    /// thread: a deallocation (`Drop`, a C `dealloc`), a collection with its finalizers, weakref
    /// and gc callbacks, a traversal for `get_referrers` / `get_referents`, or a visitor the C
    /// ABI calls. The call running that code holds the current runtime's state and goes on
    /// with it afterwards (see `Runtime::attach`).
    SwitchFromLibraryCode,
    /// A question about the whole object graph (`gc::path_to`, the `gc::dot_*` pictures) asked
    /// while a collection runs (from a finalizer, a weakref or gc callback, a `Drop` the
    /// collector runs): the collector's working sets are not generations then, so the graph
    /// cannot be walked.
    CollectionRunning,
}

impl core::fmt::Display for GcError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GcError::InvalidGeneration(g) => {
                write!(f, "invalid generation {g} (must be 0..{NUM_GENERATIONS})")
            }
            GcError::SwitchFromLibraryCode => f.write_str(
                "called from code the library runs (a finalizer, a weakref or gc callback, a \
                 dealloc, a traverse or a visitor); attach and detach around library calls only",
            ),
            GcError::CollectionRunning => f.write_str(
                "a collection is running (called from a finalizer, a callback or a Drop it \
                 runs); ask about the object graph outside collections",
            ),
        }
    }
}

impl std::error::Error for GcError {}

/// `eprintln!` that never panics (it does when stderr is closed or a broken pipe): the gc
/// prints from inside collections and right before aborting, where a panic must not start.
macro_rules! gc_eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use gc_eprintln;

/// Print `arenagc: fatal error: <msg>` to stderr (never panicking, never allocating) and abort
/// the process.
#[cold]
#[inline(never)]
pub(crate) fn abort_with(msg: core::fmt::Arguments<'_>) -> ! {
    crate::alloc::fatal::abort_fmt(msg)
}
