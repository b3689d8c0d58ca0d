//! Thread churn: workers that allocate, free, hand blocks to each other and exit at random
//! points while the others keep freeing into their pools, generation after generation. Every
//! block carries a pattern derived from its id, checked byte by byte when it is freed (a block
//! handed out twice, or written by the allocator while live, breaks it). At the end every block
//! is freed and the allocator's own accounting must come back to exactly where it started: a
//! block stranded anywhere in the cross-thread protocols (remote lists, delayed stacks,
//! abandoned pools) shows up as a block still in use.
//!
//! A binary of its own, with the system's global allocator, so the only blocks in arenagc's
//! figures are this test's.

use arenagc::ArenaAlloc;
use arenagc::alloc::stats;
use core::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const SLOTS: usize = 4;
const GENERATIONS: usize = 40;

struct Block {
    ptr: usize,
    size: usize,
    id: u64,
}

fn byte(id: u64, i: usize) -> u8 {
    (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 ^ i as u8
}

fn alloc(size: usize, id: u64) -> Block {
    let l = Layout::from_size_align(size, 8).unwrap();
    // SAFETY: valid, non-zero layout.
    let p = unsafe { ArenaAlloc.alloc(l) };
    assert!(!p.is_null());
    for i in 0..size {
        // SAFETY: p is a fresh block of `size` bytes.
        unsafe { *p.add(i) = byte(id, i) };
    }
    Block {
        ptr: p as usize,
        size,
        id,
    }
}

fn free(b: Block) {
    let p = b.ptr as *mut u8;
    for i in 0..b.size {
        // SAFETY: p is a live block of b.size bytes that only we hold.
        let got = unsafe { *p.add(i) };
        assert_eq!(got, byte(b.id, i), "block {} byte {i} changed", b.id);
    }
    let l = Layout::from_size_align(b.size, 8).unwrap();
    // SAFETY: p is live with layout l and freed once.
    unsafe { ArenaAlloc.dealloc(p, l) };
}

/// xorshift64*, one per worker.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

type Mailboxes = Arc<Vec<Mutex<Vec<Block>>>>;

/// One worker's life: random operations, then exit with some blocks still live in mailboxes.
fn worker(slot: usize, seed: u64, boxes: Mailboxes, ids: Arc<AtomicU64>) {
    let mut rng = Rng(seed | 1);
    let mut mine: Vec<Block> = Vec::new();
    let ops = 500 + rng.below(3000);
    for _ in 0..ops {
        match rng.below(10) {
            // Allocate: mostly small sizes, some at the top of the small range, a few large.
            0..=3 => {
                let size = match rng.below(8) {
                    0..=5 => 1 + rng.below(128) as usize,
                    6 => 384 + rng.below(129) as usize,
                    _ => 513 + rng.below(2000) as usize,
                };
                mine.push(alloc(size, ids.fetch_add(1, Ordering::Relaxed)));
            }
            // Free one of ours (often a block another thread allocated).
            4..=5 if !mine.is_empty() => {
                let k = rng.below(mine.len() as u64) as usize;
                free(mine.swap_remove(k));
            }
            // Hand one to another slot (its worker frees or keeps it).
            6..=7 if !mine.is_empty() => {
                let k = rng.below(mine.len() as u64) as usize;
                let to = (slot + 1 + rng.below(SLOTS as u64 - 1) as usize) % SLOTS;
                boxes[to].lock().unwrap().push(mine.swap_remove(k));
            }
            // Take our mail: free half, keep the rest.
            _ => {
                let mail = std::mem::take(&mut *boxes[slot].lock().unwrap());
                for b in mail {
                    if rng.below(2) == 0 {
                        free(b);
                    } else {
                        mine.push(b);
                    }
                }
            }
        }
    }
    // Exit: free a random share, leave the rest to the next generation (in any slot).
    for b in mine {
        match rng.below(3) {
            0 => free(b),
            r => boxes[(slot + r as usize) % SLOTS].lock().unwrap().push(b),
        }
    }
}

#[test]
fn workers_exit_while_others_free_into_their_pools() {
    let before = stats().blocks_in_use();
    let boxes: Mailboxes = Arc::new((0..SLOTS).map(|_| Mutex::new(Vec::new())).collect());
    let ids = Arc::new(AtomicU64::new(0));
    let mut seed = 0x5EED_u64;
    let mut running: Vec<Option<std::thread::JoinHandle<()>>> = (0..SLOTS).map(|_| None).collect();
    // Each slot runs GENERATIONS workers one after another; slots overlap freely.
    for generation in 0..GENERATIONS {
        for (slot, r) in running.iter_mut().enumerate() {
            if let Some(h) = r.take() {
                h.join().unwrap();
            }
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let (boxes, ids, s) = (boxes.clone(), ids.clone(), seed ^ generation as u64);
            *r = Some(std::thread::spawn(move || worker(slot, s, boxes, ids)));
        }
    }
    for h in running.into_iter().flatten() {
        h.join().unwrap();
    }
    let mut left = 0;
    for b in boxes.iter() {
        for blk in std::mem::take(&mut *b.lock().unwrap()) {
            free(blk);
            left += 1;
        }
    }
    assert!(
        left > 0,
        "some blocks outlived their threads (the case under test)"
    );
    // Blocks freed here went to pools of exited threads (adopted now) or to remote lists and
    // delayed stacks of nobody alive: this thread's trim takes what it owns; what remains in
    // use must be nothing.
    arenagc::alloc::trim();
    let after = stats();
    assert_eq!(
        after.blocks_in_use(),
        before,
        "blocks stranded after {} allocations\n{after}",
        ids.load(Ordering::Relaxed)
    );
    arenagc::alloc::validate().unwrap();
}
