//! Zip archives (wheels, eggs, zip sdists): members located through the central directory,
//! stored members scanned straight from the parent's bytes, deflated ones inflated on the fly.

use std::io::Cursor;

use zip::CompressionMethod;

use super::Unpacker;
use crate::report::WarningKind;
use crate::validate::Provenance;

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

pub(super) fn open(unpacker: &mut Unpacker<'_>, data: &[u8], provenance: &Provenance, depth: u32) {
    let mut archive = match zip::ZipArchive::new(Cursor::new(data)) {
        Ok(a) => a,
        Err(e) => {
            unpacker.warn(
                provenance,
                WarningKind::CorruptArchive,
                format!("unreadable zip ({e}): scanned as raw bytes"),
            );
            unpacker.visit(provenance, data);
            return;
        }
    };
    let mut entries = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let file = match archive.by_index_raw(i) {
            Ok(f) => f,
            Err(e) => {
                unpacker.warn(provenance, WarningKind::CorruptArchive, format!("zip entry {i}: {e}"));
                continue;
            }
        };
        if file.is_dir() {
            continue;
        }
        entries.push(Entry {
            name: file.name().to_owned(),
            header_start: file.header_start(),
            data_start: file.data_start(),
            compressed: file.compressed_size(),
            size: file.size(),
            crc: file.crc32(),
            method: file.compression(),
        });
    }
    // Members whose bytes overlap another's are the overlapping-entry zip bomb: skip them.
    entries.sort_by_key(|e| e.data_start);
    let mut covered_to = 0u64;
    for entry in entries {
        let member = provenance.child(entry.name.clone());
        if entry.header_start < covered_to {
            unpacker.warn(
                &member,
                WarningKind::BudgetExceeded,
                "overlaps another member's data (an overlapping-entry zip bomb?): skipped".into(),
            );
            continue;
        }
        let end = entry.data_start.saturating_add(entry.compressed);
        covered_to = covered_to.max(end);
        let Some(raw) = usize::try_from(entry.data_start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| data.get(s..e))
        else {
            unpacker.warn(
                &member,
                WarningKind::CorruptArchive,
                "data runs past the end of the archive: skipped".into(),
            );
            continue;
        };
        if entry.method == STORED {
            if !unpacker.take_entry(&member) {
                return;
            }
            // Stored members are scanned in place: no copy.
            unpacker.stats.bytes_unpacked += raw.len() as u64;
            unpacker.unpacked.set(unpacker.unpacked.get() + raw.len() as u64);
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
            }
            if reader.finished && reader.len != entry.size {
                unpacker.warn(
                    &member,
                    WarningKind::CorruptArchive,
                    format!("{} bytes inflated, {} declared", reader.len, entry.size),
                );
            }
        } else {
            unpacker.warn(
                &member,
                WarningKind::CorruptArchive,
                format!("unsupported compression method {:?}: skipped", entry.method),
            );
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
