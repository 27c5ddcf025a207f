//! What a project folder may do to the plugins, and that a pinned library is loaded from the
//! bytes that were checked.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::json;
use sluice_registry::{DirOrigin, Error, Registry, SearchPath};
use sluice_sdk::{CancelFlag, ResourceRequest, Source, StreamContext};

use crate::support::*;

/// A search path of a project folder first, then `installed`.
fn project_then_installed(project: &Path, installed: &Path) -> SearchPath {
    let mut search = SearchPath::default();
    search.push(project.to_path_buf(), DirOrigin::Project);
    search.push(installed.to_path_buf(), DirOrigin::Installed);
    search
}

/// Everything logged at WARN and above while `f` runs.
fn warnings<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().expect("lock")).to_string();
    (out, text)
}

fn numbers_from(plugin: &Arc<sluice_registry::LoadedPlugin>, rows: u64) -> usize {
    let source = plugin
        .open_source(&json!({ "rows": rows }), &json!({}))
        .expect("open");
    let mut stream = source
        .open_resource(
            ResourceRequest {
                resource: "numbers".into(),
                ..Default::default()
            },
            StreamContext::new(CancelFlag::new().token()),
        )
        .expect("stream");
    stream
        .next_batch()
        .expect("batch")
        .expect("some")
        .num_rows()
}

/// A project folder and an installed folder, each with its own copy of the sample source.
fn project_and_installed(name: &str) -> (tempfile::TempDir, tempfile::TempDir) {
    let lib = plugin_dir().join("libsluice_source_sample.so");
    let (project, _) = private_copy(&lib, name, "source", sluice_abi::ABI_MAJOR);
    let (installed, _) = private_copy(&lib, "sample", "source", sluice_abi::ABI_MAJOR);
    (project, installed)
}

#[test]
fn a_project_plugin_with_an_installed_name_is_refused_without_the_opt_in() {
    let (project, installed) = project_and_installed("sample");
    let registry = Registry::new(project_then_installed(project.path(), installed.path()));
    let err = registry.find("source", "sample").expect_err("refused");
    assert!(matches!(err, Error::Shadowed { .. }), "{err:?}");
    let msg = err.to_string();
    for needle in [
        "the project folder has its own source plugin `sample`",
        &project.path().display().to_string(),
        &installed.path().display().to_string(),
        "--trust-project-plugins",
        "SLUICE_TRUST_PROJECT_PLUGINS=1",
        "remove or rename",
    ] {
        assert!(msg.contains(needle), "{needle} not in: {msg}");
    }
    // loading fails the same way, and no code of either library ran
    let err = registry.load("source", "sample").expect_err("refused");
    assert!(matches!(err, Error::Shadowed { .. }), "{err:?}");
    // plugins of other names in the project folder are still found, and the installed one by
    // itself loads
    let other = Registry::new(project_then_installed(
        project.path(),
        plugin_dir().as_path(),
    ));
    assert!(other.find("destination", "recorder").is_ok());
    // the listing says why it is refused
    let found = registry.discover();
    let mine = found
        .iter()
        .find(|d| d.origin == DirOrigin::Project)
        .expect("listed");
    assert!(registry
        .shadowed_by(mine)
        .is_some_and(|p| p.starts_with(installed.path())));
}

#[test]
fn with_the_opt_in_the_project_plugin_is_loaded_with_a_warning() {
    let (project, installed) = project_and_installed("sample");
    let registry = Registry::new(
        project_then_installed(project.path(), installed.path()).trust_project_plugins(true),
    );
    let (plugin, warned) = warnings(|| registry.load("source", "sample").expect("loaded"));
    assert!(
        plugin
            .library
            .starts_with(project.path().canonicalize().expect("canonical")),
        "{:?}",
        plugin.library
    );
    assert!(warned.contains("WARN"), "{warned}");
    assert!(
        warned.contains("using the project's source plugin `sample`")
            && warned.contains("instead of the installed one")
            && warned.contains(&installed.path().display().to_string()),
        "{warned}"
    );
    assert_eq!(numbers_from(&plugin, 7), 7);
}

#[test]
fn a_project_plugin_with_a_new_name_needs_no_opt_in() {
    let recorder = plugin_dir().join("libsluice_destination_recorder.so");
    let (project, _) = private_copy(&recorder, "recorder", "destination", sluice_abi::ABI_MAJOR);
    let (_, installed) = project_and_installed("sample");
    let registry = Registry::new(project_then_installed(project.path(), installed.path()));
    let (plugin, warned) = warnings(|| registry.load("destination", "recorder"));
    let plugin = plugin.expect("a new name loads");
    assert!(
        plugin
            .library
            .starts_with(project.path().canonicalize().expect("canonical")),
        "{:?}",
        plugin.library
    );
    assert!(warned.is_empty(), "{warned}");
    // the installed `sample` is untouched by it
    assert!(registry.find("source", "sample").is_ok());
}

#[test]
fn a_link_to_an_installed_manifest_is_the_installed_plugin_and_a_copy_is_not() {
    let lib = plugin_dir().join("libsluice_source_sample.so");
    let (installed, manifest) = private_copy(&lib, "sample", "source", sluice_abi::ABI_MAJOR);
    let project = tempfile::tempdir().expect("tmp");
    let link = project.path().join("sample.sluice-plugin.toml");
    std::os::unix::fs::symlink(&manifest, &link).expect("symlink");
    let registry = Registry::new(project_then_installed(project.path(), installed.path()));
    let found = registry
        .find("source", "sample")
        .expect("the installed plugin");
    assert_eq!(found.path, manifest, "found as the installed file");
    assert!(registry
        .discover()
        .iter()
        .all(|d| d.origin == DirOrigin::Installed));
    // a copy of the installed manifest resolves its library in the project folder: a shadow
    std::fs::remove_file(&link).expect("rm");
    std::fs::copy(&manifest, &link).expect("copy");
    std::fs::copy(&lib, project.path().join("libsluice_source_sample.so")).expect("copy lib");
    let err = registry.find("source", "sample").expect_err("refused");
    assert!(matches!(err, Error::Shadowed { .. }), "{err:?}");
}

#[test]
fn the_standard_search_path_marks_the_project_folder_and_reads_the_opt_in() {
    let search = SearchPath::standard();
    let project: Vec<PathBuf> = search
        .entries()
        .filter(|(_, o)| *o == DirOrigin::Project)
        .map(|(d, _)| d.to_path_buf())
        .collect();
    assert_eq!(project.len(), 1, "{project:?}");
    assert!(project[0].ends_with(".sluice/plugins"));
    assert!(search
        .entries()
        .any(|(d, o)| o == DirOrigin::Installed && d.ends_with("lib/sluice/plugins")));
    // --plugin-dir is the user's own choice
    let mut search = search;
    search.prepend(PathBuf::from("/somewhere"));
    assert_eq!(
        search.entries().next().map(|(_, o)| o),
        Some(DirOrigin::Explicit)
    );
}

fn sha256_of(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).expect("read");
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A private copy of the sample source whose manifest pins `sha256`.
fn pinned_sample(name: &str, sha256: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let lib = plugin_dir().join("libsluice_source_sample.so");
    let (dir, manifest) = private_copy(&lib, name, "source", sluice_abi::ABI_MAJOR);
    // the copy's manifest names `sample` inside the library: keep that name
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let text = format!(
        "{text}\n[library.sha256]\n{} = \"{sha256}\"\n",
        sluice_registry::manifest::platform_key()
    );
    std::fs::write(&manifest, text).expect("write");
    let copy = dir.path().join("libsluice_source_sample.so");
    (dir, manifest, copy)
}

#[test]
fn a_sha256_mismatch_is_refused_before_any_code_runs() {
    let lib = plugin_dir().join("libsluice_source_sample.so");
    let wrong = "0".repeat(64);
    let (_dir, manifest, copy) = pinned_sample("sample", &wrong);
    let err = Registry::new(SearchPath::from_dirs(Vec::new()))
        .load_path(&manifest)
        .expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("its sha256 is {}", sha256_of(&lib)))
            && msg.contains(&format!("the manifest expects {wrong}"))
            && msg.contains("it is not loaded"),
        "{msg}"
    );
    assert!(
        msg.contains(&copy.canonicalize().expect("c").display().to_string()),
        "{msg}"
    );
    // a digest that is not one is a manifest error
    let (_dir, manifest, _) = pinned_sample("sample", "abc");
    let err = Registry::new(SearchPath::from_dirs(Vec::new()))
        .load_path(&manifest)
        .expect_err("bad digest");
    assert!(matches!(err, Error::Manifest { .. }), "{err:?}");
    assert!(err.to_string().contains("64 hex digits"), "{err}");
}

#[test]
fn a_pinned_library_runs_from_the_bytes_that_were_checked() {
    let lib = plugin_dir().join("libsluice_source_sample.so");
    let (_dir, manifest, copy) = pinned_sample("sample", &sha256_of(&lib));
    let plugin = Registry::new(SearchPath::from_dirs(Vec::new()))
        .load_path(&manifest)
        .expect("a matching digest loads");
    // what the dynamic loader mapped is the sealed in-memory copy, not the path
    assert!(
        plugin.loaded_from.starts_with("/proc/self/fd/"),
        "{:?}",
        plugin.loaded_from
    );
    let target = std::fs::read_link(&plugin.loaded_from).expect("fd link");
    assert!(
        target
            .to_string_lossy()
            .starts_with("/memfd:sluice-plugin-sample"),
        "{target:?}"
    );
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    let copy_path = copy
        .canonicalize()
        .expect("canonical")
        .display()
        .to_string();
    assert!(
        !maps.contains(&copy_path),
        "the file itself is mapped:\n{maps}"
    );
    // rewriting the file in place (same inode) and replacing it change nothing that runs: with
    // the file mapped, code pages not yet read would come from the new bytes
    let len = std::fs::metadata(&copy).expect("meta").len() as usize;
    std::fs::write(&copy, vec![0xCC_u8; len]).expect("rewrite in place");
    assert_eq!(numbers_from(&plugin, 5), 5);
    std::fs::remove_file(&copy).expect("rm");
    std::fs::write(&copy, b"not a library").expect("replace");
    assert_eq!(numbers_from(&plugin, 3), 3);
    // asked for again, the checked instance is returned
    let again = Registry::new(SearchPath::from_dirs(Vec::new()))
        .load_path(&manifest)
        .expect("cached");
    assert!(Arc::ptr_eq(&plugin, &again));
}

#[test]
fn a_pinned_manifest_does_not_take_an_instance_loaded_without_the_check() {
    let lib = plugin_dir().join("libsluice_source_sample.so");
    let (dir, manifest, copy) = pinned_sample("sample", &sha256_of(&lib));
    // the same file, loaded first by its path without a manifest
    let unpinned = Registry::new(SearchPath::from_dirs(Vec::new()));
    let plain_manifest = dir.path().join("plain.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let text = text
        .split("[library.sha256]")
        .next()
        .expect("head")
        .to_string();
    std::fs::write(&plain_manifest, text).expect("write");
    let plugin = unpinned.load_path(&plain_manifest).expect("unpinned");
    assert_eq!(plugin.loaded_from, copy.canonicalize().expect("canonical"));
    let err = unpinned.load_path(&manifest).expect_err("not checked");
    assert!(
        err.to_string()
            .contains("was loaded earlier in this process without the check of sha256"),
        "{err}"
    );
}
