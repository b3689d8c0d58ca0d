# Sourced by run.sh and secure_cost.sh (not run on its own).
#
# build_probe NAME SRC FEATURES: build probe.rs (beside this file) in release mode against the
# arenagc source tree SRC, with the cargo features FEATURES (may be empty), in its own crate and
# target directory under $work; prints the executable's path. Needs $work set by the caller.
build_probe() {
    local name="$1" src="$2" features="$3" crate="$work/$1-probe"
    local dir
    dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    mkdir -p "$crate/src"
    cp "$dir/probe.rs" "$crate/src/main.rs"
    cat >"$crate/Cargo.toml" <<TOML
[package]
name = "icount-probe"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
arenagc = { path = "$src"${features:+, features = [\"$features\"]} }

[profile.release]
debug = 1

[workspace]
TOML
    (cd "$crate" && CARGO_TARGET_DIR="$work/$name-target" cargo build --release -q >&2)
    echo "$work/$name-target/release/icount-probe"
}
