// `#[trace(crate = path)]` is what the generated code names: a path that is not the crate is
// an error (so the pass case's renamed paths were really used, not a fallback to `::arenagc`).
use arenagc::Gc;

#[derive(arenagc::Trace)]
#[trace(crate = not_the_crate)]
struct Node {
    next: Option<Gc<u8>>,
}

fn main() {}
