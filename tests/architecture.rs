//! The architecture's rules, checked on the source (`ARCHITECTURE.md` explains them):
//! - inside `src/alloc/` and `src/gc/`, the files use each other without a circle (the module's
//!   `mod.rs` is its front door and may use every file; `tests.rs` is not counted);
//! - no file in `src/` is much over 500 lines.
//!
//! `cargo test --test architecture -- --nocapture` prints the graph of each layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The sibling modules `text` (one file of `layer`) refers to: `super::x`, `super::{x, y::z}`
/// and `crate::<layer>::x`, outside comments.
fn uses(text: &str, layer: &str, siblings: &BTreeSet<String>) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    let prefixes = ["super::".to_string(), format!("crate::{layer}::")];
    for prefix in &prefixes {
        let mut rest = code.as_str();
        while let Some(i) = rest.find(prefix.as_str()) {
            rest = &rest[i + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    out.insert(name);
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.insert(name);
            }
        }
    }
    out.retain(|n| siblings.contains(n));
    out
}

/// The use graph of the files of `src/<layer>/` (front door and tests left out).
fn graph(layer: &str) -> BTreeMap<String, BTreeSet<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(layer);
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
        if p.extension().is_some_and(|x| x == "rs") && stem != "mod" && !stem.ends_with("tests") {
            files.insert(stem, std::fs::read_to_string(&p).unwrap());
        }
    }
    let names: BTreeSet<String> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(name, text)| {
            let mut u = uses(text, layer, &names);
            u.remove(name);
            (name.clone(), u)
        })
        .collect()
}

/// A circle in `g`, if there is one (depth-first search).
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in &g[n] {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let mut c = stack[at..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, g, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

/// The layers of `g` from the floor up: each file after every file it uses.
fn levels(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    while placed.len() < g.len() {
        let level: Vec<String> = g
            .iter()
            .filter(|(n, u)| !placed.contains(*n) && u.iter().all(|m| placed.contains(m)))
            .map(|(n, _)| n.clone())
            .collect();
        assert!(!level.is_empty(), "a circle (find_cycle reports it)");
        placed.extend(level.iter().cloned());
        out.push(level);
    }
    out
}

fn check_layer(layer: &str) {
    let g = graph(layer);
    println!("src/{layer}/ (file -> the files it uses):");
    for (n, u) in &g {
        println!(
            "  {n:<12} -> {}",
            u.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(c) = find_cycle(&g) {
        panic!("src/{layer}/ has a module circle: {}", c.join(" -> "));
    }
    println!("  levels, floor first:");
    for (i, l) in levels(&g).iter().enumerate() {
        println!("    {i}: {}", l.join(" "));
    }
}

#[test]
fn the_allocator_has_no_module_circle() {
    check_layer("alloc");
}

#[test]
fn the_collector_has_no_module_circle() {
    check_layer("gc");
}

#[test]
fn no_source_file_is_far_over_500_lines() {
    let mut long = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let n = std::fs::read_to_string(&p).unwrap().lines().count();
                if n > 530 {
                    long.push(format!("{} ({n} lines)", p.display()));
                }
            }
        }
    }
    assert!(long.is_empty(), "files over ~500 lines: {long:?}");
}

#[test]
fn the_graph_reader_finds_grouped_and_crate_paths() {
    let sib: BTreeSet<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
    let text = "use super::{a, b::X};\n// super::d in a comment\nfn f() { crate::alloc::c::g() }";
    let u = uses(text, "alloc", &sib);
    assert_eq!(u, ["a", "b", "c"].iter().map(|s| s.to_string()).collect());
}
