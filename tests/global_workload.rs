//! A test binary with `ArenaAlloc` as its global allocator running a real multi-threaded
//! workload: hash maps, B-trees, strings, vectors, cross-thread drops through channels, and
//! threads that start and exit repeatedly. All contents are checked.

use arenagc::ArenaAlloc;
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;

#[global_allocator]
static GLOBAL: ArenaAlloc = ArenaAlloc;

fn word(i: u64) -> String {
    format!("w{i:x}-{}", "x".repeat((i % 40) as usize))
}

#[test]
fn maps_and_strings_on_many_threads() {
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut h: HashMap<String, Vec<u64>> = HashMap::new();
                let mut b: BTreeMap<u64, String> = BTreeMap::new();
                for i in 0..40_000u64 {
                    h.entry(word(i % 5000)).or_default().push(i + t);
                    b.insert(i * 7 + t, word(i));
                    if i % 3 == 0 {
                        b.remove(&((i / 2) * 7 + t));
                    }
                }
                for (k, v) in &h {
                    assert!(v.iter().all(|x| word((x - t) % 5000) == *k));
                }
                for (k, v) in &b {
                    assert_eq!(*v, word((k - t) / 7));
                }
                (h, b)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // Dropped here, on the main thread: every block is a remote free into an abandoned pool.
    let total: usize = results.iter().map(|(h, b)| h.len() + b.len()).sum();
    assert!(total > 4 * 5000);
    drop(results);
    arenagc::alloc::validate().unwrap();
}

#[test]
fn producer_consumer_through_channels() {
    let (tx, rx) = mpsc::sync_channel::<(u64, Vec<u8>, String)>(1024);
    let consumer = std::thread::spawn(move || {
        let mut n = 0u64;
        for (i, v, s) in rx {
            assert_eq!(v.len(), (i % 700) as usize);
            assert!(v.iter().all(|&x| x == i as u8));
            assert_eq!(s, word(i));
            n += 1;
        }
        n
    });
    let producers: Vec<_> = (0..3u64)
        .map(|p| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in (p..60_000).step_by(3) {
                    tx.send((i, vec![i as u8; (i % 700) as usize], word(i)))
                        .unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(consumer.join().unwrap(), 60_000);
}

#[test]
fn threads_start_and_exit_repeatedly() {
    let mut carried: Vec<Vec<String>> = Vec::new();
    for round in 0..60u64 {
        let prev = carried.pop();
        let h = std::thread::spawn(move || {
            // Free what the previous (exited) thread made, and make more.
            if let Some(prev) = prev {
                for (i, s) in prev.iter().enumerate() {
                    assert_eq!(*s, word(round - 1 + i as u64));
                }
            }
            (0..2000).map(|i| word(round + i)).collect::<Vec<_>>()
        });
        carried.push(h.join().unwrap());
    }
    assert_eq!(carried.len(), 1);
    arenagc::alloc::validate().unwrap();
}

#[test]
fn vectors_grow_across_the_small_large_boundary() {
    let mut vs: Vec<Vec<u32>> = (0..1000).map(|_| Vec::new()).collect();
    for step in 0..300u32 {
        for (k, v) in vs.iter_mut().enumerate() {
            if (k as u32 + step) % 3 != 0 {
                v.push(k as u32 ^ step);
            }
        }
    }
    // The values vector k holds: every step not skipped for it.
    let want = |k: usize| {
        (0..300u32)
            .filter(move |s| (k as u32 + s) % 3 != 0)
            .map(move |s| k as u32 ^ s)
    };
    for (k, v) in vs.iter().enumerate() {
        assert_eq!(*v, want(k).collect::<Vec<_>>());
    }
    // Shrinking moves each vector back below the small-block limit; the kept prefix survives.
    for (k, v) in vs.iter_mut().enumerate() {
        v.truncate(3);
        v.shrink_to_fit();
        assert_eq!(*v, want(k).take(3).collect::<Vec<_>>());
        assert_eq!(v.capacity(), 3);
    }
}
