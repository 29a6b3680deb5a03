//! Tar archives, read as a stream (from memory or from a decompressor): regular files
//! become members; links, devices and directories are skipped.

use std::io::Read;

use super::Unpacker;
use crate::core::Provenance;
use crate::core::WarningKind;

pub(super) fn open(unpacker: &mut Unpacker<'_>, reader: &mut dyn Read, provenance: &Provenance, depth: u32) {
    let mut archive = tar::Archive::new(reader);
    // Concatenated archives (`tar -A`) continue past the zero blocks that end the first.
    archive.set_ignore_zeros(true);
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(e) => {
            unpacker.warn(provenance, WarningKind::CorruptArchive, format!("unreadable tar: {e}"));
            return;
        }
    };
    let mut skipped_with_data = 0u64;
    for entry in entries {
        if unpacker.exhausted() {
            return;
        }
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                unpacker.read_failed(provenance, &e);
                return;
            }
        };
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse()) {
            // Links and devices carry no bytes; anything else that does is counted.
            if entry.size() > 0 && !kind.is_dir() && !kind.is_pax_global_extensions() && !kind.is_pax_local_extensions()
            {
                skipped_with_data += 1;
            }
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let member = provenance.child(name);
        unpacker.member(&mut entry, &member, depth + 1);
    }
    if skipped_with_data > 0 {
        unpacker.warn(
            provenance,
            WarningKind::CorruptArchive,
            format!("{skipped_with_data} tar entries of an unsupported type carry data: skipped"),
        );
    }
}
