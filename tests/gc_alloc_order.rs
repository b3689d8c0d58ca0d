//! Objects made one after another lie forward in memory, also from pool to pool: the
//! collector's walks follow allocation order, and the hardware prefetchers follow only a
//! forward walk (pools handed out in descending order once cost a full collection twice the
//! time, issue 15). One test in a binary of its own, so no other test's frees leave holes in the
//! arenas (the allocator fills the fullest arena first, so holes are taken before fresh pools).

use arenagc::{Gc, GcCell, Trace};

#[derive(Trace)]
#[cfg_attr(any(feature = "debug", feature = "secure"), allow(dead_code))]
struct Node {
    next: GcCell<Option<Gc<Node>>>,
}

// Debug mode guards each block, hardened mode shuffles the blocks of a new pool on purpose.
#[cfg(not(any(feature = "debug", feature = "secure")))]
#[test]
fn objects_made_in_a_row_lie_forward_in_memory() {
    if ["ARENAGC_SECURE", "ARENAGC_DEBUG"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| x != "0" && !x.is_empty()))
    {
        return;
    }
    let v: Vec<Gc<Node>> = (0..100_000)
        .map(|_| {
            Gc::new(Node {
                next: GcCell::new(None),
            })
        })
        .collect();
    // A descent is allowed where an arena ends (a new mapping may lie below the last).
    let descents = v
        .windows(2)
        .filter(|w| Gc::as_ptr(&w[1]) < Gc::as_ptr(&w[0]))
        .count();
    assert!(
        descents * 1000 < v.len(),
        "{descents} of {} consecutive objects lie backwards",
        v.len()
    );
}
