//! Containers opened in memory, recursively, under budgets: the zip family (wheels, eggs,
//! zip sdists, jars), tar, and gzip, bzip2, xz and zstd streams (`.tar.gz`, single `.gz`, …).
//! Formats are sniffed from magic bytes, never from names. Nothing touches the disk.
//!
//! This module knows nothing of rules: it hands every member to a [`Visitor`], either whole
//! (held in memory, at most [`Budget::member_buffer`] bytes) or as a stream.

mod tarball;
mod zipfile;

use std::cell::Cell;
use std::io::{self, Cursor, Read};
use std::rc::Rc;

use crate::core::Provenance;
use crate::core::Views;
use crate::core::WarningKind;
use crate::util::read_full;

/// A container format, from its magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Zip family: wheels, eggs, zip sdists, jars.
    Zip,
    /// POSIX/GNU tar.
    Tar,
    /// gzip stream.
    Gzip,
    /// bzip2 stream.
    Bzip2,
    /// xz stream.
    Xz,
    /// zstd frame.
    Zstd,
    /// Not a container: scanned as it is.
    Plain,
}

/// Bytes needed to sniff every format (tar's magic sits at offset 257).
pub const SNIFF_LEN: usize = 512;

/// The format of a blob from its first bytes.
pub fn sniff(head: &[u8]) -> Format {
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Format::Zip
    } else if head.starts_with(&[0x1f, 0x8b]) {
        Format::Gzip
    } else if head.starts_with(b"BZh") && head.get(3).is_some_and(|d| (b'1'..=b'9').contains(d)) {
        Format::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Format::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Format::Zstd
    } else if head.get(257..262) == Some(b"ustar") {
        Format::Tar
    } else {
        Format::Plain
    }
}

/// What besides its bytes decides what a blob (a file or member, at `provenance`) yields:
/// the views its name selects and, for a single compressed stream, the name of the member
/// inside, which comes from its own. Blobs are deduplicated by their bytes and this.
pub fn name_salt(provenance: &Provenance, head: &[u8]) -> String {
    let name = provenance.members.last().unwrap_or(&provenance.path);
    let kind = crate::core::TextKind::of(name);
    match sniff(&head[..head.len().min(SNIFF_LEN)]) {
        Format::Gzip | Format::Bzip2 | Format::Xz | Format::Zstd => format!("{kind:?}\0{}", inner_name(provenance)),
        _ => format!("{kind:?}"),
    }
}

/// The views of a plain blob, given what its name says it is.
pub type ViewsOf = fn(&[u8], crate::core::TextKind) -> Views;

/// Limits per top-level file: what a hostile archive can cost before the rest is skipped.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Containers nested deeper than this are scanned as raw bytes, not opened.
    pub max_depth: u32,
    /// Total bytes decompressed from one top-level file.
    pub max_unpacked_bytes: u64,
    /// Members listed in one top-level file.
    pub max_entries: u64,
    /// A member may not expand more than this many times its compressed size (past 16 MiB).
    pub max_ratio: u64,
    /// Members up to this size are held in memory (and opened if they are containers);
    /// larger ones are scanned as a stream of chunks.
    pub member_buffer: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_depth: 8,
            max_unpacked_bytes: 8 << 30,
            max_entries: 200_000,
            max_ratio: 1000,
            member_buffer: 16 << 20,
        }
    }
}

/// Counters of one top-level file's unpacking.
#[derive(Clone, Copy, Debug, Default)]
pub struct UnpackStats {
    /// Containers opened.
    pub archives: u64,
    /// Members handed to the visitor.
    pub members: u64,
    /// Bytes decompressed (stored members count too).
    pub bytes_unpacked: u64,
    /// Budgets hit.
    pub budget_hits: u64,
    /// Corrupt or truncated containers.
    pub corrupt: u64,
    /// Members not scanned: the same bytes were scanned before (with a datastore).
    pub members_reused: u64,
}

/// Receives what unpacking finds.
pub trait Visitor {
    /// A blob held in memory: a plain file, or a member that is not a container.
    fn blob(&mut self, provenance: &Provenance, data: &[u8]);
    /// A member too large to hold: its bytes as a stream. Returns the bytes read.
    fn stream(&mut self, provenance: &Provenance, reader: &mut dyn Read) -> io::Result<u64>;
    /// Something was skipped or only partly read.
    fn warn(&mut self, provenance: &Provenance, kind: WarningKind, message: String);
    /// Before a member held in memory is opened or scanned: false skips it (its results
    /// are known from the same bytes elsewhere). Every call is followed by one `leave`.
    fn enter(&mut self, _provenance: &Provenance, _data: &[u8]) -> bool {
        true
    }
    /// After the member of the matching `enter`.
    fn leave(&mut self, _provenance: &Provenance) {}
}

/// Opens containers recursively for one top-level file.
pub struct Unpacker<'v> {
    budget: Budget,
    /// Decompressed bytes allowed for this file: the byte budget, and the ratio limit
    /// applied to the whole file (so nesting cannot multiply ratios).
    max_unpacked: u64,
    unpacked: Rc<Cell<u64>>,
    entries: u64,
    exhausted: bool,
    visitor: &'v mut dyn Visitor,
    /// Decoded views of plain blobs are chained up to this depth (0: none).
    decode_depth: u32,
    /// What decodes a plain blob's views: the caller's (containers know no decoders).
    views_of: ViewsOf,
    /// Counters so far.
    pub stats: UnpackStats,
}

/// Why a decompressing reader stopped early.
#[derive(Debug)]
struct BudgetExceeded(String);

impl std::fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BudgetExceeded {}

fn budget_error(err: &io::Error) -> Option<String> {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<BudgetExceeded>())
        .map(|b| b.0.clone())
}

/// Counts decompressed bytes against the file's budget and the member's ratio limit.
struct Limited<R> {
    inner: R,
    unpacked: Rc<Cell<u64>>,
    max_unpacked: u64,
    produced: u64,
    ratio_cap: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.produced += n as u64;
        let total = self.unpacked.get() + n as u64;
        self.unpacked.set(total);
        if total > self.max_unpacked {
            return Err(io::Error::other(BudgetExceeded(format!(
                "more than {} bytes unpacked from this file",
                self.max_unpacked
            ))));
        }
        if self.produced > self.ratio_cap {
            return Err(io::Error::other(BudgetExceeded(format!(
                "expands past {} bytes, over the compression-ratio limit (a bomb?)",
                self.ratio_cap
            ))));
        }
        Ok(n)
    }
}

impl<'v> Unpacker<'v> {
    /// An unpacker for one top-level file of `file_len` bytes; plain blobs get their decoded
    /// views from `views_of` up to `decode_depth`.
    pub fn new(
        budget: Budget,
        decode_depth: u32,
        views_of: ViewsOf,
        file_len: u64,
        visitor: &'v mut dyn Visitor,
    ) -> Self {
        // Ten times the per-member ratio over the whole file: a single bomb member hits its
        // own limit first (its siblings are still scanned), nested bombs hit this one.
        let by_ratio = file_len
            .saturating_mul(budget.max_ratio.saturating_mul(10))
            .max(64 << 20);
        Unpacker {
            budget,
            max_unpacked: budget.max_unpacked_bytes.min(by_ratio),
            unpacked: Rc::new(Cell::new(0)),
            entries: 0,
            exhausted: false,
            visitor,
            decode_depth,
            views_of,
            stats: UnpackStats::default(),
        }
    }

    fn limited<R: Read>(&self, inner: R, compressed_len: u64) -> Limited<R> {
        Limited {
            inner,
            unpacked: Rc::clone(&self.unpacked),
            max_unpacked: self.max_unpacked,
            produced: 0,
            ratio_cap: compressed_len.saturating_mul(self.budget.max_ratio).max(16 << 20),
        }
    }

    fn warn(&mut self, provenance: &Provenance, kind: WarningKind, message: String) {
        match kind {
            WarningKind::BudgetExceeded => self.stats.budget_hits += 1,
            WarningKind::CorruptArchive => self.stats.corrupt += 1,
            _ => {}
        }
        self.visitor.warn(provenance, kind, message);
    }

    /// Whether a file-wide budget is spent: nothing more is opened or scanned.
    fn exhausted(&self) -> bool {
        self.exhausted
    }

    /// Spends the file's budget: one warning, then the walk unwinds.
    fn exhaust(&mut self, provenance: &Provenance, why: String) {
        if !self.exhausted {
            self.exhausted = true;
            self.warn(
                provenance,
                WarningKind::BudgetExceeded,
                format!("{why}: the rest of this file is skipped"),
            );
        }
    }

    /// Members that may still be listed.
    fn entries_left(&self) -> u64 {
        self.budget.max_entries.saturating_sub(self.entries)
    }

    /// Counts one more listed member; false once the entry budget is spent.
    fn take_entry(&mut self, provenance: &Provenance) -> bool {
        if self.exhausted {
            return false;
        }
        self.entries += 1;
        if self.entries > self.budget.max_entries {
            let max = self.budget.max_entries;
            self.exhaust(provenance, format!("more than {max} members"));
        }
        !self.exhausted
    }

    /// Charges bytes read without decompression (stored members); false once over budget.
    fn charge(&mut self, bytes: u64, provenance: &Provenance) -> bool {
        self.stats.bytes_unpacked += bytes;
        let total = self.unpacked.get() + bytes;
        self.unpacked.set(total);
        if total > self.max_unpacked {
            let max = self.max_unpacked;
            self.exhaust(provenance, format!("more than {max} bytes unpacked from this file"));
        }
        !self.exhausted
    }

    /// A blob in memory at nesting `depth`: opened if it is a container, else visited.
    /// A member (not the top-level file, not a decoded view) is offered to the visitor's
    /// `enter` first.
    pub fn blob(&mut self, data: &[u8], provenance: &Provenance, depth: u32) {
        if self.exhausted {
            return;
        }
        if provenance.members.is_empty() || !provenance.decoders.is_empty() {
            return self.blob_unchecked(data, provenance, depth);
        }
        if self.visitor.enter(provenance, data) {
            self.blob_unchecked(data, provenance, depth);
        } else {
            self.stats.members_reused += 1;
        }
        self.visitor.leave(provenance);
    }

    fn blob_unchecked(&mut self, data: &[u8], provenance: &Provenance, depth: u32) {
        let format = sniff(&data[..data.len().min(SNIFF_LEN)]);
        if format == Format::Plain {
            let views = if (provenance.decoders.len() as u32) < self.decode_depth {
                let name = provenance.members.last().unwrap_or(&provenance.path);
                (self.views_of)(data, crate::core::TextKind::of(name))
            } else {
                Views::default()
            };
            if !views.replace_blob {
                self.visit(provenance, data);
            }
            // A view is a blob like any other: decoded again, or opened (gzip in base64).
            for view in views.list {
                let child = crate::core::provenance_of(provenance, &view);
                if child.focus.as_ref().is_some_and(|f| f.is_empty()) {
                    continue; // nothing in it that the blob did not show already
                }
                self.blob(&view.bytes, &child, depth);
            }
            return;
        }
        if depth >= self.budget.max_depth {
            // A depth of 0 means archives are not opened at all: nothing to warn about.
            if self.budget.max_depth > 0 {
                let max = self.budget.max_depth;
                self.warn(
                    provenance,
                    WarningKind::BudgetExceeded,
                    format!("containers nested deeper than {max}: scanned as raw bytes"),
                );
            }
            self.visit(provenance, data);
            return;
        }
        self.stats.archives += 1;
        let compressed = data.len() as u64;
        match format {
            Format::Zip => zipfile::open(self, data, provenance, depth),
            Format::Tar => tarball::open(self, &mut Cursor::new(data), provenance, depth),
            _ => {
                let opened = match decoder(format, Cursor::new(data)) {
                    Ok(reader) => self.compressed(reader, compressed, provenance, depth),
                    Err(e) => {
                        self.warn(provenance, WarningKind::CorruptArchive, format!("{format:?}: {e}"));
                        false
                    }
                };
                if !opened {
                    // Magic bytes, but nothing decompresses: the bytes are all there is.
                    self.visit(provenance, data);
                }
            }
        }
    }

    /// A top-level container read as a stream (too large to map): tar or a compressed stream.
    pub fn top_reader(&mut self, format: Format, reader: Box<dyn Read + '_>, len: u64, provenance: &Provenance) {
        self.stats.archives += 1;
        match format {
            Format::Tar => {
                let mut reader = reader;
                tarball::open(self, &mut reader, provenance, 0);
            }
            _ => match decoder(format, reader) {
                Ok(reader) => {
                    self.compressed(reader, len, provenance, 0);
                }
                Err(e) => self.warn(provenance, WarningKind::CorruptArchive, format!("{format:?}: {e}")),
            },
        }
    }

    fn visit(&mut self, provenance: &Provenance, data: &[u8]) {
        if !provenance.members.is_empty() && provenance.decoders.is_empty() {
            self.stats.members += 1;
        }
        self.visitor.blob(provenance, data);
    }

    /// A single compressed stream: a tar inside is opened in place (`x.tar.gz!member`),
    /// anything else is one member named after the file without its suffix. False when not
    /// a byte could be decompressed (the caller scans the raw bytes instead).
    fn compressed(
        &mut self,
        reader: Box<dyn Read + '_>,
        compressed_len: u64,
        provenance: &Provenance,
        depth: u32,
    ) -> bool {
        let mut limited = self.limited(reader, compressed_len);
        let mut head = Vec::with_capacity(SNIFF_LEN);
        if let Err(e) = (&mut limited).take(SNIFF_LEN as u64).read_to_end(&mut head) {
            self.read_failed(provenance, &e);
            if head.is_empty() {
                return false;
            }
        }
        let is_tar = sniff(&head) == Format::Tar;
        let mut rest = Cursor::new(head).chain(limited);
        if is_tar {
            tarball::open(self, &mut rest, provenance, depth);
        } else {
            let inner = provenance.child(inner_name(provenance));
            self.member(&mut rest, &inner, depth + 1);
        }
        true
    }

    /// A member of unknown size: held if small enough (and opened if a container), else
    /// streamed. Read errors keep what was read.
    fn member(&mut self, reader: &mut dyn Read, provenance: &Provenance, depth: u32) {
        if !self.take_entry(provenance) {
            return;
        }
        let limit = self.budget.member_buffer;
        // Read at most `limit` (a power of two keeps the buffer from doubling past it), then
        // probe one byte to learn whether the member is larger.
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut probe = [0u8; 1];
        let outcome = (&mut *reader).take(limit as u64).read_to_end(&mut buf).and_then(|_| {
            if buf.len() == limit {
                read_full(reader, &mut probe)
            } else {
                Ok(0)
            }
        });
        self.stats.bytes_unpacked += buf.len() as u64;
        let more = match outcome {
            Ok(n) => n == 1,
            Err(e) => {
                self.read_failed(provenance, &e);
                if !buf.is_empty() {
                    self.visit(provenance, &buf);
                }
                return;
            }
        };
        if !more {
            self.blob(&buf, provenance, depth);
            return;
        }
        if sniff(&buf[..SNIFF_LEN.min(buf.len())]) != Format::Plain {
            self.warn(
                provenance,
                WarningKind::BudgetExceeded,
                format!("a container larger than {limit} bytes: scanned as a stream, not opened"),
            );
        }
        self.stats.members += 1;
        let mut chained = Cursor::new(buf).chain(&probe[..]).chain(reader);
        match self.visitor.stream(provenance, &mut chained) {
            Ok(n) => self.stats.bytes_unpacked += n.saturating_sub(limit as u64),
            Err(e) => self.read_failed(provenance, &e),
        }
    }

    fn read_failed(&mut self, provenance: &Provenance, err: &io::Error) {
        match budget_error(err) {
            Some(why) if why.starts_with("more than") => self.exhaust(provenance, why),
            Some(why) => self.warn(
                provenance,
                WarningKind::BudgetExceeded,
                format!("{why}: the rest of this member is skipped"),
            ),
            None => self.warn(
                provenance,
                WarningKind::CorruptArchive,
                format!("read failed ({err}): scanned what was readable"),
            ),
        }
    }
}

/// A decompressing reader for a stream format (multi-member streams read to the end).
fn decoder<'a, R: Read + 'a>(format: Format, reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let reader = io::BufReader::with_capacity(64 * 1024, reader);
    Ok(match format {
        Format::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Format::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(reader)),
        Format::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(reader)),
        Format::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(reader)?),
        Format::Zip | Format::Tar | Format::Plain => {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a stream format"))
        }
    })
}

/// `notes.txt.gz` → `notes.txt`; a name without a known suffix gets `<decompressed>`.
fn inner_name(provenance: &Provenance) -> String {
    let last = provenance.members.last().unwrap_or(&provenance.path);
    let file = last.rsplit('/').next().unwrap_or(last);
    for suffix in [".gz", ".tgz", ".bz2", ".xz", ".zst", ".zstd"] {
        if let Some(stem) = file.strip_suffix(suffix) {
            if !stem.is_empty() {
                return stem.to_owned();
            }
        }
    }
    "<decompressed>".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_magic_bytes_not_names() {
        assert_eq!(sniff(b"PK\x03\x04rest"), Format::Zip);
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Format::Gzip);
        assert_eq!(sniff(b"BZh91AY"), Format::Bzip2);
        assert_eq!(sniff(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0]), Format::Xz);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Format::Zstd);
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Format::Tar);
        assert_eq!(sniff(b"BZh is not bzip2 without a level digit"), Format::Plain);
        assert_eq!(sniff(b"print('PK')"), Format::Plain);
    }

    #[test]
    fn decompressed_names_drop_the_suffix() {
        let p = Provenance::file("dir/notes.txt.gz");
        assert_eq!(inner_name(&p), "notes.txt");
        assert_eq!(inner_name(&Provenance::file("blob")), "<decompressed>");
    }
}
