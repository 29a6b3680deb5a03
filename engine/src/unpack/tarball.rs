//! Tar archives, read as a stream (from memory or from a decompressor): regular files
//! become members; links, devices and directories are skipped.

use std::io::Read;

use super::Unpacker;
use crate::report::WarningKind;
use crate::validate::Provenance;

pub(super) fn open(unpacker: &mut Unpacker<'_>, reader: &mut dyn Read, provenance: &Provenance, depth: u32) {
    let mut archive = tar::Archive::new(reader);
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(e) => {
            unpacker.warn(provenance, WarningKind::CorruptArchive, format!("unreadable tar: {e}"));
            return;
        }
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                unpacker.read_failed(provenance, &e);
                return;
            }
        };
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_contiguous()) {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let member = provenance.child(name);
        unpacker.member(&mut entry, &member, depth + 1);
    }
}
