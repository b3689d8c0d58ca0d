//! Counts by type: `gc::type_counts` (objgraph's `typestats` / `show_most_common_types`) and
//! `gc::type_growth` (its `growth` / `show_growth`), over one runtime's objects.
//!
//! What the census sees:
//!
//! | objects                                                        | seen |
//! |----------------------------------------------------------------|------|
//! | tracked in generations 0..2 and the permanent one (every `Gc<T>`, weakref objects, tracked C objects, `garbage`) | yes |
//! | untracked objects with a header (non-GC C objects, untracked GC objects) that a seen object refers to, directly or through other such objects | yes, as `untracked` |
//! | untracked objects referred to only from outside the tracked graph (a Rust variable, a C pointer, an untracked object nothing seen refers to) | no: nothing lists them |
//! | objects on a running collection's working sets (asked from a finalizer or callback) | no |
//! | objects being deallocated, or put off by the trashcan           | no (they are dying) |
//! | plain Rust values, memory from `malloc`                        | no: no header |
//!
//! # Invariants
//!
//! - Types are grouped by name, as objgraph does (a `Gc<T>`'s `TypeObject` is a constant whose
//!   address is not unique per `T`; names are): two types with one name count together.
//! - `bytes` is each object's memory: `GcHead` + `basic_size` for a fixed-size type; the
//!   allocator's usable size of the block for a variable-size one (its item count is not
//!   recorded).
//! - `type_growth` keeps, per runtime, the highest count of each name it has reported; a type
//!   shows when its count passes that peak, by how much (objgraph's peak semantics: shrinking
//!   and growing back to an old peak is not growth).
//! - One pass over the tracked objects, each traversed once (its referents looked at for
//!   untracked ones); no object is created, no reference taken.
//!
//! May touch: `list.rs`, `runtime.rs` (the state, the peaks, the user-code mark).

use core::ffi::{c_int, c_void};
use std::collections::{HashMap, HashSet};

use super::list;
use super::runtime::{UserCode, current};
use crate::config::NUM_GENERATIONS;
use crate::object::{self, ObjectHeader, TypeObject, as_gc, from_gc, type_of};

/// Live objects of one type name ([`type_counts`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeCount {
    /// The type's name.
    pub name: String,
    /// Objects seen (tracked, plus the untracked ones found through them).
    pub count: usize,
    /// Of `count`, the untracked ones.
    pub untracked: usize,
    /// Their memory in bytes (see the module docs).
    pub bytes: usize,
}

/// A type whose count rose above its earlier peak ([`type_growth`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeGrowth {
    /// The type's name.
    pub name: String,
    /// Objects now.
    pub count: usize,
    /// How far above the previous peak (the first call: the whole count).
    pub delta: usize,
}

struct Tally {
    ty: *const TypeObject,
    count: usize,
    untracked: usize,
    bytes: usize,
}

struct Census {
    /// One tally per type pointer; `index` finds it, `last` is the one used last (objects of a
    /// type tend to sit together on the lists, so most objects skip the hash).
    tallies: Vec<Tally>,
    index: HashMap<usize, usize>,
    last: usize,
    seen: HashSet<usize>,
    todo: Vec<*mut ObjectHeader>,
}

unsafe extern "C" fn visit_untracked(obj: *mut ObjectHeader, arg: *mut c_void) -> c_int {
    // SAFETY: arg is type_counts' Census; obj is null or live (traverse's contract).
    unsafe {
        let c = &mut *(arg as *mut Census);
        if !obj.is_null() && !object::is_tracked(obj) && c.seen.insert(obj as usize) {
            c.todo.push(obj);
        }
    }
    0
}

/// Bytes of `obj`'s memory.
///
/// # Safety
/// `obj` is live, of type `ty`.
unsafe fn bytes_of(obj: *mut ObjectHeader, ty: &TypeObject) -> usize {
    if ty.item_size == 0 {
        return ty.layout_var(0).map_or(0, |l| l.size());
    }
    // SAFETY: object memory comes from ArenaAlloc, whose blocks the C functions accept (a
    // variable-size object is freed through them too).
    unsafe {
        let mem = if ty.is_gc() {
            as_gc(obj) as *mut u8
        } else {
            obj as *mut u8
        };
        crate::alloc::c::usable_size(mem)
    }
}

impl Census {
    /// Count `obj`, then queue the untracked objects it refers to.
    ///
    /// # Safety
    /// `obj` is live.
    unsafe fn take(&mut self, obj: *mut ObjectHeader, untracked: bool) {
        // SAFETY: caller's contract.
        unsafe {
            let ty = type_of(obj);
            let key = ty as *const TypeObject;
            if self.tallies.get(self.last).is_none_or(|t| t.ty != key) {
                let next = self.tallies.len();
                self.last = *self.index.entry(key as usize).or_insert(next);
                if self.last == next {
                    self.tallies.push(Tally {
                        ty: key,
                        count: 0,
                        untracked: 0,
                        bytes: 0,
                    });
                }
            }
            let t = &mut self.tallies[self.last];
            t.count += 1;
            t.untracked += usize::from(untracked);
            t.bytes += bytes_of(obj, ty);
            object::traverse(obj, visit_untracked, self as *mut Census as *mut c_void);
        }
    }
}

/// Live objects per type name, most numerous first (then by name): every tracked object of the
/// current runtime (all generations, the permanent one included) and the untracked objects
/// found through them (see the module docs for what can and cannot be seen).
pub fn type_counts() -> Vec<TypeCount> {
    let st = current();
    let mut c = Census {
        tallies: Vec::new(),
        index: HashMap::new(),
        last: 0,
        seen: HashSet::new(),
        todo: Vec::new(),
    };
    {
        // Traverse functions are user code (C types').
        let _user_code = UserCode::enter();
        let lists = (0..NUM_GENERATIONS).map(|i| st.gen_head(i));
        for l in lists.chain([st.permanent.get()]) {
            // SAFETY: lists of the current runtime hold live objects; the census changes none.
            unsafe { list::for_each(l, |g| c.take(from_gc(g), false)) };
        }
        while let Some(o) = c.todo.pop() {
            // SAFETY: found as the referent of a live object.
            unsafe { c.take(o, true) };
        }
    }
    let mut by_name: HashMap<String, TypeCount> = HashMap::new();
    for t in c.tallies {
        // SAFETY: the type of a live object; types outlive their objects.
        let name = unsafe { (*t.ty).name_str() }.into_owned();
        let e = by_name.entry(name.clone()).or_insert(TypeCount {
            name,
            count: 0,
            untracked: 0,
            bytes: 0,
        });
        e.count += t.count;
        e.untracked += t.untracked;
        e.bytes += t.bytes;
    }
    let mut v: Vec<TypeCount> = by_name.into_values().collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    v
}

/// The types whose count rose above the peak this function saw at its earlier calls (in this
/// runtime), with the rise, largest first (objgraph's `growth`). The first call reports every
/// type.
pub fn type_growth() -> Vec<TypeGrowth> {
    let counts = type_counts();
    let st = current();
    let mut peaks = st.census_peaks.borrow_mut();
    let mut v: Vec<TypeGrowth> = counts
        .into_iter()
        .filter_map(|t| {
            let peak = peaks.entry(t.name.clone()).or_insert(0);
            let delta = t.count.checked_sub(*peak).filter(|&d| d > 0)?;
            *peak = t.count;
            Some(TypeGrowth {
                name: t.name,
                count: t.count,
                delta,
            })
        })
        .collect();
    v.sort_by(|a, b| b.delta.cmp(&a.delta).then_with(|| a.name.cmp(&b.name)));
    v
}
