//! The tracer's own stack walker for x86-64 Linux: DWARF call-frame information read straight
//! from the loaded `.eh_frame_hdr`/`.eh_frame` of each module, with the rule for each code
//! address computed once and kept in a lock-free cache, so a capture costs a few nanoseconds per
//! frame instead of the unwinder's ~100 (`_Unwind_Backtrace` finds and interprets every frame's
//! FDE again on every call). It models what compiled code on this target uses: the canonical
//! frame address (CFA) as `rsp` or `rbp` plus an offset, the return address at `CFA - 8`, and
//! `rbp` either kept or saved at a slot below the CFA. Anything else (a CFA or register given by
//! a DWARF expression, as in signal trampolines, PLT stubs and stack-realigning prologues;
//! 64-bit DWARF; an unusual table encoding; code of no loaded object, as a JIT's, whose frames
//! only `__register_frame` knows) makes `capture` return `None`, and the caller takes the
//! general unwinder (`backtrace`, `hook.rs`) for that stack.
//!
//! ```text
//!   cache slot = pc mod SLOTS        word = (pc / SLOTS) << RULE_BITS | rule     (0 = empty)
//!   rule       = cfa via rbp? | end of stack? | CFA offset / 8 | rbp saved at CFA - 8k (k, 0 = kept)
//! ```
//!
//! Invariants:
//! - A cache word names its code address exactly (slot and tag together), and holds the rule
//!   that address's CFI gives; a word is written whole with one atomic store, so a reader sees
//!   an old word, a new one or empty, never a mix.
//! - The cache is emptied whenever the loader's count of objects added and removed has changed
//!   since the last capture (`dl_iterate_phdr`'s `dlpi_adds`/`dlpi_subs`), before it is read:
//!   a rule never outlives the code it was computed for (an address on the capturing thread's
//!   own stack is code that is still loaded).
//! - Memory is read only (a) inside the `.eh_frame_hdr` the loader reports for a code address
//!   and the CIE/FDE records it points to, bounded by their lengths, and (b) at stack slots
//!   between the current stack pointer and the CFA of a frame whose CFI was found, each CFA
//!   strictly above the last and within `STACK_SPAN` of the first: the same trust the system
//!   unwinder places in the CFI.
//! - Nothing here allocates. The generation check holds `LOADER` around `dl_iterate_phdr`
//!   (which takes the loader's `dl_load_write_lock`, as libgcc's unwinder does on older glibc),
//!   and the allocator's fork handlers hold `LOADER` across every fork, so a child never
//!   inherits the loader's lock from a thread that was checking.

#![cfg_attr(
    not(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu")),
    allow(dead_code)
)]

/// Capture return addresses of the calling stack into `buf`, innermost caller first (the
/// caller of `capture` is `buf[0]`), skipping addresses in `skip`; how many were written, or
/// `None` when a frame's CFI is beyond this walker (the caller then uses the general unwinder).
#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
#[inline(never)]
pub(super) fn capture(buf: &mut [usize], skip: Option<(usize, usize)>) -> Option<usize> {
    let (pc, sp, bp): (usize, usize, usize);
    // SAFETY: reads the instruction pointer (of the next instruction, inside this function,
    // whose CFI is this function's at this point: the block moves no stack pointer), the stack
    // pointer and rbp into registers; touches no memory.
    unsafe {
        core::arch::asm!(
            "lea {pc}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            pc = out(reg) pc,
            sp = out(reg) sp,
            bp = out(reg) bp,
            options(nomem, nostack, preserves_flags),
        );
    }
    imp::walk(pc, sp, bp, buf, skip)
}

/// Elsewhere the general unwinder does every capture.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu")))]
pub(super) fn capture(_buf: &mut [usize], _skip: Option<(usize, usize)>) -> Option<usize> {
    None
}

/// Make the walker ready (find `_dl_find_object`): called by `start`, outside any allocation.
pub(super) fn prepare() {
    #[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
    imp::prepare();
}

/// A frame's rule: how to find its caller's frame (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rule {
    /// The CFA is rbp + `cfa_off` (else rsp + `cfa_off`).
    cfa_rbp: bool,
    cfa_off: u64,
    /// The return address is undefined: the outermost frame.
    end: bool,
    /// rbp was saved at CFA - 8 * `rbp_slot` (0: rbp is the caller's).
    rbp_slot: u64,
}

/// Bits of a cache word that hold the rule; the rest is the tag.
const RULE_BITS: u32 = 30;
const OFF_BITS: u32 = 16;
const SLOT_FIELD_BITS: u32 = RULE_BITS - 2 - OFF_BITS;

impl Rule {
    /// The rule in `RULE_BITS` bits, if it fits.
    fn pack(self) -> Option<u64> {
        if self.cfa_off % 8 != 0
            || self.cfa_off / 8 >= 1 << OFF_BITS
            || self.rbp_slot >= 1 << SLOT_FIELD_BITS
        {
            return None;
        }
        Some(
            self.cfa_rbp as u64
                | (self.end as u64) << 1
                | (self.cfa_off / 8) << 2
                | self.rbp_slot << (2 + OFF_BITS),
        )
    }

    fn unpack(w: u64) -> Rule {
        Rule {
            cfa_rbp: w & 1 != 0,
            end: w & 2 != 0,
            cfa_off: ((w >> 2) & ((1 << OFF_BITS) - 1)) * 8,
            rbp_slot: (w >> (2 + OFF_BITS)) & ((1 << SLOT_FIELD_BITS) - 1),
        }
    }
}

/// How a register's caller value is found (only rbp and the return address are followed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Saved {
    /// The caller's value is this frame's (`same_value`, or no rule).
    Same,
    /// Undefined: for the return address, the end of the stack.
    Undefined,
    /// Saved at CFA + n.
    At(i64),
    /// A rule this walker does not follow (a register copy, an expression).
    Other,
}

/// The CFI row at one address: what the walker needs of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Row {
    /// DWARF register of the CFA (7 rsp, 6 rbp), `None` for an expression.
    pub(super) cfa_reg: Option<u64>,
    pub(super) cfa_off: i64,
    pub(super) ra: Saved,
    pub(super) rbp: Saved,
}

impl Row {
    pub(super) const fn new() -> Row {
        Row {
            cfa_reg: None,
            cfa_off: 0,
            ra: Saved::Same,
            rbp: Saved::Same,
        }
    }

    /// The walker's rule for this row, if it can follow it.
    fn rule(&self) -> Option<Rule> {
        if self.ra == Saved::Undefined {
            // The outermost frame (`_start`, a thread's `clone`): nothing else matters.
            return Some(Rule {
                cfa_rbp: false,
                cfa_off: 0,
                end: true,
                rbp_slot: 0,
            });
        }
        let cfa_rbp = match self.cfa_reg {
            Some(RSP) => false,
            Some(RBP) => true,
            _ => return None,
        };
        let cfa_off = u64::try_from(self.cfa_off).ok()?;
        if self.ra != Saved::At(-8) {
            return None;
        }
        let rbp_slot = match self.rbp {
            Saved::Same => 0,
            Saved::At(n) if n < 0 && n % 8 == 0 => (-n / 8) as u64,
            _ => return None,
        };
        Some(Rule {
            cfa_rbp,
            cfa_off,
            end: false,
            rbp_slot,
        })
    }
}

/// DWARF register numbers on x86-64.
pub(super) const RBP: u64 = 6;
const RSP: u64 = 7;

mod cfi;

#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
mod imp {
    use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use super::cfi::row_at;
    use super::{RULE_BITS, Rule};
    use crate::alloc::SpinLock;

    /// Cache slots (a power of two): 64 KiB of words.
    const SLOT_BITS: u32 = 13;
    const SLOTS: usize = 1 << SLOT_BITS;
    /// Code addresses the cache can name (x86-64 user space below the 47-bit line).
    const PC_LIMIT: usize = 1 << (64 - RULE_BITS + SLOT_BITS);
    /// The furthest a CFA may lie above the stack pointer the walk started at.
    const STACK_SPAN: usize = 1 << 30;

    static CACHE: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
    /// Held around the loader check (`dl_iterate_phdr`, which holds the loader's
    /// `dl_load_write_lock`, a lock glibc's `fork` neither takes nor resets): the allocator's
    /// fork handlers hold it across every fork, so no thread is inside the loader's lock when
    /// the child is made (before, about 1 fork in 70 of a program tracing on other threads left
    /// a child that hung at its first traced allocation).
    static LOADER: SpinLock<()> = SpinLock::new(());
    /// The loader's objects added plus removed when the cache was last emptied (`u64::MAX`:
    /// never).
    static GENERATION: AtomicU64 = AtomicU64::new(u64::MAX);
    /// `_dl_find_object` (glibc 2.35), as an address: 0 until `prepare`, 1 when missing.
    static FIND_OBJECT: AtomicUsize = AtomicUsize::new(0);

    /// glibc's `struct dl_find_object` on x86-64, with room to spare.
    #[repr(C)]
    struct DlFindObject {
        flags: u64,
        map_start: usize,
        map_end: usize,
        link_map: usize,
        eh_frame: usize,
        reserved: [u64; 16],
    }

    type FindObject = unsafe extern "C" fn(*mut libc::c_void, *mut DlFindObject) -> libc::c_int;

    pub(super) fn prepare() {
        static REGISTERED: std::sync::Once = std::sync::Once::new();
        REGISTERED.call_once(|| {
            // After the tracer's CONTROL and TABLES (`trace::start_with`): the fork handlers
            // take the locks in that order, and LOADER's holder takes no other lock.
            crate::alloc::hold_across_fork(&LOADER);
        });
        if FIND_OBJECT.load(Ordering::Acquire) != 0 {
            return;
        }
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name.
        let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_dl_find_object".as_ptr()) };
        FIND_OBJECT.store(if f.is_null() { 1 } else { f as usize }, Ordering::Release);
    }

    /// The loader's objects added plus removed (both only grow).
    fn loader_generation() -> u64 {
        extern "C" fn first(
            info: *mut libc::dl_phdr_info,
            _size: libc::size_t,
            data: *mut libc::c_void,
        ) -> libc::c_int {
            // SAFETY: the loader passes a valid info for the call; `data` is our u64.
            unsafe {
                let info = &*info;
                *(data as *mut u64) = info.dlpi_adds.wrapping_add(info.dlpi_subs);
            }
            1
        }
        let mut g = 0u64;
        // SAFETY: the callback writes only `g`, and stops the iteration at the first object.
        unsafe { libc::dl_iterate_phdr(Some(first), &mut g as *mut u64 as *mut libc::c_void) };
        g
    }

    /// The rule for code address `pc` (a return address less one, or an address inside the
    /// capture itself): `Ok(None)` when its object's CFI has no FDE for it (the end of the walk),
    /// `Err(())` when the walker cannot say (no object, or CFI it does not model).
    fn rule(pc: usize) -> Result<Option<Rule>, ()> {
        let slot = pc & (SLOTS - 1);
        let tag = (pc >> SLOT_BITS) as u64;
        if pc < PC_LIMIT {
            let w = CACHE[slot].load(Ordering::Relaxed);
            if w != 0 && w >> RULE_BITS == tag {
                return Ok(Some(Rule::unpack(w & ((1 << RULE_BITS) - 1))));
            }
        }
        let find = FIND_OBJECT.load(Ordering::Acquire);
        if find <= 1 {
            return Err(());
        }
        // SAFETY: FIND_OBJECT holds `_dl_find_object`'s address (`prepare`).
        let find: FindObject = unsafe { core::mem::transmute::<usize, FindObject>(find) };
        // SAFETY: zeroed is a valid value of the plain struct the call fills in.
        let mut obj: DlFindObject = unsafe { core::mem::zeroed() };
        // SAFETY: `_dl_find_object` reads the loader's tables and writes `obj`.
        if unsafe { find(pc as *mut libc::c_void, &mut obj) } != 0 || obj.eh_frame == 0 {
            // Code the loader does not know (a JIT's), or an object without a search table:
            // the system unwinder also consults frames registered with `__register_frame`.
            return Err(());
        }
        // SAFETY: `eh_frame` is the loaded `.eh_frame_hdr` (PT_GNU_EH_FRAME) of the object that
        // contains `pc`.
        let Some(row) = (unsafe { row_at(obj.eh_frame, pc) })? else {
            return Ok(None);
        };
        let rule = row.rule().ok_or(())?;
        if let (true, Some(bits)) = (pc < PC_LIMIT, rule.pack()) {
            CACHE[slot].store(tag << RULE_BITS | bits, Ordering::Relaxed);
        }
        Ok(Some(rule))
    }

    /// Empty the cache if the loader's objects changed since it was last emptied. False, and
    /// nothing checked, while another thread is forking (LOADER is held for the fork; a thread
    /// that holds a stdio lock must not wait for it: `alloc/lock.rs`): the caller then leaves
    /// the stack to the system unwinder.
    fn check_generation() -> bool {
        let Some(_held) = LOADER.lock_or_busy() else {
            return false;
        };
        let g = loader_generation();
        if GENERATION.load(Ordering::Acquire) != g {
            for w in CACHE.iter() {
                w.store(0, Ordering::Relaxed);
            }
            GENERATION.store(g, Ordering::Release);
        }
        true
    }

    /// Read the word at `addr`, a stack slot between the stack pointer and a CFA (see the
    /// module invariants).
    ///
    /// # Safety
    /// `addr` is 8 readable bytes of this thread's stack.
    unsafe fn read(addr: usize) -> usize {
        // SAFETY: by the contract. Volatile: the compiler must not assume anything of memory
        // it does not know is live.
        unsafe { core::ptr::read_volatile(addr as *const usize) }
    }

    pub(super) fn walk(
        mut pc: usize,
        mut sp: usize,
        mut bp: usize,
        buf: &mut [usize],
        skip: Option<(usize, usize)>,
    ) -> Option<usize> {
        if !check_generation() {
            return None;
        }
        let sp0 = sp;
        let mut n = 0;
        while n < buf.len() {
            let Some(rule) = rule(pc).ok()? else { break };
            if rule.end {
                break;
            }
            let cfa = if rule.cfa_rbp { bp } else { sp }.wrapping_add(rule.cfa_off as usize);
            if cfa <= sp || cfa - sp0 > STACK_SPAN || cfa % 8 != 0 {
                return None;
            }
            // SAFETY: the return address is at CFA - 8, in [sp, cfa): this frame's part of the
            // stack, which its CFI describes (module invariants).
            let ra = unsafe { read(cfa - 8) };
            if rule.rbp_slot != 0 {
                let at = cfa.wrapping_sub(8 * rule.rbp_slot as usize);
                if at < sp || at >= cfa {
                    return None;
                }
                // SAFETY: in [sp, cfa), as above.
                bp = unsafe { read(at) };
            }
            sp = cfa;
            if ra == 0 {
                break;
            }
            if !skip.is_some_and(|(lo, hi)| (lo..hi).contains(&ra)) {
                buf[n] = ra;
                n += 1;
            }
            pc = ra - 1;
        }
        Some(n)
    }
}

#[cfg(test)]
mod tests;
