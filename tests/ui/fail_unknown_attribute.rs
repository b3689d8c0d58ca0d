// Unknown attributes, on the type and on a field, and `skip` on the type.
use arenagc::Trace;

#[derive(Trace)]
#[trace(finalise = f)]
struct TypeTypo(u8);

#[derive(Trace)]
struct FieldTypo {
    #[trace(skipped)]
    a: u8,
}

#[derive(Trace)]
#[trace(skip)]
struct SkipOnType(u8);

fn main() {}
