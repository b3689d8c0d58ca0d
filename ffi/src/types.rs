//! The public C structs and constants, `#[repr(C)]`, mirrored field for field by
//! `include/arenagc.h`.
//!
//! This file depends on nothing but `core` and the `arenagc` crate (for `agc_object` and
//! `agc_type`, which are its `ObjectHeader` and `TypeObject` unchanged), so the layout test
//! (`ffi/tests/c_abi.rs`) includes it with `#[path]` and compares `size_of` / `offset_of!` here
//! with what the C compiler reports for the header.

use core::ffi::{c_int, c_uint};

/// `AGC_NUM_CLASSES`: size classes of small blocks (16, 32, ..., 512 bytes).
pub const AGC_NUM_CLASSES: usize = 32;
/// `AGC_NUM_MEDIUM_CLASSES`: medium size classes (640, 768, ..., 4096 bytes).
pub const AGC_NUM_MEDIUM_CLASSES: usize = 28;
/// `AGC_NUM_ALL_CLASSES`: every class, small then medium (`agc_stats_classes`).
pub const AGC_NUM_ALL_CLASSES: usize = 60;
/// `AGC_TPFLAGS_VERSION_SHIFT`: where `agc_type.flags` keeps the struct version (bits 56..63).
pub const AGC_TPFLAGS_VERSION_SHIFT: u32 = 56;
/// `AGC_TYPE_VERSION_CURRENT`: the newest `agc_type` version this library knows.
pub const AGC_TYPE_VERSION_CURRENT: u64 = 0;

/// `AGC_OK`: success.
pub const AGC_OK: c_int = 0;
/// `AGC_ERR_NULL`: a required pointer argument was NULL.
pub const AGC_ERR_NULL: c_int = -1;
/// `AGC_ERR_IO`: writing to a `FILE*` failed.
pub const AGC_ERR_IO: c_int = -2;
/// `AGC_ERR_PANIC`: an internal error (a Rust panic) was caught at the boundary.
pub const AGC_ERR_PANIC: c_int = -3;

/// `agc_class_stats_t`: statistics of one size class.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgcClassStats {
    /// Bytes per block (16, 32, ..., 512).
    pub block_size: usize,
    /// Pools in use for this class.
    pub pools: usize,
    /// Blocks handed out and not yet freed.
    pub blocks_in_use: usize,
    /// Free blocks in this class's pools.
    pub blocks_free: usize,
}

/// `agc_stats_t`: a snapshot of the allocator.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgcStats {
    pub classes: [AgcClassStats; AGC_NUM_CLASSES],
    /// Arenas mapped since the start (cumulative).
    pub arenas_allocated_total: u64,
    /// Arenas given back to the OS since the start (cumulative).
    pub arenas_released_total: u64,
    /// Arenas mapped now.
    pub arenas_current: u64,
    /// Highest `arenas_current` seen.
    pub arenas_peak: u64,
    /// Of `arenas_current`, those fully free: the spare, and those waiting out the purge delay.
    pub arenas_free: u64,
    /// Pools in mapped arenas that hold no class.
    pub pools_free: usize,
    /// Bytes (usable size) currently held in the system allocator (large requests).
    pub large_bytes: usize,
    /// Blocks currently held in the system allocator.
    pub large_blocks: usize,
    /// 1 when debug mode (guards, fill patterns, quarantine) is on, else 0.
    pub debug: c_int,
}

// ---------------------------------------------------------------------------------------------
// Objects and the cycle collector

/// `agc_object`: the 16-byte header every object starts with (refcount, type).
pub type AgcObject = arenagc::object::ObjectHeader;
/// `agc_type`: the type descriptor, the Rust `TypeObject` unchanged.
pub type AgcType = arenagc::object::TypeObject;

/// `AGC_ERR_VALUE`: an argument is out of range (a bad generation, a type that cannot do what
/// was asked, an index past the end, unknown flag bits).
pub const AGC_ERR_VALUE: c_int = -4;
/// `AGC_ERR_STATE`: the call is not allowed in the current state (a refcount already zero, a
/// runtime still attached, detaching a runtime that is not the innermost attached one,
/// attaching or detaching from code the library runs).
pub const AGC_ERR_STATE: c_int = -5;

/// `AGC_TPFLAGS_HAVE_GC`: objects of the type have a GC head and may be tracked.
pub const AGC_TPFLAGS_HAVE_GC: u64 = 1 << 14;
/// `AGC_WEAKLIST_SIDE_TABLE`: `weaklist_offset` value of a GC type whose weak reference lists
/// live in the runtime instead of a slot in the object.
pub const AGC_WEAKLIST_SIDE_TABLE: isize = -1;

/// `AGC_GC_GENERATIONS`: generations 0, 1, 2 (the permanent one not counted).
pub const AGC_GC_GENERATIONS: usize = 3;
/// `AGC_GC_START`: the phase a gc callback gets before a collection.
pub const AGC_GC_START: c_int = 0;
/// `AGC_GC_STOP`: the phase a gc callback gets after a collection.
pub const AGC_GC_STOP: c_int = 1;

/// `AGC_DEBUG_STATS`: print statistics during collection (stderr).
pub const AGC_DEBUG_STATS: c_uint = 1;
/// `AGC_DEBUG_COLLECTABLE`: print the collectable objects found.
pub const AGC_DEBUG_COLLECTABLE: c_uint = 2;
/// `AGC_DEBUG_UNCOLLECTABLE`: print the uncollectable objects found.
pub const AGC_DEBUG_UNCOLLECTABLE: c_uint = 4;
/// `AGC_DEBUG_SAVEALL`: keep every unreachable object in `garbage` instead of freeing it.
pub const AGC_DEBUG_SAVEALL: c_uint = 32;
/// `AGC_DEBUG_LEAK`: COLLECTABLE | UNCOLLECTABLE | SAVEALL.
pub const AGC_DEBUG_LEAK: c_uint =
    AGC_DEBUG_COLLECTABLE | AGC_DEBUG_UNCOLLECTABLE | AGC_DEBUG_SAVEALL;

/// `agc_visitproc`: called for each object visited; nonzero stops the walk.
pub type AgcVisitProc = Option<arenagc::object::VisitProc>;
/// `agc_weakref_callback`: called once with the (already cleared) weak reference and the
/// user data when the referent dies.
pub type AgcWeakrefCallback =
    Option<unsafe extern "C" fn(wr: *mut AgcObject, data: *mut core::ffi::c_void)>;
/// `agc_gc_callback`: called at the start and the end of each collection.
pub type AgcGcCallback = Option<
    unsafe extern "C" fn(
        phase: c_int,
        generation: c_int,
        collected: usize,
        uncollectable: usize,
        data: *mut core::ffi::c_void,
    ),
>;

/// `agc_gen_stats_t`: statistics of one generation since its runtime started.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgcGenStats {
    /// Collections of this generation.
    pub collections: usize,
    /// Objects freed by them.
    pub collected: usize,
    /// Objects found uncollectable.
    pub uncollectable: usize,
}

/// `agc_gc_stats_t`: statistics of every generation, filled by `agc_gc_get_stats`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgcGcStats {
    pub generations: [AgcGenStats; AGC_GC_GENERATIONS],
}
