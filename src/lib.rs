//! # arenagc
//!
//! CPython's memory system rebuilt in Rust as a reusable library: a pymalloc-style, thread-aware
//! global allocator ([`ArenaAlloc`], [`alloc`]), objects with a 16-byte header and type
//! descriptors shared with C ([`object`]), CPython's generational cycle collector with weak
//! references and PEP 442 finalizers ([`gc`], [`Gc`]), and a C ABI (the `arenagc-ffi` crate,
//! `include/arenagc.h`).
//!
//! The allocator:
//!
//! ```no_run
//! #[global_allocator]
//! static GLOBAL: arenagc::ArenaAlloc = arenagc::ArenaAlloc;
//!
//! fn main() {
//!     let v: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
//!     drop(v);
//!     println!("{}", arenagc::alloc::stats()); // like sys._debugmallocstats()
//! }
//! ```
//!
//! A cycle that reference counting cannot free, collected. [`Gc<T>`] is used like `Rc<T>`
//! (`Clone`, `Deref`, `==`, `Hash`, `Display`, ... delegate to the value); `#[derive(Trace)]`
//! tells the collector which fields hold `Gc`s, and [`GcCell`] mutates them in place:
//!
//! ```
//! use arenagc::{Gc, GcCell, Trace, gc};
//!
//! #[derive(Trace)]
//! struct Node {
//!     name: String,
//!     next: GcCell<Option<Gc<Node>>>,
//! }
//!
//! let a = Gc::new(Node { name: "a".into(), next: GcCell::new(None) });
//! let b = Gc::new(Node { name: "b".into(), next: GcCell::new(Some(a.clone())) });
//! a.next.set(Some(b.clone())); // a -> b -> a
//! let weak = Gc::downgrade(&a);
//! drop((a, b)); // the counts stay at 1: the cycle holds itself
//! assert_eq!(weak.upgrade().unwrap().name, "a");
//! assert_eq!(gc::collect_all(), 2); // the cycle collector finds and frees both
//! assert!(weak.upgrade().is_none());
//! ```
//!
//! From C (or any language with a C FFI): the `arenagc-ffi` package builds `libarenagc.so` and
//! `.a` (the allocator, objects, the collector), `arenagc-malloc` builds `libarenagc_malloc.so`
//! (the allocator as `malloc`, for `LD_PRELOAD`); the header is `include/arenagc.h`, and
//! `ffi/README.md` in the repository shows how to build, link and use them.
//!
//! Layers, with dependencies pointing one way only (`ARCHITECTURE.md` in the repository):
//! `ffi -> gc -> object -> alloc -> floor` (`config`, `options`, the TLS words).

#![warn(missing_docs)]
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

/// tracemalloc: which lines allocated the memory still held (cargo feature `trace`).
#[cfg(all(feature = "trace", not(loom)))]
pub mod trace;

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
    #[path = "kind_map.rs"]
    pub mod kind_map;
    #[path = "remote.rs"]
    pub mod remote;
}

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
