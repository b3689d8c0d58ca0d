//! Default-mode hardening of the pools' free lists: what glibc's tcache checks and safe-linking
//! catch, at the cost of a few register operations on the fast paths.
//!
//! ```text
//!  a free block:  word 0  next ^ KEY          (the link, encoded: glibc's safe-linking, with a
//!                                              per-process secret as mimalloc's secure mode)
//!                 word 1  block ^ KEY         on a local free list  (the "free" mark, L)
//!                         block ^ KEY ^ 1     on its way back from another thread (R)
//!  a block in use: word 1 is the user's; the allocator wrote 0 there when it handed it out
//! ```
//!
//! | misuse                                   | caught where                | how                     |
//! |------------------------------------------|-----------------------------|-------------------------|
//! | double free on one thread, any sequence (`p, q, p`) | the second free (`mark_local`) | word 1 holds a mark already |
//! | double free on two threads, one after the other | the second free (`mark_local`, `mark_remote`) | the same |
//! | two remote frees at the same moment       | the second (`mark_remote`)  | an atomic swap of word 1 |
//! | a local and a remote free at the same moment | when the remote block reaches its owner (`remote_to_local`) | it carries L, not R: the owner freed it too |
//! | a write after free into word 0 (the link) | before the link is followed (`check_link`) | the decoded link leaves the block's arena or is misaligned |
//!
//! So no block is ever on a free list twice, hence never handed out twice.
//!
//! # Invariants
//!
//! - `KEY` is set once, by the first arena's creation (under the arenas' lock), before any
//!   block exists, and never changes: every encoded link and mark is made and read with the
//!   same key. Its top bit is set, so a mark is never 0 (the value a block in use starts with in
//!   word 1) and never a user-space address.
//! - A block on a local free list holds L in word 1 and its encoded link in word 0. A block on
//!   a remote or delayed list (the handoffs of `remote.rs`) holds R and a plain link; the owner
//!   checks and turns R into L when it takes the block (`remote_to_local`).
//! - A block handed out has 0 in word 1 (stored on a pop, and when carved: memory of a reused
//!   pool may hold a mark of an earlier life), so its first free never finds a stale mark.
//!   Forging a mark needs the key.
//! - Word 1 is accessed atomically (relaxed loads and stores on the owner's side, a swap on a
//!   remote freer's), so even two racing frees of one block are not a data race.
//!
//! Every block of the pools has at least two words (the smallest class is 16 bytes). The cost:
//! see `benches/icount` and the README (a handful of register operations per malloc/free pair).
//!
//! May touch: `fatal.rs`. Nothing else: pools and heaps call in.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::config::{ALIGNMENT, ARENA_SIZE};

/// The per-process secret (see the invariants). 0 until the first arena is made.
static KEY: AtomicUsize = AtomicUsize::new(0);

/// The top bit every key has.
const KEY_TOP: usize = 1 << (usize::BITS - 1);

/// Bit 0 of the key: hardened mode (`ARENAGC_SECURE=1` or the cargo feature `secure`), so the
/// free path tests it on the key it loads anyway. (Marks and links do not depend on it: L and R
/// differ in bit 0 whatever the key's.)
const SECURE_BIT: usize = 1;

/// Set the key, once, before the first arena exists. The caller holds the arenas' lock.
pub fn init() {
    if KEY.load(Ordering::Relaxed) != 0 {
        return;
    }
    let mut k: usize = 0;
    // SAFETY: k is a valid 8-byte buffer; GRND_NONBLOCK never waits for the entropy pool.
    let got = unsafe {
        libc::getrandom(
            (&mut k as *mut usize).cast(),
            core::mem::size_of::<usize>(),
            libc::GRND_NONBLOCK,
        )
    };
    if got != core::mem::size_of::<usize>() as isize {
        // No kernel randomness this early (or no getrandom): mix what ASLR and the clock give.
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid out-pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let stack = &ts as *const _ as usize;
        k = (stack.rotate_left(17) ^ (&KEY as *const _ as usize) ^ (ts.tv_nsec as usize))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (ts.tv_sec as usize).rotate_left(40);
    }
    let secure = cfg!(feature = "secure") || crate::options::SECURE.flag();
    KEY.store(
        (k & !SECURE_BIT) | KEY_TOP | secure as usize,
        Ordering::Relaxed,
    );
}

/// Whether key `k` says hardened mode.
#[inline(always)]
pub fn secure(k: usize) -> bool {
    k & SECURE_BIT != 0
}

/// Whether hardened mode is on (decided with the key, before the first arena; false before).
#[inline]
pub fn secure_mode() -> bool {
    secure(key())
}

/// The key (load it once per operation and pass it on).
#[inline(always)]
pub fn key() -> usize {
    KEY.load(Ordering::Relaxed)
}

/// Word 1 of block `b`.
///
/// # Safety
/// `b` is a block of our pools (mapped, at least two words, 8-aligned).
#[inline(always)]
unsafe fn mark_word<'a>(b: *mut u8) -> &'a AtomicUsize {
    // SAFETY: per the contract.
    unsafe { &*b.cast::<AtomicUsize>().add(1) }
}

/// The encoding of the link `next`, stored in word 0 of a block on a local free list.
#[inline(always)]
pub fn encode<T>(next: *mut T, k: usize) -> *mut T {
    (next as usize ^ k) as *mut T
}

/// The link stored as `raw` by [`encode`].
#[inline(always)]
pub fn decode<T>(raw: *mut T, k: usize) -> *mut T {
    (raw as usize ^ k) as *mut T
}

/// The bits in which a real link and the block holding it may differ: the offset inside the
/// arena, less the low bits every block start has clear (blocks are `ALIGNMENT`-aligned).
const LINK_MASK: usize = !((ARENA_SIZE - 1) & !(ALIGNMENT - 1));

/// Abort unless `next` (a decoded link read from block `b`) is null or an aligned address inside
/// `b`'s arena: any other link was overwritten (a write after free; a C `agc_decref` of a freed
/// object decrements word 0 and always leaves it misaligned). Pools and runs never span arenas,
/// so a real link never leaves its block's arena.
#[inline(always)]
pub fn check_link<T>(b: *mut T, next: *mut T) {
    // Without a branch on `next` being null: a free list of one block (common when pools run
    // nearly full, as with random frees) made that branch mispredict on about one allocation
    // in nine (callgrind on the larson shape). A null link is checked as `b` itself, which
    // passes.
    let n = next as usize;
    let probe = n | (b as usize & usize::from(n == 0).wrapping_neg());
    if (b as usize ^ probe) & LINK_MASK != 0 {
        corrupted_link(b.cast());
    }
}

/// Whether `w` is one of `b`'s two marks.
#[inline(always)]
fn is_mark(w: usize, b: *mut u8, k: usize) -> bool {
    (w ^ b as usize ^ k) >> 1 == 0
}

/// A free by the owner: mark `b` L, aborting with "double free" if it carries a mark already.
///
/// # Safety
/// `b` is a block of our pools.
#[inline(always)]
pub unsafe fn mark_local(b: *mut u8, k: usize) {
    // SAFETY: per the contract.
    let w = unsafe { mark_word(b) };
    if is_mark(w.load(Ordering::Relaxed), b, k) {
        double_free(b);
    }
    w.store(b as usize ^ k, Ordering::Relaxed);
}

/// A free by another thread than the owner: mark `b` R with one atomic swap, aborting with
/// "double free" if it carried a mark (freed before, or by a thread freeing it right now).
///
/// # Safety
/// `b` is a block of our pools.
#[inline]
pub unsafe fn mark_remote(b: *mut u8, k: usize) {
    // SAFETY: per the contract.
    let w = unsafe { mark_word(b) };
    if is_mark(w.swap(b as usize ^ k ^ 1, Ordering::Relaxed), b, k) {
        double_free(b);
    }
}

/// The owner takes `b` from a remote or delayed list: it must carry R (L means the owner freed
/// it as well, while it was on its way: a double free); it now carries L.
///
/// # Safety
/// `b` is a block of our pools.
#[inline]
pub unsafe fn remote_to_local(b: *mut u8, k: usize) {
    // SAFETY: per the contract.
    let w = unsafe { mark_word(b) };
    if w.load(Ordering::Relaxed) != b as usize ^ k ^ 1 {
        double_free(b);
    }
    w.store(b as usize ^ k, Ordering::Relaxed);
}

/// Clear word 1 of a block being handed out (popped, or carved from a pool whose memory may
/// hold a mark of an earlier life).
///
/// # Safety
/// `b` is a block of our pools being handed out.
#[inline(always)]
pub unsafe fn clear_mark(b: *mut u8) {
    // SAFETY: per the contract.
    unsafe { mark_word(b) }.store(0, Ordering::Relaxed);
}

/// Whether `b` carries either free mark (it is on a free list, or on its way to one).
///
/// # Safety
/// `b` is a block of our pools.
pub unsafe fn is_freed(b: *mut u8) -> bool {
    // SAFETY: per the contract.
    is_mark(unsafe { mark_word(b) }.load(Ordering::Relaxed), b, key())
}

/// Whether `b` carries the local mark L (validators only).
///
/// # Safety
/// `b` is a block of our pools.
pub unsafe fn is_marked_local(b: *mut u8) -> bool {
    // SAFETY: per the contract.
    unsafe { mark_word(b) }.load(Ordering::Relaxed) == b as usize ^ key()
}

#[cold]
#[inline(never)]
fn double_free(p: *mut u8) -> ! {
    super::fatal::fatal(
        "double free",
        p,
        "the block was already freed (it carries the allocator's free mark)",
    )
}

#[cold]
#[inline(never)]
fn corrupted_link(b: *mut u8) -> ! {
    super::fatal::fatal(
        "heap corruption",
        b,
        "the free-list link stored in this freed block was overwritten (a write after free)",
    )
}
