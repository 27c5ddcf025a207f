use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_registry::{LoadedPlugin, Registry, SearchPath};

/// `<target>/<profile>`: where cargo put this build's plugin libraries and manifests.
pub fn plugin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLUICE_TEST_PLUGIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current exe");
    // <target>/<profile>/deps/<test binary>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir")
        .to_path_buf();
    assert!(
        dir.join("sample.sluice-plugin.toml").exists(),
        "the test plugins are not built in {}: run `cargo build --release --workspace` first \
         (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// Where the out-of-tree fixture plugins were built.
pub fn fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLUICE_FIXTURES_DIR") {
        return PathBuf::from(dir);
    }
    let profile_dir = plugin_dir();
    let target = profile_dir.parent().expect("target dir");
    let dir = target.join("fixtures").join("release");
    assert!(
        dir.join("libsluice_source_oot.so").exists(),
        "the fixture plugins are not built in {}: run `bash scripts/build-fixtures.sh` first \
         (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// A registry over the workspace's plugin directory only.
pub fn registry() -> Registry {
    Registry::new(SearchPath::from_dirs([plugin_dir()]))
}

/// Copies `library` into a fresh temporary directory with a manifest named `name`, so it loads
/// as a separate instance.
pub fn private_copy(
    library: &Path,
    name: &str,
    kind: &str,
    abi_major: u32,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = library.file_name().expect("file name");
    std::fs::copy(library, dir.path().join(file)).expect("copy library");
    let manifest = dir.path().join(format!("{name}.sluice-plugin.toml"));
    std::fs::write(
        &manifest,
        format!(
            "manifest_version = 1\nname = \"{name}\"\nkind = \"{kind}\"\nversion = \"0.0.1\"\n\n\
             [abi]\nmajor = {abi_major}\nminor = 0\n\n[library]\n{} = \"{}\"\n",
            sluice_registry::manifest::platform_key(),
            file.to_string_lossy()
        ),
    )
    .expect("write manifest");
    (dir, manifest)
}

/// A private copy of the sample source, loaded.
pub fn private_sample() -> (tempfile::TempDir, Arc<LoadedPlugin>) {
    let lib = plugin_dir().join("libsluice_source_sample.so");
    let (dir, manifest) = private_copy(&lib, "sample", "source", sluice_abi::ABI_MAJOR);
    let plugin = registry().load_path(&manifest).expect("load private copy");
    (dir, plugin)
}
