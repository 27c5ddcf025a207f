//! Links the parts of the static DuckDB library that libduckdb-sys's linked mode does not:
//! the extension autoregister object (parquet, json) and the C++ runtime. The library itself is
//! provided by scripts/build-duckdb.sh (`DUCKDB_LIB_DIR`, set in .cargo/config.toml).
fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    let dir = std::env::var("DUCKDB_LIB_DIR");
    if let Ok(dir) = &dir {
        // a check run before the library was built must not keep its warning
        println!("cargo:rerun-if-changed={dir}/libduckdb_static.a");
    }
    match dir {
        Ok(dir)
            if std::path::Path::new(&dir)
                .join("libduckdb_static.a")
                .exists() =>
        {
            println!("cargo:rustc-link-search=native={dir}");
        }
        _ => println!(
            "cargo:warning=the DuckDB library is missing: run `bash scripts/build-duckdb.sh` first"
        ),
    }
    println!("cargo:rustc-link-lib=static:+whole-archive=duckdb_static_extension_autoregister");
    println!("cargo:rustc-link-lib=dylib=stdc++");
}
