//! `gc::path_to`: why is this object alive? A shortest chain of references from a *root* to
//! it (objgraph's `find_backref_chain`, answered by the collector, which sees the whole graph).
//!
//! ```text
//!  Walk::start     gc_refs of every tracked object = references from outside the graph
//!  roots           gc_refs > 0 (the handle passed to path_to not counted), or frozen
//!  BFS             from all roots at once, along traverse, parents in the prev words
//!  the chain       target -> parent -> ... -> a root, reversed; the Walk restores the lists
//! ```
//!
//! # Invariants
//!
//! - A root is a tracked object referenced from outside the tracked graph (its refcount exceeds
//!   the references tracked objects hold: the `gc_refs > 0` set after `subtract_refs`), or one
//!   in the permanent generation. An untracked target referenced from outside is its own root.
//! - The one reference of the handle passed in is not counted (it is the question, not an
//!   answer); every other handle is a reference from outside, so a `Vec<AnyGc>` held while
//!   asking (from `get_objects`, or an earlier chain) makes its objects roots.
//! - Breadth first from all roots together, so the chain is a shortest one from any root; ties
//!   go to the root met first (generation 0 first, in list order).
//! - With exact `traverse` functions, an object no root reaches is exactly one the next full
//!   collection would find unreachable: [`PathTo::Garbage`].
//!
//! May touch: `walk.rs`, `list.rs`, `runtime.rs`, `any.rs`, `repr.rs` (`Display`), `diag.rs`.

use core::ffi::{c_int, c_void};
use core::ptr;
use std::collections::HashMap;

use super::any::{AnyGc, AsObject};
use super::diag::GcError;
use super::list::{self, Head};
use super::repr::describe;
use super::runtime::current;
use super::walk::{FROZEN, Walk};
use crate::object::{self, ObjectHeader, as_gc, from_gc};

/// A chain of references from a root to an object ([`path_to`]).
#[derive(Clone, Debug)]
pub struct Backrefs {
    /// The root first, the object asked about last; each refers to the next. Strong
    /// references: while held, they are themselves references from outside.
    pub chain: Vec<AnyGc>,
    /// References to the root from outside the tracked graph (the handle passed to `path_to`
    /// not counted when the root is the object itself); 0 only for a frozen root.
    pub external: usize,
    /// Whether the root is in the permanent generation (`gc::freeze`).
    pub frozen: bool,
}

/// The answer of [`path_to`].
#[derive(Clone, Debug)]
pub enum PathTo {
    /// A shortest chain from a root.
    Path(Backrefs),
    /// Nothing outside the tracked graph holds the object (the handle passed aside), and no
    /// root reaches it: it is cyclic garbage waiting for a collection (or, if no tracked object
    /// refers to it either, it dies with that handle).
    Garbage,
}

/// A shortest chain of references from a root to `obj` (see the module docs for roots), or
/// [`PathTo::Garbage`] when nothing outside the tracked graph holds it. One pass over the
/// tracked objects and their references, plus the breadth-first search; no allocation of
/// objects. `Err(GcError::CollectionRunning)` when called during a collection.
pub fn path_to(obj: &impl AsObject) -> Result<PathTo, GcError> {
    let st = current();
    let target = obj.as_object();
    // SAFETY: the handle keeps the object live.
    let tracked = unsafe { object::is_tracked(target) };
    let mut watch = HashMap::new();
    if !tracked {
        watch.insert(target as usize, 0);
    }
    let found = {
        // SAFETY: the current runtime; watch names a live object.
        let walk = unsafe { Walk::start(st, &mut watch)? };
        let hits = watch.get(&(target as usize)).copied();
        // SAFETY: the walk is fresh; target is live.
        unsafe { search(&walk, target, hits) }
    };
    Ok(match found {
        None => PathTo::Garbage,
        Some((chain, external, frozen)) => PathTo::Path(Backrefs {
            // SAFETY: every object of the chain is live (the walk freed nothing).
            chain: chain
                .into_iter()
                .map(|o| unsafe { AnyGc::from_borrowed(o) })
                .collect(),
            external,
            frozen,
        }),
    })
}

/// The breadth-first search's state, shared with its visit procedure.
struct Bfs<'w, 'a> {
    walk: &'w Walk<'a>,
    target: *mut ObjectHeader,
    parent: Head,
    queue: Vec<Head>,
    /// The head of the object found referring to the target.
    found: Head,
}

unsafe extern "C" fn visit_bfs(obj: *mut ObjectHeader, arg: *mut c_void) -> c_int {
    // SAFETY: arg is search's Bfs.
    let b = unsafe { &mut *(arg as *mut Bfs<'_, '_>) };
    if obj.is_null() || !b.found.is_null() {
        return 0;
    }
    if obj == b.target {
        b.found = b.parent;
        return 1;
    }
    // SAFETY: a referent of a live object is live.
    if let Some(g) = unsafe { b.walk.unreached(obj) } {
        // SAFETY: a walked object's head.
        unsafe { b.walk.reach(g, b.parent) };
        b.queue.push(g);
    }
    0
}

/// The chain (raw, root first), the root's external count and whether it is frozen; `None`
/// when no root reaches `target`. `hits` are the references from tracked objects to an
/// untracked target.
///
/// # Safety
/// `walk` is fresh (no object marked reached); `target` is live.
unsafe fn search(
    walk: &Walk<'_>,
    target: *mut ObjectHeader,
    hits: Option<usize>,
) -> Option<(Vec<*mut ObjectHeader>, usize, bool)> {
    // SAFETY: target is live.
    let refcnt = unsafe { (*target).refcnt }.max(0) as usize;
    if let Some(hits) = hits {
        // Untracked: held from outside when its count exceeds the tracked references plus the
        // handle passed in.
        let external = refcnt.saturating_sub(hits + 1);
        if external > 0 {
            return Some((vec![target], external, false));
        }
    }
    let target_head = if hits.is_none() {
        // SAFETY: target is live; a tracked target has a head (hits is None only then).
        unsafe { as_gc(target) }
    } else {
        ptr::null_mut()
    };
    let mut roots: Vec<(Head, usize, bool)> = Vec::new();
    for (i, l) in walk.lists().into_iter().enumerate() {
        // SAFETY: walked lists; no object is marked reached yet, so gc_refs are readable.
        unsafe {
            list::for_each(l, |g| {
                let mut external = walk.external(g);
                if g == target_head {
                    external = external.saturating_sub(1); // the handle passed in
                }
                if external > 0 || i == FROZEN {
                    roots.push((g, external, i == FROZEN));
                }
            });
        }
    }
    if let Some(&(_, external, frozen)) = roots.iter().find(|r| r.0 == target_head) {
        return Some((vec![target], external, frozen));
    }
    let mut bfs = Bfs {
        walk,
        target,
        parent: ptr::null_mut(),
        queue: Vec::with_capacity(roots.len()),
        found: ptr::null_mut(),
    };
    for &(g, _, _) in &roots {
        // SAFETY: a walked object's head.
        unsafe { walk.reach(g, ptr::null_mut()) };
        bfs.queue.push(g);
    }
    let mut next = 0;
    while next < bfs.queue.len() && bfs.found.is_null() {
        let g = bfs.queue[next];
        next += 1;
        bfs.parent = g;
        // SAFETY: a live tracked object; visit_bfs accepts the Bfs.
        unsafe {
            object::traverse(
                from_gc(g),
                visit_bfs,
                &mut bfs as *mut Bfs<'_, '_> as *mut c_void,
            )
        };
    }
    if bfs.found.is_null() {
        return None;
    }
    let mut chain = vec![target];
    let mut g = bfs.found;
    loop {
        // SAFETY: reached objects' heads; parents lead back to a root (null parent).
        let (o, p) = unsafe { (from_gc(g), walk.parent(g)) };
        chain.push(o);
        if p.is_null() {
            break;
        }
        g = p;
    }
    chain.reverse();
    let &(_, external, frozen) = roots
        .iter()
        .find(|r| r.0 == g)
        .expect("a chain ends at a root");
    Some((chain, external, frozen))
}

impl core::fmt::Display for PathTo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let b = match self {
            PathTo::Garbage => {
                return f.write_str("held by nothing outside the tracked graph: cyclic garbage");
            }
            PathTo::Path(b) => b,
        };
        let Some((root, rest)) = b.chain.split_first() else {
            return Ok(());
        };
        write!(f, "root {}", describe(root))?;
        if b.frozen {
            f.write_str(" (frozen)")?;
        }
        if b.external > 0 {
            write!(f, " (held by {} reference(s) from outside)", b.external)?;
        }
        for o in rest {
            write!(f, "\n  -> {}", describe(o))?;
        }
        Ok(())
    }
}
