//! loom models of the kind map's one-time window placement (`alloc::kind_map`).
//! Run with: RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_kind_map
//!
//! The models call what `alloc::addr_map` calls (`KindMap::entry_for`, then the entry's store,
//! as `insert` does; `KindMap::window`, `Window::entry` and the entry's load, as `kind` does
//! on C `free`'s first step), compiled against loom's atomics, on a window of 8 arena numbers.
//! Only the tables are the test's: `reserve` hands out one of them (or fails), `release` records
//! the one given back.
#![cfg(loom)]

use arenagc::alloc::kind_map::{KindMap, Window};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use loom::thread;

/// Arena numbers in the models' window.
const LEN: usize = 8;
type Map = KindMap<LEN>;
/// Where the window lands for the arena numbers below (`lo` is a multiple of 4096 at or below
/// `n - 3/4 LEN`), both inside it.
const LO: usize = 4096;
const N_A: usize = LO + 6;
const N_B: usize = LO + 7;
/// What the two writers record (`KIND_POOLS`, `KIND_RUNS`); 0 is `KIND_NONE`.
const KIND_A: u8 = 1;
const KIND_B: u8 = 2;

/// A test-owned table of LEN zeroed entries (an address, to cross threads), freed by `free`.
fn table() -> usize {
    let t: Box<[AtomicU8; LEN]> = Box::new(std::array::from_fn(|_| AtomicU8::new(0)));
    Box::into_raw(t) as usize
}

fn free(t: usize) {
    // SAFETY: t came from `table`, and the model that made it is done with it.
    drop(unsafe { Box::from_raw(t as *mut [AtomicU8; LEN]) });
}

/// What one writer's insert did: the entry it wrote, the table its reservation gave (asked
/// only while no window is placed) and the table it released (addresses).
#[derive(Debug)]
struct Insert {
    entry: Option<usize>,
    reserved: Option<usize>,
    released: Option<usize>,
}

/// `addr_map::insert`'s kind-map step for arena number `n`: the entry (placing the window if
/// there is none), then `kind` stored into it. `table` is what the reservation gives (None: it
/// fails).
fn insert(map: &Map, n: usize, kind: u8, table: Option<usize>) -> Insert {
    let (mut reserved, mut released) = (None, None);
    let reserve = || {
        reserved = table;
        table.map_or(std::ptr::null_mut(), |t| t as *mut AtomicU8)
    };
    // SAFETY: the table is LEN zeroed entries, live until the model ends, used by this map only.
    let entry = unsafe { map.entry_for(n, reserve, |t| released = Some(t as usize)) };
    if let Some(k) = entry {
        k.store(kind, Ordering::Release);
    }
    Insert {
        entry: entry.map(|k| k as *const AtomicU8 as usize),
        reserved,
        released,
    }
}

/// Shared by a model's threads: the map, and `started`, which each writer bumps before its
/// insert and the reader loads before it looks. Without it loom never runs the reader's look
/// after a writer's stores: it checks only the last access to an atomic for a race, and the
/// writer's own first access to `len` (a load, in `entry_for`) hides the reader's from its
/// store (tokio-rs/loom#392). `started` is a race loom does see, from which it runs the writers
/// before the reader's look, and from there every interleaving of the two. Relaxed on both
/// sides, it orders nothing.
struct Shared {
    map: Map,
    started: AtomicUsize,
}

fn shared() -> Arc<Shared> {
    Arc::new(Shared {
        map: Map::new(),
        started: AtomicUsize::new(0),
    })
}

fn spawn_insert(
    s: &Arc<Shared>,
    n: usize,
    kind: u8,
    table: Option<usize>,
) -> thread::JoinHandle<Insert> {
    let s = s.clone();
    thread::spawn(move || {
        s.started.fetch_add(1, Ordering::Relaxed);
        insert(&s.map, n, kind, table)
    })
}

/// The reader's look, concurrent with the writers (`read`).
fn look(s: &Shared, tables: &[usize]) -> Option<usize> {
    s.started.load(Ordering::Relaxed);
    read(&s.map.window(), tables)
}

/// `addr_map::kind`'s lookup (`window().entry(n)`, then the entry's load) without its fallback
/// to the tree: None for a miss.
fn kind(map: &Map, n: usize) -> Option<u8> {
    map.window().entry(n).map(|e| e.load(Ordering::Relaxed))
}

/// Whether entry address `e` lies in table `t`.
fn in_table(e: usize, t: usize) -> bool {
    (t..t + LEN * size_of::<AtomicU8>()).contains(&e)
}

/// A reader's look at window `w`: `kind`'s steps, with the window checked before its entries
/// are read (a torn window fails here, not on a wild load). The table of the window, if any.
fn read(w: &Window<'_, LEN>, tables: &[usize]) -> Option<usize> {
    let (lo, by_number) = w.placed()?;
    assert_eq!(lo, LO, "a window published before its start");
    let table = by_number.wrapping_add(lo) as usize;
    assert!(
        tables.contains(&table),
        "a window published before its table"
    );
    for (n, kind) in [(N_A, KIND_A), (N_B, KIND_B)] {
        let k = w
            .entry(n)
            .expect("both arenas are inside the window")
            .load(Ordering::Relaxed);
        assert!(k == 0 || k == kind, "arena {n} reads {k}");
    }
    Some(table)
}

/// Two `Arenas` insert their first arenas at once while a reader looks. Exactly one table is
/// installed, one a writer reserved, and a writer whose table lost releases it; both entries
/// are in the installed table; a reader that sees the window's length sees its start and
/// table, and after the inserts (join) it reads each writer's kind.
#[test]
fn two_writers_place_one_window() {
    loom::model(|| {
        let s = shared();
        let (ta, tb) = (table(), table());
        let a = spawn_insert(&s, N_A, KIND_A, Some(ta));
        let b = spawn_insert(&s, N_B, KIND_B, Some(tb));
        let seen = look(&s, &[ta, tb]);
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        let map = &s.map;

        let installed = read(&map.window(), &[ta, tb]).expect("a window is placed");
        for (w, ins) in [("a", &a), ("b", &b)] {
            let lost = ins.reserved.filter(|&t| t != installed);
            assert_eq!(
                ins.released, lost,
                "writer {w}: {ins:?}, installed {installed:#x}"
            );
            let e = ins
                .entry
                .unwrap_or_else(|| panic!("writer {w} recorded nowhere"));
            assert!(
                in_table(e, installed),
                "writer {w} recorded in a table no reader uses"
            );
        }
        assert!([a.reserved, b.reserved].contains(&Some(installed)));
        assert!(
            seen.is_none_or(|t| t == installed),
            "the reader saw another table"
        );
        assert_eq!(kind(map, N_A), Some(KIND_A));
        assert_eq!(kind(map, N_B), Some(KIND_B));
        drop(s);
        free(ta);
        free(tb);
    });
}

/// A's reservation fails, B's succeeds, at once, while a reader looks; then a third insert
/// whose reservation would succeed. All or nothing: either B's table is the window and holds
/// all three arenas, or A's failure came first and there is no window, for good (B's table
/// released if it was reserved, `len` 0 to every reader, every lookup a miss, the later insert
/// reserving nothing).
#[test]
fn a_failed_reservation_leaves_no_window_for_good() {
    loom::model(|| {
        let s = shared();
        let (tb, tc) = (table(), table());
        let a = spawn_insert(&s, N_A, KIND_A, None);
        let b = spawn_insert(&s, N_B, KIND_B, Some(tb));
        let seen = look(&s, &[tb]);
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        let map = &s.map;
        let c = insert(map, LO + 5, KIND_A, Some(tc));
        assert_eq!(a.released, None);
        let later = (c.reserved, c.released);
        assert_eq!(
            later,
            (None, None),
            "a table reserved after the first attempt"
        );
        if let Some(installed) = read(&map.window(), &[tb]) {
            assert_eq!(b.released, None);
            for ins in [&a, &b, &c] {
                assert!(ins.entry.is_some_and(|e| in_table(e, installed)), "{ins:?}");
            }
            assert_eq!(kind(map, N_A), Some(KIND_A));
            assert_eq!(kind(map, N_B), Some(KIND_B));
        } else {
            assert_eq!(
                b.released, b.reserved,
                "B's table is released if it was reserved"
            );
            assert_eq!((a.entry, b.entry, c.entry), (None, None, None));
            assert_eq!(seen, None, "a reader saw a window that never was");
            assert_eq!(kind(map, N_A), None);
            assert_eq!(kind(map, N_B), None);
        }
        drop(s);
        free(tb);
        free(tc);
    });
}
