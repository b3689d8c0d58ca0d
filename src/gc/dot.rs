//! Pictures of the object graph in Graphviz's DOT language (objgraph's `show_backrefs` and
//! `show_refs`): the objects that refer to one object, or that it refers to, up to a depth and
//! a node budget, each labelled with its type name and description (`repr.rs`), roots and the
//! object itself marked. `dot -Tsvg` draws them.
//!
//! ```text
//!  digraph backrefs {
//!    node [shape=box, style=filled, fillcolor=white, fontname="Helvetica", fontsize=10];
//!    o0 [label="Node\n'leaf'", fillcolor="#ff9f9f", tooltip="0x5603..."];       the object
//!    o1 [label="Node\n'root'\nroot: 1 reference from outside", fillcolor="#9fdf9f", ...];
//!    o1 -> o0;                                                      o1 refers to o0
//!  }
//! ```
//!
//! | mark                              | meaning                                              |
//! |-----------------------------------|------------------------------------------------------|
//! | red (`#ff9f9f`)                   | the object asked about                               |
//! | green (`#9fdf9f`), `root: N ...`  | a root: N references from outside the tracked graph (the handle passed in not counted) |
//! | green, `frozen`                   | in the permanent generation (a root too)             |
//! | dashed border                     | has neighbours not drawn (depth or budget reached)    |
//!
//! # Invariants
//!
//! - Nodes are numbered `o0` (the object) upwards in breadth-first order; an edge `oA -> oB`
//!   means A holds at least one reference to B (parallel references are drawn once).
//! - Referrers are found among the tracked objects only (one pass over them per level):
//!   untracked referrers, Rust variables and C pointers are not drawn; what they hold shows as
//!   a root. Referents are whatever `traverse` reports, tracked or not.
//! - At most `max_nodes` nodes (at least the object itself); every edge between drawn nodes
//!   is drawn.
//! - Roots are those of `walk.rs`, computed with the drawing's own pointers only: building the
//!   picture takes no reference.
//!
//! May touch: `walk.rs`, `list.rs`, `runtime.rs`, `any.rs`, `repr.rs`, `diag.rs`.

use core::ffi::{c_int, c_void};
use core::fmt::Write;
use std::collections::{BTreeSet, HashMap};

use super::any::AsObject;
use super::diag::GcError;
use super::list;
use super::repr::repr_of;
use super::runtime::{GcState, UserCode, current};
use super::walk::{FROZEN, Walk};
use crate::config::NUM_GENERATIONS;
use crate::object::{self, ObjectHeader, from_gc, type_of};

/// A picture of the objects that refer to `obj`, up to `depth` steps away and `max_nodes`
/// nodes (`Err(GcError::CollectionRunning)` during a collection).
pub fn dot_backrefs(
    obj: &impl AsObject,
    depth: usize,
    max_nodes: usize,
) -> Result<String, GcError> {
    let st = current();
    refuse_in_collection(st)?;
    let mut g = Graph::new(obj.as_object());
    // SAFETY: the handle keeps the object live; the current runtime.
    unsafe { g.grow_back(st, depth, max_nodes) };
    // SAFETY: as above.
    unsafe { g.render(st, "backrefs") }
}

/// A picture of the objects `obj` refers to, up to `depth` steps away and `max_nodes` nodes
/// (`Err(GcError::CollectionRunning)` during a collection).
pub fn dot_refs(obj: &impl AsObject, depth: usize, max_nodes: usize) -> Result<String, GcError> {
    let st = current();
    refuse_in_collection(st)?;
    let mut g = Graph::new(obj.as_object());
    // SAFETY: the handle keeps the object live.
    unsafe { g.grow_forward(depth, max_nodes) };
    // SAFETY: as above.
    unsafe { g.render(st, "refs") }
}

fn refuse_in_collection(st: &GcState) -> Result<(), GcError> {
    if st.collecting.get() {
        Err(GcError::CollectionRunning)
    } else {
        Ok(())
    }
}

struct Graph {
    nodes: Vec<*mut ObjectHeader>,
    level: Vec<usize>,
    /// Has neighbours not drawn.
    open: Vec<bool>,
    index: HashMap<usize, usize>,
    edges: BTreeSet<(usize, usize)>,
}

unsafe extern "C" fn visit_push(obj: *mut ObjectHeader, arg: *mut c_void) -> c_int {
    if !obj.is_null() {
        // SAFETY: arg is the caller's vector.
        unsafe { (*(arg as *mut Vec<*mut ObjectHeader>)).push(obj) };
    }
    0
}

/// The referents of `obj`, once per reference.
///
/// # Safety
/// `obj` is live.
unsafe fn referents(obj: *mut ObjectHeader, out: &mut Vec<*mut ObjectHeader>) {
    out.clear();
    // SAFETY: caller's contract; visit_push accepts the vector.
    unsafe { object::traverse(obj, visit_push, out as *mut Vec<_> as *mut c_void) };
}

impl Graph {
    fn new(target: *mut ObjectHeader) -> Graph {
        Graph {
            nodes: vec![target],
            level: vec![0],
            open: vec![false],
            index: HashMap::from([(target as usize, 0)]),
            edges: BTreeSet::new(),
        }
    }

    fn add(&mut self, obj: *mut ObjectHeader, level: usize) -> usize {
        let i = self.nodes.len();
        self.nodes.push(obj);
        self.level.push(level);
        self.open.push(false);
        self.index.insert(obj as usize, i);
        i
    }

    /// Breadth first along the references: each drawn node's referents, new ones one level
    /// deeper while the depth and the budget allow.
    ///
    /// # Safety
    /// The drawn objects are live.
    unsafe fn grow_forward(&mut self, depth: usize, max_nodes: usize) {
        let _user_code = UserCode::enter();
        let mut refs = Vec::new();
        let mut next = 0;
        while next < self.nodes.len() {
            let (i, obj) = (next, self.nodes[next]);
            next += 1;
            // SAFETY: a drawn object is live (referents of live objects are).
            unsafe { referents(obj, &mut refs) };
            for &r in &refs {
                let j = match self.index.get(&(r as usize)) {
                    Some(&j) => j,
                    None if self.level[i] < depth && self.nodes.len() < max_nodes => {
                        self.add(r, self.level[i] + 1)
                    }
                    None => {
                        self.open[i] = true;
                        continue;
                    }
                };
                self.edges.insert((i, j));
            }
        }
    }

    /// Level by level against the references: one pass over the tracked objects per level
    /// finds the referrers of the drawn nodes; those of the deepest level are added while the
    /// depth and the budget allow, the others mark their referent open.
    ///
    /// # Safety
    /// `st` is the current runtime; the drawn objects are live.
    unsafe fn grow_back(&mut self, st: &GcState, depth: usize, max_nodes: usize) {
        let _user_code = UserCode::enter();
        let lists: Vec<_> = (0..NUM_GENERATIONS)
            .map(|i| st.gen_head(i))
            .chain([st.permanent.get()])
            .collect();
        let mut refs = Vec::new();
        for d in 0..=depth {
            for &l in &lists {
                // SAFETY: lists of live objects; the pass changes none.
                unsafe {
                    list::for_each(l, |g| {
                        let o = from_gc(g);
                        referents(o, &mut refs);
                        for &r in &refs {
                            let Some(&j) = self.index.get(&(r as usize)) else {
                                continue;
                            };
                            let i = match self.index.get(&(o as usize)) {
                                Some(&i) => i,
                                None if self.level[j] == d
                                    && d < depth
                                    && self.nodes.len() < max_nodes =>
                                {
                                    self.add(o, d + 1)
                                }
                                None => {
                                    self.open[j] = true;
                                    continue;
                                }
                            };
                            self.edges.insert((i, j));
                        }
                    });
                }
            }
        }
    }

    /// Mark the roots (a walk over the whole graph) and write the DOT text.
    ///
    /// # Safety
    /// `st` is the current runtime; the drawn objects are live; the handle that asked holds
    /// one reference to node 0.
    unsafe fn render(&self, st: &GcState, name: &str) -> Result<String, GcError> {
        // SAFETY: the caller's contract.
        let roots = unsafe { self.roots(st)? };
        let mut out = String::new();
        let _ = writeln!(out, "digraph {name} {{");
        let _ = writeln!(
            out,
            "  node [shape=box, style=filled, fillcolor=white, fontname=\"Helvetica\", fontsize=10];"
        );
        for (i, &obj) in self.nodes.iter().enumerate() {
            // SAFETY: a drawn object is live; types outlive their objects.
            let mut label = escape(&unsafe { type_of(obj).name_str() });
            // SAFETY: as above.
            if let Some(r) = unsafe { repr_of(obj) } {
                label.push_str("\\n");
                label.push_str(&escape(&r));
            }
            let mut fill = if i == 0 { "#ff9f9f" } else { "white" };
            match roots[i] {
                Some((_, true)) => {
                    label.push_str("\\nfrozen");
                    fill = if i == 0 { fill } else { "#9fdf9f" };
                }
                Some((n, false)) => {
                    let s = if n == 1 { "" } else { "s" };
                    let _ = write!(label, "\\nroot: {n} reference{s} from outside");
                    fill = if i == 0 { fill } else { "#9fdf9f" };
                }
                None => {}
            }
            let style = if self.open[i] {
                ", style=\"filled,dashed\""
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  o{i} [label=\"{label}\", fillcolor=\"{fill}\"{style}, tooltip=\"{obj:p}\"];"
            );
        }
        for &(a, b) in &self.edges {
            let _ = writeln!(out, "  o{a} -> o{b};");
        }
        out.push_str("}\n");
        Ok(out)
    }

    /// For each node: `Some((references from outside, frozen))` when it is a root.
    ///
    /// # Safety
    /// As [`render`](Graph::render).
    unsafe fn roots(&self, st: &GcState) -> Result<Vec<Option<(usize, bool)>>, GcError> {
        let untracked: Vec<usize> = self
            .nodes
            .iter()
            // SAFETY: the drawn objects are live.
            .filter(|&&o| !unsafe { object::is_tracked(o) })
            .map(|&o| o as usize)
            .collect();
        let mut watch: HashMap<usize, usize> = untracked.iter().map(|&o| (o, 0)).collect();
        // SAFETY: the current runtime; watch names live objects.
        let walk = unsafe { Walk::start(st, &mut watch)? };
        let mut frozen = vec![false; self.nodes.len()];
        // SAFETY: the permanent list, walked.
        unsafe {
            list::for_each(walk.lists()[FROZEN], |g| {
                if let Some(&i) = self.index.get(&(from_gc(g) as usize)) {
                    frozen[i] = true;
                }
            });
        }
        let mut out = Vec::with_capacity(self.nodes.len());
        for (i, &obj) in self.nodes.iter().enumerate() {
            let asker = usize::from(i == 0); // the handle passed in
            // SAFETY: a drawn object is live; a walked one's gc_refs is readable.
            let external = unsafe {
                match walk.unreached(obj) {
                    Some(g) => walk.external(g),
                    None => ((*obj).refcnt.max(0) as usize).saturating_sub(watch[&(obj as usize)]),
                }
            }
            .saturating_sub(asker);
            out.push(if frozen[i] {
                Some((external, true))
            } else {
                (external > 0).then_some((external, false))
            });
        }
        Ok(out)
    }
}

/// A label's text for a DOT string: quotes and backslashes escaped, control characters as
/// spaces.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
