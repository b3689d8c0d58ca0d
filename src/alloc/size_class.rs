//! Size classes: request size -> class index -> block size (table in `config`).
//!
//! | classes                          | block sizes              | pool (span)                 |
//! |----------------------------------|--------------------------|-----------------------------|
//! | small: `0..NUM_CLASSES`          | 16, 32, ..., 512         | one pool, `POOL_SIZE`       |
//! | medium: `NUM_CLASSES..ALL_CLASSES` | 640, 768, ..., 4096    | one run, `RUN_SIZE` (16 KiB)|
//! | `CLASS_NONE`                     | (pool not in use)        | -                           |
//! | `CLASS_RUN_TAIL`                 | (a pool inside a run, not its first) | -               |
//!
//! Every per-class quantity the hot paths need (block size, bump limit, block starts) is a
//! table indexed by class, so small and medium pools run the same code, without a branch on
//! the class: a request's 16-byte step indexes a heap's current pools directly (the class is
//! looked up from the step only on slow paths), and "is this a block start" is a multiply by
//! the class's divisibility magic.

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

/// Request steps of the pools: a request of `size <= MEDIUM_MAX` bytes is step
/// `step_of(size)`, one per 16 bytes (0 for a request of 0 bytes).
pub const STEPS: usize = MEDIUM_MAX / ALIGNMENT + 1;

/// The step of a pooled request (`size <= MEDIUM_MAX`): an add and a shift, no branch, so a
/// program whose sizes straddle `SMALL_MAX` at random (half of a larson-shaped program's blocks
/// are over 512 bytes) has nothing to mispredict; a heap keeps its current pool per step
/// (`queue::AvailQueues`), so the allocation fast path needs no class at all.
#[inline(always)]
pub const fn step_of(size: usize) -> usize {
    (size + ALIGNMENT - 1) >> ALIGNMENT_SHIFT
}

/// The class of each step, and the first and last step of each class (`TABLE` entries, the
/// pseudo-classes with the empty range 1..=0).
const CLASS_OF_STEP: [u8; STEPS] = {
    let mut t = [0u8; STEPS];
    let mut i = 0;
    while i < STEPS {
        let size = i * ALIGNMENT;
        t[i] = if size <= SMALL_MAX {
            class_of(size)
        } else {
            medium_class_of(size)
        } as u8;
        i += 1;
    }
    t
};
const STEP_RANGE: [(u16, u16); TABLE] = {
    let mut t = [(1u16, 0u16); TABLE];
    let mut i = 0;
    while i < STEPS {
        let c = CLASS_OF_STEP[i] as usize;
        if t[c].0 > t[c].1 {
            t[c].0 = i as u16;
        }
        t[c].1 = i as u16;
        i += 1;
    }
    t
};

/// The class of a step (`step < STEPS`).
#[inline(always)]
pub const fn class_of_step(step: usize) -> usize {
    CLASS_OF_STEP[step] as usize
}

/// The steps whose requests `class` serves (empty for `CLASS_NONE` and `CLASS_RUN_TAIL`).
#[inline(always)]
pub const fn steps_of_class(class: usize) -> core::ops::RangeInclusive<usize> {
    let (a, b) = STEP_RANGE[class];
    a as usize..=b as usize
}

/// The steps of every medium class (`MEDIUM_STEP / ALIGNMENT`), the most any class serves.
pub const MAX_CLASS_STEPS: usize = {
    let mut most = 0;
    let mut c = 0;
    while c < ALL_CLASSES {
        let (a, b) = STEP_RANGE[c];
        let n = (b - a + 1) as usize;
        if n > most {
            most = n;
        }
        c += 1;
    }
    most
};

/// Class index of any request the pools serve (small or medium: `size <= MEDIUM_MAX`).
#[inline(always)]
pub const fn any_class_of(size: usize) -> usize {
    class_of_step(step_of(size))
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

/// How many blocks of `class` one pool (a run, for a medium class) holds (the formula;
/// `blocks_per_pool` reads the table).
const fn blocks_of_class(class: usize) -> usize {
    if class < ALL_CLASSES {
        span(class) / size_of_class(class)
    } else {
        0
    }
}

/// How many blocks of `class` one pool (a run, for a medium class) holds; 0 when not in use. A
/// table: a pool's slow paths ask it for a class known only at run time, and a division there
/// was a fifth of a larson-shaped program's time in `heap::free_local_slow`.
#[inline(always)]
pub const fn blocks_per_pool(class: usize) -> usize {
    const BLOCKS: [u16; TABLE] = {
        let mut t = [0u16; TABLE];
        let mut c = 0;
        while c < ALL_CLASSES {
            t[c] = blocks_of_class(c) as u16;
            c += 1;
        }
        t
    };
    BLOCKS[class] as usize
}

/// Offset (from the pool start) just past the last whole block of `class` (a table: the
/// bump path must not divide); 0 for `CLASS_NONE` and `CLASS_RUN_TAIL`.
#[inline(always)]
pub const fn pool_limit(class: usize) -> usize {
    const LIMITS: [u16; TABLE] = {
        let mut t = [0u16; TABLE];
        let mut c = 0;
        while c < ALL_CLASSES {
            t[c] = (blocks_of_class(c) * size_of_class(c)) as u16;
            c += 1;
        }
        t
    };
    LIMITS[class] as usize
}

/// The divisibility magic of each class (Lemire, Kaser and Kurz, "Faster remainder by direct
/// computation", 2019): for `n < 2^32` and a block size `d`, with `c = 2^64 / d` rounded up,
/// `n % d == 0` exactly when `n * c mod 2^64 < c`. 0 for `CLASS_NONE` and `CLASS_RUN_TAIL`, which
/// makes the test fail for every offset.
/// 256 entries, indexed by the pool header's `u8` class, so the lookup needs no bounds check.
const DIVISIBLE: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut c = 0;
    while c < ALL_CLASSES {
        t[c] = u64::MAX / size_of_class(c) as u64 + 1;
        c += 1;
    }
    t
};

/// Is `off` a multiple of `class`'s block size? One table load, a multiply and a compare, the
/// same instructions for every class (no small-or-medium branch, which a program freeing sizes
/// on both sides of `SMALL_MAX` at random would mispredict every other time). False for
/// `CLASS_NONE` and `CLASS_RUN_TAIL`. The caller has checked `off` against the pool's bump
/// offset (at most `pool_limit(class)`, so below 2^32); `is_block_offset` is the full test.
/// `class` is a pool header's class (below 256).
#[inline(always)]
pub fn is_block_multiple(class: usize, off: usize) -> bool {
    debug_assert!(off <= u32::MAX as usize);
    let c = DIVISIBLE[class as u8 as usize];
    (off as u64).wrapping_mul(c) < c
}

/// Is `off` (a byte offset in a pool of `class`) the start of a block that fits the pool? Never
/// for `CLASS_NONE` or `CLASS_RUN_TAIL`, and never for an offset past the last whole block.
#[inline(always)]
pub fn is_block_offset(class: usize, off: usize) -> bool {
    off < pool_limit(class) && is_block_multiple(class, off)
}

const _: () = assert!(class_of(SMALL_MAX) == NUM_CLASSES - 1);
const _: () = assert!(size_of_class(NUM_CLASSES - 1) == SMALL_MAX);
const _: () = assert!(medium_class_of(SMALL_MAX + 1) == NUM_CLASSES);
const _: () = assert!(medium_class_of(MEDIUM_MAX) == ALL_CLASSES - 1);
const _: () = assert!(size_of_class(ALL_CLASSES - 1) == MEDIUM_MAX);
const _: () = assert!(pool_limit(0) <= POOL_SIZE);
const _: () = assert!(SMALL_MAX % MEDIUM_STEP == 0 && MEDIUM_STEP.is_power_of_two());
// Class numbers (CLASS_RUN_TAIL included) fit the pool header's u8.
const _: () = assert!(CLASS_RUN_TAIL < u8::MAX as usize);
const _: () = assert!(MAX_CLASS_STEPS == MEDIUM_STEP / ALIGNMENT);
// What `AvailQueues::sync` relies on: a small class's steps are its first and last, a medium
// class has exactly `MAX_CLASS_STEPS` of them.
const _: () = {
    let mut c = 0;
    while c < ALL_CLASSES {
        let (a, b) = STEP_RANGE[c];
        let n = (b - a + 1) as usize;
        assert!(if c < NUM_CLASSES {
            n <= 2
        } else {
            n == MAX_CLASS_STEPS
        });
        c += 1;
    }
};

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
    fn the_class_table_agrees_with_the_formulas() {
        for size in 0..=MEDIUM_MAX {
            let want = if size <= SMALL_MAX {
                class_of(size)
            } else {
                medium_class_of(size)
            };
            assert_eq!(any_class_of(size), want, "size {size}");
        }
    }

    #[test]
    fn steps_and_classes_agree() {
        for size in 0..=MEDIUM_MAX {
            let c = any_class_of(size);
            assert!(steps_of_class(c).contains(&step_of(size)), "size {size}");
        }
        let mut seen = 0;
        for c in 0..ALL_CLASSES {
            for s in steps_of_class(c) {
                assert_eq!(class_of_step(s), c);
                seen += 1;
            }
        }
        assert_eq!(seen, STEPS);
        assert!(steps_of_class(CLASS_NONE).is_empty());
        assert!(steps_of_class(CLASS_RUN_TAIL).is_empty());
    }

    #[test]
    fn divisibility_magic_is_exact_for_every_class_and_offset() {
        for c in 0..=CLASS_RUN_TAIL {
            for off in 0..(1usize << 17) {
                let want = c < ALL_CLASSES && off % block_size(c) == 0;
                assert_eq!(is_block_multiple(c, off), want, "class {c} offset {off}");
            }
            for off in [u32::MAX as usize, u32::MAX as usize - 15, 1 << 31] {
                let want = c < ALL_CLASSES && off % block_size(c) == 0;
                assert_eq!(is_block_multiple(c, off), want, "class {c} offset {off}");
            }
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
            // 4 blocks of 4096 bytes in a 16 KiB run, up to 256 of 16 in a 4 KiB pool.
            assert!(blocks_per_pool(c) >= 4, "class {c}");
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
