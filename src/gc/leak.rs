//! The leak report: `gc::garbage()` grouped by type, and each uncollectable group with the
//! legacy finalizers that pin it (`gc::leak_report`); printed to stderr at the end of every
//! collection run with all of `DEBUG_LEAK`'s bits set, for the garbage that collection added.
//!
//! ```text
//!  garbage: 7 objects
//!    4 Node
//!    3 Legacy
//!  uncollectable group 1: 4 objects (2 Legacy, 2 Node), pinned by <Legacy at 0x...>
//!  collectable, kept by DEBUG_SAVEALL: 3 objects
//! ```
//!
//! # Invariants
//!
//! - A group starts at each object of `garbage` whose type has a legacy finalizer (`del`) and is
//!   not in an earlier group, in `garbage` order, and holds every object of `garbage` it reaches
//!   through objects of `garbage` not claimed before. With `DEBUG_LEAK` (which saves all) that
//!   is exactly what the collector kept alive for that finalizer; without `DEBUG_SAVEALL`
//!   `garbage` holds only the finalizer objects, so each group is its pinning objects.
//! - Every legacy-finalizer object of a group is listed as pinning it (a cycle with two is one
//!   group pinned by both). Objects in no group are the collectable ones `DEBUG_SAVEALL` kept.
//! - Building the report traverses the garbage objects (user code, marked as such) and takes
//!   references only to the pinning objects it returns.
//!
//! May touch: `any.rs`, `runtime.rs` (`garbage`, the user-code mark), `repr.rs` (describing an
//! object), `diag.rs`.

use core::ffi::{c_int, c_void};
use std::collections::HashMap;

use super::any::{AnyGc, AsObject};
use super::diag::gc_eprintln;
use super::repr::describe;
use super::runtime::{GcState, UserCode, current};
use crate::object::{self, ObjectHeader, type_of};

/// One uncollectable group of [`LeakReport`].
#[derive(Clone, Debug)]
pub struct LeakGroup {
    /// The objects with a legacy finalizer in the group, the one it was found from first.
    pub pinned_by: Vec<AnyGc>,
    /// Objects in the group.
    pub objects: usize,
    /// Of those, how many of each type name, most numerous first.
    pub by_type: Vec<(String, usize)>,
}

/// `gc::garbage()` explained ([`leak_report`]).
#[derive(Clone, Debug)]
pub struct LeakReport {
    /// Objects in `garbage`.
    pub objects: usize,
    /// How many of each type name, most numerous first.
    pub by_type: Vec<(String, usize)>,
    /// The uncollectable groups, each pinned by legacy finalizers.
    pub groups: Vec<LeakGroup>,
    /// Objects in no group: collectable garbage that `DEBUG_SAVEALL` kept.
    pub collectable: usize,
}

/// The report on the current runtime's `garbage` (see the module docs).
pub fn leak_report() -> LeakReport {
    let objs = current().garbage.borrow().clone();
    report(&objs)
}

/// Counts per type name of `objs`, most numerous first, then by name.
fn by_type<'a>(objs: impl Iterator<Item = &'a AnyGc>) -> Vec<(String, usize)> {
    let mut m: HashMap<String, usize> = HashMap::new();
    for o in objs {
        *m.entry(o.type_name()).or_insert(0) += 1;
    }
    let mut v: Vec<(String, usize)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

unsafe extern "C" fn visit_push(obj: *mut ObjectHeader, arg: *mut c_void) -> c_int {
    if !obj.is_null() {
        // SAFETY: arg is report's vector.
        unsafe { (*(arg as *mut Vec<usize>)).push(obj as usize) };
    }
    0
}

/// The report on `objs` (the contents of a `garbage`).
pub(crate) fn report(objs: &[AnyGc]) -> LeakReport {
    let index: HashMap<usize, usize> = objs
        .iter()
        .enumerate()
        .map(|(i, o)| (o.as_object() as usize, i))
        .collect();
    let mut group_of: Vec<Option<usize>> = vec![None; objs.len()];
    let mut groups: Vec<(Vec<usize>, Vec<usize>)> = Vec::new(); // (pinning, members)
    let mut referents = Vec::new();
    let _user_code = UserCode::enter();
    for (i, o) in objs.iter().enumerate() {
        // SAFETY: `objs` holds a reference to each object.
        if unsafe { type_of(o.as_object()) }.del.is_none() {
            continue;
        }
        if let Some(g) = group_of[i] {
            groups[g].0.push(i);
            continue;
        }
        let g = groups.len();
        group_of[i] = Some(g);
        let mut members = vec![i];
        let mut todo = vec![i];
        while let Some(j) = todo.pop() {
            let arg = &mut referents as *mut Vec<usize> as *mut c_void;
            // SAFETY: a live object; visit_push accepts the vector.
            unsafe { object::traverse(objs[j].as_object(), visit_push, arg) };
            for r in referents.drain(..) {
                if let Some(&k) = index.get(&r) {
                    if group_of[k].is_none() {
                        group_of[k] = Some(g);
                        members.push(k);
                        todo.push(k);
                    }
                }
            }
        }
        groups.push((vec![i], members));
    }
    LeakReport {
        objects: objs.len(),
        by_type: by_type(objs.iter()),
        groups: groups
            .into_iter()
            .map(|(pins, members)| LeakGroup {
                pinned_by: pins.iter().map(|&i| objs[i].clone()).collect(),
                objects: members.len(),
                by_type: by_type(members.iter().map(|&i| &objs[i])),
            })
            .collect(),
        collectable: group_of.iter().filter(|g| g.is_none()).count(),
    }
}

/// The collector, at the end of a collection with `DEBUG_LEAK`: print the report on the
/// garbage it added (`garbage[from..]`) to stderr, each line starting `gc: `.
pub(crate) fn print_new(st: &GcState, from: usize) {
    let added: Vec<AnyGc> = st.garbage.borrow().get(from..).unwrap_or(&[]).to_vec();
    if added.is_empty() {
        return;
    }
    for line in report(&added).to_string().lines() {
        gc_eprintln!("gc: {line}");
    }
}

impl core::fmt::Display for LeakReport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(f, "garbage: {} objects", self.objects)?;
        for (name, n) in &self.by_type {
            writeln!(f, "  {n} {name}")?;
        }
        for (i, g) in self.groups.iter().enumerate() {
            let types: Vec<String> = g.by_type.iter().map(|(t, n)| format!("{n} {t}")).collect();
            write!(
                f,
                "uncollectable group {}: {} objects ({}), pinned by the legacy finalizer of ",
                i + 1,
                g.objects,
                types.join(", ")
            )?;
            let pins: Vec<String> = g.pinned_by.iter().map(describe).collect();
            writeln!(f, "{}", pins.join(" and "))?;
        }
        if self.collectable > 0 {
            writeln!(
                f,
                "collectable, kept by DEBUG_SAVEALL: {} objects",
                self.collectable
            )?;
        }
        Ok(())
    }
}
