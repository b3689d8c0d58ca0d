//! Cross-thread free protocols: a pool's remote-free word and a heap's delayed-free stack.
//!
//! # The remote word
//!
//! Each pool has one `RemoteWord`: the head of a singly linked list of blocks freed by threads
//! that do not own the pool, with the pool's ownership state packed into the low bits (blocks are
//! 16-byte aligned, so the low four bits of a block address are always zero).
//!
//! | state       | meaning                                                    | set by          |
//! |-------------|------------------------------------------------------------|-----------------|
//! | `NORMAL`    | owner alive; a remote free pushes onto the list            | owner, notifier |
//! | `FULL`      | owner unlinked the pool (no free block); the next remote  | owner           |
//! |             | freer must tell the owner, or the pool would be lost      |                 |
//! | `NOTIFYING` | one remote freer is handing a block to the owner heap's    | remote freer    |
//! |             | delayed stack; the owner may not abandon the pool now      |                 |
//! | `ABANDONED` | the owner thread exited; the list is empty; a freer adopts | exiting owner   |
//!
//! Transitions (all by CAS or RMW on the one word, so each is atomic with the list it sees):
//!
//! ```text
//!   NORMAL --owner: try_mark_full (list empty)--> FULL
//!   FULL --owner: clear_full--> NORMAL     (optional: a revived pool may stay FULL)
//!   FULL --remote freer: push--> NOTIFYING --same freer: end_notify--> NORMAL
//!   NORMAL|FULL --owner: try_abandon (list empty)--> ABANDONED
//!   ABANDONED --adopter (holding the abandoned-list lock): adopt--> NORMAL
//! ```
//!
//! Invariants:
//! - Only the owner takes the list (`take_all`). `FULL` is set only on an empty list and a push
//!   to a `FULL` pool diverts the block, so the list stays empty; the one exception is a word
//!   re-armed in a child after `fork` (`rearm_after_fork`), whose list the owner takes when the
//!   next notification makes it look (`try_mark_full` fails on a non-empty list). `ABANDONED`
//!   is set only on an empty list, and pushes never touch an abandoned word.
//! - A full pool (off its owner's avail lists) is `FULL` or `NOTIFYING`, or `NORMAL` after a
//!   notifier finished: its block is then on the owner's delayed stack, and the owner's next look
//!   at that stack takes it and the pool's list (`local_free_slow`). A pool with room may be any of
//!   `NORMAL`, `FULL`, `NOTIFYING` (`FULL` is sticky across local revivals, see `clear_full`,
//!   and a new or reused pool starts `FULL`, see `arm_full`).
//! - While a word is `NOTIFYING` its pool's owner cannot change: `try_abandon` waits it out.
//!   So a notifier may read the pool's owner after its CAS and push to that heap safely.
//!   `try_mark_full` waits it out too: the notifier's block may already have reached the owner
//!   and been freed, so `NOTIFYING` promises nothing about the future.
//! - Every block pushed is reachable from exactly one place: the pool list, a delayed stack,
//!   or (after `take_all`) the owner's hands. Nothing is lost; nothing is handed out twice.
//!
//! # The sequences
//!
//! The steps above are combined into a few sequences, written here once and called by the heap
//! (`alloc::heap`, `alloc::thread`) and by the loom models (`tests/loom_remote.rs`) alike, so the
//! models check the code that ships:
//!
//! | sequence                | who        | steps                                                        |
//! |-------------------------|------------|--------------------------------------------------------------|
//! | `remote_free`           | any thread | `push`; on `Notify`: owner's delayed stack, `end_notify`     |
//! | `RemoteWord::stay_full` | owner      | keep a full pool off the lists: `try_mark_full`, or take the |
//! |                         |            | pending frees first; nothing at all in an exiting heap       |
//! | `RemoteWord::quiesce`   | exiting    | thread exit step 1: `clear_full`, then wait out a notifier   |
//! | `RemoteWord::abandon_with` | exiting | thread exit step 3: `try_abandon` until it succeeds, handing |
//! |                         |            | pending frees to the caller                                  |
//! | `RemoteWord::adopt`     | adopter    | `ABANDONED -> NORMAL`, under the abandoned list's lock       |
//!
//! # The delayed stack
//!
//! `BlockStack` is a lock-free stack that is only ever pushed onto (any thread) and emptied whole
//! with one swap (its owner). With no single pop there is no ABA problem.

use crate::sync::{AtomicPtr, AtomicUsize, Ordering, Wait};
use core::ptr;

/// A free block: its first word links it into whatever list holds it.
#[repr(C)]
pub struct Block {
    pub next: *mut Block,
}

pub const NORMAL: usize = 0;
pub const FULL: usize = 1;
pub const NOTIFYING: usize = 2;
pub const ABANDONED: usize = 3;
const STATE_MASK: usize = 0b11;

/// What a remote free has to do after `RemoteWord::push`.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum PushOutcome {
    /// The block is on the pool's remote list; the owner will take it.
    Pushed,
    /// The pool was full: the word is now `NOTIFYING`, the block was NOT pushed. The caller
    /// must push it onto the owner heap's delayed stack and then call `end_notify`.
    Notify,
    /// The pool has no owner: the block was NOT pushed; the caller adopts the pool.
    Abandoned,
}

/// The remote-free list head and ownership state of one pool.
pub struct RemoteWord(AtomicUsize);

#[inline]
fn state(word: usize) -> usize {
    word & STATE_MASK
}

#[inline]
fn list(word: usize) -> *mut Block {
    (word & !STATE_MASK) as *mut Block
}

impl Default for RemoteWord {
    fn default() -> Self {
        Self::new()
    }
}

impl RemoteWord {
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        RemoteWord(AtomicUsize::new(NORMAL))
    }

    #[cfg(loom)]
    pub fn new() -> Self {
        RemoteWord(AtomicUsize::new(NORMAL))
    }

    /// The current state (one of the four constants); for assertions and statistics.
    pub fn state(&self) -> usize {
        state(self.0.load(Ordering::Acquire))
    }

    /// True when no remote free is waiting.
    pub fn is_empty(&self) -> bool {
        list(self.0.load(Ordering::Acquire)).is_null()
    }

    /// Reset for a pool that is being (re)initialized by its new owner.
    pub fn reset(&self) {
        self.0.store(NORMAL, Ordering::Release);
    }

    /// Arm the word of a pool that no other thread can free into yet (no block of it is in
    /// use) as `FULL`, with an empty list. A pool starts its life so: when it first fills,
    /// `try_mark_full` then needs no read-modify-write (a locked instruction waits for every
    /// store still in flight, and batches of cold stores made that the cost of filling a pool).
    /// The first remote free into it notifies the owner, who clears the flag (`clear_full` in
    /// the delayed-free path) once remote frees are evidently happening.
    pub fn arm_full(&self) {
        self.0.store(FULL, Ordering::Release);
    }

    /// A free by a thread that does not own the pool.
    ///
    /// # Safety
    /// `block` is a live block of this word's pool, 16-byte aligned, and the caller gives up
    /// all access to it (except through the outcome's instructions).
    pub unsafe fn push(&self, block: *mut Block) -> PushOutcome {
        debug_assert_eq!(block as usize & STATE_MASK, 0, "block not aligned");
        let mut old = self.0.load(Ordering::Relaxed);
        loop {
            let (new, outcome) = match state(old) {
                ABANDONED => return PushOutcome::Abandoned,
                FULL => ((old & !STATE_MASK) | NOTIFYING, PushOutcome::Notify),
                _ => {
                    // SAFETY: the caller owns `block` until the CAS below publishes it.
                    unsafe { (*block).next = list(old) };
                    ((block as usize) | state(old), PushOutcome::Pushed)
                }
            };
            match self
                .0
                .compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return outcome,
                Err(cur) => old = cur,
            }
        }
    }

    /// The notifier is done handing its block to the owner: `NOTIFYING -> NORMAL`.
    pub fn end_notify(&self) {
        let old = self.0.fetch_and(!STATE_MASK, Ordering::AcqRel);
        debug_assert_eq!(state(old), NOTIFYING, "end_notify without NOTIFYING");
    }

    /// Owner: take every block freed remotely so far, leaving the state as it is.
    pub fn take_all(&self) -> *mut Block {
        let mut old = self.0.load(Ordering::Relaxed);
        loop {
            if list(old).is_null() {
                // Synchronize with the pushes we are not taking: none.
                return ptr::null_mut();
            }
            match self
                .0
                .compare_exchange_weak(old, state(old), Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return list(old),
                Err(cur) => old = cur,
            }
        }
    }

    /// Owner: the pool has no free block and is moving to the heap's full list. Succeeds only
    /// while no remote free is pending (otherwise the caller should `take_all`): `NORMAL ->
    /// FULL` by CAS; a word already `FULL` (the owner revived the pool by a local free and left
    /// the flag set, see `clear_full`) needs no change.
    ///
    /// A `NOTIFYING` word is waited out first (a few instructions of another thread, no lock).
    /// It does not mean a block is still on its way: the notifier pushes its block onto the
    /// delayed stack before `end_notify`, so the owner may already have taken and freed that
    /// block, and after `end_notify` the word is `NORMAL`. Counting `NOTIFYING` as full left
    /// such a pool off the lists with nobody to tell the owner about later frees.
    pub fn try_mark_full(&self) -> bool {
        let w = self.settled();
        if !list(w).is_null() {
            return false;
        }
        match state(w) {
            FULL => true,
            NORMAL => self
                .0
                .compare_exchange(NORMAL, FULL, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok(),
            _ => false,
        }
    }

    /// Owner: wait until no notifier is at work on this word (a few instructions of another
    /// thread, no lock), and return the word then (Acquire: a notifier's delayed push is
    /// visible). The one place any waiter on `NOTIFYING` waits.
    pub fn settled(&self) -> usize {
        let wait = Wait::new();
        let mut w = self.0.load(Ordering::Acquire);
        while state(w) == NOTIFYING {
            wait.snooze();
            w = self.0.load(Ordering::Acquire);
        }
        w
    }

    /// Owner: stop diverting remote frees (`FULL -> NORMAL`). A word that is `NOTIFYING` or
    /// `NORMAL` is left alone: the notifier ends it. Leaving a revived pool `FULL` is correct
    /// (a remote free then goes through the delayed stack, which frees it locally), so the
    /// owner clears the flag only where remote frees are evidently happening, and a pool that
    /// fills and empties on one thread costs no atomic read-modify-write.
    ///
    /// The list is kept: a word re-armed after `fork` may be `FULL` with pending frees on it
    /// (`rearm_after_fork`), and thread exit relies on this leaving no word `FULL`.
    pub fn clear_full(&self) {
        let mut w = self.0.load(Ordering::Relaxed);
        while state(w) == FULL {
            match self.0.compare_exchange_weak(
                w,
                w & !STATE_MASK,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(cur) => w = cur,
            }
        }
    }

    /// Owner, at thread exit: `NORMAL|FULL -> ABANDONED`, but only with an empty list.
    /// Waits while a notifier is at work. `Err(list)` hands back pending remote frees (the
    /// state unchanged): the caller frees them locally and calls again.
    pub fn try_abandon(&self) -> Result<(), *mut Block> {
        let mut old = self.settled();
        loop {
            match state(old) {
                NOTIFYING => {
                    old = self.settled();
                    continue;
                }
                ABANDONED => panic!("arenagc: pool abandoned twice"),
                _ => {}
            }
            let (new, taken) = if list(old).is_null() {
                (ABANDONED, None)
            } else {
                (state(old), Some(list(old)))
            };
            match self
                .0
                .compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return taken.map_or(Ok(()), Err),
                Err(cur) => old = cur,
            }
        }
    }

    /// Owner: a pool that stays off its heap's lists while full must bring the owner its next
    /// remote free, so it is marked `FULL` (`try_mark_full`). That fails while remote frees are
    /// pending: `Err(list)` hands them over (the caller frees them locally, and calls again if
    /// the pool is still full). A heap that is `exiting` arms nothing: after its `quiesce` no word
    /// of it may be `FULL` again, or a notifier could hand a block to the heap after its last
    /// look at its delayed stack (the block would be lost); `abandon_with` takes such a pool's
    /// pending frees instead.
    pub fn stay_full(&self, exiting: bool) -> Result<(), *mut Block> {
        if exiting || self.try_mark_full() {
            return Ok(());
        }
        Err(self.take_all())
    }

    /// Exiting owner, step 1 for each pool: no new notifications (`FULL -> NORMAL`) and no
    /// notifier still at work, so every block ever handed to the owner's delayed stack for this
    /// pool is there now.
    pub fn quiesce(&self) {
        self.clear_full();
        self.settled();
    }

    /// Exiting owner, step 3: abandon the pool, handing every pending remote free to `take`
    /// first (the caller frees them locally). Afterwards the word is `ABANDONED` with an empty
    /// list.
    pub fn abandon_with(&self, mut take: impl FnMut(*mut Block)) {
        while let Err(pending) = self.try_abandon() {
            take(pending);
        }
    }

    /// In a child process after `fork` (one thread): a `NOTIFYING` word was left by a thread
    /// that does not exist here; make it `FULL` again so the next remote free notifies.
    pub fn rearm_after_fork(&self) {
        let w = self.0.load(Ordering::Acquire);
        if state(w) == NOTIFYING {
            self.0.store((w & !STATE_MASK) | FULL, Ordering::Release);
        }
    }

    /// Adopter (holding the lock of the abandoned list): `ABANDONED -> NORMAL`. False when
    /// another thread adopted it first.
    pub fn adopt(&self) -> bool {
        self.0
            .compare_exchange(ABANDONED, NORMAL, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
}

/// A push-only, take-all lock-free stack of blocks (a heap's delayed frees).
pub struct BlockStack(AtomicPtr<Block>);

impl Default for BlockStack {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockStack {
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        BlockStack(AtomicPtr::new(ptr::null_mut()))
    }

    #[cfg(loom)]
    pub fn new() -> Self {
        BlockStack(AtomicPtr::new(ptr::null_mut()))
    }

    /// # Safety
    /// The caller owns `block` and gives it up to whoever takes the stack.
    pub unsafe fn push(&self, block: *mut Block) {
        let mut old = self.0.load(Ordering::Relaxed);
        loop {
            // SAFETY: the caller owns `block` until the CAS publishes it.
            unsafe { (*block).next = old };
            match self
                .0
                .compare_exchange_weak(old, block, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(cur) => old = cur,
            }
        }
    }

    /// Take every block pushed so far.
    pub fn take_all(&self) -> *mut Block {
        if self.0.load(Ordering::Relaxed).is_null() {
            return ptr::null_mut();
        }
        self.0.swap(ptr::null_mut(), Ordering::AcqRel)
    }

    pub fn is_empty(&self) -> bool {
        self.0.load(Ordering::Acquire).is_null()
    }

    /// Owner only (for validation): whether some block on the stack satisfies `f`. The blocks
    /// stay where they are. Other threads only push, which prepends, and only the owner takes,
    /// so every block reachable from a loaded head stays on the stack, unchanged, for the walk.
    pub fn any(&self, mut f: impl FnMut(*mut Block) -> bool) -> bool {
        let mut b = self.0.load(Ordering::Acquire);
        while !b.is_null() {
            if f(b) {
                return true;
            }
            // SAFETY: b is on the stack, which nobody but the caller (the owner) empties; its
            // link was written before the push that published it (Acquire above).
            b = unsafe { (*b).next };
        }
        false
    }
}

/// What became of a block given to [`remote_free`].
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RemoteFree {
    /// The owner has the block (on the pool's list or on its delayed stack).
    Done,
    /// The pool has no owner: the block was not given away; the caller adopts the pool (under
    /// the abandoned list's lock, `RemoteWord::adopt`) and frees it locally, or, if another
    /// thread adopted it first, frees it again against the new owner.
    Abandoned,
}

/// A free by a thread that does not own the block's pool: the client side of the handoff.
/// Pushes onto the pool's remote list; if the pool was `FULL` (its owner is not looking at it),
/// hands the block to the owner's delayed stack instead, which `owner_delayed` names (called
/// only then, while the word is `NOTIFYING`, so the owner cannot change), and ends the
/// notification.
///
/// # Safety
/// `block` is a live block of `word`'s pool, 16-byte aligned, and the caller gives it up (unless
/// the outcome is `Abandoned`). `owner_delayed` returns the delayed stack of the pool's owner
/// heap, live while the word is `NOTIFYING`.
#[inline]
pub unsafe fn remote_free(
    word: &RemoteWord,
    block: *mut Block,
    owner_delayed: impl FnOnce() -> *const BlockStack,
) -> RemoteFree {
    // SAFETY: per the contract.
    match unsafe { word.push(block) } {
        PushOutcome::Pushed => RemoteFree::Done,
        PushOutcome::Notify => {
            // SAFETY: while NOTIFYING the owner cannot abandon the pool, so its heap (and the
            // stack) is live; the block was not pushed, so we still own it.
            unsafe { (*owner_delayed()).push(block) };
            word.end_notify();
            RemoteFree::Done
        }
        PushOutcome::Abandoned => RemoteFree::Abandoned,
    }
}

#[cfg(all(test, not(loom)))]
#[path = "remote_tests.rs"]
mod tests;
