//! The hardened backend (`ARENAGC_SECURE=1`, feature `secure`): the plain backend, and every
//! block it frees is cleared first. Being a backend of its own (chosen once, in `dispatch.rs`)
//! keeps the clearing off the default build's fast path entirely; the rest of hardened mode
//! (shuffled pools, guard pages) lives where pools and arenas are made (`harden::secure_mode`).
//!
//! Invariants: it serves and frees exactly the plain backend's blocks; a block is cleared
//! (past the allocator's two words) before the plain free marks it, unless it is marked free
//! already, so a double free is still reported by the plain free.
//!
//! May touch: `plain.rs`, `backend.rs`.

use super::backend::Backend;
use super::plain::{self, Plain};

/// The hardened backend (see the module docs).
pub(crate) struct Secure;

impl Backend for Secure {
    fn alloc(&self, size: usize, align: usize, zero: bool, by_address: bool) -> *mut u8 {
        Plain.alloc(size, align, zero, by_address)
    }

    #[inline(always)]
    unsafe fn free(&self, p: *mut u8, layout: Option<(usize, usize)>) {
        // p is a live block of the plain backend (ours). With a layout of a pool block (Rust's
        // dealloc) its pool is known; by address, `checked_pool` says whether it is a pool
        // block and that it starts one (aborting otherwise); anything else is a large block,
        // with nothing of ours to clear.
        // SAFETY: as just said, `pool` is the header of the pool or run holding p, a live block.
        unsafe {
            let pool = match layout {
                Some((size, align)) if plain::is_pooled(size, align) => {
                    plain::pool_of_size(p, size)
                }
                Some(_) => return Plain.free(p, layout),
                None => {
                    let pool = plain::checked_pool(p);
                    if pool.is_null() {
                        return plain::free_large(p);
                    }
                    pool
                }
            };
            plain::clear_block(p, pool);
            plain::pool_free(p, pool)
        }
    }

    unsafe fn usable_size(&self, p: *mut u8) -> usize {
        // SAFETY: forwarded.
        unsafe { Plain.usable_size(p) }
    }

    // `realloc`: the trait's default (`realloc_by_moving`), not Plain's in-place one: always a
    // new block and a free of the old one through `free` above, so the old contents are
    // cleared.

    fn looks_freed(&self, p: *const u8) -> bool {
        Plain.looks_freed(p)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clear_block_zeroes_exactly_past_the_two_words_in_every_class() {
        use crate::alloc::plain::{self, small_alloc};
        use crate::alloc::pool::pool_of_any;
        use crate::alloc::size_class::block_size;
        use crate::config::ALL_CLASSES;
        std::thread::spawn(|| {
            for class in 0..ALL_CLASSES {
                let bs = block_size(class);
                // Three neighbours, so a store past either end of the middle one would show.
                let (a, _) = small_alloc::<false>(class);
                let (b, _) = small_alloc::<false>(class);
                let (c, _) = small_alloc::<false>(class);
                assert!(!a.is_null() && !b.is_null() && !c.is_null());
                // SAFETY: three live blocks of bs bytes each, ours to write; b's pool header is
                // live while b is.
                unsafe {
                    for &x in &[a, b, c] {
                        x.write_bytes(0xAB, bs);
                    }
                    plain::clear_block(b, pool_of_any(b));
                    let got = core::slice::from_raw_parts(b, bs);
                    assert!(
                        got[..16].iter().all(|&x| x == 0xAB),
                        "class {class}: words kept"
                    );
                    assert!(
                        got[16..].iter().all(|&x| x == 0),
                        "class {class}: rest zeroed"
                    );
                    for &x in &[a, c] {
                        let n = core::slice::from_raw_parts(x, bs);
                        assert!(
                            n.iter().all(|&v| v == 0xAB),
                            "class {class}: neighbour intact"
                        );
                    }
                    for x in [a, b, c] {
                        // By the header of its pool or run (a medium block past its run's
                        // first pool has a tail header at `pool_of`).
                        plain::pool_free(x, pool_of_any(x));
                    }
                }
            }
        })
        .join()
        .expect("test thread panicked");
    }
}
