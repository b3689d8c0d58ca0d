//! Size classes: request size -> class index -> block size (table in `config`).

use crate::config::{ALIGNMENT, ALIGNMENT_SHIFT, NUM_CLASSES, POOL_SIZE, SMALL_MAX};

/// The class of a pool that is not in use (`Pool::class`): one past the last class, so the
/// per-class tables below give it no blocks.
pub const CLASS_NONE: usize = NUM_CLASSES;

/// True when a request of `size` bytes aligned to `align` is served from pools.
#[inline(always)]
pub const fn is_small(size: usize, align: usize) -> bool {
    size <= SMALL_MAX && align <= ALIGNMENT
}

/// Class index of a small request; `0` and `1..=16` map to class 0.
#[inline(always)]
pub const fn class_of(size: usize) -> usize {
    size.saturating_sub(1) >> ALIGNMENT_SHIFT
}

/// Block size of a class.
#[inline(always)]
pub const fn block_size(class: usize) -> usize {
    (class + 1) << ALIGNMENT_SHIFT
}

/// How many blocks of `class` one pool holds.
#[inline(always)]
pub const fn blocks_per_pool(class: usize) -> usize {
    POOL_SIZE / block_size(class)
}

/// Offset (from the pool start) just past the last whole block of `class` (a table: the
/// bump path must not divide); 0 for `CLASS_NONE`.
#[inline(always)]
pub const fn pool_limit(class: usize) -> usize {
    const LIMITS: [u16; NUM_CLASSES + 1] = {
        let mut t = [0u16; NUM_CLASSES + 1];
        let mut c = 0;
        while c < NUM_CLASSES {
            t[c] = (blocks_per_pool(c) * block_size(c)) as u16;
            c += 1;
        }
        t
    };
    LIMITS[class] as usize
}

/// Is `off` (a byte offset in a pool of `class`, below `POOL_SIZE`) the start of a block? One
/// table load and a bit test (no division): bit `off / 16` of the class's map (one bit per 16
/// bytes of the pool). Never for `CLASS_NONE`.
#[inline(always)]
pub fn is_block_offset(class: usize, off: usize) -> bool {
    const WORDS: usize = POOL_SIZE / ALIGNMENT / 64;
    const STARTS: [[u64; WORDS]; NUM_CLASSES + 1] = {
        let mut t = [[0u64; WORDS]; NUM_CLASSES + 1];
        let mut c = 0;
        while c < NUM_CLASSES {
            let mut b = 0;
            while b < blocks_per_pool(c) {
                let step = b * block_size(c) / ALIGNMENT;
                t[c][step / 64] |= 1u64 << (step % 64);
                b += 1;
            }
            c += 1;
        }
        t
    };
    let step = off >> ALIGNMENT_SHIFT;
    off % ALIGNMENT == 0 && (STARTS[class][step / 64] >> (step % 64)) & 1 != 0
}

const _: () = assert!(class_of(SMALL_MAX) == NUM_CLASSES - 1);
const _: () = assert!(block_size(NUM_CLASSES - 1) == SMALL_MAX);
const _: () = assert!(pool_limit(0) <= POOL_SIZE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_small_size_maps_to_the_smallest_fitting_class() {
        for size in 0..=SMALL_MAX {
            let c = class_of(size);
            assert!(c < NUM_CLASSES);
            assert!(block_size(c) >= size.max(1), "size {size}");
            if c > 0 {
                assert!(
                    block_size(c - 1) < size,
                    "size {size} could use class {}",
                    c - 1
                );
            }
            assert_eq!(block_size(c) % ALIGNMENT, 0);
        }
    }

    #[test]
    fn smallness_by_size_and_alignment() {
        for size in 1..=SMALL_MAX + 1 {
            for shift in 0..13 {
                let align = 1usize << shift;
                assert_eq!(
                    is_small(size, align),
                    size <= SMALL_MAX && align <= ALIGNMENT
                );
            }
        }
    }

    #[test]
    fn pools_hold_whole_blocks() {
        for c in 0..NUM_CLASSES {
            assert!(blocks_per_pool(c) >= 7);
            assert!(pool_limit(c) <= POOL_SIZE);
            assert!(POOL_SIZE - pool_limit(c) < block_size(c));
        }
        assert_eq!(blocks_per_pool(0), POOL_SIZE / 16);
        assert_eq!(blocks_per_pool(31), POOL_SIZE / 512);
        assert_eq!(pool_limit(CLASS_NONE), 0);
    }

    #[test]
    fn block_offsets_are_exactly_the_block_starts() {
        for c in 0..=NUM_CLASSES {
            for off in 0..POOL_SIZE {
                let want = c < NUM_CLASSES
                    && off % block_size(c) == 0
                    && off / block_size(c) < blocks_per_pool(c);
                assert_eq!(is_block_offset(c, off), want, "class {c} offset {off}");
            }
        }
    }
}
