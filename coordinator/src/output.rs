//! Output files that appear whole or not at all.
//!
//! A run that fails half-way must not leave a plausible-looking but
//! truncated file behind, nor clobber an older good one. Outputs are
//! written to a temporary file in the same directory (so the final rename
//! stays on one file system and is atomic), created with `O_EXCL` under an
//! unpredictable name (so a planted file or symlink is never written
//! through), synced, and renamed over the target only when complete
//! ([`persist`]); dropped before that, the temporary file removes itself.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// Why an output could not be put in place. Each names the path it was
/// working on; the cause is its source.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The temporary file beside the output cannot be created (a missing
    /// or read-only directory).
    #[error("cannot create a file in {}", .dir.display())]
    CreateTemp {
        /// The directory it was to be made in.
        dir: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The temporary file cannot be opened again for writing.
    #[error("cannot open {}", .path.display())]
    Open {
        /// The temporary file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The buffered bytes cannot be written out.
    #[error("cannot write {}", .path.display())]
    Write {
        /// The temporary file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The finished file cannot be synced to disk.
    #[error("cannot sync {}", .path.display())]
    Sync {
        /// The temporary file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The finished file cannot be renamed over the output path.
    #[error("cannot create {}", .path.display())]
    Persist {
        /// The output path.
        path: PathBuf,
        /// Why (it holds the temporary file, removed when dropped).
        #[source]
        source: tempfile::PersistError,
    },
}

type Result<T, E = OutputError> = std::result::Result<T, E>;

/// A temporary file beside `output` (`.NAME.XXXXXX.part`), to be put in
/// place by [`persist`]; `-` (standard output) gets one in the temporary
/// directory.
pub fn temp_beside(output: &Path) -> Result<NamedTempFile> {
    let dir = match output.parent() {
        _ if output == Path::new("-") => std::env::temp_dir(),
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".part")
        .tempfile_in(&dir)
        .map_err(|source| OutputError::CreateTemp { dir, source })
}

/// Syncs the finished temporary file, renames it to `dest` and syncs the
/// directory, so after a crash `dest` is either the old file or the whole
/// new one, never a truncated one.
pub fn persist(tmp: NamedTempFile, dest: &Path) -> Result<()> {
    if let Err(source) = tmp.as_file().sync_all() {
        let path = tmp.path().to_path_buf();
        return Err(OutputError::Sync { path, source });
    }
    tmp.persist(dest).map_err(|source| OutputError::Persist {
        path: dest.to_path_buf(),
        source,
    })?;
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // A directory that cannot be opened for syncing (some file systems)
    // still has the rename; only the crash guarantee is weaker there.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A buffered file written beside its final path and put in place by
/// [`AtomicFile::commit`].
pub struct AtomicFile {
    writer: BufWriter<File>,
    tmp: NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file beside `dest` (see [`temp_beside`]).
    pub fn create(dest: &Path) -> Result<Self> {
        let tmp = temp_beside(dest)?;
        let file = tmp.reopen().map_err(|source| OutputError::Open {
            path: tmp.path().to_path_buf(),
            source,
        })?;
        Ok(AtomicFile {
            writer: BufWriter::with_capacity(1 << 20, file),
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// Flushes, syncs and renames the temporary file to the destination.
    pub fn commit(self) -> Result<()> {
        let file = self.writer.into_inner().map_err(|e| OutputError::Write {
            path: self.tmp.path().to_path_buf(),
            source: e.into_error(),
        })?;
        drop(file);
        persist(self.tmp, &self.dest)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// Whether `path` names the null device, which takes any bytes and keeps
/// none: a decode to it need not convert or write pictures at all.
pub fn is_null_device(path: &Path) -> bool {
    path == Path::new("/dev/null")
        || std::fs::canonicalize(path).is_ok_and(|p| p == Path::new("/dev/null"))
}

/// Whether `path` exists and is not a regular file (a device such as
/// `/dev/stdout`, a FIFO, a socket). Such an output cannot be replaced by
/// a rename: it is written in place, as vpxenc and vpxdec do.
pub fn is_special_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}
