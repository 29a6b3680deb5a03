//! The worker's side of dedup: which blobs it is inside, and whether the next one needs a scan.

use std::sync::Arc;

use super::{BlobEvent, Chain, Frame, LinkKind};
use crate::datastore::writer::Claims;
use crate::datastore::{BlobKey, Known, Lookup};

struct Open {
    frame: Frame,
    size: u64,
    /// Batches and links sent from inside it so far.
    units: u64,
    /// Warnings before it opened: any new one means a budget or damage cut it short.
    warnings_before: u64,
    /// Its key names bytes (not a streamed file's place): others may reuse it.
    by_content: bool,
    /// Scanned with only the rules added since the previous profile.
    delta: bool,
}

/// One worker's view of the blobs it is scanning.
pub(crate) struct Tracker {
    lookup: Lookup,
    claims: Arc<Claims>,
    open: Vec<Open>,
    /// For each `enter` not yet left: whether it opened a frame.
    entered: Vec<bool>,
    chain: Option<Chain>,
    warnings: u64,
    /// A delta plan has rules to scan with (else blobs of the previous profile are copied).
    has_delta_rules: bool,
    seeds: Vec<BlobEvent>,
}

/// What to do with a blob.
pub(crate) enum Decision {
    /// Scan it (it is now open in the tracker when it was claimed).
    Scan,
    /// Do not scan it: send this link instead.
    Skip(BlobEvent),
}

impl Tracker {
    pub(crate) fn new(lookup: Lookup, claims: Arc<Claims>, has_delta_rules: bool) -> Tracker {
        Tracker {
            lookup,
            claims,
            open: Vec::new(),
            entered: Vec::new(),
            chain: None,
            warnings: 0,
            has_delta_rules,
            seeds: Vec::new(),
        }
    }

    /// Whether the input at `path` is unchanged since it was scanned under this profile.
    pub(crate) fn unchanged(&self, path: &str, size: u64, mtime_ns: Option<i64>) -> bool {
        self.lookup.input_unchanged(path, size, mtime_ns).unwrap_or_else(|e| {
            tracing::warn!("{e}: scanning {path} again");
            false
        })
    }

    /// Before a blob at `path!members`: scan it, or link it. `key` names the bytes when
    /// `by_content`, else the place (a streamed file; never looked up, always scanned).
    pub(crate) fn enter(
        &mut self,
        path: &str,
        members: &[String],
        key: BlobKey,
        size: u64,
        by_content: bool,
    ) -> Decision {
        // A blob inside itself (a zip quine) is scanned as part of its outer copy: linking
        // it would wait for itself.
        let inside_itself = self.open.iter().any(|o| o.frame.key == key);
        if !by_content {
            self.claims.claim(key);
            return self.open_frame(key, members.len(), size, false, false);
        }
        if inside_itself {
            self.entered.push(false);
            return Decision::Scan;
        }
        let link = |tracker: &mut Tracker, kind, known| {
            let chain = tracker.current_chain();
            tracker.entered.push(false);
            tracker.unit();
            Decision::Skip(BlobEvent::Link {
                chain,
                path: path.to_owned(),
                members: members.to_vec(),
                key,
                size,
                known,
                kind,
            })
        };
        if self.claims.state(key).is_some() {
            return link(self, LinkKind::Reuse, None);
        }
        let known = match self.lookup.blob(key, size) {
            Ok(known) => known,
            Err(e) => {
                tracing::warn!("{e}: scanning without dedup");
                self.entered.push(false);
                return Decision::Scan;
            }
        };
        match known {
            Known::Yes(findings) => link(self, LinkKind::Reuse, Some(findings)),
            // Only rules were removed: the findings stand as they are.
            Known::Delta(findings) if !self.has_delta_rules => link(self, LinkKind::Copy, Some(findings)),
            Known::Delta(findings) => {
                if self.claims.claim(key).is_some() {
                    return link(self, LinkKind::Reuse, None);
                }
                let decision = self.open_frame(key, members.len(), size, true, true);
                // The findings that stand, of its own bytes (its members' come with them);
                // they count as one unit of the blob, and of those around it.
                let own: Vec<_> = findings.into_iter().filter(|f| f.members.is_empty()).collect();
                let chain = self.current_chain();
                self.unit();
                self.seeds.push(BlobEvent::Link {
                    chain,
                    path: path.to_owned(),
                    members: members.to_vec(),
                    key,
                    size,
                    known: Some(own),
                    kind: LinkKind::Seed,
                });
                decision
            }
            Known::No => {
                if self.claims.claim(key).is_some() {
                    return link(self, LinkKind::Reuse, None);
                }
                self.open_frame(key, members.len(), size, true, false)
            }
        }
    }

    fn open_frame(&mut self, key: BlobKey, depth: usize, size: u64, by_content: bool, delta: bool) -> Decision {
        self.open.push(Open {
            frame: Frame { key, depth },
            size,
            units: 0,
            warnings_before: self.warnings,
            by_content,
            delta,
        });
        self.entered.push(true);
        self.chain = None;
        Decision::Scan
    }

    /// Links a blob scanned with only the added rules sends for the findings that stand.
    pub(crate) fn take_seeds(&mut self) -> Vec<BlobEvent> {
        std::mem::take(&mut self.seeds)
    }

    /// Whether the bytes being scanned now are a blob's own, scanned with only the added rules
    /// (streams and blobs without a frame of their own are scanned with every rule).
    pub(crate) fn scanning_delta(&self) -> bool {
        self.entered.last() == Some(&true) && self.open.last().is_some_and(|o| o.delta)
    }

    fn current_chain(&mut self) -> Chain {
        let open = &self.open;
        Arc::clone(
            self.chain
                .get_or_insert_with(|| open.iter().map(|o| o.frame).collect::<Vec<_>>().into()),
        )
    }

    /// After the blob of the matching `enter` (scanned or not): its `Done`, if it was open.
    pub(crate) fn leave(&mut self) -> Option<BlobEvent> {
        if !self.entered.pop()? {
            return None;
        }
        let open = self.open.pop()?;
        self.chain = None;
        Some(BlobEvent::Done {
            key: open.frame.key,
            size: open.size,
            units: open.units,
            reusable: open.by_content && self.warnings == open.warnings_before,
            delta: open.delta,
        })
    }

    /// A batch or link is sent from here: every open blob waits for one more unit.
    /// Returns the chain to send with a batch.
    pub(crate) fn unit(&mut self) -> Option<Chain> {
        if self.open.is_empty() {
            return None;
        }
        for o in &mut self.open {
            o.units += 1;
        }
        Some(self.current_chain())
    }

    /// A warning was raised inside the open blobs.
    pub(crate) fn warned(&mut self) {
        self.warnings += 1;
    }
}
