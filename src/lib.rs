//! # arenagc
//!
//! CPython's memory system rebuilt in Rust: a pymalloc-style, thread-aware global allocator
//! (`ArenaAlloc`), and (in later layers) objects with a generational cycle collector and a C ABI.
//!
//! ```no_run
//! #[global_allocator]
//! static GLOBAL: arenagc::ArenaAlloc = arenagc::ArenaAlloc;
//!
//! fn main() {
//!     let v: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
//!     drop(v);
//!     println!("{}", arenagc::alloc::stats());
//! }
//! ```
//!
//! Layers, with dependencies pointing one way only (see DESIGN.md):
//! `gc -> object -> alloc -> os`.

#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

#[cfg(not(loom))]
pub mod config;
#[cfg(not(loom))]
pub mod options;
pub(crate) mod sync;
#[cfg(not(loom))]
pub(crate) mod tls;

#[cfg(not(loom))]
pub mod alloc;

#[cfg(not(loom))]
pub use alloc::ArenaAlloc;

#[cfg(not(loom))]
pub mod object;

#[cfg(not(loom))]
pub mod gc;

#[cfg(not(loom))]
pub use gc::{Gc, GcCell, Trace, Weak};

/// `#[derive(Trace)]`.
#[cfg(not(loom))]
pub use arenagc_derive::Trace;

/// Under `--cfg loom` only the cross-thread protocols are compiled, against loom's atomics.
#[cfg(loom)]
pub mod alloc {
    #[path = "remote.rs"]
    pub mod remote;
}

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
