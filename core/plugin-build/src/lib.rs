//! `sluice-plugin-build`: used from a plugin's `build.rs` to put its manifest next to the
//! compiled library, so the registry and `sluice init` can read it without loading code.
//!
//! ```no_run
//! // in plugin/build.rs of a plugin whose cdylib is `libsluice_source_github.so`:
//! sluice_plugin_build::emit_manifest("sluice_source_github");
//! ```
//!
//! It reads `../sluice-plugin.toml` (the template next to the implementation crate), prepends
//! `manifest_version` and the crate version, appends the `[abi]` and `[library]` tables, and
//! writes `<target>/<profile>/<name>.sluice-plugin.toml`, next to where cargo puts the library.
//!
//! This crate has no dependencies so build scripts stay cheap; it is also the single source of
//! the ABI version numbers, which `sluice-abi` re-exports.

use std::path::{Path, PathBuf};

/// Major version of the plugin ABI (see `sluice_abi::ABI_MAJOR`).
pub const ABI_MAJOR: u32 = 1;
/// Minor version of the plugin ABI (see `sluice_abi::ABI_MINOR`).
pub const ABI_MINOR: u32 = 0;

/// The platform key used in manifests' `[library]` table, e.g. `linux_x86_64`.
pub fn platform_key(os: &str, arch: &str) -> String {
    format!("{os}_{arch}")
}

/// The file name of a cdylib named `lib_name` on `os`.
pub fn library_file_name(lib_name: &str, os: &str) -> String {
    match os {
        "windows" => format!("{lib_name}.dll"),
        "macos" => format!("lib{lib_name}.dylib"),
        _ => format!("lib{lib_name}.so"),
    }
}

/// The plugin name in a manifest template (its top-level `name = "..."`).
pub fn template_name(template: &str) -> Option<String> {
    for line in template.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            break;
        }
        if let Some(rest) = line.strip_prefix("name") {
            let rest = rest.trim_start();
            if let Some(value) = rest.strip_prefix('=') {
                let value = value.trim().trim_matches('"');
                return Some(value.to_string());
            }
        }
    }
    None
}

/// The complete manifest text for `template`.
pub fn render_manifest(template: &str, version: &str, platform: &str, library: &str) -> String {
    let mut out = String::new();
    out.push_str("# written by sluice-plugin-build from sluice-plugin.toml; do not edit\n");
    out.push_str("manifest_version = 1\n");
    if !template
        .lines()
        .any(|l| l.trim_start().starts_with("version"))
    {
        out.push_str(&format!("version = \"{version}\"\n"));
    }
    out.push_str(template.trim_end());
    out.push_str(&format!(
        "\n\n[abi]\nmajor = {ABI_MAJOR}\nminor = {ABI_MINOR}\n\n[library]\n{platform} = \"{library}\"\n"
    ));
    out
}

/// The directory cargo places final artifacts of this build in (`target/<profile>`), derived
/// from `OUT_DIR` (`target/<profile>/build/<pkg>-<hash>/out`).
pub fn artifact_dir() -> Option<PathBuf> {
    let out = std::env::var_os("OUT_DIR")?;
    Path::new(&out).ancestors().nth(3).map(Path::to_path_buf)
}

/// Writes the manifest of the plugin whose cdylib is named `lib_name` next to the library.
/// Call from the cdylib crate's `build.rs`; the template is `../sluice-plugin.toml`.
pub fn emit_manifest(lib_name: &str) {
    emit_manifest_from("../sluice-plugin.toml", lib_name);
}

/// Like [`emit_manifest`] with an explicit template path (relative to the crate).
pub fn emit_manifest_from(template_path: &str, lib_name: &str) {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let template_path = Path::new(&manifest_dir).join(template_path);
    println!("cargo:rerun-if-changed={}", template_path.display());
    let template = match std::fs::read_to_string(&template_path) {
        Ok(t) => t,
        Err(e) => {
            println!(
                "cargo:warning=cannot read plugin manifest template {}: {e}",
                template_path.display()
            );
            return;
        }
    };
    let Some(name) = template_name(&template) else {
        println!(
            "cargo:warning=plugin manifest template {} has no top-level `name`",
            template_path.display()
        );
        return;
    };
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_else(|_| "linux".into());
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let text = render_manifest(
        &template,
        &version,
        &platform_key(&os, &arch),
        &library_file_name(lib_name, &os),
    );
    let Some(dir) = artifact_dir() else {
        println!("cargo:warning=OUT_DIR is not set; the plugin manifest was not written");
        return;
    };
    let target = dir.join(format!("{name}.sluice-plugin.toml"));
    // only rewrite when changed, so the file's mtime means something
    if std::fs::read_to_string(&target).ok().as_deref() != Some(text.as_str()) {
        if let Err(e) = std::fs::write(&target, text) {
            println!("cargo:warning=cannot write {}: {e}", target.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_manifest() {
        let t = "name = \"github\"\nkind = \"source\"\n\n[[config]]\nkey = \"owner\"\n";
        assert_eq!(template_name(t).as_deref(), Some("github"));
        let m = render_manifest(t, "0.3.1", "linux_x86_64", "libsluice_source_github.so");
        assert!(m.contains("manifest_version = 1\nversion = \"0.3.1\"\nname = \"github\""));
        assert!(m.ends_with("[library]\nlinux_x86_64 = \"libsluice_source_github.so\"\n"));
        assert!(m.contains(&format!("[abi]\nmajor = {ABI_MAJOR}")));
    }
}
