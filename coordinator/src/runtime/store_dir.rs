//! The default store directory of the local and processes backends: one
//! per user, private to them.

use std::path::{Path, PathBuf};

/// Why the default store directory cannot be used. Each says how to get
/// past it (remove the directory, fix its mode, or pass `--store-dir`).
#[derive(Debug, thiserror::Error)]
pub enum StoreDirError {
    /// The directory cannot be created.
    #[error("cannot create {}", .path.display())]
    Create {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The existing one cannot be inspected.
    #[error("cannot inspect {}", .path.display())]
    Inspect {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A symlink or file is in the way.
    #[error(
        "{} is not a directory (a symlink or file is in the way); remove it or pass --store-dir",
        .0.display()
    )]
    NotDirectory(PathBuf),
    /// Another user owns it.
    #[error(
        "{} belongs to user {owner}, not to you ({uid}); remove it or pass --store-dir",
        .path.display()
    )]
    Foreign {
        /// The directory.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// This user's.
        uid: u32,
    },
    /// Others may enter it.
    #[error(
        "{} is open to other users (mode {mode:o}); run chmod 700 on it or pass --store-dir",
        .path.display()
    )]
    Open {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// `$TMPDIR/excam-UID/store`: the processes backend's store when none is
/// given. States and tasks are private to the user who runs the job, so
/// the per-user directory is created 0700, and one that already exists is
/// used only if it is a real directory (not a symlink) of this user that
/// nobody else can enter; otherwise another user could read, plant or
/// delete states under predictable job ids.
pub fn default_store_dir() -> Result<PathBuf, StoreDirError> {
    let uid = rustix::process::geteuid().as_raw();
    let base = std::env::temp_dir().join(format!("excam-{uid}"));
    private_dir(&base, uid)?;
    Ok(base.join("store"))
}

/// Creates `dir` with mode 0700, or checks that the existing one is this
/// user's own private directory.
fn private_dir(dir: &Path, uid: u32) -> Result<(), StoreDirError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(StoreDirError::Create {
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    let m = std::fs::symlink_metadata(dir).map_err(|source| StoreDirError::Inspect {
        path: dir.to_path_buf(),
        source,
    })?;
    if !m.file_type().is_dir() {
        return Err(StoreDirError::NotDirectory(dir.to_path_buf()));
    }
    if m.uid() != uid {
        return Err(StoreDirError::Foreign {
            path: dir.to_path_buf(),
            owner: m.uid(),
            uid,
        });
    }
    if m.mode() & 0o077 != 0 {
        return Err(StoreDirError::Open {
            path: dir.to_path_buf(),
            mode: m.mode() & 0o777,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::private_dir;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn private_dir_is_made_0700_and_refuses_open_or_foreign_ones() {
        let t = tempfile::tempdir().unwrap();
        let uid = rustix::process::geteuid().as_raw();
        let d = t.path().join("mine");
        private_dir(&d, uid).unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        private_dir(&d, uid).unwrap();

        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = private_dir(&d, uid).unwrap_err().to_string();
        assert!(e.contains("open to other users"), "{e}");

        let link = t.path().join("link");
        std::os::unix::fs::symlink(t.path(), &link).unwrap();
        let e = private_dir(&link, uid).unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");

        let e = private_dir(&d, uid + 1).unwrap_err().to_string();
        assert!(e.contains("belongs to user"), "{e}");
    }
}
