//! loom models of the cross-thread free protocols in `alloc::remote`.
//! Run with: RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_remote
//!
//! The models call the sequences the allocator runs (`remote_free`, `RemoteWord::stay_full`,
//! `quiesce`, `abandon_with`, `adopt`), the same functions `alloc::heap` and `alloc::thread`
//! call, compiled against loom's atomics; only the test's blocks and the drain are its own.
#![cfg(loom)]

use arenagc::alloc::remote::{
    self, ABANDONED, Block, BlockStack, NORMAL, PushOutcome, RemoteFree, RemoteWord,
};
use loom::sync::Arc;
use loom::thread;

/// Test-owned blocks: 16-byte aligned, leaked for the model's duration (loom runs each body
/// many times; each run makes its own).
fn block() -> usize {
    #[repr(align(16))]
    struct B(#[allow(dead_code)] [u64; 2]);
    Box::into_raw(Box::new(B([0; 2]))) as usize
}

fn drain(mut p: *mut Block, out: &mut Vec<usize>) {
    while !p.is_null() {
        out.push(p as usize);
        // SAFETY: p is one of the test's blocks, pushed by the protocol.
        p = unsafe { (*p).next };
    }
}

/// A remote free as `thread::free_remote` makes it (`remote::remote_free`, with the owner's
/// delayed stack). False when the pool is abandoned: the block was not given away, and the
/// caller adopts the pool.
fn remote_free(w: &RemoteWord, delayed: &BlockStack, b: usize) -> bool {
    // SAFETY: the caller gives b to this free only; the stack outlives the call.
    let outcome = unsafe { remote::remote_free(w, b as *mut Block, || delayed) };
    outcome == RemoteFree::Done
}

/// Thread exit, steps 1 and 2 of `heap::abandon` for one pool: `quiesce`, then take the
/// delayed stack.
fn exit_steps_1_and_2(w: &RemoteWord, delayed: &BlockStack) -> *mut Block {
    w.quiesce();
    delayed.take_all()
}

/// Thread exit, step 3: `abandon_with`, taking pending remote frees.
fn exit_step_3(w: &RemoteWord, got: &mut Vec<usize>) {
    w.abandon_with(|list| drain(list, got));
}

/// Two remote freers push while the owner takes: every block is taken exactly once.
#[test]
fn remote_push_and_take_all() {
    loom::model(|| {
        let w = Arc::new(RemoteWord::new());
        let (b1, b2) = (block(), block());
        let ts: Vec<_> = [b1, b2]
            .into_iter()
            .map(|b| {
                let w = w.clone();
                thread::spawn(move || {
                    // SAFETY: each block is given to exactly one push.
                    let outcome = unsafe { w.push(b as *mut Block) };
                    assert_eq!(outcome, PushOutcome::Pushed)
                })
            })
            .collect();
        let mut got = Vec::new();
        drain(w.take_all(), &mut got);
        for t in ts {
            t.join().unwrap();
        }
        drain(w.take_all(), &mut got);
        got.sort();
        let mut want = vec![b1, b2];
        want.sort();
        assert_eq!(got, want);
    });
}

/// The owner marks a pool full while a remote free races with it. Either the mark fails
/// (the owner then takes the block), or the freer sees FULL and hands the block to the owner's
/// delayed stack. Either way the owner finds the block, and the word ends NORMAL or FULL with
/// nothing lost.
#[test]
fn full_pool_receiving_a_remote_free() {
    loom::model(|| {
        let w = Arc::new(RemoteWord::new());
        let delayed = Arc::new(BlockStack::new());
        let b = block();
        let t = {
            let (w, delayed) = (w.clone(), delayed.clone());
            thread::spawn(move || assert!(remote_free(&w, &delayed, b), "not abandoned"))
        };
        let mut got = Vec::new();
        if !w.try_mark_full() {
            drain(w.take_all(), &mut got);
        }
        t.join().unwrap();
        drain(delayed.take_all(), &mut got);
        drain(w.take_all(), &mut got);
        assert_eq!(got, vec![b], "the owner finds the block exactly once");
        w.clear_full();
        assert_eq!(w.state(), NORMAL);
    });
}

/// Thread exit against a remote free. The owner (exiting) clears FULL, waits out a notifier,
/// drains its delayed stack and abandons; the freer either pushes before the abandon (the owner
/// takes the block), notifies (the owner drains it), or finds the pool abandoned and adopts it.
/// Exactly one party ends up holding the block.
#[test]
fn thread_exit_versus_remote_free_and_adoption() {
    loom::model(|| {
        let w = Arc::new(RemoteWord::new());
        let delayed = Arc::new(BlockStack::new());
        assert!(w.try_mark_full());
        let b = block();
        let t = {
            let (w, delayed) = (w.clone(), delayed.clone());
            thread::spawn(move || {
                if remote_free(&w, &delayed, b) {
                    return None;
                }
                assert!(w.adopt(), "only this thread adopts");
                Some(b) // the adopter frees it locally
            })
        };
        // Owner exit, steps 1-3 of heap::abandon.
        let mut got = Vec::new();
        let taken = exit_steps_1_and_2(&w, &delayed);
        drain(taken, &mut got);
        exit_step_3(&w, &mut got);
        let adopted = t.join().unwrap();
        // A notifier that started before clear_full finished before the wait ended, so the
        // delayed stack holds nothing new; whatever the freer did, the block is in one place.
        drain(delayed.take_all(), &mut got);
        let total = got.len() + adopted.iter().count();
        assert_eq!(
            total, 1,
            "block lost or duplicated: owner {got:?}, adopter {adopted:?}"
        );
        if adopted.is_none() {
            assert_eq!(w.state(), ABANDONED);
        }
    });
}

/// Thread exit against two remote frees into a full pool, with step 2 of `heap::abandon` as
/// the heap does it: a delayed block freed into a pool that stays full. `rearm` says whether
/// that free may arm `FULL` again (`free_local_slow`'s `stay_full` told the heap is not
/// exiting), as it did before the heap's `exiting` flag. At the end the delayed stack must be empty (the heap is gone after
/// `abandon`, so a block left there is lost) and each block held by exactly one party.
fn exit_with_frees_into_a_full_pool(rearm: bool) {
    loom::model(move || {
        let w = Arc::new(RemoteWord::new());
        let delayed = Arc::new(BlockStack::new());
        assert!(w.try_mark_full());
        let (b1, b2) = (block(), block());
        let t = {
            let (w, delayed) = (w.clone(), delayed.clone());
            thread::spawn(move || {
                let mut adopted = Vec::new();
                for b in [b1, b2] {
                    if !adopted.is_empty() {
                        adopted.push(b); // we own the pool now: a local free
                        continue;
                    }
                    if !remote_free(&w, &delayed, b) {
                        assert!(w.adopt(), "only this thread adopts");
                        adopted.push(b);
                    }
                }
                adopted
            })
        };
        // Owner exit. 1: no FULL, no notifier at work; 2: take the delayed blocks.
        let mut got = Vec::new();
        let taken = exit_steps_1_and_2(&w, &delayed);
        if !taken.is_null() {
            // 2, continued: the delayed blocks are freed locally and the pool stays full (one
            // free block), so `heap::free_local_slow` keeps it off the lists with `stay_full`,
            // telling it the heap is exiting; `rearm` lies about that (the code before the
            // heap's `exiting` flag armed FULL here).
            while let Err(list) = w.stay_full(!rearm) {
                drain(list, &mut got);
            }
        }
        drain(taken, &mut got);
        // 3: abandon, taking pending remote frees.
        exit_step_3(&w, &mut got);
        // The heap is gone now: whatever is still on its delayed stack is lost.
        let stranded = delayed.take_all();
        let adopted = t.join().unwrap();
        assert!(
            stranded.is_null(),
            "a block was stranded on the exited heap's delayed stack"
        );
        let mut all: Vec<usize> = got.iter().chain(adopted.iter()).copied().collect();
        all.sort();
        let mut want = vec![b1, b2];
        want.sort();
        assert_eq!(all, want, "owner {got:?}, adopter {adopted:?}");
    });
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

/// A full pool whose owner takes a notifier's block from its delayed stack before the notifier
/// has ended its notification, frees it, and (the pool still full) marks it full again, while
/// the same remote thread frees a second block. `try_mark_full` must not take the word's
/// `NOTIFYING` for "a block is on its way": that block has arrived. The second block must
/// reach the owner (on its delayed stack or taken from the list), never sit on the list of a
/// pool the owner no longer looks at.
#[test]
fn owner_marks_full_again_while_the_notifier_finishes() {
    loom::model(|| {
        let w = Arc::new(RemoteWord::new());
        let delayed = Arc::new(BlockStack::new());
        w.arm_full();
        let (b1, b2) = (block(), block());
        let t = {
            let (w, delayed) = (w.clone(), delayed.clone());
            thread::spawn(move || {
                for b in [b1, b2] {
                    assert!(remote_free(&w, &delayed, b), "not abandoned");
                }
            })
        };
        // The owner's slow path: take the first block from the delayed stack (it must come
        // there: the word starts FULL), free it; the pool keeps one free block, so it stays
        // full (local_free_slow): mark it, taking pending remote frees first.
        let mut got = Vec::new();
        loop {
            let taken = delayed.take_all();
            if !taken.is_null() {
                drain(taken, &mut got);
                break;
            }
            loom::thread::yield_now();
        }
        while let Err(list) = w.stay_full(false) {
            drain(list, &mut got);
        }
        t.join().unwrap();
        // The owner now looks only at its delayed stack; the list is for pools it watches.
        let mut stranded = Vec::new();
        drain(w.take_all(), &mut stranded);
        assert!(
            stranded.is_empty(),
            "a block stranded on an unwatched pool's list"
        );
        drain(delayed.take_all(), &mut got);
        got.sort();
        let mut want = vec![b1, b2];
        want.sort();
        assert_eq!(got, want);
    });
}
