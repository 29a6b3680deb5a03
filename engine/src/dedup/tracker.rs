//! The worker's side of dedup: which blobs it is inside, and whether the next one needs a scan.

use std::sync::Arc;

use super::{BlobEvent, Chain, Frame, LinkKind};
use crate::datastore::writer::{ClaimState, Claims};
use crate::datastore::{BlobKey, Known, Lookup, StoredFinding};

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
    /// The most members deep anything inside it sits (its own depth when nothing does).
    deepest: usize,
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
    scanned_twice: u64,
    /// Containers at this depth and below are not opened (0: none are).
    max_depth: u32,
}

/// What a blob is known by.
pub(crate) enum BlobName {
    /// Its bytes (and what its name decides).
    Content(BlobKey),
    /// Its place: a file streamed, never held whole.
    Place { mtime_ns: Option<i64> },
}

/// What to do with a blob.
pub(crate) enum Decision {
    /// Scan it (it is now open in the tracker when it was claimed).
    Scan,
    /// Do not scan it: send this link instead.
    Skip(BlobEvent),
}

impl Tracker {
    pub(crate) fn new(lookup: Lookup, claims: Arc<Claims>, has_delta_rules: bool, max_depth: u32) -> Tracker {
        Tracker {
            lookup,
            claims,
            open: Vec::new(),
            entered: Vec::new(),
            chain: None,
            warnings: 0,
            has_delta_rules,
            seeds: Vec::new(),
            scanned_twice: 0,
            max_depth,
        }
    }

    /// Whether the input at `path` is unchanged since it was scanned under this profile.
    pub(crate) fn unchanged(&self, path: &str, size: u64, mtime_ns: Option<i64>) -> bool {
        self.lookup.input_unchanged(path, size, mtime_ns).unwrap_or_else(|e| {
            tracing::warn!("{e}: scanning {path} again");
            false
        })
    }

    /// Before a blob at `path!members`: scan it, or link it. Returns the decision and the
    /// key the blob is known by (for an input's record).
    pub(crate) fn enter(&mut self, path: &str, members: &[String], name: BlobName, size: u64) -> (Decision, BlobKey) {
        let top = members.is_empty();
        let depth = members.len();
        self.saw(depth);
        let key = match name {
            BlobName::Place { mtime_ns } => return self.place_frame(path, size, mtime_ns),
            BlobName::Content(key) => key,
        };
        // A blob inside itself (a zip quine) is scanned as part of its outer copy.
        if self.open.iter().any(|o| o.frame.key == key) {
            self.entered.push(false);
            return (Decision::Scan, key);
        }
        let link = |tracker: &mut Tracker, kind, findings: Option<Arc<Vec<StoredFinding>>>, levels: u32| {
            tracker.saw(depth + levels as usize);
            let chain = tracker.current_chain();
            tracker.entered.push(false);
            tracker.unit();
            let event = BlobEvent::Link {
                chain,
                path: path.to_owned(),
                members: members.to_vec(),
                key,
                size,
                findings,
                kind,
                levels,
                input: None,
            };
            (Decision::Skip(event), key)
        };
        // Done: link to its findings. Over and whole: link, the reporting thread waits for
        // it. Being scanned as a file, and this is the same file: wait for it too. Otherwise
        // it may be cut short by a budget of its own file, or open deeper than this place
        // may: scan it here as well.
        let fits = |tracker: &Tracker, levels: u32| {
            levels == 0 || depth as u64 + u64::from(levels) <= u64::from(tracker.max_depth)
        };
        let claimed = |tracker: &mut Tracker, state: ClaimState| match state {
            ClaimState::Left { top: true, levels, .. } if top => link(tracker, LinkKind::Reuse, None, levels),
            ClaimState::InFlight { top: true } if top => link(tracker, LinkKind::Reuse, None, 0),
            ClaimState::DoneTop(findings) if top => link(tracker, LinkKind::Reuse, Some(findings), 0),
            ClaimState::Done(findings, levels) if fits(tracker, levels) => {
                link(tracker, LinkKind::Reuse, Some(findings), levels)
            }
            ClaimState::Left {
                reusable: true, levels, ..
            } if fits(tracker, levels) => link(tracker, LinkKind::Reuse, None, levels),
            ClaimState::Done(..) | ClaimState::DoneTop(_) | ClaimState::Left { .. } | ClaimState::InFlight { .. } => {
                tracker.busy(path, size, key, top)
            }
        };
        if let Some(state) = self.claims.state(key) {
            return claimed(self, state);
        }
        let known = self.lookup.blob(key, size).unwrap_or_else(|e| {
            tracing::warn!("{e}: scanning it again");
            Known::No
        });
        let delta = match known {
            Known::Yes(findings, levels) if fits(self, levels) => {
                return link(self, LinkKind::Reuse, Some(Arc::new(findings)), levels)
            }
            // Only rules were removed: the findings stand as they are.
            Known::Delta(findings, levels) if !self.has_delta_rules && fits(self, levels) => {
                return link(self, LinkKind::Copy, Some(Arc::new(findings)), levels)
            }
            // Scanned again with the added rules alone, where it opens as it did before.
            Known::Delta(findings, levels) if self.has_delta_rules && fits(self, levels) => Some(findings),
            Known::Yes(..) | Known::Delta(..) | Known::No => None,
        };
        if let Some(state) = self.claims.claim(key, top) {
            return claimed(self, state);
        }
        let decision = self.open_frame(key, members.len(), size, true, delta.is_some());
        if let Some(findings) = delta {
            // The findings that stand, of its own bytes (its members' come with them); they
            // count as one unit of the blob, and of those around it.
            let own: Vec<_> = findings.into_iter().filter(|f| f.members.is_empty()).collect();
            let chain = self.current_chain();
            self.unit();
            self.seeds.push(BlobEvent::Link {
                chain,
                path: path.to_owned(),
                members: members.to_vec(),
                key,
                size,
                findings: Some(Arc::new(own)),
                kind: LinkKind::Seed,
                levels: 0,
                input: None,
            });
        }
        (decision, key)
    }

    /// A blob scanned as part of what holds it, without a lookup or a record of its own.
    pub(crate) fn enter_unframed(&mut self, depth: usize) {
        self.saw(depth);
        self.entered.push(false);
    }

    /// Something sits `depth` members deep inside the open blobs.
    pub(crate) fn saw(&mut self, depth: usize) {
        for o in &mut self.open {
            o.deepest = o.deepest.max(depth);
        }
    }

    /// A blob being scanned elsewhere right now, or whose scan elsewhere was cut short by a
    /// budget of its file: scanned here too, as part of what holds it. A file on its own is
    /// recorded under a key of this scan.
    fn busy(&mut self, path: &str, size: u64, key: BlobKey, top: bool) -> (Decision, BlobKey) {
        self.scanned_twice += 1;
        if top {
            return self.place_frame(path, size, None);
        }
        self.entered.push(false);
        (Decision::Scan, key)
    }

    /// Blobs scanned again because their scan elsewhere was in flight or cut short.
    pub(crate) fn take_scanned_twice(&mut self) -> u64 {
        std::mem::take(&mut self.scanned_twice)
    }

    fn place_frame(&mut self, path: &str, size: u64, mtime_ns: Option<i64>) -> (Decision, BlobKey) {
        let key = BlobKey::of_place(path, size, mtime_ns, self.claims.next_scan());
        self.claims.claim(key, true);
        (self.open_frame(key, 0, size, false, false), key)
    }

    fn open_frame(&mut self, key: BlobKey, depth: usize, size: u64, by_content: bool, delta: bool) -> Decision {
        self.open.push(Open {
            frame: Frame { key, depth },
            size,
            units: 0,
            warnings_before: self.warnings,
            by_content,
            delta,
            deepest: depth,
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
        let reusable = open.by_content && self.warnings == open.warnings_before;
        let levels = u32::try_from(open.deepest.saturating_sub(open.frame.depth)).unwrap_or(u32::MAX);
        self.claims.left(open.frame.key, reusable, levels);
        Some(BlobEvent::Done {
            key: open.frame.key,
            size: open.size,
            units: open.units,
            reusable,
            delta: open.delta,
            top: open.frame.depth == 0,
            levels,
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
