//! Unit tests of `remote.rs`'s words and stacks (the loom models are `tests/loom_remote.rs`).

use super::*;

/// 16-byte aligned test blocks (the state bits need the low bits free).
#[repr(align(16))]
struct TestBlock(#[allow(dead_code)] [u64; 2]);

impl TestBlock {
    fn as_mut_ptr(&mut self) -> *mut Block {
        (self as *mut TestBlock).cast()
    }
}

fn blocks(n: usize) -> Vec<TestBlock> {
    (0..n).map(|_| TestBlock([0; 2])).collect()
}

/// The length of a list of the test's blocks.
fn len(mut p: *mut Block) -> usize {
    let mut n = 0;
    while !p.is_null() {
        n += 1;
        // SAFETY: p is one of the test's blocks, linked by the word.
        p = unsafe { (*p).next };
    }
    n
}

#[test]
fn push_take_all_keeps_every_block() {
    let mut bs = blocks(5);
    let w = RemoteWord::new();
    for b in bs.iter_mut() {
        // SAFETY: each box outlives the word's use of it.
        assert_eq!(unsafe { w.push(b.as_mut_ptr()) }, PushOutcome::Pushed);
    }
    assert_eq!(len(w.take_all()), 5);
    assert!(w.take_all().is_null());
    assert_eq!(w.state(), NORMAL);
}

#[test]
fn full_pool_diverts_once_then_pushes() {
    let mut bs = blocks(2);
    let w = RemoteWord::new();
    assert!(w.try_mark_full());
    // SAFETY: boxes outlive the word.
    assert_eq!(unsafe { w.push(bs[0].as_mut_ptr()) }, PushOutcome::Notify);
    assert_eq!(w.state(), NOTIFYING);
    // SAFETY: as above.
    assert_eq!(unsafe { w.push(bs[1].as_mut_ptr()) }, PushOutcome::Pushed);
    w.end_notify();
    assert_eq!(w.state(), NORMAL);
    assert!(!w.take_all().is_null());
}

/// In a child after fork, a word caught NOTIFYING with frees on its list is re-armed FULL
/// with the list kept. Thread exit's `clear_full` must still turn it NORMAL (keeping the
/// list), or the next remote free would notify a heap that is going away.
#[test]
fn clear_full_keeps_the_list_of_a_word_rearmed_after_fork() {
    let mut bs = blocks(3);
    let w = RemoteWord::new();
    w.arm_full();
    // SAFETY: boxes outlive the word.
    assert_eq!(unsafe { w.push(bs[0].as_mut_ptr()) }, PushOutcome::Notify);
    // SAFETY: as above.
    assert_eq!(unsafe { w.push(bs[1].as_mut_ptr()) }, PushOutcome::Pushed);
    w.rearm_after_fork();
    assert_eq!(w.state(), FULL);
    w.clear_full();
    assert_eq!(w.state(), NORMAL);
    assert!(!w.is_empty(), "the pending free is kept");
    // SAFETY: as above.
    assert_eq!(unsafe { w.push(bs[2].as_mut_ptr()) }, PushOutcome::Pushed);
    assert_eq!(len(w.take_all()), 2);
}

#[test]
fn mark_full_fails_with_pending_frees() {
    let mut bs = blocks(1);
    let w = RemoteWord::new();
    // SAFETY: box outlives the word.
    unsafe { w.push(bs[0].as_mut_ptr()) };
    assert!(!w.try_mark_full());
}

#[test]
fn abandon_hands_back_pending_then_abandons() {
    let mut bs = blocks(1);
    let w = RemoteWord::new();
    // SAFETY: box outlives the word.
    unsafe { w.push(bs[0].as_mut_ptr()) };
    assert!(w.try_abandon().is_err());
    assert_eq!(w.try_abandon(), Ok(()));
    // SAFETY: as above.
    let outcome = unsafe { w.push(bs[0].as_mut_ptr()) };
    assert_eq!(outcome, PushOutcome::Abandoned);
    assert!(w.adopt());
    assert!(!w.adopt());
    assert_eq!(w.state(), NORMAL);
}

#[test]
fn block_stack_take_all() {
    let mut bs = blocks(3);
    let s = BlockStack::new();
    assert!(s.take_all().is_null());
    for b in bs.iter_mut() {
        // SAFETY: boxes outlive the stack.
        unsafe { s.push(b.as_mut_ptr()) };
    }
    assert!(!s.is_empty());
    assert!(!s.take_all().is_null());
    assert!(s.is_empty());
}
