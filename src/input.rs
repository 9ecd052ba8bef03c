//! Reading scripts and manifests from disk, bounded: only regular files are opened (opening a
//! FIFO blocks, a device may never end), and never more than a documented number of bytes.
//! `check` and `run` read through here, so both refuse the same files in the same words.

use std::fmt;
use std::io::Read;
use std::path::Path;

/// The largest script read, in bytes (16 MiB): thousands of scenarios fit many times over.
pub const SCRIPT_LIMIT: u64 = 16 << 20;
/// The largest manifest file read, in bytes (16 MiB); the API server refuses requests above 3 MiB.
pub const MANIFEST_LIMIT: u64 = 16 << 20;

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// A FIFO, a device, a socket or a directory where a file belongs.
    NotAFile {
        what: &'static str,
    },
    TooLarge {
        limit: u64,
    },
    NotUtf8 {
        valid_up_to: usize,
        bytes: Vec<u8>,
    },
    Io(std::io::Error),
}

impl ReadError {
    /// The diagnostic code for this kind of failure.
    pub fn code(&self) -> &'static str {
        match self {
            ReadError::NotAFile { .. } => "rehearse::io::not_a_file",
            ReadError::TooLarge { .. } => "rehearse::io::too_large",
            ReadError::NotUtf8 { .. } => "rehearse::io::not_utf8",
            ReadError::Io(_) => "rehearse::io::read",
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NotAFile { what } => write!(f, "it is {what}, not a regular file"),
            ReadError::TooLarge { limit } => write!(f, "it is larger than the {} MiB limit", limit >> 20),
            ReadError::NotUtf8 { .. } => f.write_str("it is not UTF-8 text"),
            ReadError::Io(error) => write!(f, "{error}"),
        }
    }
}

/// What a file type is, in words, when it is not a regular file.
pub fn not_a_file(metadata: &std::fs::Metadata) -> Option<&'static str> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
        if kind.is_char_device() || kind.is_block_device() {
            return Some("a device");
        }
    }
    Some("not a regular file")
}

/// The text of a regular file of at most `limit` bytes.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    // Metadata first: opening a FIFO for reading blocks until a writer comes.
    let metadata = std::fs::metadata(path).map_err(ReadError::Io)?;
    if let Some(what) = not_a_file(&metadata) {
        return Err(ReadError::NotAFile { what });
    }
    if metadata.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // `take`: a file that grows while read (or lies about its size, as /proc does) stays bounded.
    std::fs::File::open(path).and_then(|file| file.take(limit + 1).read_to_end(&mut bytes)).map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    // A byte-order mark some Windows editors write: invisible, and no part of the script.
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|error| ReadError::NotUtf8 {
        valid_up_to: error.utf8_error().valid_up_to(),
        bytes: error.into_bytes(),
    })
}

/// The limits YAML is read with, by `check` and `run` alike: serde-saphyr's budget, which stops
/// alias bombs ("billion laughs"), deep nesting and floods of nodes before they cost memory.
/// Written out rather than taken as `Default`, so an upgrade cannot move them silently.
pub fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = 64;
    budget.max_documents = 1024;
    budget.max_nodes = 250_000;
    budget.max_events = 1_000_000;
    budget.max_aliases = 50_000;
    budget.max_anchors = 50_000;
    budget.max_total_scalar_bytes = MANIFEST_LIMIT as usize;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// The YAML documents of a manifest text (null documents left out), read within [`yaml_options`].
pub fn yaml_documents(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple_with_options(text, yaml_options())
        .map_err(|e| format!("the YAML does not parse: {e}"))?;
    Ok(documents.into_iter().filter(|d| !d.is_null()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_too_large_or_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        std::fs::write(&path, "x".repeat(2048)).unwrap();
        assert!(matches!(read_text(&path, 1024), Err(ReadError::TooLarge { limit: 1024 })));
        assert_eq!(read_text(&path, 4096).unwrap().len(), 2048);
        let marked = dir.path().join("marked.rollout");
        std::fs::write(&marked, "\u{feff}scenario \"a\" {\n}\n").unwrap();
        assert_eq!(read_text(&marked, 4096).unwrap(), "scenario \"a\" {\n}\n", "the byte-order mark is dropped");
        assert!(matches!(read_text(dir.path(), 4096), Err(ReadError::NotAFile { what: "a directory" })));
        #[cfg(unix)]
        {
            let error = read_text(Path::new("/dev/zero"), 4096).unwrap_err();
            assert_eq!(error.to_string(), "it is a device, not a regular file");
            assert_eq!(error.code(), "rehearse::io::not_a_file");
        }
        let error = ReadError::TooLarge { limit: MANIFEST_LIMIT };
        assert_eq!(error.to_string(), "it is larger than the 16 MiB limit");
    }
}
