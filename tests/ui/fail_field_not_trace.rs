// A field whose type does not implement `Trace`: the error points at that field's type and
// says to add `#[trace(skip)]` to a field that holds no Gc.
use arenagc::{Gc, Trace};

struct Opaque;

#[derive(Trace)]
struct Holder {
    ok: Gc<u32>,
    bad: Opaque,
}

#[derive(Trace)]
enum Either {
    Left(u8),
    Right { value: u8, thing: Vec<Opaque> },
}

fn main() {}
