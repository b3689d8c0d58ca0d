//! The traces: one process-wide table from a block's address to its size and traceback, and
//! the interned tracebacks (the same stack is stored once and named by one id), as
//! `_tracemalloc.c` keeps them. Everything here runs under the `TABLES` lock (`mod.rs`).
//!
//! ```text
//!  traces   open addressing, linear probing:  [ addr | size | traceback id ]   addr 0: empty
//!  index    open addressing over the ids:     [ id + 1 ]                       0: empty
//!  words    the tracebacks, appended:         id -> [ hash | n | ip_0 .. ip_n-1 ]
//! ```
//!
//! Invariants:
//! - Every table lives in a `mem::Region` (memory from the kernel, never from the allocator).
//! - `traces` and `index` are at most half full, so a probe always ends at an empty slot; a
//!   removal shifts the entries after it back (no tombstones), so every entry stays reachable
//!   from its home slot.
//! - `current` is the sum of the weighed sizes in `traces` (`sample::weigh`: the size itself in
//!   exact mode, the estimate a sampled block stands for in sampled mode); `peak >= current`.
//!   `blocks` is likewise the sum of the weighed counts (`sample::weigh_count`: 1 in exact
//!   mode); `peak_blocks >= blocks`; the totals only grow until `clear`.
//! - With `marks` on (the process's tables), `sample::MARKS` counts the traces by address
//!   bucket: every added trace is marked, every removed one unmarked, `clear` unmarks all.
//! - A traceback id is an offset into `words`, valid until `clear` (ids survive `words`
//!   moving when it grows).

use super::freed::Ring;
use super::mem::Region;
use super::sample;

#[derive(Clone, Copy)]
#[repr(C)]
struct Entry {
    addr: usize,
    size: usize,
    tb: usize,
}

const FIRST_TRACES: usize = 4096;
const FIRST_INDEX: usize = 1024;
const FIRST_WORDS: usize = 16 * 1024;

/// The traces and tracebacks of one tracing session (see the module docs).
pub(crate) struct Tables {
    /// Tracing is on: only then are traces added.
    pub(crate) tracing: bool,
    /// Frames kept per traceback (tracemalloc's `nframe`).
    pub(crate) nframes: usize,
    /// The sampling mean in bytes; 0: exact mode.
    pub(crate) mean: usize,
    /// Keep `sample::MARKS` (the process's tables; a unit test's own tables do not).
    marks: bool,
    /// Bytes in traced blocks (estimated in sampled mode), and the most there were since the
    /// last reset.
    pub(crate) current: usize,
    pub(crate) peak: usize,
    /// Blocks traced now (estimated in sampled mode), their most since the last reset, and the
    /// blocks and bytes traced since tracing started or the last `clear` (`HeapStats`).
    pub(crate) blocks: usize,
    pub(crate) peak_blocks: usize,
    pub(crate) total_blocks: u64,
    pub(crate) total_bytes: u64,
    /// Incremented by every `clear`: traceback ids of an older generation mean nothing now.
    pub(crate) generation: u64,
    traces: Region,
    traces_len: usize,
    index: Region,
    index_len: usize,
    words: Region,
    words_used: usize,
    /// Debug mode's recently freed traced blocks (`freed.rs`), traceback ids of this generation.
    pub(crate) freed: Ring,
}

/// Where an address starts probing in a table of `mask + 1` slots (Fibonacci hashing: blocks
/// are 16-byte aligned, the multiplication spreads the high bits).
fn home(addr: usize, mask: usize) -> usize {
    ((addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) as usize & mask
}

/// The hash of a stack (instruction pointers).
pub(crate) fn hash_frames(ips: &[usize]) -> usize {
    let mut h: u64 = 0x345678 ^ ips.len() as u64;
    for &ip in ips {
        h = (h.rotate_left(5) ^ ip as u64).wrapping_mul(0x517C_C1B7_2722_0A95);
    }
    (h ^ (h >> 31)) as usize
}

impl Tables {
    /// The process's tables (keeping `sample::MARKS`).
    pub(crate) const fn new() -> Tables {
        let mut t = Tables::unmarked();
        t.marks = true;
        t
    }

    /// Tables that keep no marks (for unit tests).
    pub(crate) const fn unmarked() -> Tables {
        Tables {
            tracing: false,
            nframes: 1,
            mean: 0,
            marks: false,
            current: 0,
            peak: 0,
            blocks: 0,
            peak_blocks: 0,
            total_blocks: 0,
            total_bytes: 0,
            generation: 0,
            traces: Region::empty(),
            traces_len: 0,
            index: Region::empty(),
            index_len: 0,
            words: Region::empty(),
            words_used: 0,
            freed: Ring::empty(),
        }
    }

    /// Bytes the tables hold (tracemalloc's `get_tracemalloc_memory`).
    pub(crate) fn memory(&self) -> usize {
        self.traces.len() + self.index.len() + self.words.len() + self.freed.memory()
    }

    /// Live traces.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.traces_len
    }

    /// Forget every trace and traceback and give their memory back; the counters restart at 0.
    pub(crate) fn clear(&mut self) {
        self.traces.release();
        self.index.release();
        self.words.release();
        self.freed.clear();
        self.traces_len = 0;
        self.index_len = 0;
        self.words_used = 0;
        self.current = 0;
        self.peak = 0;
        self.blocks = 0;
        self.peak_blocks = 0;
        self.total_blocks = 0;
        self.total_bytes = 0;
        self.generation += 1;
        if self.marks {
            sample::unmark_all();
        }
    }

    /// Record a block of `size` bytes at `addr` allocated from stack `ips` (replacing a trace
    /// already there). False when the kernel refused memory for the tables (not recorded).
    pub(crate) fn record(&mut self, addr: usize, size: usize, ips: &[usize]) -> bool {
        match self.intern(ips) {
            Some(tb) => self.insert(addr, size, tb),
            None => false,
        }
    }

    /// The id of stack `ips`, stored now if it is new; None when the kernel refused memory.
    pub(crate) fn intern(&mut self, ips: &[usize]) -> Option<usize> {
        let hash = hash_frames(ips);
        if (self.index_len + 1) * 2 > self.index.len() / size_of::<usize>() && !self.grow_index() {
            return None;
        }
        let mask = self.index.len() / size_of::<usize>() - 1;
        let mut i = hash & mask;
        loop {
            let slot = self.index.slice::<usize>()[i];
            if slot == 0 {
                break;
            }
            let id = slot - 1;
            let w = self.words.slice::<usize>();
            if w[id] == hash && w[id + 1] == ips.len() && w[id + 2..id + 2 + ips.len()] == *ips {
                return Some(id);
            }
            i = (i + 1) & mask;
        }
        let need = self.words_used + 2 + ips.len();
        let cap = self.words.len() / size_of::<usize>();
        if need > cap {
            let new_cap = need.max(cap * 2).max(FIRST_WORDS);
            if !self.words.grow(new_cap * size_of::<usize>()) {
                return None;
            }
        }
        let id = self.words_used;
        let w = self.words.slice_mut::<usize>();
        w[id] = hash;
        w[id + 1] = ips.len();
        w[id + 2..id + 2 + ips.len()].copy_from_slice(ips);
        self.words_used = need;
        self.index.slice_mut::<usize>()[i] = id + 1;
        self.index_len += 1;
        Some(id)
    }

    fn grow_index(&mut self) -> bool {
        let slots = (self.index.len() / size_of::<usize>() * 2).max(FIRST_INDEX);
        let Some(mut new) = Region::map(slots * size_of::<usize>()) else {
            return false;
        };
        let words = self.words.slice::<usize>();
        let table = new.slice_mut::<usize>();
        for &slot in self.index.slice::<usize>() {
            if slot != 0 {
                let mut i = words[slot - 1] & (slots - 1);
                while table[i] != 0 {
                    i = (i + 1) & (slots - 1);
                }
                table[i] = slot;
            }
        }
        self.index = new;
        true
    }

    /// The stack of traceback `id`.
    pub(crate) fn frames(&self, id: usize) -> &[usize] {
        let w = self.words.slice::<usize>();
        &w[id + 2..id + 2 + w[id + 1]]
    }

    /// The slot of `addr` in `traces`, or the empty slot where it would go.
    fn find(&self, addr: usize) -> (usize, bool) {
        let t = self.traces.slice::<Entry>();
        let mask = t.len() - 1;
        let mut i = home(addr, mask);
        loop {
            match t[i].addr {
                0 => return (i, false),
                a if a == addr => return (i, true),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Trace `addr` again with a traceback of this generation (a realloc that failed).
    pub(crate) fn restore(&mut self, addr: usize, size: usize, tb: usize) -> bool {
        self.insert(addr, size, tb)
    }

    fn insert(&mut self, addr: usize, size: usize, tb: usize) -> bool {
        if (self.traces_len + 1) * 2 > self.traces.len() / size_of::<Entry>() && !self.grow_traces()
        {
            return false;
        }
        let (i, found) = self.find(addr);
        let e = &mut self.traces.slice_mut::<Entry>()[i];
        let old = found.then_some(e.size);
        *e = Entry { addr, size, tb };
        match old {
            // The block is traced already (tracemalloc replaces the trace).
            Some(old) => self.current -= sample::weigh(old, self.mean),
            None => {
                self.traces_len += 1;
                self.blocks += sample::weigh_count(size, self.mean);
                self.peak_blocks = self.peak_blocks.max(self.blocks);
                if self.marks {
                    sample::mark(addr);
                }
            }
        }
        let bytes = sample::weigh(size, self.mean);
        self.current += bytes;
        self.peak = self.peak.max(self.current);
        self.total_bytes += bytes as u64;
        self.total_blocks += sample::weigh_count(size, self.mean) as u64;
        true
    }

    fn grow_traces(&mut self) -> bool {
        let slots = (self.traces.len() / size_of::<Entry>() * 2).max(FIRST_TRACES);
        let Some(mut new) = Region::map(slots * size_of::<Entry>()) else {
            return false;
        };
        let table = new.slice_mut::<Entry>();
        for e in self.traces.slice::<Entry>() {
            if e.addr != 0 {
                let mut i = home(e.addr, slots - 1);
                while table[i].addr != 0 {
                    i = (i + 1) & (slots - 1);
                }
                table[i] = *e;
            }
        }
        self.traces = new;
        true
    }

    /// The size and traceback id of the block at `addr`, if it is traced.
    pub(crate) fn get(&self, addr: usize) -> Option<(usize, usize)> {
        if self.traces_len == 0 {
            return None;
        }
        let (i, found) = self.find(addr);
        found.then(|| {
            let e = self.traces.slice::<Entry>()[i];
            (e.size, e.tb)
        })
    }

    /// Remove the trace of `addr`; its size and traceback id, if it was traced.
    pub(crate) fn remove(&mut self, addr: usize) -> Option<(usize, usize)> {
        if self.traces_len == 0 {
            return None;
        }
        let (mut hole, found) = self.find(addr);
        if !found {
            return None;
        }
        let t = self.traces.slice_mut::<Entry>();
        let mask = t.len() - 1;
        let gone = t[hole];
        // Backward shift: move every later entry of the run whose home is not in (hole, j]
        // into the hole, so no probe stops early at it.
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            if t[j].addr == 0 {
                break;
            }
            let k = home(t[j].addr, mask);
            let stays = if hole <= j {
                hole < k && k <= j
            } else {
                hole < k || k <= j
            };
            if !stays {
                t[hole] = t[j];
                hole = j;
            }
        }
        t[hole] = Entry {
            addr: 0,
            size: 0,
            tb: 0,
        };
        self.traces_len -= 1;
        self.current -= sample::weigh(gone.size, self.mean);
        self.blocks -= sample::weigh_count(gone.size, self.mean);
        if self.marks {
            sample::unmark(addr);
        }
        Some((gone.size, gone.tb))
    }

    /// Copy the traces (`(size, traceback id)` pairs) and the tracebacks into fresh memory
    /// from the kernel, for reading without the lock. `None` when the kernel refused.
    pub(crate) fn copy(&self) -> Option<Copied> {
        let pairs = self.traces_len * 2;
        let words = pairs + self.words_used;
        if words == 0 {
            return Some(Copied {
                buf: Region::empty(),
                pairs: 0,
            });
        }
        let mut buf = Region::map(words * size_of::<usize>())?;
        let out = buf.slice_mut::<usize>();
        let mut n = 0;
        for e in self.traces.slice::<Entry>() {
            if e.addr != 0 {
                out[n] = e.size;
                out[n + 1] = e.tb;
                n += 2;
            }
        }
        out[pairs..words].copy_from_slice(&self.words.slice::<usize>()[..self.words_used]);
        Some(Copied { buf, pairs })
    }
}

/// A copy of the traces made by `Tables::copy`.
pub(crate) struct Copied {
    buf: Region,
    pairs: usize,
}

impl Copied {
    /// Each trace's `(size, traceback id)`.
    pub(crate) fn traces(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.buf.slice::<usize>()[..self.pairs]
            .chunks_exact(2)
            .map(|c| (c[0], c[1]))
    }

    /// The stack of traceback `id`.
    pub(crate) fn frames(&self, id: usize) -> &[usize] {
        let w = &self.buf.slice::<usize>()[self.pairs..];
        &w[id + 2..id + 2 + w[id + 1]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_and_intern() {
        let mut t = Tables::unmarked();
        let a = [1usize, 2, 3];
        let b = [4usize, 5];
        for i in 1..=10_000usize {
            assert!(t.record(i * 16, i, if i % 2 == 0 { &a } else { &b }));
        }
        assert_eq!(t.len(), 10_000);
        assert_eq!(t.current, (1..=10_000).sum::<usize>());
        // Two stacks, interned once each.
        assert_eq!(t.index_len, 2);
        let (size, tb) = t.get(16 * 42).unwrap();
        assert_eq!((size, t.frames(tb)), (42, &a[..]));
        for i in (1..=10_000usize).step_by(3) {
            assert_eq!(t.remove(i * 16).map(|r| r.0), Some(i));
        }
        for i in 1..=10_000usize {
            let expect = if (i - 1) % 3 == 0 { None } else { Some(i) };
            assert_eq!(t.get(i * 16).map(|r| r.0), expect, "block {i}");
        }
        let left: usize = (1..=10_000usize).filter(|i| (i - 1) % 3 != 0).sum();
        assert_eq!(t.current, left);
        assert_eq!(t.peak, (1..=10_000).sum::<usize>());
        let c = t.copy().unwrap();
        assert_eq!(c.traces().map(|(s, _)| s).sum::<usize>(), left);
        assert!(
            c.traces()
                .all(|(s, tb)| c.frames(tb) == if s % 2 == 0 { &a[..] } else { &b[..] })
        );
        t.clear();
        assert_eq!((t.len(), t.current, t.memory()), (0, 0, 0));
    }
}
