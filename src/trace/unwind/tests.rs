//! The walker against the system unwinder, and its parts.

use super::cfi::Cursor;
use super::*;

#[test]
fn rules_pack_and_unpack() {
    let r = Rule {
        cfa_rbp: true,
        cfa_off: 16,
        end: false,
        rbp_slot: 2,
    };
    assert_eq!(Rule::unpack(r.pack().unwrap()), r);
    let big = Rule {
        cfa_rbp: false,
        cfa_off: 8 * ((1 << OFF_BITS) - 1),
        end: true,
        rbp_slot: (1 << SLOT_FIELD_BITS) - 1,
    };
    assert_eq!(Rule::unpack(big.pack().unwrap()), big);
    assert!(Rule { cfa_off: 12, ..r }.pack().is_none());
    assert!(
        Rule {
            cfa_off: 8 << OFF_BITS,
            ..r
        }
        .pack()
        .is_none()
    );
}

#[test]
fn leb128() {
    let bytes = [0xe5u8, 0x8e, 0x26, 0x7f, 0x80, 0x7f];
    let p = bytes.as_ptr() as usize;
    // SAFETY: the array is readable.
    let mut c = unsafe { Cursor::new(p, p + bytes.len()) };
    assert_eq!(c.uleb(), Some(624_485));
    assert_eq!(c.sleb(), Some(-1));
    assert_eq!(c.sleb(), Some(-128));
    assert_eq!(c.u8(), None);
}

/// A chain of frames that cannot be merged, each calling `f` at the bottom.
#[inline(never)]
fn nest(depth: usize, f: &mut dyn FnMut()) {
    if depth == 0 {
        f();
    } else {
        nest(depth - 1, f);
    }
    core::hint::black_box(depth);
}

fn general(buf: &mut [usize]) -> usize {
    let mut n = 0;
    // SAFETY: the callback stores into `buf` and allocates nothing.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            let ip = frame.ip() as usize;
            if ip == 0 || n == buf.len() {
                return false;
            }
            buf[n] = ip;
            n += 1;
            true
        })
    };
    n
}

/// The walker finds the same return addresses as the system unwinder, from the frame that
/// called both down to the end of the stack.
#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
#[test]
fn same_frames_as_the_system_unwinder() {
    prepare();
    for depth in [0, 3, 20] {
        let (mut fast, mut slow) = ([0usize; 128], [0usize; 128]);
        let (mut nf, mut ns) = (None, 0);
        nest(depth, &mut || {
            nf = capture(&mut fast, None);
            ns = general(&mut slow);
        });
        let nf = nf.expect("the walker follows this stack");
        assert!(nf > depth, "depth {depth}: {nf} frames");
        // fast[0] is the closure's return address from `capture`; the closure's caller
        // (`nest`) is fast[1], which the system unwinder also reports.
        let at = slow[..ns]
            .iter()
            .position(|&ip| ip == fast[1])
            .expect("a common frame");
        assert_eq!(&fast[1..nf], &slow[at..ns], "depth {depth}");
    }
}

/// On a thread of its own, and again (from the cache).
#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
#[test]
fn threads_and_the_cache() {
    prepare();
    std::thread::spawn(|| {
        for _ in 0..3 {
            let (mut fast, mut slow) = ([0usize; 64], [0usize; 64]);
            let (mut nf, mut ns) = (None, 0);
            nest(5, &mut || {
                nf = capture(&mut fast, None);
                ns = general(&mut slow);
            });
            let nf = nf.unwrap();
            let at = slow[..ns].iter().position(|&ip| ip == fast[1]).unwrap();
            assert_eq!(&fast[1..nf], &slow[at..ns]);
        }
    })
    .join()
    .unwrap();
}

/// A short buffer keeps the innermost frames.
#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
#[test]
fn short_buffer() {
    prepare();
    let (mut all, mut two) = ([0usize; 64], [0usize; 2]);
    let (mut na, mut n2) = (None, None);
    nest(4, &mut || {
        na = capture(&mut all, None);
        n2 = capture(&mut two, None);
    });
    assert_eq!(n2, Some(2));
    assert!(na.unwrap() > 4);
    assert_eq!(all[1], two[1]);
}

/// Compares the walker with the system unwinder when dropped: a capture during a panic's
/// unwinding, with the personality routine's and `_Unwind_RaiseException`'s frames below.
#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
struct CompareOnDrop;

#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
impl Drop for CompareOnDrop {
    fn drop(&mut self) {
        let (mut fast, mut slow) = ([0usize; 128], [0usize; 128]);
        let (mut nf, mut ns) = (None, 0);
        nest(2, &mut || {
            nf = capture(&mut fast, None);
            ns = general(&mut slow);
        });
        // The walker may leave this stack to the system unwinder; when it takes it, it finds
        // the same frames.
        if let Some(nf) = nf {
            let at = slow[..ns].iter().position(|&ip| ip == fast[1]).unwrap();
            assert_eq!(&fast[1..nf], &slow[at..ns]);
            WALKED_IN_UNWIND.store(true, core::sync::atomic::Ordering::Relaxed);
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
static WALKED_IN_UNWIND: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);

#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
#[test]
fn during_a_panic() {
    prepare();
    let r = std::panic::catch_unwind(|| {
        let _guard = CompareOnDrop;
        nest(3, &mut || std::panic::resume_unwind(Box::new(7u8)));
    });
    assert!(r.is_err());
    println!(
        "walked during unwinding: {}",
        WALKED_IN_UNWIND.load(core::sync::atomic::Ordering::Relaxed)
    );
}

/// In a signal handler the stack crosses the kernel's signal frame, whose CFI (the 'S'
/// augmentation, DWARF expressions) the walker leaves to the system unwinder.
#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
#[test]
fn in_a_signal_handler_the_system_unwinder_takes_over() {
    use core::sync::atomic::{AtomicUsize, Ordering};
    static OUTCOME: AtomicUsize = AtomicUsize::new(0);
    extern "C" fn handler(_: libc::c_int) {
        let mut fast = [0usize; 128];
        let outcome = match capture(&mut fast, None) {
            None => 1,
            Some(_) => 2,
        };
        OUTCOME.store(outcome, Ordering::Relaxed);
    }
    prepare();
    // SAFETY: installs a handler that only stores into a static and reads this thread's stack;
    // raise runs it on this thread before returning.
    unsafe {
        let old = libc::signal(
            libc::SIGUSR2,
            handler as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::raise(libc::SIGUSR2);
        libc::signal(libc::SIGUSR2, old);
    }
    assert_eq!(OUTCOME.load(Ordering::Relaxed), 1);
}

/// A frame realigned for an over-aligned local (LLVM then finds the CFA from rbp) and a frame
/// too large for a cache word (its rule is computed on every walk): both followed exactly.
#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
#[test]
fn realigned_and_huge_frames() {
    #[repr(align(128))]
    struct Aligned([u8; 128]);

    #[inline(never)]
    fn realigned(f: &mut dyn FnMut()) {
        let a = Aligned([1; 128]);
        core::hint::black_box(&a.0);
        f();
        core::hint::black_box(&a.0);
    }

    #[inline(never)]
    fn huge(f: &mut dyn FnMut()) {
        // 600 KiB: over the 512 KiB a cache word can describe.
        let a = [7u8; 600 * 1024];
        core::hint::black_box(&a);
        f();
        core::hint::black_box(&a);
    }

    prepare();
    // A thread with room for the huge frame.
    std::thread::Builder::new()
        .stack_size(4 << 20)
        .spawn(|| {
            for round in 0..2 {
                let (mut fast, mut slow) = ([0usize; 128], [0usize; 128]);
                let (mut nf, mut ns) = (None, 0);
                realigned(&mut || {
                    huge(&mut || {
                        nest(2, &mut || {
                            nf = capture(&mut fast, None);
                            ns = general(&mut slow);
                        })
                    })
                });
                let nf = nf.expect("the walker follows realigned and huge frames");
                let at = slow[..ns].iter().position(|&ip| ip == fast[1]).unwrap();
                assert_eq!(&fast[1..nf], &slow[at..ns], "round {round}");
                assert!(nf >= 6, "round {round}: {nf} frames");
            }
        })
        .unwrap()
        .join()
        .unwrap();
}
