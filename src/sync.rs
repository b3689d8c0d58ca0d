//! The one module that knows about loom.
//!
//! Every atomic that takes part in a cross-thread protocol is imported from here, so that under
//! `--cfg loom` the protocols in `alloc::remote` and `alloc::kind_map` run against loom's
//! model-checked atomics, and no other file mentions loom (crossbeam-epoch's `primitive` module
//! does the same).

#[cfg(loom)]
use loom::hint::spin_loop;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};

/// Waiting for another thread to finish a short, lock-free step (a notifier between its two
/// steps, the kind map's placer between its CAS and its publication): spin a little, then yield
/// (crossbeam's `Backoff::snooze`), so a waiter whose peer was descheduled in that step does not
/// burn the rest of its time slice. Under loom, a yield point.
pub(crate) struct Wait(#[cfg(not(loom))] crossbeam_utils::Backoff);

impl Wait {
    pub(crate) fn new() -> Wait {
        Wait(
            #[cfg(not(loom))]
            crossbeam_utils::Backoff::new(),
        )
    }

    pub(crate) fn snooze(&self) {
        #[cfg(not(loom))]
        self.0.snooze();
        #[cfg(loom)]
        spin_loop();
    }
}
