//! Nothing: this crate exists to build libduckdb-sys with the bundled C++ (see Cargo.toml).
