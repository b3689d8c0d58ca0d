//! Memory for the tracer's own tables, straight from the kernel: the one file of `trace/` that
//! maps memory. The tables never take memory from the allocator they trace, so recording a
//! trace cannot recurse into the tracer and holding the tables' lock never waits for an
//! allocator lock (the tables' lock is the allocator's `SpinLock`, held across fork by the
//! allocator's handlers).
//!
//! Invariants:
//! - A `Region` owns `len` bytes of private anonymous memory at `ptr` (zero-filled when mapped),
//!   or nothing (`len == 0`, `ptr` dangling); it is unmapped exactly once (on drop or `release`).
//! - Growing keeps the contents (`mremap` may move the region: callers keep offsets, never
//!   addresses, across a grow).

use core::ptr::{self, NonNull};

/// Private anonymous memory (see the module docs).
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a Region is plain owned memory; whoever owns it may use it from any thread.
unsafe impl Send for Region {}

impl Region {
    /// No memory.
    pub(crate) const fn empty() -> Region {
        Region {
            ptr: NonNull::dangling(),
            len: 0,
        }
    }

    /// `len > 0` zeroed bytes, or `None` when the kernel refuses.
    pub(crate) fn map(len: usize) -> Option<Region> {
        debug_assert!(len > 0);
        // SAFETY: a fresh private anonymous mapping touches no existing memory.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(Region {
            ptr: NonNull::new(p.cast())?,
            len,
        })
    }

    /// Grow to `new_len` bytes (more than now), keeping the contents; the new bytes are zero.
    /// False (and the region unchanged) when the kernel refuses.
    pub(crate) fn grow(&mut self, new_len: usize) -> bool {
        debug_assert!(new_len > self.len);
        if self.len == 0 {
            return match Region::map(new_len) {
                Some(r) => {
                    *self = r;
                    true
                }
                None => false,
            };
        }
        // SAFETY: ptr/len is our own mapping; MREMAP_MAYMOVE lets the kernel move it (nothing
        // keeps addresses into it across this call, per the invariants).
        let p = unsafe {
            libc::mremap(
                self.ptr.as_ptr().cast(),
                self.len,
                new_len,
                libc::MREMAP_MAYMOVE,
            )
        };
        if p == libc::MAP_FAILED {
            return false;
        }
        // SAFETY: mremap returned a non-failed mapping address, never null.
        self.ptr = unsafe { NonNull::new_unchecked(p.cast()) };
        self.len = new_len;
        true
    }

    /// Give the memory back; the region is empty afterwards.
    pub(crate) fn release(&mut self) {
        if self.len != 0 {
            // SAFETY: our own mapping, unmapped once (then forgotten).
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
        self.ptr = NonNull::dangling();
        self.len = 0;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The region as `len / size_of::<T>()` values of a plain-data type `T` (all-zero bytes
    /// are a valid `T`, and `T`'s alignment is at most a page).
    pub(crate) fn slice<T: Copy>(&self) -> &[T] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the mapping is page-aligned, readable, owned by self and zero-initialised
        // or written only as T (callers' types are integers and structs of integers).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().cast(), self.len / size_of::<T>()) }
    }

    /// As `slice`, mutable.
    pub(crate) fn slice_mut<T: Copy>(&mut self) -> &mut [T] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: as in `slice`; `&mut self` makes this the only view.
        unsafe {
            core::slice::from_raw_parts_mut(self.ptr.as_ptr().cast(), self.len / size_of::<T>())
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        self.release();
    }
}
