//! Opening a file and choosing how its bytes reach the scanner, in one place:
//! small files are read into a reused buffer (cheaper than a mapping), larger ones are
//! memory-mapped, and huge ones are streamed in chunks so memory stays bounded.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use memmap2::Mmap;

/// How a file's bytes are obtained.
#[derive(Clone, Copy, Debug)]
pub struct LoadPolicy {
    /// Files up to this size are read into the worker's buffer.
    pub read_max: u64,
    /// Files up to this size are memory-mapped (when `mmap` is on); larger ones are streamed.
    pub map_max: u64,
    /// Whether to memory-map at all. A mapped file truncated by another process while it
    /// is scanned raises SIGBUS; turn mapping off where files change under the scanner.
    pub mmap: bool,
    /// Chunk size of streamed files.
    pub chunk: usize,
}

impl Default for LoadPolicy {
    fn default() -> Self {
        LoadPolicy {
            read_max: 256 * 1024,
            map_max: 64 << 20,
            mmap: true,
            chunk: 8 << 20,
        }
    }
}

/// An opened regular file and the strategy chosen for it.
pub enum Loaded {
    /// Read whole into the caller's buffer (its length is the bytes read).
    Buffered,
    /// Mapped.
    Mapped(Mmap),
    /// Too large to hold: stream it.
    Streamed(File),
}

/// Opens `path` without blocking (a FIFO swapped in after listing must not hang the scan),
/// checks it is still a regular file, and loads it per `policy`.
pub fn open(path: &Path, policy: &LoadPolicy, buf: &mut Vec<u8>) -> std::io::Result<(Loaded, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let len = meta.len();
    if len <= policy.read_max || !policy.mmap && len <= policy.map_max {
        buf.clear();
        // Read to the end: a file that grew since `stat` is scanned as it is now.
        file.read_to_end(buf)?;
        return Ok((Loaded::Buffered, len));
    }
    if len <= policy.map_max {
        // SAFETY: the mapping is read-only and private to this worker; if another process
        // truncates the file meanwhile, reads past the new end raise SIGBUS (documented in
        // `LoadPolicy::mmap`), as with every mmap-based scanner.
        let map = unsafe { Mmap::map(&file)? };
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        return Ok((Loaded::Mapped(map), len));
    }
    Ok((Loaded::Streamed(file), len))
}
