//! `--state-file PATH`: the node's view, saved for a warm restart.
//!
//! The file holds exactly the bytes of `Behaviour::export_view` (a protobuf `ViewSnapshot` of
//! `proto/cyclon.proto`). It is read once at start, and written whenever the view changed
//! (at most once per shuffle interval) and on exit. A write goes to a temporary file in the
//! same directory, synced, then renamed over the old one: a crash mid-write leaves the
//! previous good file. A file that cannot be read, is not a snapshot, or is another peer's
//! is refused before anything is written, so it is never overwritten either.

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
};

use libp2p_cyclon as cyclon;

/// The state file of one node.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    /// The bytes the file holds now, to skip writes that change nothing.
    written: Option<Vec<u8>>,
}

impl StateFile {
    /// Restores `cyclon`'s view from `path` if the file exists (a missing file is a first
    /// start). Errors are one line, naming the file.
    pub fn restore(path: PathBuf, cyclon: &mut cyclon::Behaviour) -> Result<Self, String> {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                tracing::info!(path = %path.display(), "no state file yet: starting empty");
                return Ok(Self {
                    path,
                    written: None,
                });
            }
            Err(error) => {
                return Err(format!(
                    "state file {} cannot be read: {error}",
                    path.display()
                ));
            }
        };
        let imported = cyclon.import_view(&bytes).map_err(|error| {
            format!(
                "state file {} is not usable ({error}); it was left as it is",
                path.display()
            )
        })?;
        tracing::info!(
            path = %path.display(),
            added = imported.added,
            not_taken = imported.not_taken,
            invalid = imported.invalid.entries_dropped(),
            "view restored"
        );
        Ok(Self {
            path,
            written: Some(bytes),
        })
    }

    /// Writes `cyclon`'s view, atomically, unless the file already holds these bytes.
    pub fn save(&mut self, cyclon: &cyclon::Behaviour) -> io::Result<()> {
        let bytes = cyclon.export_view();
        if self.written.as_ref() == Some(&bytes) {
            return Ok(());
        }
        write_atomically(&self.path, &bytes)?;
        self.written = Some(bytes);
        Ok(())
    }
}

/// Replaces `path` with `bytes`: a temporary file in the same directory, synced, renamed.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
