//! Size classes: request size -> class index -> block size (table in `config`).
//!
//! | classes                          | block sizes              | pool (span)                 |
//! |----------------------------------|--------------------------|-----------------------------|
//! | small: `0..NUM_CLASSES`          | 16, 32, ..., 512         | one pool, `POOL_SIZE`       |
//! | medium: `NUM_CLASSES..ALL_CLASSES` | 640, 768, ..., 2048    | one run, `RUN_SIZE` (16 KiB)|
//! | `CLASS_NONE`                     | (pool not in use)        | -                           |
//! | `CLASS_RUN_TAIL`                 | (a pool inside a run, not its first) | -               |
//!
//! Every per-class quantity the hot paths need (block size, bump limit, block starts) is a
//! table indexed by class, so small and medium pools run the same code.

use crate::config::{
    ALIGNMENT, ALIGNMENT_SHIFT, ALL_CLASSES, MEDIUM_MAX, MEDIUM_STEP, NUM_CLASSES, POOL_SIZE,
    RUN_SIZE, SMALL_MAX,
};

/// The class of a pool that is not in use (`Pool::class`): one past the last class, so the
/// per-class tables below give it no blocks.
pub const CLASS_NONE: usize = ALL_CLASSES;
/// The class of a pool that lies inside a medium run but is not its first: its header only says
/// where the run's header is (`pool::pool_of_any`). No blocks either.
pub const CLASS_RUN_TAIL: usize = ALL_CLASSES + 1;
/// Entries of the per-class tables.
const TABLE: usize = ALL_CLASSES + 2;

/// True when a request of `size` bytes aligned to `align` is served from small pools.
#[inline(always)]
pub const fn is_small(size: usize, align: usize) -> bool {
    size <= SMALL_MAX && align <= ALIGNMENT
}

/// True when a request of `size` bytes aligned to `align` is served from medium runs.
#[inline(always)]
pub const fn is_medium(size: usize, align: usize) -> bool {
    size > SMALL_MAX && size <= MEDIUM_MAX && align <= ALIGNMENT
}

/// Whether `class` is a medium class.
#[inline(always)]
pub const fn is_medium_class(class: usize) -> bool {
    class >= NUM_CLASSES && class < ALL_CLASSES
}

/// Class index of a small request; `0` and `1..=16` map to class 0.
#[inline(always)]
pub const fn class_of(size: usize) -> usize {
    size.saturating_sub(1) >> ALIGNMENT_SHIFT
}

/// Class index of a medium request (`SMALL_MAX < size <= MEDIUM_MAX`).
#[inline(always)]
pub const fn medium_class_of(size: usize) -> usize {
    NUM_CLASSES + (size - SMALL_MAX - 1) / MEDIUM_STEP
}

/// Class index of any request the pools serve (small or medium).
#[inline(always)]
pub const fn any_class_of(size: usize) -> usize {
    if size <= SMALL_MAX {
        class_of(size)
    } else {
        medium_class_of(size)
    }
}

/// Bytes a pool of `class` spans: a pool, or a run for a medium class.
const fn span(class: usize) -> usize {
    if is_medium_class(class) {
        RUN_SIZE
    } else {
        POOL_SIZE
    }
}

/// Block size of a class (the formula; `block_size` reads the table).
const fn size_of_class(class: usize) -> usize {
    if class < NUM_CLASSES {
        (class + 1) << ALIGNMENT_SHIFT
    } else if class < ALL_CLASSES {
        SMALL_MAX + (class - NUM_CLASSES + 1) * MEDIUM_STEP
    } else {
        0
    }
}

/// Block size of a class; 0 for `CLASS_NONE` and `CLASS_RUN_TAIL`.
#[inline(always)]
pub const fn block_size(class: usize) -> usize {
    const SIZES: [u16; TABLE] = {
        let mut t = [0u16; TABLE];
        let mut c = 0;
        while c < ALL_CLASSES {
            t[c] = size_of_class(c) as u16;
            c += 1;
        }
        t
    };
    SIZES[class] as usize
}

/// How many blocks of `class` one pool (a run, for a medium class) holds; 0 when not in use.
#[inline(always)]
pub const fn blocks_per_pool(class: usize) -> usize {
    if class < ALL_CLASSES {
        span(class) / size_of_class(class)
    } else {
        0
    }
}

/// Offset (from the pool start) just past the last whole block of `class` (a table: the
/// bump path must not divide); 0 for `CLASS_NONE` and `CLASS_RUN_TAIL`.
#[inline(always)]
pub const fn pool_limit(class: usize) -> usize {
    const LIMITS: [u16; TABLE] = {
        let mut t = [0u16; TABLE];
        let mut c = 0;
        while c < ALL_CLASSES {
            t[c] = (blocks_per_pool(c) * size_of_class(c)) as u16;
            c += 1;
        }
        t
    };
    LIMITS[class] as usize
}

/// Words of a class's block-start map: one bit per 16 bytes of its span.
const POOL_WORDS: usize = POOL_SIZE / ALIGNMENT / 64;
const RUN_WORDS: usize = RUN_SIZE / ALIGNMENT / 64;

/// The block-start map of the classes `first..first + N` (the others' rows stay zero), `W` words
/// each.
const fn starts<const N: usize, const W: usize>(first: usize) -> [[u64; W]; N] {
    let mut t = [[0u64; W]; N];
    let mut i = 0;
    while i < N {
        let c = first + i;
        if c < ALL_CLASSES {
            let mut b = 0;
            while b < blocks_per_pool(c) {
                let step = b * size_of_class(c) / ALIGNMENT;
                t[i][step / 64] |= 1u64 << (step % 64);
                b += 1;
            }
        }
        i += 1;
    }
    t
}

/// Is `off` (a byte offset in a pool of `class`, below its span) the start of a block? One
/// table load and a bit test (no division): bit `off / 16` of the class's map (one bit per 16
/// bytes of the pool). Never for `CLASS_NONE` or `CLASS_RUN_TAIL`, and never for an offset
/// past the span. Small and medium classes have tables of their own, so the small ones, read
/// by every `free` from C, stay as compact as before medium classes existed (1 KiB).
#[inline(always)]
pub fn is_block_offset(class: usize, off: usize) -> bool {
    const SMALL: [[u64; POOL_WORDS]; NUM_CLASSES] = starts::<NUM_CLASSES, POOL_WORDS>(0);
    const MEDIUM: [[u64; RUN_WORDS]; ALL_CLASSES - NUM_CLASSES] =
        starts::<{ ALL_CLASSES - NUM_CLASSES }, RUN_WORDS>(NUM_CLASSES);
    let step = off >> ALIGNMENT_SHIFT;
    if off % ALIGNMENT != 0 {
        return false;
    }
    let word = if class < NUM_CLASSES {
        if step / 64 >= POOL_WORDS {
            return false;
        }
        SMALL[class][step / 64]
    } else if class < ALL_CLASSES {
        if step / 64 >= RUN_WORDS {
            return false;
        }
        MEDIUM[class - NUM_CLASSES][step / 64]
    } else {
        return false;
    };
    (word >> (step % 64)) & 1 != 0
}

const _: () = assert!(class_of(SMALL_MAX) == NUM_CLASSES - 1);
const _: () = assert!(size_of_class(NUM_CLASSES - 1) == SMALL_MAX);
const _: () = assert!(medium_class_of(SMALL_MAX + 1) == NUM_CLASSES);
const _: () = assert!(medium_class_of(MEDIUM_MAX) == ALL_CLASSES - 1);
const _: () = assert!(size_of_class(ALL_CLASSES - 1) == MEDIUM_MAX);
const _: () = assert!(pool_limit(0) <= POOL_SIZE);
// Class numbers (CLASS_RUN_TAIL included) fit the pool header's u8.
const _: () = assert!(CLASS_RUN_TAIL < u8::MAX as usize);

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
    fn every_medium_size_maps_to_the_smallest_fitting_class() {
        for size in SMALL_MAX + 1..=MEDIUM_MAX {
            let c = medium_class_of(size);
            assert!(is_medium_class(c), "size {size}");
            assert_eq!(any_class_of(size), c);
            assert!(block_size(c) >= size, "size {size}");
            assert!(
                c == NUM_CLASSES || block_size(c - 1) < size,
                "size {size} could use class {}",
                c - 1
            );
            assert_eq!(block_size(c) % ALIGNMENT, 0);
        }
    }

    #[test]
    fn smallness_by_size_and_alignment() {
        for size in 1..=MEDIUM_MAX + 1 {
            for shift in 0..13 {
                let align = 1usize << shift;
                assert_eq!(
                    is_small(size, align),
                    size <= SMALL_MAX && align <= ALIGNMENT
                );
                assert_eq!(
                    is_medium(size, align),
                    size > SMALL_MAX && size <= MEDIUM_MAX && align <= ALIGNMENT
                );
            }
        }
    }

    #[test]
    fn pools_hold_whole_blocks() {
        for c in 0..ALL_CLASSES {
            let span = span(c);
            assert!(blocks_per_pool(c) >= 7, "class {c}");
            assert!(pool_limit(c) <= span);
            assert!(span - pool_limit(c) < block_size(c));
        }
        assert_eq!(blocks_per_pool(0), POOL_SIZE / 16);
        assert_eq!(blocks_per_pool(31), POOL_SIZE / 512);
        assert_eq!(blocks_per_pool(ALL_CLASSES - 1), RUN_SIZE / MEDIUM_MAX);
        assert_eq!(pool_limit(CLASS_NONE), 0);
        assert_eq!(pool_limit(CLASS_RUN_TAIL), 0);
    }

    #[test]
    fn block_offsets_are_exactly_the_block_starts() {
        for c in 0..=CLASS_RUN_TAIL {
            let span = if c < ALL_CLASSES { span(c) } else { RUN_SIZE };
            for off in 0..span + 64 {
                let want = c < ALL_CLASSES
                    && off % block_size(c) == 0
                    && off / block_size(c) < blocks_per_pool(c);
                assert_eq!(is_block_offset(c, off), want, "class {c} offset {off}");
            }
        }
    }
}
