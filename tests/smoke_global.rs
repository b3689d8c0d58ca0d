//! Installs ArenaAlloc as the global allocator and runs a short mixed workload.
use arenagc::ArenaAlloc;
use std::collections::{BTreeMap, HashMap};

#[global_allocator]
static GLOBAL: ArenaAlloc = ArenaAlloc;

#[test]
fn strings_maps_and_threads() {
    let mut m = HashMap::new();
    for i in 0..100_000u32 {
        m.insert(i, i.to_string());
    }
    for i in 0..100_000u32 {
        assert_eq!(m[&i], i.to_string());
    }
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut b = BTreeMap::new();
                for i in 0..50_000u64 {
                    b.insert(i, vec![t as u8; (i % 600) as usize]);
                }
                b
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        let b = h.join().unwrap();
        for (i, v) in &b {
            assert_eq!(v.len(), (*i % 600) as usize);
            assert!(v.iter().all(|&x| x == t as u8));
        }
        drop(b); // freed on another thread than the one that made it
    }
    drop(m);
    arenagc::alloc::validate().unwrap();
    println!("{}", arenagc::alloc::stats());
}
