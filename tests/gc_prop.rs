//! Property: on a random object graph with random external roots, after `collect(2)` exactly
//! the objects unreachable from the roots are freed (drop counters, weak references), and every
//! reachable one is intact (same edges, same ids).

use std::cell::Cell;
use std::rc::Rc;

use arenagc::gc;
use arenagc::{Gc, GcCell, Trace};
use proptest::prelude::*;

#[derive(Trace)]
struct Node {
    edges: GcCell<Vec<Gc<Node>>>,
    #[trace(skip)]
    id: usize,
    #[trace(skip)]
    dropped: Rc<Vec<Cell<u32>>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let c = &self.dropped[self.id];
        c.set(c.get() + 1);
    }
}

fn check(n: usize, edges: &[(usize, usize)], roots: &[bool], young: bool) {
    let dropped: Rc<Vec<Cell<u32>>> = Rc::new((0..n).map(|_| Cell::new(0)).collect());
    let nodes: Vec<Gc<Node>> = (0..n)
        .map(|id| {
            Gc::new(Node {
                edges: GcCell::new(Vec::new()),
                id,
                dropped: dropped.clone(),
            })
        })
        .collect();
    for &(a, b) in edges {
        nodes[a].edges.borrow_mut().push(nodes[b].clone());
    }
    let weaks: Vec<_> = nodes.iter().map(Gc::downgrade).collect();
    if young {
        gc::collect(0).unwrap();
    }
    let kept: Vec<Gc<Node>> = nodes
        .into_iter()
        .zip(roots)
        .filter(|(_, r)| **r)
        .map(|(g, _)| g)
        .collect();

    let mut reach = vec![false; n];
    let mut stack: Vec<usize> = (0..n).filter(|&i| roots[i]).collect();
    while let Some(i) = stack.pop() {
        if !reach[i] {
            reach[i] = true;
            stack.extend(edges.iter().filter(|e| e.0 == i).map(|e| e.1));
        }
    }

    gc::collect(2).unwrap();
    for i in 0..n {
        assert_eq!(
            dropped[i].get(),
            u32::from(!reach[i]),
            "node {i} reachable={}",
            reach[i]
        );
        assert_eq!(weaks[i].is_dead(), !reach[i], "weak of node {i}");
    }
    // Reachable nodes are intact: their edges are exactly the original ones.
    for i in (0..n).filter(|&i| reach[i]) {
        let g = weaks[i].upgrade().unwrap();
        assert_eq!(g.id, i);
        let got: Vec<usize> = g.edges.borrow().iter().map(|e| e.id).collect();
        let want: Vec<usize> = edges.iter().filter(|e| e.0 == i).map(|e| e.1).collect();
        assert_eq!(got, want);
    }
    drop(kept);
    gc::collect(2).unwrap();
    assert!(
        dropped.iter().all(|c| c.get() == 1),
        "every node freed exactly once at the end"
    );
    assert_eq!(
        gc::get_objects(None).unwrap().len(),
        n,
        "only the weakref objects remain"
    );
    drop(weaks);
    assert_eq!(gc::get_objects(None).unwrap().len(), 0);
}

fn graph() -> impl Strategy<Value = (usize, Vec<(usize, usize)>, Vec<bool>, bool)> {
    (1usize..40).prop_flat_map(|n| {
        (
            Just(n),
            prop::collection::vec((0..n, 0..n), 0..3 * n),
            prop::collection::vec(prop::bool::weighted(0.2), n),
            any::<bool>(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn collect_frees_exactly_the_unreachable((n, edges, roots, young) in graph()) {
        check(n, &edges, &roots, young);
    }
}
