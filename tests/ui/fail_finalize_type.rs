// A `finalize` / `legacy_del` path that is not a `fn(&Gc<Self>)`: reported at the path.
use arenagc::{Gc, Trace};

#[derive(Trace)]
#[trace(finalize = takes_value)]
struct A(u8);

fn takes_value(_: Gc<A>) {}

#[derive(Trace)]
#[trace(legacy_del = wrong_type)]
struct B(u8);

fn wrong_type(_: &Gc<A>) {}

fn main() {}
