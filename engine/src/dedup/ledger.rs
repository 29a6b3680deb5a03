//! The reporting thread's side of dedup: what each blob in flight still waits for, its
//! findings so far, and the places linked to it. A blob is finished when the batches and
//! links sent from inside it have all arrived; then it goes to the writer, with the inputs
//! that are its bytes, and every place linked to it gets its findings.

use std::collections::HashMap;
use std::sync::Arc;

use crossbeam::channel::Sender;

use super::{BlobEvent, Chain, InputPlace, LinkKind};
use crate::core::parse_filename;
use crate::core::Finding;
use crate::datastore::writer::{ClaimState, Claims, Record};
use crate::datastore::{BlobKey, Lookup, StoredFinding};

struct Waiter {
    chain: Chain,
    path: String,
    members: Vec<String>,
    /// A file linked whole: the input to record and report.
    input: Option<InputPlace>,
}

#[derive(Default)]
struct Pending {
    expected: Option<u64>,
    received: u64,
    size: u64,
    reusable: bool,
    findings: Vec<StoredFinding>,
    /// A file, not a member.
    top: bool,
    levels: u32,
    inputs: Vec<InputPlace>,
    /// Places linked to it while it was being gathered.
    waiters: Vec<Waiter>,
}

/// Counters of dedup in one run.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DedupCounters {
    pub blobs_scanned: u64,
    pub blobs_delta_scanned: u64,
    /// Blobs committed in this run that a late link could not read back.
    pub unreadable: u64,
    /// Findings past the per-blob memory guard: not recorded nor printed.
    pub dropped: u64,
    pub blobs_reused: u64,
    pub bytes_reused: u64,
}

pub(crate) struct Ledger {
    claims: Arc<Claims>,
    records: Sender<Record>,
    pending: HashMap<BlobKey, Pending>,
    cap: u64,
    /// With a delta plan: each rule's place in the rule set. A blob's findings then come
    /// from two scans (the rules that stand, the added ones), and at most one per place and
    /// secret range is kept, as one scan with every rule would.
    rule_order: Option<HashMap<String, usize>>,
    /// Reads back blobs committed while a link to them was on its way.
    lookup: Lookup,
    linked: Vec<Finding>,
    pub counters: DedupCounters,
}

impl DedupCounters {
    /// Into the summary the sink sees.
    pub(crate) fn copy_to(&self, summary: &mut crate::core::Summary) {
        summary.blobs_scanned = self.blobs_scanned;
        summary.blobs_delta_scanned = self.blobs_delta_scanned;
        summary.blobs_reused = self.blobs_reused;
        summary.bytes_reused = self.bytes_reused;
    }
}

impl Ledger {
    pub(crate) fn new(
        claims: Arc<Claims>,
        records: Sender<Record>,
        cap: u64,
        rule_order: Option<HashMap<String, usize>>,
        lookup: Lookup,
    ) -> Ledger {
        Ledger {
            claims,
            records,
            pending: HashMap::new(),
            cap,
            rule_order,
            lookup,
            linked: Vec::new(),
            counters: DedupCounters::default(),
        }
    }

    fn pending(&mut self, key: BlobKey) -> &mut Pending {
        self.pending.entry(key).or_insert_with(|| Pending {
            reusable: true,
            ..Pending::default()
        })
    }

    /// A batch of `chain`'s innermost blob was confirmed (its findings may be none).
    pub(crate) fn confirmed(&mut self, findings: &[Finding], chain: &Chain) {
        for frame in chain.iter() {
            let p = self.pending(frame.key);
            let mut dropped = 0;
            for f in findings {
                dropped += u64::from(!p.keep(StoredFinding::relative(f, frame.depth)));
            }
            p.received += 1;
            self.counters.dropped += dropped;
        }
        for frame in chain.iter().rev() {
            self.complete_if_ready(frame.key);
        }
    }

    /// A worker's news about blobs; findings of linked places go to `report`.
    pub(crate) fn event(&mut self, event: BlobEvent) {
        match event {
            BlobEvent::Done {
                key,
                size,
                units,
                reusable,
                delta,
                top,
                levels,
            } => {
                if delta {
                    self.counters.blobs_delta_scanned += 1;
                } else {
                    self.counters.blobs_scanned += 1;
                }
                let p = self.pending(key);
                p.expected = Some(units);
                p.size = size;
                p.reusable &= reusable;
                p.top = top;
                p.levels = levels;
                self.complete_if_ready(key);
            }
            BlobEvent::Link {
                chain,
                path,
                members,
                key,
                size,
                findings,
                kind,
                levels,
                input,
            } => {
                if kind != LinkKind::Seed {
                    self.counters.blobs_reused += 1;
                    self.counters.bytes_reused += size;
                }
                let waiter = Waiter {
                    chain,
                    path,
                    members,
                    input,
                };
                let findings = match findings {
                    Some(findings) => findings,
                    None => match self.wait_for(key) {
                        Some(p) => return p.waiters.push(waiter),
                        None => match self.claims.state(key) {
                            Some(ClaimState::Done(findings, _) | ClaimState::DoneTop(findings)) => findings,
                            // Gathered and committed since the worker looked: read it back.
                            _ => self.committed(key, &waiter),
                        },
                    },
                };
                // A copied blob is recorded before the input that names it.
                if kind == LinkKind::Copy {
                    let _ = self.records.send(Record::Blob {
                        key,
                        size,
                        reusable: true,
                        findings: Arc::clone(&findings),
                        levels,
                    });
                }
                self.resolve(waiter, key, &findings, true);
            }
            BlobEvent::Input { input, key } => match self.wait_for(key) {
                Some(p) => p.inputs.push(input),
                None => self.record_input(input, key),
            },
        }
    }

    /// The findings of a blob committed in this run, read back from the datastore.
    fn committed(&mut self, key: BlobKey, waiter: &Waiter) -> Arc<Vec<StoredFinding>> {
        match self.lookup.committed(key) {
            Ok(Some(findings)) => Arc::new(findings),
            outcome => {
                // Cannot happen short of a failing datastore: the place keeps what it has, and
                // nothing around it is reused.
                tracing::warn!(
                    "{}: a blob scanned in this run could not be read back ({}): not recorded as reusable",
                    waiter.path,
                    outcome.err().map_or_else(|| "missing".to_owned(), |e| e.to_string())
                );
                for frame in waiter.chain.iter() {
                    self.pending(frame.key).reusable = false;
                }
                self.counters.unreadable += 1;
                Arc::default()
            }
        }
    }

    /// The pending entry of `key` if it is still being scanned (here or by a worker whose
    /// first news has not arrived yet); `None` when it is finished.
    fn wait_for(&mut self, key: BlobKey) -> Option<&mut Pending> {
        let in_flight = matches!(
            self.claims.state(key),
            Some(ClaimState::InFlight { .. } | ClaimState::Left { .. })
        );
        if self.pending.contains_key(&key) || in_flight {
            Some(self.pending(key))
        } else {
            None
        }
    }

    fn record_input(&self, input: InputPlace, key: BlobKey) {
        let package = input.path.rsplit('/').next().and_then(parse_filename).map(|p| p.name);
        let _ = self.records.send(Record::Input {
            path: input.path,
            size: input.size,
            mtime_ns: input.mtime_ns,
            key,
            package,
        });
    }

    /// Gives a linked place the findings of its blob, and counts the link done for the
    /// blobs around the place.
    fn resolve(&mut self, waiter: Waiter, key: BlobKey, findings: &[StoredFinding], reusable: bool) {
        for stored in findings {
            let placed = stored.placed(&waiter.path, &waiter.members);
            for frame in waiter.chain.iter() {
                if !self
                    .pending(frame.key)
                    .keep(StoredFinding::relative(&placed, frame.depth))
                {
                    self.counters.dropped += 1;
                }
            }
            // A file linked whole is reported now; a member, with the file around it.
            if waiter.input.is_some() {
                self.linked.push(placed);
            }
        }
        if let Some(input) = waiter.input {
            self.record_input(input, key);
        }
        for frame in waiter.chain.iter() {
            let p = self.pending(frame.key);
            p.received += 1;
            p.reusable &= reusable;
        }
        for frame in waiter.chain.iter().rev() {
            self.complete_if_ready(frame.key);
        }
    }

    fn complete_if_ready(&mut self, key: BlobKey) {
        let ready = self.pending.get(&key).is_some_and(|p| p.expected == Some(p.received));
        if !ready {
            return;
        }
        let Some(mut p) = self.pending.remove(&key) else {
            return;
        };
        // Arrival order depends on the threads; what is stored must not.
        let mut findings = std::mem::take(&mut p.findings);
        if let Some(order) = &self.rule_order {
            one_per_range(&mut findings, order);
        }
        findings
            .sort_by(|a, b| (&a.members, a.at, &a.rule, &a.decoders).cmp(&(&b.members, b.at, &b.rule, &b.decoders)));
        // Each input that is these bytes reports them all (the reporter caps what it prints).
        for input in &p.inputs {
            self.linked.extend(findings.iter().map(|f| f.placed(&input.path, &[])));
        }
        cap_per_place(&mut findings, self.cap);
        let findings = Arc::new(findings);
        if p.reusable {
            self.claims.done(key, Arc::clone(&findings), p.levels);
        } else if p.top {
            self.claims.done_top(key, Arc::clone(&findings));
        } else {
            self.claims.drop_claim(key);
        }
        // A member cut short is of no use to anyone; a file is, to its input.
        if p.reusable || p.top {
            let _ = self.records.send(Record::Blob {
                key,
                size: p.size,
                reusable: p.reusable,
                findings: Arc::clone(&findings),
                levels: p.levels,
            });
        }
        for input in p.inputs {
            self.record_input(input, key);
        }
        for waiter in p.waiters {
            self.resolve(waiter, key, &findings, p.reusable);
        }
    }

    /// Findings of files complete (or linked whole) since the last call, for the sink.
    pub(crate) fn take_linked(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.linked)
    }

    /// At the end of a run: blobs that never finished (the run was stopped) are not
    /// recorded, nor the inputs waiting for them. Returns how many there were.
    pub(crate) fn finish(&mut self) -> u64 {
        let left = self.pending.len() as u64;
        self.pending.clear();
        left
    }
}

/// Findings one blob may gather before the rest are dropped and it is not reused: a hostile
/// file must not fill memory (the per-place cap applies once the blob is complete).
const MAX_PENDING_FINDINGS: usize = 1 << 20;

impl Pending {
    /// False when the finding is past the memory guard (and dropped).
    fn keep(&mut self, finding: StoredFinding) -> bool {
        if self.findings.len() < MAX_PENDING_FINDINGS {
            self.findings.push(finding);
            true
        } else {
            self.reusable = false;
            false
        }
    }
}

/// Keeps the first `cap` findings of each rule at each place inside a blob (in order of
/// position; findings allowed inline are kept and not counted), as the scan reports them.
fn cap_per_place(findings: &mut Vec<StoredFinding>, cap: u64) {
    let mut per_place: HashMap<(&[String], &str), u64> = HashMap::new();
    let keep: Vec<bool> = findings
        .iter()
        .map(|f| {
            if f.allowed_inline {
                return true;
            }
            let n = per_place.entry((&f.members, &f.rule)).or_default();
            *n += 1;
            *n <= cap
        })
        .collect();
    let mut flags = keep.into_iter();
    findings.retain(|_| flags.next().unwrap_or(true));
}

/// Keeps one finding per place and byte range, as the validator does within a scan: the most
/// confident, validated, first-listed rule's. In a `.pyc` view, one per secret, a provider's
/// rule before a generic one.
fn one_per_range(findings: &mut Vec<StoredFinding>, order: &HashMap<String, usize>) {
    let rank = |f: &StoredFinding| {
        (
            std::cmp::Reverse(f.confidence),
            !f.status.is_proven(),
            order.get(&f.rule).copied().unwrap_or(usize::MAX),
        )
    };
    findings.sort_by(|a, b| {
        (&a.members, &a.decoders, a.at[0], a.at[1], rank(a)).cmp(&(&b.members, &b.decoders, b.at[0], b.at[1], rank(b)))
    });
    findings.dedup_by(|later, kept| {
        later.members == kept.members && later.decoders == kept.decoders && later.at[..2] == kept.at[..2]
    });
    let pyc = |f: &StoredFinding| f.decoders.last().is_some_and(|d| d == "pyc");
    if findings.iter().any(pyc) {
        let pyc_rank = |f: &StoredFinding| (f.rule.starts_with("generic."), rank(f), f.at[0]);
        findings.sort_by(|a, b| {
            (!pyc(a), &a.members, &a.decoders, &a.secret_sha256, pyc_rank(a)).cmp(&(
                !pyc(b),
                &b.members,
                &b.decoders,
                &b.secret_sha256,
                pyc_rank(b),
            ))
        });
        findings.dedup_by(|later, kept| {
            pyc(later)
                && pyc(kept)
                && later.members == kept.members
                && later.decoders == kept.decoders
                && later.secret_sha256 == kept.secret_sha256
        });
    }
}
