//! Output files that appear whole or not at all.
//!
//! A decode that fails half-way must not leave a plausible-looking but
//! truncated file behind, nor clobber an older good one. [`AtomicFile`]
//! writes to a temporary file in the same directory (so the final rename
//! stays on one file system and is atomic) and renames it over the target
//! only in [`AtomicFile::commit`]; dropping it uncommitted removes it.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A buffered file written beside its final path and renamed into place.
pub struct AtomicFile {
    writer: Option<BufWriter<File>>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file `.NAME.excam-tmp.PID` beside `dest`.
    pub fn create(dest: &Path) -> Result<Self> {
        let name = dest
            .file_name()
            .with_context(|| format!("output path {} has no file name", dest.display()))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".excam-tmp.{}", std::process::id()));
        let tmp = dest.with_file_name(tmp_name);
        let file = File::create(&tmp)
            .with_context(|| format!("cannot create temporary file {}", tmp.display()))?;
        Ok(AtomicFile {
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// Flushes, syncs nothing (a decode is reproducible), and renames the
    /// temporary file to the destination.
    pub fn commit(mut self) -> Result<()> {
        let writer = self.writer.take().expect("writer present until commit");
        let file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.tmp.display(),
                self.dest.display()
            )
        })?;
        // Renamed: nothing left for `drop` to clean up.
        self.tmp.clear();
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().expect("writer present").write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer.as_mut().expect("writer present").write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().expect("writer present").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            // Close before removing; errors here have nowhere to go and the
            // command is already failing for another reason.
            self.writer.take();
            let _ = std::fs::remove_file(&self.tmp);
        }
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
