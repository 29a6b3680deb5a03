//! Zip archives (wheels, eggs, zip sdists): members located through the central directory,
//! stored members scanned straight from the parent's bytes, deflated ones inflated on the fly.

use std::io::Cursor;

use zip::CompressionMethod;

use super::Unpacker;
use crate::core::Provenance;
use crate::core::WarningKind;

/// A member as the central directory describes it.
struct Entry {
    name: String,
    header_start: u64,
    data_start: u64,
    compressed: u64,
    size: u64,
    crc: u32,
    method: CompressionMethod,
}

const STORED: CompressionMethod = CompressionMethod::Stored;
const DEFLATED: CompressionMethod = CompressionMethod::DEFLATE;

/// End-of-central-directory record: signature, fixed size, and the farthest it can sit
/// from the end (a 65,535-byte comment).
const EOCD_SIG: &[u8] = b"PK\x05\x06";
const EOCD_LEN: usize = 22;
const EOCD_SEARCH: usize = EOCD_LEN + 65_535;

/// What the last end-of-central-directory record declares, checked against the bytes.
enum Directory {
    /// Entries and where the directory lies; its entry headers were walked and fit.
    Valid { entries: u64 },
    /// Zip64 (or sizes we do not check here): left to the zip crate.
    Zip64,
    /// No usable directory.
    Broken(&'static str),
}

fn u16_at(d: &[u8], at: usize) -> Option<u64> {
    d.get(at..at + 2).map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])))
}

fn u32_at(d: &[u8], at: usize) -> Option<u64> {
    d.get(at..at + 4)
        .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
}

/// Finds the last EOCD record and walks the central directory it names, entry header by
/// entry header: linear in the directory's size. The zip crate, given a directory that
/// does not parse, retries from every earlier EOCD candidate (quadratic on crafted input),
/// so it only sees archives that pass this walk.
fn check_directory(data: &[u8], max_entries: u64) -> Directory {
    let tail_start = data.len().saturating_sub(EOCD_SEARCH);
    let Some(eocd) = memchr::memmem::rfind(&data[tail_start..], EOCD_SIG).map(|p| tail_start + p) else {
        return Directory::Broken("no end-of-central-directory record");
    };
    let (Some(count), Some(size), Some(offset)) = (
        u16_at(data, eocd + 10),
        u32_at(data, eocd + 12),
        u32_at(data, eocd + 16),
    ) else {
        return Directory::Broken("truncated end-of-central-directory record");
    };
    if count == 0xffff || size == 0xffff_ffff || offset == 0xffff_ffff {
        return Directory::Zip64;
    }
    if count > max_entries {
        return Directory::Valid { entries: count };
    }
    // Self-extracting archives prepend a stub: the directory then ends right at the EOCD.
    let shift = (eocd as u64).saturating_sub(offset + size);
    let mut at = (offset + shift) as usize;
    for _ in 0..count {
        if data.get(at..at + 4) != Some(b"PK\x01\x02") {
            return Directory::Broken("central directory entry out of place");
        }
        let (Some(name), Some(extra), Some(comment)) =
            (u16_at(data, at + 28), u16_at(data, at + 30), u16_at(data, at + 32))
        else {
            return Directory::Broken("truncated central directory");
        };
        at += 46 + (name + extra + comment) as usize;
        if at > eocd {
            return Directory::Broken("central directory runs past its end");
        }
    }
    Directory::Valid { entries: count }
}

pub(super) fn open(unpacker: &mut Unpacker<'_>, data: &[u8], provenance: &Provenance, depth: u32) {
    let raw_fallback = |unpacker: &mut Unpacker<'_>, why: String| {
        unpacker.warn(
            provenance,
            WarningKind::CorruptArchive,
            format!("{why}: scanned as raw bytes"),
        );
        unpacker.visit(provenance, data);
    };
    match check_directory(data, unpacker.entries_left()) {
        Directory::Broken(why) => return raw_fallback(unpacker, format!("unreadable zip ({why})")),
        Directory::Valid { entries } if entries > unpacker.entries_left() => {
            unpacker.exhaust(
                provenance,
                format!("{entries} members listed, more than the budget of members left: not opened"),
            );
            return;
        }
        Directory::Valid { .. } | Directory::Zip64 => {}
    }
    let mut archive = match zip::ZipArchive::new(Cursor::new(data)) {
        Ok(a) => a,
        Err(e) => return raw_fallback(unpacker, format!("unreadable zip ({e})")),
    };
    let mut entries = Vec::with_capacity(archive.len().min(4096));
    let mut unreadable = 0u64;
    for i in 0..archive.len() {
        if !unpacker.take_entry(provenance) {
            return;
        }
        match archive.by_index_raw(i) {
            // Directory entries hold no data; one that does is scanned like a file.
            Ok(f) if f.is_dir() && f.size() == 0 => {}
            Ok(f) => entries.push(Entry {
                name: f.name().to_owned(),
                header_start: f.header_start(),
                data_start: f.data_start(),
                compressed: f.compressed_size(),
                size: f.size(),
                crc: f.crc32(),
                method: f.compression(),
            }),
            Err(_) => unreadable += 1,
        }
    }
    drop(archive);
    // Members whose bytes overlap another's are the overlapping-entry zip bomb: skip them,
    // with one warning per archive, however many there are.
    entries.sort_by_key(|e| e.data_start);
    let mut covered_to = 0u64;
    let (mut overlapping, mut unsupported, mut out_of_bounds) = (0u64, 0u64, 0u64);
    for entry in entries {
        if unpacker.exhausted() {
            return;
        }
        let member = provenance.child(entry.name.clone());
        if entry.header_start < covered_to {
            overlapping += 1;
            continue;
        }
        let end = entry.data_start.saturating_add(entry.compressed);
        let Some(raw) = usize::try_from(entry.data_start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| data.get(s..e))
        else {
            out_of_bounds += 1;
            continue;
        };
        covered_to = covered_to.max(end);
        if entry.method == STORED {
            // Stored members are scanned in place: no copy.
            if !unpacker.charge(raw.len() as u64, &member) {
                return;
            }
            if crc32fast::hash(raw) != entry.crc {
                unpacker.warn(
                    &member,
                    WarningKind::CorruptArchive,
                    "CRC mismatch: scanned anyway".into(),
                );
            }
            unpacker.blob(raw, &member, depth + 1);
        } else if entry.method == DEFLATED {
            let mut reader =
                CrcCheck::new(unpacker.limited(flate2::bufread::DeflateDecoder::new(raw), entry.compressed));
            unpacker.member(&mut reader, &member, depth + 1);
            if reader.finished && reader.crc.clone().finalize() != entry.crc {
                unpacker.warn(
                    &member,
                    WarningKind::CorruptArchive,
                    "CRC mismatch: scanned anyway".into(),
                );
            } else if reader.finished && reader.len != entry.size {
                unpacker.warn(
                    &member,
                    WarningKind::CorruptArchive,
                    format!("{} bytes inflated, {} declared", reader.len, entry.size),
                );
            }
        } else {
            unsupported += 1;
        }
    }
    for (count, kind, what) in [
        (
            overlapping,
            WarningKind::BudgetExceeded,
            "overlap another member's data (an overlapping-entry zip bomb?)",
        ),
        (
            unsupported,
            WarningKind::CorruptArchive,
            "use a compression method other than stored or deflate",
        ),
        (
            out_of_bounds,
            WarningKind::CorruptArchive,
            "have data past the end of the archive",
        ),
        (unreadable, WarningKind::CorruptArchive, "have unreadable local headers"),
    ] {
        if count > 0 {
            unpacker.warn(provenance, kind, format!("{count} member(s) {what}: skipped"));
        }
    }
}

/// Computes the CRC32 of what passes through, to check it against the central directory.
struct CrcCheck<R> {
    inner: R,
    crc: crc32fast::Hasher,
    len: u64,
    finished: bool,
}

impl<R> CrcCheck<R> {
    fn new(inner: R) -> Self {
        CrcCheck {
            inner,
            crc: crc32fast::Hasher::new(),
            len: 0,
            finished: false,
        }
    }
}

impl<R: std::io::Read> std::io::Read for CrcCheck<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.finished = true;
        }
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}
