//! Property test: random sequences of alloc / alloc_zeroed / realloc / free of random sizes and
//! alignments through `ArenaAlloc`. Every block is filled with a pattern derived from its id and
//! checked before it is resized or freed: no overlap, no corruption, alignment always honoured.

use arenagc::ArenaAlloc;
use core::alloc::{GlobalAlloc, Layout};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Alloc {
        size: usize,
        align_shift: u32,
        zeroed: bool,
    },
    Free {
        pick: usize,
    },
    Realloc {
        pick: usize,
        size: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let size = prop_oneof![1usize..=64, 1usize..=512, 500usize..=600, 1usize..=4096];
    prop_oneof![
        4 => (size.clone(), 0u32..=7, any::<bool>()).prop_map(|(size, align_shift, zeroed)| Op::Alloc { size, align_shift, zeroed }),
        3 => any::<usize>().prop_map(|pick| Op::Free { pick }),
        2 => (any::<usize>(), size).prop_map(|(pick, size)| Op::Realloc { pick, size }),
    ]
}

struct Live {
    ptr: *mut u8,
    layout: Layout,
    id: u64,
}

fn byte(id: u64, i: usize) -> u8 {
    (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 ^ (i as u8).wrapping_mul(31)
}

fn fill(b: &Live) {
    // SAFETY: b.ptr is a live block of b.layout.size() bytes.
    let s = unsafe { core::slice::from_raw_parts_mut(b.ptr, b.layout.size()) };
    for (i, x) in s.iter_mut().enumerate() {
        *x = byte(b.id, i);
    }
}

fn check(b: &Live, len: usize) {
    // SAFETY: b.ptr is a live block of at least len bytes.
    let s = unsafe { core::slice::from_raw_parts(b.ptr, len) };
    for (i, &x) in s.iter().enumerate() {
        assert_eq!(x, byte(b.id, i), "block {} corrupted at byte {i}", b.id);
    }
}

fn no_overlap(live: &[Live]) {
    let mut v: Vec<(usize, usize)> = live
        .iter()
        .map(|b| (b.ptr as usize, b.layout.size()))
        .collect();
    v.sort_unstable();
    for w in v.windows(2) {
        assert!(
            w[0].0 + w[0].1 <= w[1].0,
            "blocks overlap: {:#x}+{} and {:#x}",
            w[0].0,
            w[0].1,
            w[1].0
        );
    }
}

fn run(ops: Vec<Op>) {
    let mut live: Vec<Live> = Vec::new();
    let mut next_id = 0u64;
    for op in ops {
        match op {
            Op::Alloc {
                size,
                align_shift,
                zeroed,
            } => {
                let layout = Layout::from_size_align(size, 1 << align_shift).unwrap();
                // SAFETY: non-zero size layout.
                let ptr = unsafe {
                    if zeroed {
                        ArenaAlloc.alloc_zeroed(layout)
                    } else {
                        ArenaAlloc.alloc(layout)
                    }
                };
                assert!(!ptr.is_null());
                assert_eq!(
                    ptr as usize % layout.align(),
                    0,
                    "alignment {} not honoured",
                    layout.align()
                );
                if zeroed {
                    // SAFETY: fresh block of size bytes.
                    let bytes = unsafe { core::slice::from_raw_parts(ptr, size) };
                    assert!(bytes.iter().all(|&x| x == 0));
                }
                let b = Live {
                    ptr,
                    layout,
                    id: next_id,
                };
                next_id += 1;
                fill(&b);
                live.push(b);
            }
            Op::Free { pick } if !live.is_empty() => {
                let b = live.swap_remove(pick % live.len());
                check(&b, b.layout.size());
                // SAFETY: b is live with this layout.
                unsafe { ArenaAlloc.dealloc(b.ptr, b.layout) };
            }
            Op::Realloc { pick, size } if !live.is_empty() => {
                let i = pick % live.len();
                let old = &live[i];
                check(old, old.layout.size());
                // SAFETY: old is live with its layout; size is non-zero and fits the align.
                let p = unsafe { ArenaAlloc.realloc(old.ptr, old.layout, size) };
                assert!(!p.is_null());
                let nb = Live {
                    ptr: p,
                    layout: Layout::from_size_align(size, old.layout.align()).unwrap(),
                    id: old.id,
                };
                assert_eq!(p as usize % nb.layout.align(), 0);
                check(&nb, old.layout.size().min(size));
                let mut nb = nb;
                nb.id = next_id;
                next_id += 1;
                fill(&nb);
                live[i] = nb;
            }
            _ => {}
        }
        no_overlap(&live);
    }
    for b in live {
        check(&b, b.layout.size());
        // SAFETY: b is live with this layout.
        unsafe { ArenaAlloc.dealloc(b.ptr, b.layout) };
    }
    arenagc::alloc::validate().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_alloc_realloc_free(ops in prop::collection::vec(op(), 1..400)) {
        run(ops);
    }

    /// The same, with half the frees made by another thread (remote frees).
    #[test]
    fn random_ops_with_remote_frees(ops in prop::collection::vec(op(), 1..300)) {
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Layout)>();
        let freer = std::thread::spawn(move || {
            for (p, l) in rx {
                // SAFETY: each block is sent once, live, with its layout.
                unsafe { ArenaAlloc.dealloc(p as *mut u8, l) };
            }
        });
        let mut kept = Vec::new();
        for (k, op) in ops.into_iter().enumerate() {
            if let Op::Alloc { size, align_shift, .. } = op {
                let l = Layout::from_size_align(size, 1 << align_shift).unwrap();
                // SAFETY: non-zero size.
                let p = unsafe { ArenaAlloc.alloc(l) };
                prop_assert!(!p.is_null());
                // SAFETY: fresh block of l.size() bytes.
                unsafe { p.write_bytes(k as u8, l.size()) };
                if k % 2 == 0 { tx.send((p as usize, l)).unwrap() } else { kept.push((p, l, k as u8)) }
            }
        }
        drop(tx);
        freer.join().unwrap();
        for (p, l, v) in kept {
            // SAFETY: p is live with layout l.
            let intact = unsafe { core::slice::from_raw_parts(p, l.size()) }.iter().all(|&x| x == v);
            prop_assert!(intact, "kept block corrupted");
            // SAFETY: as above.
            unsafe { ArenaAlloc.dealloc(p, l) };
        }
        arenagc::alloc::validate().unwrap();
    }
}
