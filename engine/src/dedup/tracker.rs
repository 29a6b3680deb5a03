//! The worker's side of dedup: which blobs it is inside, and whether the next one needs a scan.

use std::sync::Arc;

use super::{BlobEvent, Chain, Frame};
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
}

/// What to do with a blob.
pub(crate) enum Decision {
    /// Scan it (it is now open in the tracker when it was claimed).
    Scan,
    /// Do not scan it: send this link instead.
    Skip(BlobEvent),
}

impl Tracker {
    pub(crate) fn new(lookup: Lookup, claims: Arc<Claims>) -> Tracker {
        Tracker {
            lookup,
            claims,
            open: Vec::new(),
            entered: Vec::new(),
            chain: None,
            warnings: 0,
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
        if by_content && !inside_itself {
            let known = if self.claims.state(key).is_some() {
                Some(None)
            } else {
                match self.lookup.blob(key, size) {
                    Ok(Known::Yes(findings)) => Some(Some(findings)),
                    Ok(Known::No) => self.claims.claim(key).map(|_| None),
                    Err(e) => {
                        tracing::warn!("{e}: scanning without dedup");
                        self.entered.push(false);
                        return Decision::Scan;
                    }
                }
            };
            if let Some(known) = known {
                let chain = self.current_chain();
                self.entered.push(false);
                self.unit();
                return Decision::Skip(BlobEvent::Link {
                    chain,
                    path: path.to_owned(),
                    members: members.to_vec(),
                    key,
                    size,
                    known,
                });
            }
        } else if !by_content {
            self.claims.claim(key);
        } else {
            self.entered.push(false);
            return Decision::Scan;
        }
        self.open.push(Open {
            frame: Frame {
                key,
                depth: members.len(),
            },
            size,
            units: 0,
            warnings_before: self.warnings,
            by_content,
        });
        self.entered.push(true);
        self.chain = None;
        Decision::Scan
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
