//! Tests of the large blocks (`large.rs`) and their per-thread counts.

use super::thread;

fn in_fresh_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::spawn(f).join().expect("test thread panicked")
}

/// A block the system allocator handed out before us (as when the malloc replacement is
/// `dlopen`ed), freed through us: the large-block totals must not wrap to absurd figures.
#[test]
fn large_totals_clamp_at_zero_for_blocks_we_never_counted() {
    // SAFETY: a fresh glibc block, freed once (through large::free, which hands it to glibc).
    unsafe {
        let p = libc::malloc(200_000).cast::<u8>();
        assert!(!p.is_null());
        super::large::free(p);
    }
    let (bytes, blocks) = super::large::totals();
    assert!(
        bytes < 1 << 48 && blocks < 1 << 48,
        "wrapped: {bytes} {blocks}"
    );
}

/// Large blocks are counted by the thread that allocates or frees them, in its own heap, with no
/// shared counter: a thread that frees another's blocks counts below zero, and the two shares
/// sum to nothing once every block is gone.
#[test]
fn large_blocks_are_counted_per_thread() {
    fn share() -> (isize, isize) {
        let h = thread::current();
        if h.is_null() {
            return (0, 0); // no heap yet: the first count makes one
        }
        // SAFETY: h is the calling thread's own live heap.
        let c = unsafe { &(*h).large };
        (
            c.bytes.load(core::sync::atomic::Ordering::Relaxed) as isize,
            c.blocks.load(core::sync::atomic::Ordering::Relaxed) as isize,
        )
    }
    let (tx, rx) = std::sync::mpsc::channel::<Vec<usize>>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(isize, isize)>();
    let freer = std::thread::spawn(move || {
        let blocks = rx.recv().unwrap();
        for p in blocks {
            // SAFETY: each block came from large::alloc on the other thread and is freed once.
            unsafe { super::large::free(p as *mut u8) };
        }
        done_tx.send(share()).unwrap();
    });
    in_fresh_thread(move || {
        let before = share();
        let blocks: Vec<usize> = (0..10)
            .map(|i| super::large::alloc(1000 + 100 * i, 16, false) as usize)
            .collect();
        let after = share();
        assert_eq!(
            after.1 - before.1,
            10,
            "the allocating thread counts its blocks"
        );
        let bytes = after.0 - before.0;
        assert!(bytes >= (0..10).map(|i| 1000 + 100 * i).sum::<usize>() as isize);
        tx.send(blocks).unwrap();
        let theirs = done_rx.recv().unwrap();
        assert_eq!(theirs.1, -10, "the freeing thread counts below zero");
        assert_eq!(theirs.0, -bytes, "and the shares sum to nothing");
        assert_eq!(share(), after, "the allocating thread's share is its own");
    });
    freer.join().unwrap();
}
