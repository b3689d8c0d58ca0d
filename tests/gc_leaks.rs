//! Leak hunting in the object graph (issue 12): counts by type and their growth, `path_to`
//! (why is this alive?), the DOT pictures, the repr hooks and the `DEBUG_LEAK` report, on Rust
//! objects and C-style objects (a `TypeObject` built here as a C program builds one). Each test
//! runs on a fresh thread, so in a fresh default runtime.

use core::ffi::{c_char, c_int, c_void};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use arenagc::gc::{self, AnyGc, AsObject, GcError, PathTo, raw};
use arenagc::object::{self, ObjectHeader, TPFLAGS_HAVE_GC, TypeObject, VisitProc};
use arenagc::{Gc, GcCell, Trace};

fn isolated(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().unwrap();
}

// ---- test types --------------------------------------------------------------------------

#[derive(Trace)]
struct Apple {
    #[trace(skip)]
    a: u64,
    #[trace(skip)]
    b: u64,
}

#[derive(Trace)]
struct Pear {
    #[trace(skip)]
    _x: u32,
}

/// A named node with edges: the shape of most graphs below.
#[derive(Trace, Debug)]
struct Node {
    #[trace(skip)]
    name: String,
    edges: GcCell<Vec<AnyGc>>,
}

fn node(name: &str) -> Gc<Node> {
    Gc::new(Node {
        name: name.to_string(),
        edges: GcCell::new(Vec::new()),
    })
}

fn link(a: &Gc<Node>, b: &impl AsObject) {
    // SAFETY: b is live (the caller's handle), of this runtime.
    a.edges
        .borrow_mut()
        .push(unsafe { AnyGc::from_borrowed(b.as_object()) });
}

/// A C-style object: a GC type holding at most one reference (`tracked` decides whether it is
/// tracked), or, as `LEAF_TYPE`, a plain untracked object.
#[repr(C)]
struct CObj {
    header: ObjectHeader,
    other: *mut ObjectHeader,
}

unsafe extern "C" fn c_traverse(
    obj: *mut ObjectHeader,
    visit: VisitProc,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: a live CObj; `other` is null or a reference it owns.
    unsafe {
        let o = (*(obj as *mut CObj)).other;
        if o.is_null() { 0 } else { visit(o, arg) }
    }
}

unsafe extern "C" fn c_clear(obj: *mut ObjectHeader) -> c_int {
    // SAFETY: a live CObj; the reference is taken out before it is given up.
    unsafe {
        let o = core::mem::replace(&mut (*(obj as *mut CObj)).other, core::ptr::null_mut());
        if !o.is_null() {
            object::decref(o);
        }
    }
    0
}

unsafe extern "C" fn c_dealloc(obj: *mut ObjectHeader) {
    // SAFETY: refcount 0: the usual dealloc sequence.
    unsafe {
        raw::untrack(obj);
        c_clear(obj);
        raw::del_object(obj);
    }
}

unsafe extern "C" fn c_repr(obj: *mut ObjectHeader, buf: *mut c_char, cap: usize) -> usize {
    // SAFETY: a live CObj; buf has cap bytes.
    unsafe {
        let s = format!(
            "cobj->{}",
            if (*(obj as *mut CObj)).other.is_null() {
                "none"
            } else {
                "some"
            }
        );
        let n = s.len().min(cap);
        core::ptr::copy_nonoverlapping(s.as_ptr(), buf as *mut u8, n);
        n
    }
}

static C_TYPE: TypeObject = TypeObject {
    name: c"cobj".as_ptr(),
    basic_size: size_of::<CObj>(),
    flags: TPFLAGS_HAVE_GC,
    weaklist_offset: 0,
    traverse: Some(c_traverse),
    clear: Some(c_clear),
    finalize: None,
    del: None,
    dealloc: c_dealloc,
    item_size: 0,
};

static LEAF_TYPE: TypeObject = TypeObject {
    name: c"cleaf".as_ptr(),
    basic_size: size_of::<CObj>(),
    flags: 0,
    weaklist_offset: 0,
    traverse: None,
    clear: None,
    finalize: None,
    del: None,
    dealloc: c_dealloc,
    item_size: 0,
};

/// A new C object of `ty` holding a reference to `other` (if any), tracked when `track`.
fn cobj(ty: &'static TypeObject, other: Option<&dyn AsObjectRef>, track: bool) -> AnyGc {
    // SAFETY: a static type; the payload is initialized before tracking; `other` is live.
    unsafe {
        let o = raw::new_object(ty);
        assert!(!o.is_null());
        let other = other.map_or(core::ptr::null_mut(), |r| r.obj());
        if !other.is_null() {
            object::incref(other);
        }
        (&raw mut (*(o as *mut CObj)).other).write(other);
        if track {
            raw::track(o);
        }
        adopt(o)
    }
}

/// `AsObject` as a trait object (it is sealed and generic-free, but not object safe in use).
trait AsObjectRef {
    fn obj(&self) -> *mut ObjectHeader;
}
impl<T: AsObject> AsObjectRef for T {
    fn obj(&self) -> *mut ObjectHeader {
        self.as_object()
    }
}

/// Adopt the reference a fresh object was created with.
///
/// # Safety
/// `o` is live and the caller gives up one reference it owns.
unsafe fn adopt(o: *mut ObjectHeader) -> AnyGc {
    // SAFETY: caller's contract.
    unsafe {
        let a = AnyGc::from_borrowed(o);
        object::decref(o);
        a
    }
}

fn counts() -> BTreeMap<String, (usize, usize, usize)> {
    gc::type_counts()
        .into_iter()
        .map(|t| (t.name, (t.count, t.untracked, t.bytes)))
        .collect()
}

// ---- counts by type ----------------------------------------------------------------------

#[test]
fn type_counts_are_exact_on_a_graph_of_known_types() {
    isolated(|| {
        let apples: Vec<Gc<Apple>> = (0..10).map(|i| Gc::new(Apple { a: i, b: i })).collect();
        let pears: Vec<Gc<Pear>> = (0..5).map(|_| Gc::new(Pear { _x: 0 })).collect();
        // Three tracked C objects, each holding an untracked C leaf only it refers to.
        let cs: Vec<AnyGc> = (0..3)
            .map(|_| {
                let leaf = cobj(&LEAF_TYPE, None, false);
                cobj(&C_TYPE, Some(&leaf), true)
            })
            .collect();
        // An untracked leaf held by a Rust value inside a Gc: found through it.
        let holder = node("holder");
        let held = cobj(&LEAF_TYPE, None, false);
        link(&holder, &held);
        drop(held);
        // An untracked leaf held only by this Rust variable: nothing lists it.
        let hidden = cobj(&LEAF_TYPE, None, false);
        let w = Gc::downgrade(&apples[0]);

        let c = counts();
        let gc_obj = 16 + 16; // GcHead + ObjectHeader
        assert_eq!(c["Apple"], (10, 0, 10 * (gc_obj + size_of::<Apple>())));
        // Pear's 4 bytes after the header round up to the header's alignment of 8.
        assert_eq!(c["Pear"], (5, 0, 5 * (16 + 24)));
        assert_eq!(c["cobj"], (3, 0, 3 * (16 + size_of::<CObj>())));
        assert_eq!(
            c["cleaf"],
            (4, 4, 4 * size_of::<CObj>()),
            "the hidden leaf is not seen"
        );
        assert_eq!(c["Node"].0, 1);
        assert_eq!(c["weakref"].0, 1);
        assert_eq!(c.len(), 6, "{c:?}");
        let v = gc::type_counts();
        assert_eq!(v[0].name, "Apple", "most numerous first");
        assert!(v.windows(2).all(|p| p[0].count >= p[1].count));
        // Frozen objects are counted too.
        gc::freeze();
        assert_eq!(counts()["Apple"].0, 10);
        gc::unfreeze();
        assert_eq!(apples.iter().map(|a| a.a + a.b).sum::<u64>(), 90);
        drop((apples, pears, cs, holder, hidden, w));
        assert!(gc::type_counts().is_empty());
    });
}

#[test]
fn type_growth_reports_rises_above_the_peak_after_adding_and_removing() {
    isolated(|| {
        let base: Vec<Gc<Pear>> = (0..2).map(|_| Gc::new(Pear { _x: 0 })).collect();
        let first = gc::type_growth();
        assert_eq!(first.len(), 1);
        assert_eq!(
            (first[0].name.as_str(), first[0].count, first[0].delta),
            ("Pear", 2, 2)
        );
        assert!(gc::type_growth().is_empty(), "nothing new");

        let mut more: Vec<Gc<Pear>> = (0..5).map(|_| Gc::new(Pear { _x: 0 })).collect();
        let apples: Vec<Gc<Apple>> = (0..3).map(|i| Gc::new(Apple { a: i, b: 0 })).collect();
        let g = gc::type_growth();
        let g: Vec<(&str, usize, usize)> = g
            .iter()
            .map(|t| (t.name.as_str(), t.count, t.delta))
            .collect();
        assert_eq!(
            g,
            vec![("Pear", 7, 5), ("Apple", 3, 3)],
            "largest rise first"
        );

        more.truncate(1); // removing is not growth
        assert!(gc::type_growth().is_empty());
        more.extend((0..3).map(|_| Gc::new(Pear { _x: 0 }))); // back to 6, under the peak of 7
        assert!(gc::type_growth().is_empty());
        more.extend((0..4).map(|_| Gc::new(Pear { _x: 0 }))); // 10: 3 above the peak
        let g = gc::type_growth();
        assert_eq!(g.len(), 1);
        assert_eq!((g[0].count, g[0].delta), (10, 3));
        drop((base, more, apples));
    });
}

// ---- path_to -----------------------------------------------------------------------------

/// Each object of the chain refers to the next.
fn assert_linked(chain: &[AnyGc]) {
    for w in chain.windows(2) {
        assert!(
            gc::get_referents(&w[0]).iter().any(|r| r.is(&w[1])),
            "{:?} does not refer to {:?}",
            w[0],
            w[1]
        );
    }
}

fn path(obj: &impl AsObject) -> gc::Backrefs {
    match gc::path_to(obj).unwrap() {
        PathTo::Path(b) => b,
        PathTo::Garbage => panic!("no path"),
    }
}

#[test]
fn path_to_finds_the_shortest_chain_from_a_root_held_by_a_local() {
    isolated(|| {
        let root = node("root");
        let mut chain = vec![root.clone()];
        for i in 0..1000 {
            let n = node(&format!("n{i}"));
            link(chain.last().unwrap(), &n);
            chain.push(n);
        }
        let target = chain.last().unwrap().clone();
        assert_eq!((root.name.as_str(), target.name.as_str()), ("root", "n999"));
        drop(chain);
        let b = path(&target);
        assert_eq!(b.chain.len(), 1001);
        assert!(b.chain[0].is(&root) && b.chain[1000].is(&target));
        assert_eq!(
            (b.external, b.frozen),
            (1, false),
            "the local `root` holds the root"
        );
        assert_linked(&b.chain);
        // A shortcut from the root to n500: the chain takes it.
        link(&root, &b.chain[501]);
        drop(b);
        let b = path(&target);
        assert_eq!(b.chain.len(), 1 + 500, "root -> n500 -> ... -> n999");
        assert_linked(&b.chain);
        assert!(b.chain[0].is(&root));
        let text = PathTo::Path(b.clone()).to_string();
        assert!(text.starts_with("root <Node at "), "{text}");
        assert_eq!(text.lines().count(), 501);
        drop(b);

        // A second holder of the target makes it a root of its own.
        let extra = target.clone();
        let b = path(&target);
        assert_eq!((b.chain.len(), b.external), (1, 1));
        drop((b, extra, root, target));
        assert_eq!(gc::get_objects(None).unwrap().len(), 0);
    });
}

#[test]
fn path_to_an_object_held_only_by_a_cycle_reports_cyclic_garbage() {
    isolated(|| {
        let a = node("a");
        let b = node("b");
        link(&a, &b);
        link(&b, &a);
        drop(b);
        // Only the handle asking holds `a` from outside.
        assert!(matches!(gc::path_to(&a), Ok(PathTo::Garbage)));
        assert_eq!(
            gc::path_to(&a).unwrap().to_string(),
            "held by nothing outside the tracked graph: cyclic garbage"
        );
        // A lone object held only by the asking handle is no one's either.
        let lone = Gc::new(Pear { _x: 1 });
        assert!(matches!(gc::path_to(&lone), Ok(PathTo::Garbage)));
        drop((a, lone));
        assert_eq!(gc::collect(2), Ok(2));
        // The walk left every list valid and nothing behind.
        assert_eq!(gc::get_objects(None).unwrap().len(), 0);
    });
}

#[test]
fn path_to_a_frozen_object_ends_at_a_frozen_root() {
    isolated(|| {
        // x <-> z, frozen with nothing else holding them; then y, young, held by x.
        let x = node("x");
        let z = node("z");
        link(&x, &z);
        link(&z, &x);
        gc::freeze();
        let y = node("y");
        link(&x, &y);
        drop((x, z));
        let b = path(&y);
        assert_eq!(b.chain.len(), 2);
        assert_eq!(b.chain[0].type_name(), "Node");
        assert!(b.chain[1].is(&y));
        assert!(
            b.frozen && b.external == 0,
            "x is held only by z, and frozen"
        );
        let x = b.chain[0].clone();
        drop(b);
        // The frozen root itself: its own root (the handle asking is not counted).
        let b = path(&x);
        assert!(b.frozen && b.chain.len() == 1 && b.external == 0);
        drop((b, x));
        gc::unfreeze();
        drop(y);
        assert_eq!(gc::collect(2), Ok(3), "x, z and y were garbage once thawed");
    });
}

#[test]
fn path_to_a_rust_object_held_by_a_c_object() {
    isolated(|| {
        // A tracked C object held by a C "global" (this variable), holding a Rust object.
        let r = node("r");
        let c = cobj(&C_TYPE, Some(&r), true);
        let b = path(&r);
        assert_eq!(b.chain.len(), 2);
        assert!(b.chain[0].is(&c) && b.chain[1].is(&r));
        assert_eq!(b.external, 1);
        drop(b);
        // An untracked C container is outside the tracked graph: what it holds is a root.
        let r2 = node("r2");
        let u = cobj(&LEAF_TYPE, Some(&r2), false);
        let b = path(&r2);
        assert_eq!((b.chain.len(), b.external), (1, 1));
        assert!(b.chain[0].is(&r2));
        drop(b);
        // And the path to an untracked object goes through the tracked one holding it.
        let leaf = cobj(&LEAF_TYPE, None, false);
        let holder = node("holder");
        link(&holder, &leaf);
        let b = path(&leaf);
        assert_eq!(b.chain.len(), 2);
        assert!(b.chain[0].is(&holder) && b.chain[1].is(&leaf));
        drop((b, c, r, u, r2, leaf, holder));
        assert_eq!(gc::get_objects(None).unwrap().len(), 0);
    });
}

#[test]
fn graph_questions_are_refused_during_a_collection() {
    #[derive(Trace)]
    #[trace(finalize = ask)]
    struct Asker {
        me: GcCell<Option<Gc<Asker>>>,
    }
    thread_local! {
        static ANSWERS: Cell<usize> = const { Cell::new(0) };
    }
    fn ask(this: &Gc<Asker>) {
        assert_eq!(gc::path_to(this).unwrap_err(), GcError::CollectionRunning);
        assert_eq!(
            gc::dot_refs(this, 1, 10).unwrap_err(),
            GcError::CollectionRunning
        );
        let _ = gc::type_counts(); // allowed: it sees the generations only
        ANSWERS.with(|a| a.set(a.get() + 1));
    }
    isolated(|| {
        let a = Gc::new(Asker {
            me: GcCell::new(None),
        });
        a.me.set(Some(a.clone()));
        drop(a);
        assert_eq!(gc::collect(2), Ok(1));
        assert_eq!(ANSWERS.with(|a| a.get()), 1);
        assert!(
            GcError::CollectionRunning
                .to_string()
                .contains("collection is running")
        );
    });
}

// ---- pictures and reprs ------------------------------------------------------------------

/// A DOT text read back: node id -> (label lines, fill colour, dashed), and the edges.
struct Dot {
    nodes: BTreeMap<String, (Vec<String>, String, bool)>,
    edges: BTreeSet<(String, String)>,
}

fn attr(line: &str, key: &str) -> String {
    let at = line
        .find(&format!("{key}=\""))
        .unwrap_or_else(|| panic!("{key} in {line}"));
    let rest = &line[at + key.len() + 2..];
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().unwrap()),
            '"' => break,
            c => out.push(c),
        }
    }
    out
}

fn parse_dot(text: &str) -> Dot {
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("digraph "));
    assert_eq!(text.lines().last(), Some("}"));
    let mut d = Dot {
        nodes: BTreeMap::new(),
        edges: BTreeSet::new(),
    };
    for l in lines {
        let l = l.trim();
        if let Some((a, b)) = l.strip_suffix(';').and_then(|e| e.split_once(" -> ")) {
            d.edges.insert((a.to_string(), b.to_string()));
        } else if l.starts_with('o') && l.contains(" [label=") {
            let id = l[..l.find(' ').unwrap()].to_string();
            // The label's "\n" separators read back as "n" after the escape: split on the raw text.
            let raw = &l[l.find("label=\"").unwrap() + 7..];
            let raw = &raw[..raw.find("\", fillcolor").unwrap()];
            let label = raw.split("\\n").map(|s| s.replace("\\\"", "\"")).collect();
            d.nodes
                .insert(id, (label, attr(l, "fillcolor"), l.contains("dashed")));
        }
    }
    d
}

impl Dot {
    /// The id of the node whose label mentions `what`.
    fn id(&self, what: &str) -> &str {
        let ids: Vec<&String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.0.iter().any(|l| l.contains(what)))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(ids.len(), 1, "one node for {what}: {:?}", self.nodes);
        ids[0]
    }

    fn edge(&self, a: &str, b: &str) -> bool {
        self.edges
            .contains(&(self.id(a).to_string(), self.id(b).to_string()))
    }
}

/// `"name"`, as a `Node`'s `Debug` shows its name.
fn q(name: &str) -> String {
    format!("\"{name}\"")
}

#[test]
fn dot_pictures_parse_back_with_the_expected_edges_and_marks() {
    isolated(|| {
        gc::set_repr_debug::<Node>();
        // SAFETY: c_repr accepts every CObj and the buffer.
        unsafe { raw::set_type_repr(&C_TYPE, Some(c_repr)) };
        let root = node("root");
        let a = node("alpha");
        let b = node("beta");
        let t = node("target");
        link(&root, &a);
        link(&a, &b);
        link(&b, &a);
        link(&a, &t);
        link(&b, &t);
        let c = cobj(&C_TYPE, Some(&t), true); // a C referrer, held by this variable
        drop((a, b));

        let d = parse_dot(&gc::dot_backrefs(&t, 3, 50).unwrap());
        assert_eq!(d.nodes.len(), 5, "{:?}", d.nodes);
        assert_eq!(d.id(&q("target")), "o0");
        assert_eq!(d.nodes["o0"].1, "#ff9f9f", "the object is red");
        for (x, y) in [
            (q("alpha"), q("target")),
            (q("beta"), q("target")),
            (q("alpha"), q("beta")),
            (q("beta"), q("alpha")),
            (q("root"), q("alpha")),
            ("cobj->some".to_string(), q("target")),
        ] {
            assert!(d.edge(&x, &y), "{x} -> {y} in {:?}", d.edges);
        }
        assert_eq!(d.edges.len(), 6);
        let r = &d.nodes[d.id(&q("root"))];
        assert_eq!(r.1, "#9fdf9f", "root is green");
        assert!(
            r.0.iter().any(|l| l == "root: 1 reference from outside"),
            "{r:?}"
        );
        let cn = &d.nodes[d.id("cobj->some")];
        assert!(cn.0[0] == "cobj" && cn.1 == "#9fdf9f");
        assert!(d.nodes[d.id(&q("alpha"))].1 == "white");

        // Depth 1: only the direct referrers; alpha and beta have referrers not drawn.
        let d = parse_dot(&gc::dot_backrefs(&t, 1, 50).unwrap());
        assert_eq!(d.nodes.len(), 4);
        assert!(d.nodes[d.id(&q("alpha"))].2 && d.edge(&q("beta"), &q("alpha")));
        // A budget of 2 nodes.
        let d = parse_dot(&gc::dot_backrefs(&t, 3, 2).unwrap());
        assert_eq!(d.nodes.len(), 2);
        assert!(d.nodes["o0"].2, "the object has referrers not drawn");

        // Referents of root, two levels down.
        let d = parse_dot(&gc::dot_refs(&root, 2, 50).unwrap());
        assert_eq!(d.id(&q("root")), "o0");
        assert!(d.edge(&q("root"), &q("alpha")) && d.edge(&q("alpha"), &q("beta")));
        assert!(d.edge(&q("alpha"), &q("target")) && d.edge(&q("beta"), &q("alpha")));
        assert!(d.edge(&q("beta"), &q("target")));
        assert_eq!((d.nodes.len(), d.edges.len()), (4, 5));
        assert!(
            d.nodes[d.id(&q("target"))].1 == "#9fdf9f",
            "this test's `t` holds it"
        );

        drop((root, t, c));
        assert_eq!(gc::collect(2), Ok(3), "alpha <-> beta, holding target");
        assert_eq!(gc::get_objects(None).unwrap().len(), 0);
    });
}

#[test]
fn reprs_are_cut_and_a_cyclic_debug_ends() {
    isolated(|| {
        #[derive(Trace, Debug)]
        struct Loop {
            me: GcCell<Option<Gc<Loop>>>,
        }
        gc::set_repr_debug::<Loop>();
        let l = Gc::new(Loop {
            me: GcCell::new(None),
        });
        l.me.set(Some(l.clone()));
        let r = gc::repr(&l).unwrap();
        assert!(
            r.ends_with('…') && r.len() <= gc::REPR_MAX_BYTES + '…'.len_utf8(),
            "{r}"
        );
        assert!(
            r.starts_with("Loop { me: GcCell(RefCell { value: Some(Loop"),
            "{r}"
        );
        assert_eq!(gc::repr(&Gc::new(Pear { _x: 0 })), None, "no hook, no repr");
        gc::set_repr::<Pear>(Some(|p, out| write!(out, "pear {}", p._x)));
        assert_eq!(
            gc::repr(&Gc::new(Pear { _x: 7 })).as_deref(),
            Some("pear 7")
        );
        gc::set_repr::<Pear>(None);
        assert_eq!(gc::repr(&Gc::new(Pear { _x: 7 })), None);
        l.me.set(None);
    });
}

// ---- the DEBUG_LEAK report ---------------------------------------------------------------

#[derive(Trace)]
#[trace(legacy_del = no_op)]
struct Legacy {
    #[trace(skip)]
    name: &'static str,
    edges: GcCell<Vec<AnyGc>>,
}

fn no_op(_: &Gc<Legacy>) {}

fn legacy(name: &'static str) -> Gc<Legacy> {
    Gc::new(Legacy {
        name,
        edges: GcCell::new(Vec::new()),
    })
}

fn ledge(a: &Gc<Legacy>, b: &impl AsObject) {
    // SAFETY: b is live.
    a.edges
        .borrow_mut()
        .push(unsafe { AnyGc::from_borrowed(b.as_object()) });
}

/// Two uncollectable groups (one pinned by L1, one by L2 and L3) and a collectable cycle;
/// returns weak references to the three `Legacy` objects, to untangle them afterwards.
fn make_two_groups() -> Vec<arenagc::Weak<Legacy>> {
    let (l1, n1, n2) = (legacy("L1"), node("n1"), node("n2"));
    ledge(&l1, &n1);
    link(&n1, &n2);
    link(&n2, &l1);
    let (l2, l3, n3) = (legacy("L2"), legacy("L3"), node("n3"));
    ledge(&l2, &l3);
    ledge(&l3, &l2);
    ledge(&l3, &n3);
    let (n4, n5) = (node("n4"), node("n5"));
    link(&n4, &n5);
    link(&n5, &n4);
    assert_eq!((l1.name, l2.name, l3.name), ("L1", "L2", "L3"));
    [l1, l2, l3].iter().map(Gc::downgrade).collect()
}

/// Break the legacy objects' edges, so that everything can go.
fn untangle(legacies: Vec<arenagc::Weak<Legacy>>) {
    gc::clear_garbage();
    for w in legacies {
        if let Some(l) = w.upgrade() {
            l.edges.borrow_mut().clear();
        }
    }
    gc::collect(2).unwrap();
    assert_eq!(gc::garbage_len(), 0);
    assert_eq!(gc::get_objects(None).unwrap().len(), 0);
}

#[test]
fn the_leak_report_groups_garbage_by_type_and_names_the_pinning_finalizers() {
    isolated(|| {
        let legacies = make_two_groups();
        // Without SAVEALL garbage holds the finalizer objects only: one group per pin.
        assert_eq!(gc::collect(2), Ok(8), "3 + 3 uncollectable, 2 collected");
        let r = gc::leak_report();
        assert_eq!(r.objects, 3);
        assert_eq!(r.by_type, vec![("Legacy".to_string(), 3)]);
        assert_eq!(
            r.groups.len(),
            2,
            "L2 and L3 refer to each other: one group"
        );
        assert_eq!(r.groups[1].pinned_by.len(), 2);
        drop(r);
        untangle(legacies);

        // With DEBUG_LEAK every unreachable object is in garbage, and the groups are exact.
        gc::set_debug(gc::DEBUG_LEAK);
        let legacies = make_two_groups();
        gc::collect(2).unwrap();
        gc::set_debug(0);
        let r = gc::leak_report();
        assert_eq!(r.objects, 8);
        assert_eq!(
            r.by_type,
            vec![("Node".to_string(), 5), ("Legacy".to_string(), 3)]
        );
        assert_eq!(r.groups.len(), 2);
        let g1 = &r.groups[0];
        assert_eq!(g1.objects, 3);
        assert_eq!(
            g1.by_type,
            vec![("Node".to_string(), 2), ("Legacy".to_string(), 1)]
        );
        assert_eq!(g1.pinned_by.len(), 1);
        let g2 = &r.groups[1];
        assert_eq!(g2.objects, 3);
        assert_eq!(
            g2.by_type,
            vec![("Legacy".to_string(), 2), ("Node".to_string(), 1)]
        );
        assert_eq!(g2.pinned_by.len(), 2);
        assert_eq!(r.collectable, 2, "n4 and n5, kept by SAVEALL");
        let text = r.to_string();
        assert!(
            text.starts_with("garbage: 8 objects\n  5 Node\n  3 Legacy\n"),
            "{text}"
        );
        assert!(text.contains("uncollectable group 1: 3 objects (2 Node, 1 Legacy), pinned by the legacy finalizer of <Legacy at "), "{text}");
        assert!(
            text.contains("uncollectable group 2: 3 objects (2 Legacy, 1 Node)"),
            "{text}"
        );
        assert!(
            text.contains("collectable, kept by DEBUG_SAVEALL: 2 objects"),
            "{text}"
        );
        drop(r);
        untangle(legacies);
    });
}

/// The report is printed at collection time under DEBUG_LEAK (checked in a child process,
/// whose stderr the parent reads).
#[test]
fn debug_leak_prints_the_report_at_collection_time() {
    const CHILD: &str = "ARENAGC_LEAK_REPORT_CHILD";
    if std::env::var_os(CHILD).is_some() {
        gc::set_debug(gc::DEBUG_LEAK);
        let _legacies = make_two_groups();
        gc::collect(2).unwrap();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "debug_leak_prints_the_report_at_collection_time",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gc: garbage: 8 objects\ngc:   5 Node\ngc:   3 Legacy\n"),
        "{err}"
    );
    assert!(err.contains("gc: uncollectable group 1: 3 objects (2 Node, 1 Legacy), pinned by the legacy finalizer of <Legacy at "), "{err}");
    assert!(err.contains("gc: uncollectable group 2: 3 objects (2 Legacy, 1 Node), pinned by the legacy finalizer of <Legacy at "), "{err}");
    assert!(
        err.contains("gc: collectable, kept by DEBUG_SAVEALL: 2 objects"),
        "{err}"
    );
    assert!(
        err.contains("gc: uncollectable <Legacy"),
        "the per-object lines stay: {err}"
    );
}

// ---- speed -------------------------------------------------------------------------------

/// `cargo test --release --test gc_leaks -- --ignored --nocapture`: the time per object of the
/// census, `path_to` and the backrefs picture on 2M objects (1M two-object cycles under a root
/// list), printed.
#[test]
#[ignore]
fn census_and_path_to_time_per_object_on_2m_objects() {
    isolated(|| {
        gc::disable();
        const N: usize = 1_000_000;
        let root = node("root");
        let mut last = None;
        {
            let mut edges = root.edges.borrow_mut();
            for i in 0..N {
                let a = Gc::new(Pear { _x: i as u32 });
                let b = node("b");
                link(&b, &a);
                link(&b, &b);
                edges.push(Gc::to_any(&b));
                if i == N / 2 {
                    last = Some(a.clone());
                }
            }
        }
        let n = 2 * N + 1;
        let t = std::time::Instant::now();
        let c = gc::type_counts();
        let tc = t.elapsed();
        assert_eq!(c.iter().map(|t| t.count).sum::<usize>(), n);
        let target = last.unwrap();
        let t = std::time::Instant::now();
        let p = gc::path_to(&target).unwrap();
        let tp = t.elapsed();
        assert!(matches!(&p, PathTo::Path(b) if b.chain.len() == 3));
        drop(p);
        let t = std::time::Instant::now();
        let d = gc::dot_backrefs(&target, 2, 10).unwrap();
        let td = t.elapsed();
        assert!(d.contains("->"));
        let t = std::time::Instant::now();
        gc::collect(2).unwrap();
        let tgc = t.elapsed();
        let per = |d: std::time::Duration| d.as_secs_f64() * 1e9 / n as f64;
        println!(
            "{n} objects: type_counts {:.1} ns/object, path_to {:.1} ns/object, dot_backrefs depth 2 {:.1} ns/object, full collection {:.1} ns/object",
            per(tc),
            per(tp),
            per(td),
            per(tgc)
        );
        drop((target, root));
        gc::collect(2).unwrap();
    });
}
