use sluice_registry::{Error, Registry, SearchPath};

use crate::support::*;

#[test]
fn lists_plugins_from_manifests_without_loading_them() {
    let found = registry().discover();
    let names: Vec<(String, String)> = found
        .iter()
        .filter_map(|d| d.manifest.as_ref().ok())
        .map(|m| (m.kind.to_string(), m.name.clone()))
        .collect();
    assert!(
        names.contains(&("source".into(), "sample".into())),
        "{names:?}"
    );
    assert!(
        names.contains(&("destination".into(), "recorder".into())),
        "{names:?}"
    );
    let sample = registry().find("source", "sample").expect("sample");
    assert_eq!(sample.abi.0, sluice_abi::ABI_MAJOR);
    assert!(sample.incompatibility().is_none());
    assert_eq!(
        sample
            .config
            .iter()
            .map(|c| c.key.as_str())
            .collect::<Vec<_>>(),
        ["rows", "batch_size", "marker"]
    );
}

#[test]
fn a_missing_plugin_lists_every_path_searched() {
    let a = tempfile::tempdir().expect("tmp");
    let b = tempfile::tempdir().expect("tmp");
    let search =
        SearchPath::from_dirs([a.path().to_path_buf(), plugin_dir(), b.path().to_path_buf()]);
    let err = Registry::new(search)
        .load("source", "nope")
        .expect_err("missing");
    assert!(matches!(err, Error::NotFound { .. }));
    let msg = err.to_string();
    assert!(msg.starts_with("no source plugin `nope` found"), "{msg}");
    for dir in [a.path(), plugin_dir().as_path(), b.path()] {
        assert!(
            msg.contains(&dir.display().to_string()),
            "{dir:?} missing from: {msg}"
        );
    }
    assert!(
        msg.contains("hint: known sources: ") && msg.contains("sample"),
        "{msg}"
    );
}

#[test]
fn explicit_paths_load_the_same_instance() {
    let dir = plugin_dir();
    let by_name = registry().load("source", "sample").expect("by name");
    let by_manifest = registry()
        .load_path(&dir.join("sample.sluice-plugin.toml"))
        .expect("by manifest");
    let by_library = registry()
        .load_path(&dir.join("libsluice_source_sample.so"))
        .expect("by library");
    assert!(std::sync::Arc::ptr_eq(&by_name, &by_manifest));
    assert!(std::sync::Arc::ptr_eq(&by_name, &by_library));
    let err = registry()
        .load(
            "destination",
            &dir.join("sample.sluice-plugin.toml").display().to_string(),
        )
        .expect_err("kind");
    assert!(
        err.to_string()
            .contains("it is a source, not a destination"),
        "{err}"
    );
}

#[test]
fn the_standard_path_honours_sluice_plugin_path() {
    // SLUICE_PLUGIN_PATH is read when the path is built; this test only builds paths
    let search = SearchPath::standard();
    let dirs = search.dirs();
    assert!(dirs.iter().any(|d| d.ends_with(".sluice/plugins")));
    assert!(dirs.iter().any(|d| d.ends_with("lib/sluice/plugins")));
    assert_eq!(
        dirs.last().map(|d| d.display().to_string()),
        Some("/usr/lib/sluice/plugins".into())
    );
}
