//! Inputs → file jobs: walks directories, applies include/exclude globs, and turns every
//! input that cannot be scanned (special files, broken links, unreadable directories) into a
//! warning instead of an error.

use std::fs::FileType;
use std::path::{Path, PathBuf};

use globset::GlobSet;

use crate::core::{Warning, WarningKind};

/// A regular file to scan.
#[derive(Clone, Debug)]
pub struct FileJob {
    /// Its path.
    pub path: PathBuf,
    /// Its size when listed.
    pub size: u64,
    /// Its modification time when listed, in nanoseconds since the epoch.
    pub mtime_ns: Option<i64>,
}

/// What enumeration produces, in order.
#[derive(Debug)]
pub enum Enumerated {
    /// A file to scan.
    File(FileJob),
    /// An input that will not be scanned, and why.
    Warning(Warning),
    /// Skipped by a filter.
    Filtered,
    /// Another shard's file (`--shard K/N`).
    OtherShard,
    /// A symbolic link found while walking, not followed.
    SymlinkSkipped,
}

/// Include/exclude globs and the size limit.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// When set, only paths matching one of these are scanned.
    pub include: Option<GlobSet>,
    /// Paths matching one of these are skipped (directories are not entered).
    pub exclude: Option<GlobSet>,
    /// Files larger than this are skipped with a warning.
    pub max_file_size: Option<u64>,
    /// Only this shard's files are scanned.
    pub shard: Option<Shard>,
}

/// One of N machines splitting the same inputs: a file belongs to shard `hash(path) mod N`,
/// where the path is the one below the walked root (the same on every machine, wherever
/// the mirror is mounted) and the hash is SHA-256's first 8 bytes (the same in every build).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 0-based index of this shard.
    pub index: u64,
    /// Number of shards.
    pub count: u64,
}

impl Shard {
    /// Parses `K/N` (1-based K, as a user counts machines).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (k, n) = text.split_once('/').ok_or("expected K/N, e.g. 2/8")?;
        let (k, n): (u64, u64) = (
            k.trim().parse().map_err(|_| format!("{k:?} is not a number"))?,
            n.trim().parse().map_err(|_| format!("{n:?} is not a number"))?,
        );
        if n == 0 || k == 0 || k > n {
            return Err(format!("{text}: K must be between 1 and N"));
        }
        Ok(Shard { index: k - 1, count: n })
    }

    /// Whether the file at `relative` (below its walked root) is this shard's.
    pub fn owns(&self, relative: &Path) -> bool {
        use sha2::{Digest, Sha256};
        use std::os::unix::ffi::OsStrExt;
        let digest = Sha256::digest(relative.as_os_str().as_bytes());
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(head) % self.count == self.index
    }
}

impl Filters {
    fn excluded(&self, path: &Path) -> bool {
        self.exclude.as_ref().is_some_and(|g| g.is_match(path))
    }
    fn included(&self, path: &Path) -> bool {
        self.include.as_ref().is_none_or(|g| g.is_match(path))
    }
}

/// Lossy display of a path.
pub fn display(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A warning about a path.
pub fn warning(kind: WarningKind, path: &Path, message: impl Into<String>) -> Warning {
    Warning {
        kind,
        path: display(path),
        message: message.into(),
    }
}

/// Classifies an I/O error on a path.
pub fn io_warning(path: &Path, err: &std::io::Error) -> Warning {
    let kind = match err.kind() {
        std::io::ErrorKind::PermissionDenied => WarningKind::PermissionDenied,
        std::io::ErrorKind::NotFound => WarningKind::Vanished,
        _ => WarningKind::Unreadable,
    };
    warning(kind, path, err.to_string())
}

fn special_kind_name(ft: FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Walks one input. Explicit inputs that are links are followed (the user named them);
/// links met while walking are not, but broken ones are reported.
pub fn walk(input: &Path, filters: &Filters, emit: &mut dyn FnMut(Enumerated) -> bool) {
    let meta = match std::fs::metadata(input) {
        Ok(m) => m,
        Err(e) => {
            let broken = std::fs::symlink_metadata(input).is_ok_and(|m| m.file_type().is_symlink());
            let w = if broken {
                warning(WarningKind::BrokenSymlink, input, "broken symbolic link")
            } else if e.kind() == std::io::ErrorKind::NotFound {
                warning(WarningKind::NotFound, input, "no such file or directory")
            } else {
                io_warning(input, &e)
            };
            emit(Enumerated::Warning(w));
            return;
        }
    };
    if !meta.is_dir() {
        // A file named explicitly is scanned even if filters would skip it in a walk; a
        // shard owns it by its name.
        let name = input.file_name().map_or(input, Path::new);
        if filters.shard.is_some_and(|s| !s.owns(name)) {
            emit(Enumerated::OtherShard);
        } else {
            emit(file_job(input, &meta, filters));
        }
        return;
    }
    // A bandersnatch mirror root: the release files live under web/packages; the index
    // pages beside them (web/simple, web/json) hold only names and hashes.
    let mirror_packages = input.join("web/packages");
    let root = if mirror_packages.is_dir() {
        tracing::info!("{}: a package mirror root; walking web/packages", input.display());
        mirror_packages
    } else {
        input.to_owned()
    };
    let input = root.as_path();
    let walker = walkdir::WalkDir::new(input).follow_links(false).sort_by_file_name();
    let mut it = walker.into_iter();
    while let Some(entry) = it.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().map(Path::to_owned).unwrap_or_else(|| input.to_owned());
                let w = match e.io_error() {
                    Some(io) => {
                        let mut w = io_warning(&path, io);
                        if w.kind == WarningKind::Unreadable {
                            w.kind = WarningKind::Walk;
                        }
                        w
                    }
                    None => warning(WarningKind::Walk, &path, e.to_string()),
                };
                if !emit(Enumerated::Warning(w)) {
                    return;
                }
                continue;
            }
        };
        let path = entry.path();
        // Globs see the path below the walked root, as in ripgrep: `tests/*.py`, not `./src/tests/…`.
        let relative = path.strip_prefix(input).unwrap_or(path);
        let ft = entry.file_type();
        if ft.is_dir() {
            if entry.depth() > 0 && filters.excluded(relative) {
                it.skip_current_dir();
                if !emit(Enumerated::Filtered) {
                    return;
                }
            }
            continue;
        }
        let item = if filters.excluded(relative) || !filters.included(relative) {
            Enumerated::Filtered
        } else if filters.shard.is_some_and(|s| !s.owns(relative)) {
            Enumerated::OtherShard
        } else if ft.is_symlink() {
            if std::fs::metadata(path).is_err() {
                Enumerated::Warning(warning(WarningKind::BrokenSymlink, path, "broken symbolic link"))
            } else {
                Enumerated::SymlinkSkipped
            }
        } else {
            match entry.metadata() {
                Ok(meta) => file_job(path, &meta, filters),
                Err(e) => Enumerated::Warning(warning(WarningKind::Unreadable, path, e.to_string())),
            }
        };
        if !emit(item) {
            return;
        }
    }
}

/// A file's modification time in nanoseconds since the epoch.
pub fn mtime_ns(meta: &std::fs::Metadata) -> Option<i64> {
    use std::os::unix::fs::MetadataExt;
    meta.mtime().checked_mul(1_000_000_000)?.checked_add(meta.mtime_nsec())
}

fn file_job(path: &Path, meta: &std::fs::Metadata, filters: &Filters) -> Enumerated {
    let ft = meta.file_type();
    if !ft.is_file() {
        return Enumerated::Warning(warning(
            WarningKind::SpecialFile,
            path,
            format!("{}: skipped", special_kind_name(ft)),
        ));
    }
    if let Some(max) = filters.max_file_size {
        if meta.len() > max {
            return Enumerated::Warning(warning(
                WarningKind::TooLarge,
                path,
                format!("{} bytes is over the --max-file-size of {max}", meta.len()),
            ));
        }
    }
    Enumerated::File(FileJob {
        path: path.to_owned(),
        size: meta.len(),
        mtime_ns: mtime_ns(meta),
    })
}
