//! Content dedup during a scan with a datastore. Every blob (a file, or an archive member;
//! not a decoded view, which its blob's bytes decide) is hashed before it is scanned. A blob
//! already scanned under the same profile, in this run or an earlier one, is not scanned
//! again: its findings are linked to the new place.
//!
//! Worker side ([`Tracker`]): the stack of blobs being scanned; each batch of candidates
//! carries it, so the reporting thread knows which blobs a finding belongs to. Reporting side
//! ([`Ledger`]): counts what each blob still waits for, gathers its findings relative to it,
//! resolves links to it, and hands finished blobs and inputs to the datastore's writer.

mod ledger;
mod tracker;

pub(crate) use ledger::Ledger;
pub(crate) use tracker::{BlobName, Decision, Tracker};

use std::sync::Arc;

use crate::datastore::{BlobKey, StoredFinding};

/// A blob being scanned, as a batch of its candidates names it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    pub key: BlobKey,
    /// Members above and including it: its findings' places are relative from here.
    pub depth: usize,
}

/// The blobs a batch lies in, outermost first.
pub(crate) type Chain = Arc<[Frame]>;

/// Why a place gets a blob's findings without scanning it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkKind {
    /// The blob was scanned under this profile (or is being scanned).
    Reuse,
    /// The blob was scanned under the previous profile, and only rules were removed since:
    /// its findings are recorded under this profile as they are.
    Copy,
    /// The findings that stand for a blob being scanned with only the added rules: `chain`
    /// ends with the blob itself.
    Seed,
}

/// What a worker tells the reporting thread about blobs.
pub(crate) enum BlobEvent {
    /// A blob met at `path!members` was scanned before: its findings belong at this place,
    /// and to the blobs of `chain` around it.
    Link {
        chain: Chain,
        path: String,
        members: Vec<String>,
        key: BlobKey,
        size: u64,
        /// Its findings; `None` while it is still being gathered (the link waits for it).
        findings: Option<Arc<Vec<StoredFinding>>>,
        kind: LinkKind,
        /// Levels of members opened below the blob (recorded with a copy).
        levels: u32,
        /// For a file linked whole: the input it is, recorded (and its findings reported)
        /// once the blob's findings are known.
        input: Option<InputPlace>,
    },
    /// A blob's scan is over; `units` batches and links were sent from inside it.
    Done {
        key: BlobKey,
        size: u64,
        units: u64,
        reusable: bool,
        /// Scanned with only the rules added since the previous profile.
        delta: bool,
        /// A file, not a member: recorded even when not reusable (its input names it).
        top: bool,
        /// Levels of members opened below it.
        levels: u32,
    },
    /// An input's bytes are the blob `key`.
    Input { input: InputPlace, key: BlobKey },
}

/// An input as recorded: the file, its size and mtime when listed.
#[derive(Clone, Debug)]
pub(crate) struct InputPlace {
    pub path: String,
    pub size: u64,
    pub mtime_ns: Option<i64>,
}
