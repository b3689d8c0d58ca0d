//! `#[derive(Trace)]` for `arenagc` (written with the object layer).
