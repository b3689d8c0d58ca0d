//! Intrusive circular doubly linked lists of [`GcHead`]s: generations, and the collector's
//! working sets (unreachable, finalizers, resurrected, weakref callbacks).
//!
//! # Invariants
//!
//! - A list is a sentinel head whose `next`/`prev` point to itself when empty. The sentinel
//!   never moves while it is in use (runtime state is boxed; working sets live on the stack of
//!   the collection that owns them).
//! - Outside `move_unreachable`, for every node `n` on a list: `prev(next(n)) == n` and
//!   `next(prev(n)) == n`. `n.next & NEXT_UNREACHABLE` is set only on the unreachable set of a
//!   collection, from `move_unreachable` until the collector clears it (see the flag table in
//!   `collect.rs`).
//! - List operations keep the flag bits of `prev` untouched: finalization, cleared and weakref
//!   state follow the object from list to list.
//! - A tracked object is on exactly one list; `untrack` leaves `next == 0` and only the sticky
//!   flags (`PREV_STICKY`).
//!
//! [`gc_list_is_valid`] checks all of this plus the expected flags, and the collector runs it
//! at each phase in debug builds (CPython's `validate_list`).
//!
//! May touch: the `GcHead`s of the object layer (and its `untrack_head`, the one unlink, which
//! the trashcan shares). No other file of `gc`.

use crate::object::{GcHead, NEXT_UNREACHABLE, PREV_COLLECTING, PREV_MASK, untrack_head};

/// A pointer to a node or sentinel.
pub(crate) type Head = *mut GcHead;

/// Raw `next` (flags included).
#[inline(always)]
pub(crate) unsafe fn next(g: Head) -> Head {
    // SAFETY: the caller passes a live node or sentinel.
    unsafe { (*g).next as Head }
}

/// `prev` as a pointer (flags stripped).
#[inline(always)]
pub(crate) unsafe fn prev(g: Head) -> Head {
    // SAFETY: as for next.
    unsafe { ((*g).prev & PREV_MASK) as Head }
}

/// Set `prev`, keeping the flag bits.
#[inline(always)]
pub(crate) unsafe fn set_prev(g: Head, p: Head) {
    // SAFETY: as for next.
    unsafe { (*g).prev = ((*g).prev & !PREV_MASK) | p as usize }
}

/// Set `next` (no flags).
#[inline(always)]
pub(crate) unsafe fn set_next(g: Head, n: Head) {
    // SAFETY: as for next.
    unsafe { (*g).next = n as usize }
}

/// Make `list` an empty list.
///
/// # Safety
/// `list` must be valid for writes.
#[inline]
pub(crate) unsafe fn init(list: Head) {
    // SAFETY: caller's contract.
    unsafe {
        (*list).next = list as usize;
        (*list).prev = list as usize;
    }
}

/// Whether `list` is empty.
///
/// # Safety
/// `list` must be an initialized list.
#[inline]
pub(crate) unsafe fn is_empty(list: Head) -> bool {
    // SAFETY: caller's contract.
    unsafe { next(list) == list }
}

/// Append `node` (not on any list) at the end of `list`.
///
/// # Safety
/// Both must be valid; `node` must not be on a list.
#[inline(always)]
pub(crate) unsafe fn append(node: Head, list: Head) {
    // SAFETY: caller's contract; the list's last node is live.
    unsafe {
        let last = prev(list);
        set_prev(node, last);
        set_next(last, node);
        set_next(node, list);
        set_prev(list, node);
    }
}

/// Append `node` to `list` (a generation) unless it is already tracked.
///
/// # Safety
/// `node` is a live node, on a valid list or untracked (`next == 0`); `list` is valid.
#[inline]
pub(crate) unsafe fn track(node: Head, list: Head) {
    // SAFETY: caller's contract.
    unsafe {
        if (*node).next == 0 {
            append(node, list);
        }
    }
}

/// Unlink `node` from its list and mark it untracked (`next = 0`, only the `PREV_STICKY` flags
/// kept); a no-op when it is untracked already. The object layer's `untrack_head`, which the
/// trashcan uses too: one unlink.
///
/// # Safety
/// `node` is a live node, on a valid list or untracked (`next == 0`).
#[inline(always)]
pub(crate) unsafe fn untrack(node: Head) {
    // SAFETY: caller's contract.
    unsafe { untrack_head(node) }
}

/// Move `node` from its list to the end of `list`.
///
/// # Safety
/// `node` must be on a valid list; `list` valid.
#[inline]
pub(crate) unsafe fn move_to(node: Head, list: Head) {
    // SAFETY: caller's contract.
    unsafe {
        let p = prev(node);
        let n = next(node);
        set_next(p, n);
        set_prev(n, p);
        append(node, list);
    }
}

/// Append all of `from` to `to`, leaving `from` empty.
///
/// # Safety
/// Both must be valid, distinct lists.
pub(crate) unsafe fn merge(from: Head, to: Head) {
    debug_assert_ne!(from, to);
    // SAFETY: caller's contract.
    unsafe {
        if !is_empty(from) {
            let to_tail = prev(to);
            let from_head = next(from);
            let from_tail = prev(from);
            set_next(to_tail, from_head);
            set_prev(from_head, to_tail);
            set_next(from_tail, to);
            set_prev(to, from_tail);
        }
        init(from);
    }
}

/// Call `f` on every node of `list`, in order. `f` may append to `list` (the walk then reaches
/// the new nodes too) but must not unlink or move the node it is given.
///
/// # Safety
/// `list` must be a valid list, and `f` keep it valid. The walk follows `next` as stored, so a
/// node may carry `NEXT_UNREACHABLE` only if `f` clears it (as the collector's last pass does).
#[inline(always)]
pub(crate) unsafe fn for_each(list: Head, mut f: impl FnMut(Head)) {
    // SAFETY: caller's contract: every node reached is live and linked.
    unsafe {
        let mut g = next(list);
        while g != list {
            f(g);
            g = next(g);
        }
    }
}

/// Number of nodes on `list`.
///
/// # Safety
/// `list` must be a valid list.
pub(crate) unsafe fn size(list: Head) -> usize {
    let mut n = 0;
    // SAFETY: caller's contract.
    unsafe { for_each(list, |_| n += 1) };
    n
}

/// Clear `PREV_COLLECTING` on every node.
///
/// # Safety
/// `list` must be a valid list.
pub(crate) unsafe fn clear_collecting(list: Head) {
    // SAFETY: caller's contract; only a flag bit of each node changes.
    unsafe { for_each(list, |g| (*g).prev &= !PREV_COLLECTING) };
}

/// Check the list invariants of the module docs, and that every node has exactly the
/// `collecting` / `unreachable` flags asked for. Returns a description of the first fault.
///
/// # Safety
/// `list` must be a list sentinel whose nodes are live.
pub unsafe fn gc_list_is_valid(
    list: *mut GcHead,
    collecting: bool,
    unreachable: bool,
) -> Result<(), String> {
    let want_next = if unreachable { NEXT_UNREACHABLE } else { 0 };
    let want_prev = if collecting { PREV_COLLECTING } else { 0 };
    // SAFETY: caller's contract.
    unsafe {
        let mut p = list;
        let mut g = (next(list) as usize & !NEXT_UNREACHABLE) as Head;
        let mut i = 0usize;
        while g != list {
            if g.is_null() {
                return Err(format!("node {i}: null next"));
            }
            if prev(g) != p {
                return Err(format!("node {i}: prev does not point back"));
            }
            if (*g).next & NEXT_UNREACHABLE != want_next {
                return Err(format!("node {i}: unreachable flag is not {unreachable}"));
            }
            if (*g).prev & PREV_COLLECTING != want_prev {
                return Err(format!("node {i}: collecting flag is not {collecting}"));
            }
            p = g;
            g = (next(g) as usize & !NEXT_UNREACHABLE) as Head;
            i += 1;
        }
        if prev(list) != p {
            return Err("sentinel prev is not the last node".into());
        }
    }
    Ok(())
}

/// Debug builds: panic with the fault if `list` is not valid (CPython's `validate_list`).
#[inline]
pub(crate) unsafe fn validate(list: Head, collecting: bool, unreachable: bool) {
    if cfg!(debug_assertions) {
        // SAFETY: caller's contract.
        if let Err(e) = unsafe { gc_list_is_valid(list, collecting, unreachable) } {
            panic!("gc list invalid: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::PREV_FINALIZED;

    fn heads(n: usize) -> Vec<GcHead> {
        (0..n).map(|_| GcHead { next: 0, prev: 0 }).collect()
    }

    #[test]
    fn append_move_merge_remove() {
        let mut a = Box::new(GcHead { next: 0, prev: 0 });
        let mut b = Box::new(GcHead { next: 0, prev: 0 });
        let mut nodes = heads(4);
        let a: Head = &mut *a;
        let b: Head = &mut *b;
        // SAFETY: all heads are boxed and outlive the lists.
        unsafe {
            init(a);
            init(b);
            assert!(is_empty(a));
            for n in nodes.iter_mut() {
                append(n, a);
            }
            nodes[1].prev |= PREV_FINALIZED;
            assert_eq!(size(a), 4);
            gc_list_is_valid(a, false, false).unwrap();
            move_to(&mut nodes[1], b);
            assert_eq!((size(a), size(b)), (3, 1));
            assert_ne!(nodes[1].prev & PREV_FINALIZED, 0);
            merge(a, b);
            assert_eq!((size(a), size(b)), (0, 4));
            gc_list_is_valid(b, false, false).unwrap();
            assert!(gc_list_is_valid(b, true, false).is_err());
            untrack(&mut nodes[1]);
            assert_eq!(nodes[1].next, 0);
            assert_eq!(nodes[1].prev, PREV_FINALIZED);
            assert_eq!(size(b), 3);
            gc_list_is_valid(b, false, false).unwrap();
        }
    }
}
