use sluice_registry::{Error, Registry, SearchPath};

use crate::support::*;

#[test]
fn a_plugin_of_another_abi_major_is_refused_before_any_code_runs() {
    let marker_dir = tempfile::tempdir().expect("tmp");
    let marker = marker_dir.path().join("ran");
    // the plugin writes this file if any of its code runs
    std::env::set_var("SLUICE_TEST_MARKER", &marker);
    let lib = fixtures_dir().join("libsluice_source_wrong_abi.so");
    // its manifest lies about the ABI, so the declaration check is what catches it
    let (dir, _) = private_copy(&lib, "wrong_abi", "source", sluice_abi::ABI_MAJOR);
    let registry = Registry::new(SearchPath::from_dirs([dir.path().to_path_buf()]));
    let err = registry.load("source", "wrong_abi").expect_err("refused");
    assert!(matches!(err, Error::AbiMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("plugin `wrong_abi`"), "{msg}");
    assert!(msg.contains("was built for plugin ABI 99.0"), "{msg}");
    assert!(
        msg.contains(&format!(
            "this sluice speaks ABI {}.{}",
            sluice_abi::ABI_MAJOR,
            sluice_abi::ABI_MINOR
        )),
        "{msg}"
    );
    assert!(msg.contains("hint: rebuild the plugin"), "{msg}");
    assert!(msg.contains("plugin rustc: rustc "), "{msg}");
    assert!(!marker.exists(), "code of the refused plugin ran");

    // declared in the manifest, it is refused without even opening the library
    let (dir, _) = private_copy(&lib, "wrong_abi", "source", 99);
    let registry = Registry::new(SearchPath::from_dirs([dir.path().to_path_buf()]));
    let found = registry.find("source", "wrong_abi").expect("listed");
    assert!(found
        .incompatibility()
        .expect("incompatible")
        .contains("built for plugin ABI 99.0"));
    let err = registry.load("source", "wrong_abi").expect_err("refused");
    assert!(
        err.to_string().contains("the library was not loaded"),
        "{err}"
    );
    assert!(!marker.exists());
}

#[test]
fn a_changed_root_module_layout_is_refused_by_the_layout_check() {
    let lib = fixtures_dir().join("libsluice_source_bad_layout.so");
    let (dir, _) = private_copy(&lib, "bad_layout", "source", sluice_abi::ABI_MAJOR);
    let registry = Registry::new(SearchPath::from_dirs([dir.path().to_path_buf()]));
    let err = registry.load("source", "bad_layout").expect_err("refused");
    assert!(matches!(err, Error::Layout { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("plugin `bad_layout`"), "{msg}");
    assert!(
        msg.contains("declares ABI 1 but its types do not match"),
        "{msg}"
    );
    // the summary keeps abi_stable's error lines with their expected/found values
    assert!(
        msg.contains("prefix-types have a different prefix (expected `5`, found `6`)"),
        "{msg}"
    );
    assert!(
        msg.contains("found `field_name:layout_break type:u64`"),
        "{msg}"
    );
    assert!(
        msg.len() < 1500,
        "the summary must stay short, got {} bytes: {msg}",
        msg.len()
    );
    assert!(msg.contains("hint: "), "{msg}");
}

#[test]
fn a_library_that_is_not_a_plugin_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tmp");
    let fake = dir.path().join("libfake.so");
    std::fs::write(&fake, b"not an ELF file").expect("write");
    let (copy_dir, _) = private_copy(&fake, "fake", "destination", sluice_abi::ABI_MAJOR);
    let registry = Registry::new(SearchPath::from_dirs([copy_dir.path().to_path_buf()]));
    let err = registry.load("destination", "fake").expect_err("refused");
    let msg = err.to_string();
    assert!(msg.starts_with("cannot load plugin `fake` from"), "{msg}");
    assert!(msg.contains("hint:"), "{msg}");
}
