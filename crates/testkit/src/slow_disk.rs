//! [`SlowDisk`]: a directory on a file system whose writes are slow.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{Process, work_dir};
use crate::tools;

/// How long mounting may take.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(15);

/// A directory whose writes wait `delay` each, and fsyncs four times as
/// long, as on a busy or network-backed disk: `tests/slowdisk/slowfs.py`, a
/// FUSE file system passing every call through to a temporary directory.
///
/// Dropping it unmounts the file system and removes the data. Needs
/// `fusermount3` and the Python package `mfusepy` (scripts/setup installs
/// both) and a usable `/dev/fuse`.
#[derive(Debug)]
pub struct SlowDisk {
    mountpoint: PathBuf,
    process: Option<Process>,
    // Dropped last: the backing files and the mountpoint.
    dir: TempDir,
}

impl SlowDisk {
    /// Mounts a slow disk whose writes take `delay` each.
    ///
    /// # Panics
    ///
    /// Panics when FUSE or mfusepy is missing, or the file system is not
    /// mounted within 15 s; the message holds the end of its log.
    pub async fn mount(delay: Duration) -> Self {
        let dir = work_dir("slowdisk");
        let backing = dir.path().join("backing");
        let mountpoint = dir.path().join("mnt");
        for path in [&backing, &mountpoint] {
            std::fs::create_dir(path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        }
        let mut command = Command::new(tools::python());
        command
            .arg(tools::workspace_root().join("tests/slowdisk/slowfs.py"))
            .arg(&backing)
            .arg(&mountpoint)
            .arg(delay.as_millis().to_string());
        let log = dir.path().join("slowfs.log");
        let probe = mountpoint.clone();
        let ready = move || {
            let mounted = is_mounted(&probe);
            async move { mounted }
        };
        let process = Process::start("slowfs", command, &log, MOUNT_TIMEOUT, ready)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the slow disk did not mount (is /dev/fuse usable, and are fuse3 and mfusepy \
                     installed? run scripts/setup): {e}"
                )
            });
        Self {
            mountpoint,
            process: Some(process),
            dir,
        }
    }

    /// The slow directory.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }
}

impl Drop for SlowDisk {
    fn drop(&mut self) {
        // Unmounting ends the file system's process; killing it first would
        // leave a mount whose every access fails until unmounted.
        let unmounted = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mountpoint)
            .status();
        if !unmounted.is_ok_and(|status| status.success()) {
            let _ = Command::new("fusermount3")
                .arg("-uz")
                .arg(&self.mountpoint)
                .status();
        }
        drop(self.process.take());
        let _ = &self.dir;
    }
}

/// Whether `path` is a mountpoint, by `/proc/self/mounts`.
fn is_mounted(path: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    let path = path.to_string_lossy();
    mounts
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .any(|mountpoint| mountpoint == path)
}
