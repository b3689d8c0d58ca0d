//! The one module that knows about loom.
//!
//! Every atomic that takes part in a cross-thread protocol is imported from here, so that under
//! `--cfg loom` the protocols in `alloc::remote` run against loom's model-checked atomics, and no
//! other file mentions loom (crossbeam-epoch's `primitive` module does the same).

#[cfg(loom)]
pub(crate) use loom::hint::spin_loop;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use core::hint::spin_loop;
#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
