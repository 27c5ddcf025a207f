//! The pipeline's working directory: its name is checked before it becomes a path, one process
//! writes it at a time, and only what sluice itself wrote there is ever deleted.
//!
//! The lock is an OS file lock (`flock`) on `<working dir>/.lock`: exclusive for the commands
//! that write (run, drop, sync, drop-pending-packages), shared for those that read (info, show,
//! query, trace, schema). A killed holder releases it with its file descriptors, so a lock is
//! never left behind. The exclusive holder writes its pid into the file for the message a
//! second process gets.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// The lock file's name inside the working directory.
pub const LOCK_FILE: &str = ".lock";

/// The entries sluice writes in a working directory; dev mode and `drop` clear a folder only
/// when it holds nothing else.
const OWN_ENTRIES: &[&str] = &["state.json", "schemas", "load", "trace.json", LOCK_FILE];

/// Longest name accepted for a pipeline or schema (bytes): file names are limited to 255.
pub const MAX_NAME_BYTES: usize = 200;

/// Checks that `name` can be used as one path component: not empty, not `.`/`..` nor hidden,
/// no separator, control character or NUL, at most [`MAX_NAME_BYTES`].
pub fn check_name(kind: &str, name: &str) -> Result<()> {
    let problem = if name.is_empty() {
        Some("is empty".to_string())
    } else if name.starts_with('.') {
        Some("starts with `.`".to_string())
    } else if name.len() > MAX_NAME_BYTES {
        Some(format!("is longer than {MAX_NAME_BYTES} bytes"))
    } else {
        name.chars()
            .find(|c| *c == '/' || *c == '\\' || c.is_control())
            .map(|c| format!("contains {c:?}"))
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(Error::config(format!(
            "the {kind} name {:?} {p}; it names a folder or file, so it must be one plain path component\nhint: use letters, digits, `_` and `-`",
            truncate_for_message(name)
        ))),
    }
}

fn truncate_for_message(s: &str) -> String {
    if s.len() <= 80 {
        return s.to_string();
    }
    let mut end = 80;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// How a working directory is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// One writer (run, drop, sync, drop-pending-packages).
    #[default]
    Exclusive,
    /// Any number of readers, no writer (info, show, query, trace, schema).
    Shared,
}

/// A held lock on a working directory; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct WorkdirLock {
    _file: File,
    mode: LockMode,
}

impl WorkdirLock {
    /// Locks `working_dir` (which must exist) for pipeline `pipeline`, waiting up to `wait`.
    pub fn acquire(
        working_dir: &Path,
        pipeline: &str,
        mode: LockMode,
        wait: Duration,
    ) -> Result<Self> {
        let path = working_dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let op = match mode {
            LockMode::Exclusive => libc::LOCK_EX,
            LockMode::Shared => libc::LOCK_SH,
        };
        let deadline = Instant::now() + wait;
        loop {
            // SAFETY: flock on a file descriptor this function owns
            let rc = unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) };
            if rc == 0 {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK)
                && err.raw_os_error() != Some(libc::EINTR)
            {
                return Err(Error::io(&path, err));
            }
            if Instant::now() >= deadline {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                let what = match mode {
                    LockMode::Exclusive => "is in use by another sluice process",
                    LockMode::Shared => "is being written by another sluice process",
                };
                return Err(Error::Locked(format!(
                    "pipeline `{pipeline}` {what}{holder}; its working directory `{}` is locked\nhint: wait for it to finish (or pass `--wait SECONDS`); a process that was killed releases the lock by itself",
                    working_dir.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if mode == LockMode::Exclusive {
            // the holder's pid, for the message another process gets (best effort)
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = write!(file, "{}", std::process::id());
        }
        Ok(Self { _file: file, mode })
    }

    /// Whether this is the writer's lock.
    pub fn is_exclusive(&self) -> bool {
        self.mode == LockMode::Exclusive
    }
}

/// Creates `dir` (and its parents) with mode 0700 for the folders created here.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Empties a working directory for dev mode or `drop`: everything but the lock file, and only
/// when the folder holds nothing but sluice's own entries (a folder that holds anything else
/// was not made by sluice, and is refused untouched).
pub fn clear(working_dir: &Path, pipeline: &str) -> Result<()> {
    let meta = std::fs::symlink_metadata(working_dir).map_err(|e| Error::io(working_dir, e))?;
    if !meta.is_dir() {
        return Err(Error::config(format!(
            "the working directory `{}` of pipeline `{pipeline}` is not a folder (a link or a file); sluice does not clear it\nhint: remove it yourself or choose another pipelines_dir",
            working_dir.display()
        )));
    }
    let mut entries: Vec<PathBuf> = Vec::new();
    for e in std::fs::read_dir(working_dir).map_err(|e| Error::io(working_dir, e))? {
        let e = e.map_err(|e| Error::io(working_dir, e))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        let own = OWN_ENTRIES.contains(&name.as_ref())
            || (name.starts_with('.') && name.ends_with(".tmp"));
        if !own {
            return Err(Error::config(format!(
                "the working directory `{}` of pipeline `{pipeline}` holds `{name}`, which sluice did not write; it clears only its own working directories\nhint: move `{name}` away, or use another pipeline name or pipelines_dir",
                working_dir.display()
            )));
        }
        if name != LOCK_FILE {
            entries.push(e.path());
        }
    }
    for p in entries {
        let meta = std::fs::symlink_metadata(&p).map_err(|e| Error::io(&p, e))?;
        let r = if meta.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        r.map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_one_path_component_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "/home/me",
            "a/b",
            "..\\x",
            ".hidden",
            "a\0b",
            "tab\there",
        ] {
            let e = check_name("pipeline", bad).expect_err(bad);
            assert!(e.to_string().contains("the pipeline name"), "{e}");
        }
        assert!(check_name("pipeline", &"x".repeat(MAX_NAME_BYTES + 1)).is_err());
        for good in ["sample", "my-pipeline_2", "données", "a.b"] {
            check_name("pipeline", good).expect(good);
        }
    }

    #[test]
    fn clear_refuses_a_folder_sluice_did_not_write() {
        let dir = tempfile::tempdir().expect("tmp");
        let wd = dir.path().join("p");
        std::fs::create_dir_all(wd.join("load/new")).expect("mk");
        std::fs::write(wd.join("state.json"), "{}").expect("w");
        std::fs::write(wd.join("precious.txt"), "keep me").expect("w");
        let e = clear(&wd, "p").expect_err("refused");
        assert!(e.to_string().contains("precious.txt"), "{e}");
        assert!(wd.join("state.json").exists() && wd.join("precious.txt").exists());
        std::fs::remove_file(wd.join("precious.txt")).expect("rm");
        std::fs::write(wd.join(LOCK_FILE), "").expect("w");
        clear(&wd, "p").expect("cleared");
        let left: Vec<_> = std::fs::read_dir(&wd)
            .expect("ls")
            .map(|e| e.expect("e").file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from(LOCK_FILE)]);
    }

    #[test]
    fn a_second_writer_is_refused_and_a_reader_waits_for_none() {
        let dir = tempfile::tempdir().expect("tmp");
        let w = WorkdirLock::acquire(dir.path(), "p", LockMode::Exclusive, Duration::ZERO)
            .expect("first writer");
        let e = WorkdirLock::acquire(
            dir.path(),
            "p",
            LockMode::Exclusive,
            Duration::from_millis(120),
        )
        .expect_err("second writer");
        let msg = e.to_string();
        assert!(msg.contains("in use by another sluice process"), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(WorkdirLock::acquire(dir.path(), "p", LockMode::Shared, Duration::ZERO).is_err());
        drop(w);
        let r1 =
            WorkdirLock::acquire(dir.path(), "p", LockMode::Shared, Duration::ZERO).expect("r1");
        let _r2 =
            WorkdirLock::acquire(dir.path(), "p", LockMode::Shared, Duration::ZERO).expect("r2");
        assert!(
            WorkdirLock::acquire(dir.path(), "p", LockMode::Exclusive, Duration::ZERO).is_err()
        );
        drop(r1);
    }
}
