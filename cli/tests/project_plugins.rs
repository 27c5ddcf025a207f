//! A project folder cannot swap your plugins (issue 22, section 8): a plugin in
//! `./.sluice/plugins` with the kind and name of an installed plugin is refused, with a message
//! that says how to opt in, and no code of it runs; with `--trust-project-plugins` or
//! `SLUICE_TRUST_PROJECT_PLUGINS=1` it is used, with a warning. A library whose sha256 differs
//! from its manifest's is refused.
//!
//! The installed plugin is the `sample` test source next to the binary (`scripts/test.sh` builds
//! it with the workspace).

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

fn release_dir() -> PathBuf {
    let exe = assert_cmd::cargo::cargo_bin("sluice");
    let dir = exe.parent().expect("profile dir").to_path_buf();
    assert!(
        dir.join("sample.sluice-plugin.toml").is_file(),
        "the `sample` test source is not built next to {}: run `cargo build --release --workspace` (scripts/test.sh does)",
        exe.display()
    );
    dir
}

/// A copy of the sample source's manifest and library in `dir`, its manifest with `extra`
/// appended.
fn copy_sample(dir: &Path, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let release = release_dir();
    let lib = dir.join("libsluice_source_sample.so");
    std::fs::copy(release.join("libsluice_source_sample.so"), &lib).expect("copy library");
    let text =
        std::fs::read_to_string(release.join("sample.sluice-plugin.toml")).expect("manifest");
    std::fs::write(
        dir.join("sample.sluice-plugin.toml"),
        format!("{text}{extra}"),
    )
    .expect("write");
    lib
}

struct Project {
    tmp: tempfile::TempDir,
}

impl Project {
    fn new() -> Self {
        let p = Self {
            tmp: tempfile::tempdir().expect("tmp"),
        };
        std::fs::write(
            p.dir().join("s_pipeline.toml"),
            format!(
                "[pipeline]\nname = \"s\"\ndestination = \"duckdb\"\n\n[source]\nname = \"sample\"\n\n\
                 [source.config]\nrows = 3\nmarker = {:?}\n\n[destination.config]\ncredentials = \"s.duckdb\"\n",
                p.marker().display().to_string()
            ),
        )
        .expect("pipeline");
        p
    }
    fn dir(&self) -> &Path {
        self.tmp.path()
    }
    /// The sample source writes this file when it opens: proof that its code ran.
    fn marker(&self) -> PathBuf {
        self.dir().join("marker")
    }
    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("sluice").expect("binary");
        c.current_dir(self.dir())
            .env("SLUICE_DATA_DIR", self.dir().join("data"))
            .env_remove("SLUICE_PLUGIN_PATH")
            .env_remove("SLUICE_TRUST_PROJECT_PLUGINS")
            .env_remove("SLUICE_LOG")
            .env("NO_COLOR", "1");
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run")
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_project_plugin_with_an_installed_name_needs_the_opt_in() {
    let p = Project::new();
    let project_plugins = p.dir().join(".sluice").join("plugins");
    copy_sample(&project_plugins, "");

    // refused, saying how to opt in, before any code of either library runs
    let out = p.run(&["run", "s_pipeline.toml"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    for needle in [
        "the project folder has its own source plugin `sample`",
        ".sluice/plugins/sample.sluice-plugin.toml",
        &release_dir()
            .join("sample.sluice-plugin.toml")
            .display()
            .to_string(),
        "--trust-project-plugins",
        "SLUICE_TRUST_PROJECT_PLUGINS=1",
    ] {
        assert!(t.contains(needle), "{needle} not in: {t}");
    }
    assert!(!p.marker().exists(), "a plugin ran");
    // the listing marks it
    let out = p.run(&["plugins", "list"]);
    let t = text(&out);
    assert!(
        t.lines()
            .any(|l| l.contains(".sluice/plugins/sample.sluice-plugin.toml")
                && l.contains("refused")
                && l.contains("--trust-project-plugins")),
        "{t}"
    );
    // `plugins info` and `init` say the same
    let out = p.run(&["plugins", "info", "sample"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out).contains("--trust-project-plugins"),
        "{}",
        text(&out)
    );
    let out = p.run(&[
        "init",
        "sample",
        "duckdb",
        "--yes",
        "--location",
        "scaffold",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--trust-project-plugins"),
        "{}",
        text(&out)
    );

    // with the flag: used, with a warning naming both files
    let out = p.run(&["--trust-project-plugins", "run", "s_pipeline.toml"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let warnings: Vec<&str> = t
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("using the project's source plugin `sample`"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning per run: {t}");
    assert!(
        warnings[0].contains(".sluice/plugins/sample.sluice-plugin.toml")
            && warnings[0].contains(&release_dir().display().to_string()),
        "{t}"
    );
    assert!(p.marker().exists(), "the project's plugin did not run");
    std::fs::remove_file(p.marker()).expect("rm marker");

    // with the environment variable
    let out = p
        .cmd()
        .args(["run", "s_pipeline.toml"])
        .env("SLUICE_TRUST_PROJECT_PLUGINS", "1")
        .output()
        .expect("run");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("using the project's source plugin `sample`"),
        "{t}"
    );
    assert!(p.marker().exists());

    // a project folder's own config cannot opt in
    std::fs::write(
        p.dir().join(".sluice").join("config.toml"),
        "trust_project_plugins = true\n[runtime]\ntrust_project_plugins = true\n",
    )
    .expect("config");
    let out = p.run(&["run", "s_pipeline.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// The out-of-tree fixture plugin `oot` (built by scripts/build-fixtures.sh), which no
/// installation has.
fn oot_library() -> PathBuf {
    let lib = release_dir()
        .parent()
        .expect("target dir")
        .join("fixtures")
        .join("release")
        .join("libsluice_source_oot.so");
    assert!(
        lib.is_file(),
        "{} is not built: run `bash scripts/build-fixtures.sh` (scripts/test.sh does)",
        lib.display()
    );
    lib
}

#[test]
fn a_project_plugin_with_a_new_name_is_used_without_the_opt_in() {
    let p = Project::new();
    let project_plugins = p.dir().join(".sluice").join("plugins");
    std::fs::create_dir_all(&project_plugins).expect("mkdir");
    std::fs::copy(
        oot_library(),
        project_plugins.join("libsluice_source_oot.so"),
    )
    .expect("copy");
    std::fs::write(
        project_plugins.join("oot.sluice-plugin.toml"),
        "name = \"oot\"\nkind = \"source\"\n[abi]\nmajor = 1\nminor = 0\n[library]\nlinux_x86_64 = \"libsluice_source_oot.so\"\n",
    )
    .expect("manifest");
    std::fs::write(
        p.dir().join("s_pipeline.toml"),
        "[pipeline]\nname = \"o\"\ndestination = \"duckdb\"\ndataset = \"o_data\"\n\n[source]\nname = \"oot\"\n\n[destination.config]\ncredentials = \"o.duckdb\"\n",
    )
    .expect("pipeline");
    let out = p.run(&["run", "s_pipeline.toml"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(!t.contains("WARN"), "{t}");
    let out = p.run(&[
        "pipeline",
        "o",
        "query",
        "SELECT count(*) AS n FROM o_data.squares",
    ]);
    assert!(text(&out).contains("30"), "{}", text(&out));
    let out = p.run(&["plugins", "list"]);
    let t = text(&out);
    assert!(
        t.lines()
            .any(|l| l.starts_with("oot ") && l.contains(" ok ")),
        "{t}"
    );
}

fn sha256_hex(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("digest")
        .to_string()
}

#[test]
fn a_library_whose_sha256_differs_from_its_manifest_is_refused() {
    let p = Project::new();
    let plugins = p.dir().join("pinned");
    let platform = "linux_x86_64";
    let wrong = "ab".repeat(32);
    let lib = copy_sample(
        &plugins,
        &format!("\n[library.sha256]\n{platform} = \"{wrong}\"\n"),
    );
    let plugin_dir = plugins.to_str().expect("utf8");
    let out = p.run(&["--plugin-dir", plugin_dir, "run", "s_pipeline.toml"]);
    let t = text(&out);
    assert_ne!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains(&format!("its sha256 is {}", sha256_hex(&lib)))
            && t.contains(&format!("the manifest expects {wrong}"))
            && t.contains("it is not loaded"),
        "{t}"
    );
    assert!(!p.marker().exists(), "a refused plugin ran");
    let out = p.run(&[
        "plugins",
        "validate",
        plugins
            .join("sample.sluice-plugin.toml")
            .to_str()
            .expect("utf8"),
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("its sha256 is"), "{}", text(&out));
    // the right digest loads (from the checked in-memory copy)
    copy_sample(
        &plugins,
        &format!(
            "\n[library.sha256]\n{platform} = \"{}\"\n",
            sha256_hex(&lib)
        ),
    );
    let out = p.run(&["-vv", "--plugin-dir", plugin_dir, "run", "s_pipeline.toml"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.lines().any(|l| l.contains("plugin loaded")
            && l.contains("plugin=sample")
            && l.contains("loaded_from=/proc/self/fd/")),
        "{t}"
    );
    assert!(p.marker().exists());
}
