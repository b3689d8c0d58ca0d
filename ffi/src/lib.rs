//! C ABI for arenagc (written with the C ABI issue).
