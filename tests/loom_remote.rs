//! loom models of the cross-thread free protocols in `alloc::remote`.
//! Run with: RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_remote
//! (`-- --nocapture` prints how many executions each model explored, and what they observed).
//!
//! The models call the sequences the allocator runs (`remote_free`, `RemoteWord::stay_full`,
//! `quiesce`, `abandon_with`, `adopt`), the same functions `alloc::heap` and `alloc::thread`
//! call, compiled against loom's atomics; only the test's blocks, the drain and the two aids
//! below (`Pool::started`, the outcomes `model` counts) are its own.
//!
//! What they check, besides where each block ends up (every block reaches exactly one party,
//! none is left on an exited heap's delayed stack or on the list of a pool its owner no longer
//! watches):
//! - Publication. A test block carries a loom cell (`TestBlock::data`) that the freeing thread
//!   writes before it gives the block away and whoever gets the block writes again (`touch`),
//!   so loom reports a causality violation unless the free happens before the reuse: a Release
//!   or Acquire missing on the way (remote list, delayed stack, `end_notify`, `settled`) shows.
//!   The blocks' link words are plain memory, which loom does not check.
//! - Coverage. loom looks only at the last access to an atomic for a race (tokio-rs/loom#392):
//!   a remote thread's own load of a word before its CAS hides the owner's earlier loads from
//!   that CAS, so loom never ran the owner's look after the remote free (the owner's first
//!   `take_all` never saw a block). As in `loom_kind_map.rs`, each remote thread bumps a test
//!   counter, `Pool::started`, before it starts, and the owner loads it before each look
//!   (`Pool::look`): a race loom does see, from which it runs the remote thread before that
//!   look. Relaxed on both sides, it orders nothing. Each model notes what its executions
//!   observed and fails if an outcome it is about never occurred (`model`), so a model that
//!   stops exploring what it checks does not pass quietly.
#![cfg(loom)]

use arenagc::alloc::remote::{
    self, ABANDONED, Block, BlockStack, NORMAL, PushOutcome, RemoteFree, RemoteWord,
};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use std::collections::BTreeMap;
use std::ptr;
use std::sync::Mutex;

/// What a model's executions observed, over all of them.
#[derive(Default)]
struct Seen {
    runs: std::sync::atomic::AtomicUsize,
    outcomes: Mutex<BTreeMap<&'static str, usize>>,
}

impl Seen {
    /// One execution had this outcome.
    fn note(&self, outcome: &'static str) {
        *self.outcomes.lock().unwrap().entry(outcome).or_default() += 1;
    }
}

/// Runs `body` under loom, counting its executions and the outcomes they note (printed with
/// `--nocapture`), and checks that each outcome in `want` occurred in some execution.
fn model(name: &str, want: &[&'static str], body: impl Fn(&Seen) + Send + Sync + 'static) {
    let seen = std::sync::Arc::new(Seen::default());
    let s = seen.clone();
    loom::model(move || {
        s.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        body(&s)
    });
    let runs = seen.runs.load(std::sync::atomic::Ordering::Relaxed);
    let outcomes = seen.outcomes.lock().unwrap();
    println!("{name}: {runs} executions, {outcomes:?}");
    for w in want {
        assert!(
            outcomes.contains_key(w),
            "{name}: no execution had the outcome {w:?} ({runs} executions: {outcomes:?})"
        );
    }
}

/// A pool's remote word, its owner heap's delayed stack, and the models' visible race.
struct Pool {
    word: RemoteWord,
    delayed: BlockStack,
    /// Bumped by each remote thread as it starts, loaded by the owner before each look (see
    /// the module docs). Relaxed: it orders nothing.
    started: AtomicUsize,
}

impl Pool {
    fn new() -> Arc<Pool> {
        Arc::new(Pool {
            word: RemoteWord::new(),
            delayed: BlockStack::new(),
            started: AtomicUsize::new(0),
        })
    }

    /// A remote thread starts.
    fn start(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    /// The owner is about to look.
    fn look(&self) {
        self.started.load(Ordering::Relaxed);
    }
}

/// A test block: the protocol's link word, then the user's bytes (a loom cell, see `touch`).
#[repr(C, align(16))]
struct TestBlock {
    link: Block,
    data: UnsafeCell<usize>,
}

/// A new test block (an address, to cross threads), freed by `free_blocks`.
fn block() -> usize {
    let b = TestBlock {
        link: Block {
            next: ptr::null_mut(),
        },
        data: UnsafeCell::new(0),
    };
    Box::into_raw(Box::new(b)) as usize
}

fn free_blocks(bs: &[usize]) {
    for &b in bs {
        // SAFETY: b came from `block`, and the model that made it is done with it.
        drop(unsafe { Box::from_raw(b as *mut TestBlock) });
    }
}

/// The holder of block `b` uses it: the freeing thread before it frees it, whoever gets it
/// after. loom checks that the previous holder's use happened before this one.
fn touch(b: usize) {
    // SAFETY: b is a live test block (`block`); the caller holds it.
    let data = unsafe { &(*(b as *const TestBlock)).data };
    // SAFETY: the caller holds b, so nothing else accesses its data (loom checks it).
    data.with_mut(|p| unsafe { *p += 1 });
}

/// Take a list of blocks: each is now the caller's, who uses it (`touch`).
fn drain(mut p: *mut Block, out: &mut Vec<usize>) {
    while !p.is_null() {
        out.push(p as usize);
        touch(p as usize);
        // SAFETY: p is one of the test's blocks, pushed by the protocol.
        p = unsafe { (*p).next };
    }
}

/// A remote free as `thread::free_remote` makes it (`remote::remote_free`, with the owner's
/// delayed stack), after the freer's last use of the block. False when the pool is abandoned:
/// the block was not given away, and the caller adopts the pool.
fn remote_free(pool: &Pool, b: usize) -> bool {
    touch(b);
    // SAFETY: the caller gives b to this free only; the stack outlives the call.
    let outcome = unsafe { remote::remote_free(&pool.word, b as *mut Block, || &pool.delayed) };
    outcome == RemoteFree::Done
}

/// Thread exit, steps 1 and 2 of `heap::abandon` for one pool: `quiesce`, then take the
/// delayed stack.
fn exit_steps_1_and_2(pool: &Pool) -> *mut Block {
    pool.word.quiesce();
    pool.look();
    pool.delayed.take_all()
}

/// Thread exit, step 3: `abandon_with`, taking pending remote frees.
fn exit_step_3(pool: &Pool, got: &mut Vec<usize>) {
    pool.look();
    pool.word.abandon_with(|list| drain(list, got));
}

fn sorted(mut v: Vec<usize>) -> Vec<usize> {
    v.sort();
    v
}

/// Two remote freers push while the owner takes: every block is taken exactly once, and the
/// owner may use what it takes at once (the push published the block).
#[test]
fn remote_push_and_take_all() {
    const TOOK: [&str; 3] = ["first take: 0 blocks", "first take: 1", "first take: 2"];
    model("remote_push_and_take_all", &TOOK, |seen| {
        let pool = Pool::new();
        let (b1, b2) = (block(), block());
        let ts: Vec<_> = [b1, b2]
            .into_iter()
            .map(|b| {
                let pool = pool.clone();
                thread::spawn(move || {
                    pool.start();
                    touch(b);
                    // SAFETY: each block is given to exactly one push.
                    let outcome = unsafe { pool.word.push(b as *mut Block) };
                    assert_eq!(outcome, PushOutcome::Pushed)
                })
            })
            .collect();
        let mut got = Vec::new();
        pool.look();
        drain(pool.word.take_all(), &mut got);
        seen.note(TOOK[got.len()]);
        for t in ts {
            t.join().unwrap();
        }
        drain(pool.word.take_all(), &mut got);
        assert_eq!(sorted(got), sorted(vec![b1, b2]));
        free_blocks(&[b1, b2]);
    });
}

/// The owner marks a pool full while a remote free races with it. Either the mark fails
/// (the owner then takes the block), or the freer sees FULL and hands the block to the owner's
/// delayed stack, where the owner's next look (before or after the freer is done) finds it,
/// never on the list of the pool it marked. Either way the owner finds the block exactly once,
/// and the word ends NORMAL or FULL.
#[test]
fn full_pool_receiving_a_remote_free() {
    const WANT: [&str; 3] = [
        "mark failed: taken from the list",
        "marked: on the delayed stack at the owner's next look",
        "marked: on the delayed stack after the free",
    ];
    model("full_pool_receiving_a_remote_free", &WANT, |seen| {
        let pool = Pool::new();
        let b = block();
        let t = {
            let pool = pool.clone();
            thread::spawn(move || {
                pool.start();
                assert!(remote_free(&pool, b), "not abandoned");
            })
        };
        let mut got = Vec::new();
        pool.look();
        let marked = pool.word.try_mark_full();
        if !marked {
            drain(pool.word.take_all(), &mut got);
            seen.note(WANT[0]);
        }
        // The owner's next slow path looks at its delayed stack.
        pool.look();
        let before = got.len();
        drain(pool.delayed.take_all(), &mut got);
        if got.len() > before {
            seen.note(WANT[1]);
        }
        t.join().unwrap();
        let before = got.len();
        drain(pool.delayed.take_all(), &mut got);
        if got.len() > before {
            seen.note(WANT[2]);
        }
        // A marked pool is off the owner's lists: its block must come by the delayed stack.
        let mut stranded = Vec::new();
        drain(pool.word.take_all(), &mut stranded);
        assert!(
            !marked || stranded.is_empty(),
            "a block stranded on an unwatched pool's list"
        );
        got.extend(stranded);
        assert_eq!(got, vec![b], "the owner finds the block exactly once");
        pool.word.clear_full();
        assert_eq!(pool.word.state(), NORMAL);
        free_blocks(&[b]);
    });
}

/// Thread exit against a remote free. The owner (exiting) clears FULL, waits out a notifier,
/// drains its delayed stack and abandons; the freer either notifies before the exit's first
/// step (the owner drains it in step 2), pushes before the abandon (step 3 takes it), or finds
/// the pool abandoned and adopts it. Exactly one party ends up holding the block, and nothing
/// reaches the delayed stack after step 2 (the heap is gone then).
#[test]
fn thread_exit_versus_remote_free_and_adoption() {
    const WANT: [&str; 3] = ["step 2: delayed", "step 3: pending", "adopted"];
    model(
        "thread_exit_versus_remote_free_and_adoption",
        &WANT,
        |seen| {
            let pool = Pool::new();
            assert!(pool.word.try_mark_full());
            let b = block();
            let t = {
                let pool = pool.clone();
                thread::spawn(move || {
                    pool.start();
                    if remote_free(&pool, b) {
                        return None;
                    }
                    assert!(pool.word.adopt(), "only this thread adopts");
                    touch(b); // the adopter frees it locally
                    Some(b)
                })
            };
            // Owner exit, steps 1-3 of heap::abandon.
            let (mut step2, mut step3) = (Vec::new(), Vec::new());
            pool.look();
            drain(exit_steps_1_and_2(&pool), &mut step2);
            exit_step_3(&pool, &mut step3);
            // The heap is gone now: whatever is still on its delayed stack is lost.
            let stranded = pool.delayed.take_all();
            let adopted = t.join().unwrap();
            assert!(stranded.is_null(), "a block was handed to the exited heap");
            let total = step2.len() + step3.len() + adopted.iter().count();
            assert_eq!(
                total, 1,
                "block lost or duplicated: step 2 {step2:?}, step 3 {step3:?}, adopter {adopted:?}"
            );
            for (n, outcome) in [(step2.len(), WANT[0]), (step3.len(), WANT[1])] {
                if n > 0 {
                    seen.note(outcome);
                }
            }
            if adopted.is_some() {
                seen.note(WANT[2]);
            } else {
                assert_eq!(pool.word.state(), ABANDONED);
            }
            free_blocks(&[b]);
        },
    );
}

/// Thread exit against two remote frees into a full pool, with step 2 of `heap::abandon` as
/// the heap does it: a delayed block freed into a pool that stays full. `rearm` says whether
/// that free may arm `FULL` again (`free_local_slow`'s `stay_full` told the heap is not
/// exiting), as it did before the heap's `exiting` flag. At the end the delayed stack must be
/// empty (the heap is gone after `abandon`, so a block left there is lost) and each block held
/// by exactly one party.
fn exit_with_frees_into_a_full_pool(rearm: bool) {
    const WANT: [&str; 3] = ["step 2: delayed", "step 3: pending", "adopted"];
    let want: &[&str] = if rearm { &[] } else { &WANT };
    model(
        "exit_never_rearms_full_so_no_block_is_stranded",
        want,
        move |seen| {
            let pool = Pool::new();
            assert!(pool.word.try_mark_full());
            let (b1, b2) = (block(), block());
            let t = {
                let pool = pool.clone();
                thread::spawn(move || {
                    pool.start();
                    let mut adopted = Vec::new();
                    for b in [b1, b2] {
                        if !adopted.is_empty() {
                            touch(b);
                            adopted.push(b); // we own the pool now: a local free
                            continue;
                        }
                        if !remote_free(&pool, b) {
                            assert!(pool.word.adopt(), "only this thread adopts");
                            touch(b);
                            adopted.push(b);
                        }
                    }
                    adopted
                })
            };
            // Owner exit. 1: no FULL, no notifier at work; 2: take the delayed blocks.
            let (mut step2, mut step3) = (Vec::new(), Vec::new());
            pool.look();
            let taken = exit_steps_1_and_2(&pool);
            if !taken.is_null() {
                // 2, continued: the delayed blocks are freed locally and the pool stays full (one
                // free block), so `heap::free_local_slow` keeps it off the lists with `stay_full`,
                // telling it the heap is exiting; `rearm` lies about that (the code before the
                // heap's `exiting` flag armed FULL here).
                while let Err(list) = pool.word.stay_full(!rearm) {
                    drain(list, &mut step2);
                }
            }
            drain(taken, &mut step2);
            // 3: abandon, taking pending remote frees.
            exit_step_3(&pool, &mut step3);
            // The heap is gone now: whatever is still on its delayed stack is lost.
            let stranded = pool.delayed.take_all();
            let adopted = t.join().unwrap();
            assert!(
                stranded.is_null(),
                "a block was stranded on the exited heap's delayed stack"
            );
            for (v, outcome) in [(&step2, WANT[0]), (&step3, WANT[1]), (&adopted, WANT[2])] {
                if !v.is_empty() {
                    seen.note(outcome);
                }
            }
            let all = [&step2[..], &step3[..], &adopted[..]].concat();
            assert_eq!(
                sorted(all),
                sorted(vec![b1, b2]),
                "step 2 {step2:?}, step 3 {step3:?}, adopter {adopted:?}"
            );
            free_blocks(&[b1, b2]);
        },
    );
}

/// The heap's rule: once `abandon` has begun, nothing arms FULL, and nothing is stranded.
#[test]
fn exit_never_rearms_full_so_no_block_is_stranded() {
    exit_with_frees_into_a_full_pool(false);
}

/// The model is not vacuous: arming FULL again in step 2 (the code before the `exiting` flag)
/// lets a second notifier hand a block to the heap after its last look.
#[test]
#[should_panic(expected = "stranded")]
fn rearming_full_during_exit_strands_a_block() {
    exit_with_frees_into_a_full_pool(true);
}

/// The owner's side of a full pool receiving remote frees from `freers` (each a list of blocks
/// one thread frees in turn) while the pool stays full: `local_free_slow` after the first
/// delayed block arrives. It takes that block from its delayed stack (it must come there: the
/// word starts FULL), frees it, and the pool keeps one free block, so it stays full: it marks
/// it (`stay_full`), taking pending remote frees first. The owner then looks only at its
/// delayed stack, so every block must reach the owner there or through `stay_full`, never sit
/// on the list of a pool the owner no longer watches. Where the blocks after the first went:
/// `(taken by stay_full, on the delayed stack after the frees)`, in numbers.
fn owner_keeps_a_full_pool_full(freers: Vec<Vec<usize>>) -> (usize, usize) {
    let pool = Pool::new();
    pool.word.arm_full();
    let all: Vec<usize> = freers.concat();
    let ts: Vec<_> = freers
        .into_iter()
        .map(|blocks| {
            let pool = pool.clone();
            thread::spawn(move || {
                pool.start();
                for b in blocks {
                    assert!(remote_free(&pool, b), "not abandoned");
                }
            })
        })
        .collect();
    let mut got = Vec::new();
    loop {
        pool.look();
        let taken = pool.delayed.take_all();
        if !taken.is_null() {
            drain(taken, &mut got);
            break;
        }
        thread::yield_now();
    }
    let mut by_stay_full = Vec::new();
    pool.look();
    while let Err(list) = pool.word.stay_full(false) {
        drain(list, &mut by_stay_full);
    }
    for t in ts {
        t.join().unwrap();
    }
    let mut stranded = Vec::new();
    drain(pool.word.take_all(), &mut stranded);
    assert!(
        stranded.is_empty(),
        "a block stranded on an unwatched pool's list"
    );
    let mut later = Vec::new();
    drain(pool.delayed.take_all(), &mut later);
    let outcome = (by_stay_full.len(), later.len());
    let found = [&got[..], &by_stay_full[..], &later[..]].concat();
    assert_eq!(sorted(found), sorted(all.clone()));
    free_blocks(&all);
    outcome
}

/// One remote thread frees two blocks into a full pool: the first notifies; the owner takes it
/// before the notifier has ended its notification, and marks the pool full again while the
/// second free comes. `try_mark_full` must not take the word's `NOTIFYING` for "a block is on
/// its way": that block has arrived. The second block reaches the owner, by `stay_full` or on
/// the delayed stack.
#[test]
fn owner_marks_full_again_while_the_notifier_finishes() {
    const WANT: [&str; 2] = ["second block: by stay_full", "second block: delayed"];
    model(
        "owner_marks_full_again_while_the_notifier_finishes",
        &WANT,
        |seen| {
            let (b1, b2) = (block(), block());
            match owner_keeps_a_full_pool_full(vec![vec![b1, b2]]) {
                (1, 0) => seen.note(WANT[0]),
                (0, 1) => seen.note(WANT[1]),
                other => panic!("second block: {other:?}"),
            }
        },
    );
}

/// Two remote threads free one block each into a full pool at once: one notifies, and the
/// other pushes onto the word's list, maybe while the first is still `NOTIFYING` (`end_notify`
/// must keep that list), or notifies after the owner marked the pool full again.
#[test]
fn two_remote_frees_into_a_full_pool() {
    const WANT: [&str; 2] = ["other block: by stay_full", "other block: delayed"];
    model("two_remote_frees_into_a_full_pool", &WANT, |seen| {
        let (b1, b2) = (block(), block());
        // Only one free can notify before the owner marks the pool again, so the owner's
        // first look finds one block, and the other comes later.
        match owner_keeps_a_full_pool_full(vec![vec![b1], vec![b2]]) {
            (1, 0) => seen.note(WANT[0]),
            (0, 1) => seen.note(WANT[1]),
            other => panic!("other block: {other:?}"),
        }
    });
}
