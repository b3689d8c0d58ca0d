//! `PoolQueue`: the one intrusive doubly linked list of pools, used by every list of pools the
//! allocator keeps.
//!
//! | list                          | links (`L`)  | kept by          | order                          |
//! |-------------------------------|--------------|------------------|--------------------------------|
//! | `avail` (room, per class)     | `ByClass`    | a thread heap    | head = the current pool; pools |
//! |                               |              |                  | revived by frees join the tail |
//! | `cache` (retired, any class)  | `ByClass`    | a thread heap    | a stack (`PoolStack`)          |
//! | `owned` (every pool it owns)  | `ByOwner`    | a thread heap    | any                            |
//! | `abandoned[full][class]`      | `ByClass`    | `global::Global` | newest first                   |
//!
//! `PoolQueue` is one queue; `PoolQueues` is an array of them with the heads stored apart from
//! the tails; both run the one implementation (`Ends`). `AvailQueues` (a heap's `avail`) is a
//! `PoolQueues` by class plus the same heads by request step (`size_class::step_of`), which
//! the allocation fast path reads: the step of a request is an add and a shift, where its class
//! would need a branch or a table.
//!
//! A pool carries two pairs of links in its header (`Pool::{next, prev}` and
//! `Pool::{owned_next, owned_prev}`), so it can be on one `ByClass` list and its owner's
//! `ByOwner` list at once; the link type parameter says which pair a queue uses.
//!
//! Invariants (the caller keeps them; `invariant!` checks the ends in debug builds):
//! - `head` is null iff `tail` is null; following `next` from `head` reaches `tail`, and `prev`
//!   from `tail` reaches `head`; the ends' outer links are null.
//! - A pool is on at most one queue of each link kind, and its links of a kind are null while it
//!   is on none.
//! - A queue is changed only by whoever owns it (a heap's thread, or the holder of the lock that
//!   guards it); nothing here is atomic.

use core::marker::PhantomData;
use core::ptr;

use super::pool::Pool;
use super::size_class::{MAX_CLASS_STEPS, STEPS, steps_of_class};
use crate::config::{ALL_CLASSES, NUM_CLASSES};

/// Which pair of links in a pool's header a queue threads through.
pub trait Links {
    /// The `next` link of `p`.
    ///
    /// # Safety
    /// `p` is a live pool header.
    unsafe fn next(p: *mut Pool) -> *mut *mut Pool;
    /// The `prev` link of `p`.
    ///
    /// # Safety
    /// `p` is a live pool header.
    unsafe fn prev(p: *mut Pool) -> *mut *mut Pool;
}

/// `Pool::next` / `Pool::prev`: a heap's avail lists and cache, the abandoned lists.
pub enum ByClass {}

/// `Pool::owned_next` / `Pool::owned_prev`: a heap's list of every pool it owns.
pub enum ByOwner {}

impl Links for ByClass {
    #[inline(always)]
    unsafe fn next(p: *mut Pool) -> *mut *mut Pool {
        // SAFETY: p is a live header (the caller's contract).
        unsafe { &raw mut (*p).next }
    }
    #[inline(always)]
    unsafe fn prev(p: *mut Pool) -> *mut *mut Pool {
        // SAFETY: as above.
        unsafe { &raw mut (*p).prev }
    }
}

impl Links for ByOwner {
    #[inline(always)]
    unsafe fn next(p: *mut Pool) -> *mut *mut Pool {
        // SAFETY: p is a live header (the caller's contract).
        unsafe { &raw mut (*p).owned_next }
    }
    #[inline(always)]
    unsafe fn prev(p: *mut Pool) -> *mut *mut Pool {
        // SAFETY: as above.
        unsafe { &raw mut (*p).owned_prev }
    }
}

/// The two ends of one queue, wherever they are stored: the one implementation of the list
/// operations, used by [`PoolQueue`] (ends side by side) and [`PoolQueues`] (an array of heads
/// apart from an array of tails, so the heads a fast path reads share few cache lines).
struct Ends<'a, L: Links> {
    head: &'a mut *mut Pool,
    tail: &'a mut *mut Pool,
    _links: PhantomData<L>,
}

impl<L: Links> Ends<'_, L> {
    /// # Safety
    /// `p` is a live pool on no queue of kind `L`; the caller owns this queue.
    #[inline]
    unsafe fn push_front(self, p: *mut Pool) {
        // SAFETY: per the contract; the queue's pools are live.
        unsafe {
            *L::prev(p) = ptr::null_mut();
            *L::next(p) = *self.head;
            if self.head.is_null() {
                *self.tail = p;
            } else {
                *L::prev(*self.head) = p;
            }
        }
        *self.head = p;
    }

    /// # Safety
    /// As `push_front`.
    #[inline]
    unsafe fn push_back(self, p: *mut Pool) {
        // SAFETY: per the contract; the queue's pools are live.
        unsafe {
            *L::next(p) = ptr::null_mut();
            *L::prev(p) = *self.tail;
            if self.tail.is_null() {
                *self.head = p;
            } else {
                *L::next(*self.tail) = p;
            }
        }
        *self.tail = p;
    }

    /// # Safety
    /// `p` is on this queue; the caller owns it.
    #[inline]
    unsafe fn remove(self, p: *mut Pool) {
        // SAFETY: per the contract; neighbours on the queue are live.
        unsafe {
            let (prev, next) = (*L::prev(p), *L::next(p));
            if prev.is_null() {
                invariant!(*self.head == p, "pool not at the head of its list");
                *self.head = next;
            } else {
                *L::next(prev) = next;
            }
            if next.is_null() {
                invariant!(*self.tail == p, "pool not at the tail of its list");
                *self.tail = prev;
            } else {
                *L::prev(next) = prev;
            }
            *L::next(p) = ptr::null_mut();
            *L::prev(p) = ptr::null_mut();
        }
    }
}

/// The pools of a queue from `head` on. The next pool is read before a pool is yielded, so the
/// caller may take the yielded pool off the queue (and only that one) while iterating.
///
/// # Safety
/// `head` heads a queue of kind `L` the caller owns and changes during the walk only as said.
unsafe fn walk<L: Links>(head: *mut Pool) -> impl Iterator<Item = *mut Pool> {
    let mut p = head;
    core::iter::from_fn(move || {
        if p.is_null() {
            return None;
        }
        let cur = p;
        // SAFETY: cur is on the queue, live (the caller's contract).
        p = unsafe { *L::next(cur) };
        Some(cur)
    })
}

/// A doubly linked list of pools through the links `L`.
#[repr(C)]
pub struct PoolQueue<L: Links> {
    head: *mut Pool,
    tail: *mut Pool,
    _links: PhantomData<L>,
}

impl<L: Links> PoolQueue<L> {
    /// An empty queue.
    pub const fn new() -> Self {
        PoolQueue {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
            _links: PhantomData,
        }
    }

    #[inline(always)]
    fn ends(&mut self) -> Ends<'_, L> {
        Ends {
            head: &mut self.head,
            tail: &mut self.tail,
            _links: PhantomData,
        }
    }

    /// The first pool, or null.
    #[inline(always)]
    pub fn head(&self) -> *mut Pool {
        self.head
    }

    /// Put `p` first.
    ///
    /// # Safety
    /// `p` is a live pool on no queue of kind `L`; the caller owns this queue.
    pub unsafe fn push_front(&mut self, p: *mut Pool) {
        // SAFETY: forwarded.
        unsafe { self.ends().push_front(p) }
    }

    /// Take `p` off the queue; its links of this kind become null.
    ///
    /// # Safety
    /// `p` is on this queue; the caller owns it.
    pub unsafe fn remove(&mut self, p: *mut Pool) {
        // SAFETY: forwarded.
        unsafe { self.ends().remove(p) }
    }

    /// Take the first pool off the queue (null when empty).
    ///
    /// # Safety
    /// The caller owns the queue.
    pub unsafe fn pop_front(&mut self) -> *mut Pool {
        let p = self.head;
        if !p.is_null() {
            // SAFETY: p is on this queue.
            unsafe { self.remove(p) };
        }
        p
    }

    /// The pools in order; the caller may take the yielded pool off while iterating.
    ///
    /// # Safety
    /// The caller owns the queue and changes it during the walk only as said.
    pub unsafe fn iter(&self) -> impl Iterator<Item = *mut Pool> + use<L> {
        // SAFETY: forwarded.
        unsafe { walk::<L>(self.head) }
    }
}

/// `N` queues of links `L`, their heads in one array and their tails in another (a heap's
/// avail lists: the allocation fast path reads only heads, 8 of them per cache line).
#[repr(C)]
pub struct PoolQueues<L: Links, const N: usize> {
    heads: [*mut Pool; N],
    tails: [*mut Pool; N],
    _links: PhantomData<L>,
}

impl<L: Links, const N: usize> PoolQueues<L, N> {
    /// `N` empty queues.
    pub const fn new() -> Self {
        PoolQueues {
            heads: [ptr::null_mut(); N],
            tails: [ptr::null_mut(); N],
            _links: PhantomData,
        }
    }

    #[inline(always)]
    fn ends(&mut self, i: usize) -> Ends<'_, L> {
        Ends {
            head: &mut self.heads[i],
            tail: &mut self.tails[i],
            _links: PhantomData,
        }
    }

    /// The first pool of queue `i`, or null.
    #[inline(always)]
    pub fn head(&self, i: usize) -> *mut Pool {
        self.heads[i]
    }

    /// As [`PoolQueue::push_front`], on queue `i`.
    ///
    /// # Safety
    /// As [`PoolQueue::push_front`].
    pub unsafe fn push_front(&mut self, i: usize, p: *mut Pool) {
        // SAFETY: forwarded.
        unsafe { self.ends(i).push_front(p) }
    }

    /// As [`PoolQueue::push_back`], on queue `i`.
    ///
    /// # Safety
    /// As [`PoolQueue::push_front`].
    pub unsafe fn push_back(&mut self, i: usize, p: *mut Pool) {
        // SAFETY: forwarded.
        unsafe { self.ends(i).push_back(p) }
    }

    /// As [`PoolQueue::remove`], on queue `i`.
    ///
    /// # Safety
    /// `p` is on queue `i`; the caller owns it.
    pub unsafe fn remove(&mut self, i: usize, p: *mut Pool) {
        // SAFETY: forwarded.
        unsafe { self.ends(i).remove(p) }
    }

    /// As [`PoolQueue::iter`], on queue `i`.
    ///
    /// # Safety
    /// As [`PoolQueue::iter`].
    pub unsafe fn iter(&self, i: usize) -> impl Iterator<Item = *mut Pool> + use<L, N> {
        // SAFETY: forwarded.
        unsafe { walk::<L>(self.heads[i]) }
    }
}

impl<L: Links> Default for PoolQueue<L> {
    fn default() -> Self {
        Self::new()
    }
}

/// A stack of pools with its length (a heap's cache of retired pools).
pub struct PoolStack {
    queue: PoolQueue<ByClass>,
    len: usize,
}

impl PoolStack {
    /// An empty stack.
    pub const fn new() -> Self {
        PoolStack {
            queue: PoolQueue::new(),
            len: 0,
        }
    }

    /// How many pools it holds.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no pool.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// # Safety
    /// As [`PoolQueue::push_front`].
    pub unsafe fn push(&mut self, p: *mut Pool) {
        // SAFETY: per the contract.
        unsafe { self.queue.push_front(p) };
        self.len += 1;
    }

    /// The top pool, off the stack; null when empty.
    ///
    /// # Safety
    /// The caller owns the stack.
    pub unsafe fn pop(&mut self) -> *mut Pool {
        // SAFETY: per the contract.
        let p = unsafe { self.queue.pop_front() };
        self.len -= usize::from(!p.is_null());
        p
    }

    /// The pools, top first.
    ///
    /// # Safety
    /// As [`PoolQueue::iter`].
    pub unsafe fn iter(&self) -> impl Iterator<Item = *mut Pool> + use<> {
        // SAFETY: per the contract.
        unsafe { self.queue.iter() }
    }
}

/// A heap's avail lists: one queue per class, and each class's head repeated for every request
/// step the class serves (`direct`), kept equal after every change here (the only way the
/// queues change). The allocation fast path reads `direct[step_of(size)]`.
pub struct AvailQueues {
    direct: [*mut Pool; STEPS],
    queues: PoolQueues<ByClass, ALL_CLASSES>,
}

impl AvailQueues {
    /// Empty lists.
    pub const fn new() -> Self {
        AvailQueues {
            direct: [ptr::null_mut(); STEPS],
            queues: PoolQueues::new(),
        }
    }

    /// The current pool of the class serving `step`, or null.
    #[inline(always)]
    pub fn by_step(&self, step: usize) -> *mut Pool {
        self.direct[step]
    }

    /// The first pool of `class`'s queue, or null.
    #[inline(always)]
    pub fn head(&self, class: usize) -> *mut Pool {
        self.queues.head(class)
    }

    /// Copy `class`'s head to its steps, when it changed (most changes leave the head alone: a
    /// pool revived at the tail, one removed from the middle). A fixed number of stores per
    /// kind, no loop: a small class has one step (class 0 two, its first and last), a medium
    /// class `MAX_CLASS_STEPS`. A loop over the class's steps mispredicted its exit whenever
    /// small and medium classes alternated (callgrind, larson shape); the one branch here on the
    /// kind costs fewer instructions than always storing `MAX_CLASS_STEPS` entries, with about
    /// as few mispredictions.
    #[inline]
    fn sync(&mut self, class: usize) {
        debug_assert!(class < ALL_CLASSES);
        let h = self.queues.head(class);
        let steps = steps_of_class(class);
        let (first, last) = (*steps.start(), *steps.end());
        if self.direct[first] == h {
            return;
        }
        if class < NUM_CLASSES {
            self.direct[first] = h;
            self.direct[last] = h;
        } else {
            debug_assert_eq!(last - first + 1, MAX_CLASS_STEPS);
            for s in first..first + MAX_CLASS_STEPS {
                self.direct[s] = h;
            }
        }
    }

    /// As [`PoolQueue::push_front`], on `class`'s queue.
    ///
    /// # Safety
    /// As [`PoolQueue::push_front`].
    pub unsafe fn push_front(&mut self, class: usize, p: *mut Pool) {
        // SAFETY: forwarded.
        unsafe { self.queues.push_front(class, p) };
        self.sync(class);
    }

    /// As [`PoolQueue::push_back`], on `class`'s queue.
    ///
    /// # Safety
    /// As [`PoolQueue::push_front`].
    pub unsafe fn push_back(&mut self, class: usize, p: *mut Pool) {
        // SAFETY: forwarded.
        unsafe { self.queues.push_back(class, p) };
        self.sync(class);
    }

    /// As [`PoolQueue::remove`], on `class`'s queue.
    ///
    /// # Safety
    /// `p` is on `class`'s queue; the caller owns it.
    pub unsafe fn remove(&mut self, class: usize, p: *mut Pool) {
        // SAFETY: forwarded.
        unsafe { self.queues.remove(class, p) };
        self.sync(class);
    }

    /// As [`PoolQueue::iter`], on `class`'s queue.
    ///
    /// # Safety
    /// As [`PoolQueue::iter`].
    pub unsafe fn iter(&self, class: usize) -> impl Iterator<Item = *mut Pool> + use<> {
        // SAFETY: forwarded.
        unsafe { self.queues.iter(class) }
    }

    /// Whether every step's pool is its class's head (the validator).
    pub fn direct_is_valid(&self) -> bool {
        (0..ALL_CLASSES).all(|c| steps_of_class(c).all(|s| self.direct[s] == self.head(c)))
    }
}
