//! The reporting thread's side of dedup: what each blob in flight still waits for, its
//! findings so far, and the places linked to it. A blob is finished when the batches and
//! links sent from inside it have all arrived; then it goes to the writer, with the inputs
//! that are its bytes, and every place linked to it gets its findings.

use std::collections::HashMap;
use std::sync::Arc;

use crossbeam::channel::Sender;

use super::{BlobEvent, Chain, LinkKind};
use crate::datastore::writer::{ClaimState, Claims, Record};
use crate::datastore::{BlobKey, StoredFinding};
use crate::finding::Finding;
use crate::package::parse_filename;

struct Waiter {
    chain: Chain,
    path: String,
    members: Vec<String>,
}

struct InputRecord {
    path: String,
    size: u64,
    mtime_ns: Option<i64>,
}

#[derive(Default)]
struct Pending {
    expected: Option<u64>,
    received: u64,
    size: u64,
    reusable: bool,
    findings: Vec<StoredFinding>,
    /// Findings kept per place inside it and rule: a hostile blob must not fill memory.
    per_place: HashMap<String, u64>,
    over_cap: u64,
    waiters: Vec<Waiter>,
    inputs: Vec<InputRecord>,
}

/// Counters of dedup in one run.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DedupCounters {
    pub blobs_scanned: u64,
    pub blobs_delta_scanned: u64,
    pub blobs_reused: u64,
    pub bytes_reused: u64,
}

pub(crate) struct Ledger {
    claims: Arc<Claims>,
    records: Sender<Record>,
    pending: HashMap<BlobKey, Pending>,
    /// This run's finished blobs that hold findings (few), for links that arrive late.
    done: HashMap<BlobKey, Arc<Vec<StoredFinding>>>,
    cap: u64,
    /// With a delta plan: each rule's place in the rule set. A blob's findings then come
    /// from two scans (the rules that stand, the added ones), and at most one per place and
    /// secret range is kept, as one scan with every rule would.
    rule_order: Option<HashMap<String, usize>>,
    pub counters: DedupCounters,
}

impl Ledger {
    pub(crate) fn new(
        claims: Arc<Claims>,
        records: Sender<Record>,
        cap: u64,
        rule_order: Option<HashMap<String, usize>>,
    ) -> Ledger {
        Ledger {
            claims,
            records,
            pending: HashMap::new(),
            done: HashMap::new(),
            cap,
            rule_order,
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
    pub(crate) fn confirmed(&mut self, findings: &[Finding], chain: &Chain, report: &mut Vec<Finding>) {
        for frame in chain.iter() {
            let cap = self.cap;
            let p = self.pending(frame.key);
            for f in findings {
                p.keep(StoredFinding::relative(f, frame.depth), cap);
            }
            p.received += 1;
        }
        for frame in chain.iter().rev() {
            self.complete_if_ready(frame.key, report);
        }
    }

    /// A worker's news about blobs; findings of linked places go to `report`.
    pub(crate) fn event(&mut self, event: BlobEvent, report: &mut Vec<Finding>) {
        match event {
            BlobEvent::Done {
                key,
                size,
                units,
                reusable,
                delta,
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
                self.complete_if_ready(key, report);
            }
            BlobEvent::Link {
                chain,
                path,
                members,
                key,
                size,
                known,
                kind,
            } => {
                if kind != LinkKind::Seed {
                    self.counters.blobs_reused += 1;
                    self.counters.bytes_reused += size;
                }
                let waiter = Waiter { chain, path, members };
                match known {
                    Some(findings) => {
                        self.resolve(waiter, &findings, true, report);
                        if kind == LinkKind::Copy {
                            let _ = self.records.send(Record::Blob {
                                key,
                                size,
                                reusable: true,
                                findings: Arc::new(findings),
                            });
                        }
                    }
                    None => match self.wait_for(key) {
                        Some(p) => p.waiters.push(waiter),
                        None => {
                            let findings = self.done.get(&key).cloned().unwrap_or_default();
                            self.resolve(waiter, &findings, true, report);
                        }
                    },
                }
            }
            BlobEvent::Input {
                path,
                size,
                mtime_ns,
                key,
            } => {
                let input = InputRecord { path, size, mtime_ns };
                match self.wait_for(key) {
                    Some(p) => p.inputs.push(input),
                    None => self.record_input(input, key),
                }
            }
        }
    }

    /// The pending entry of `key` if it is still being scanned (here or by a worker whose
    /// first news has not arrived yet); `None` when it is finished.
    fn wait_for(&mut self, key: BlobKey) -> Option<&mut Pending> {
        if self.pending.contains_key(&key) || self.claims.state(key) == Some(ClaimState::InFlight) {
            Some(self.pending(key))
        } else {
            None
        }
    }

    fn record_input(&self, input: InputRecord, key: BlobKey) {
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
    fn resolve(&mut self, waiter: Waiter, findings: &[StoredFinding], reusable: bool, report: &mut Vec<Finding>) {
        let cap = self.cap;
        for stored in findings {
            let placed = stored.placed(&waiter.path, &waiter.members);
            for frame in waiter.chain.iter() {
                self.pending(frame.key)
                    .keep(StoredFinding::relative(&placed, frame.depth), cap);
            }
            report.push(placed);
        }
        for frame in waiter.chain.iter() {
            let p = self.pending(frame.key);
            p.received += 1;
            p.reusable &= reusable;
        }
        for frame in waiter.chain.iter().rev() {
            self.complete_if_ready(frame.key, report);
        }
    }

    fn complete_if_ready(&mut self, key: BlobKey, report: &mut Vec<Finding>) {
        let ready = self.pending.get(&key).is_some_and(|p| p.expected == Some(p.received));
        if !ready {
            return;
        }
        let Some(p) = self.pending.remove(&key) else {
            return;
        };
        // Arrival order depends on the threads; stored order must not.
        let mut findings = p.findings;
        if let Some(order) = &self.rule_order {
            one_per_range(&mut findings, order);
        }
        findings
            .sort_by(|a, b| (&a.members, a.at, &a.rule, &a.decoders).cmp(&(&b.members, b.at, &b.rule, &b.decoders)));
        let findings = Arc::new(findings);
        if !findings.is_empty() {
            self.done.insert(key, Arc::clone(&findings));
        }
        self.claims.done(key);
        let _ = self.records.send(Record::Blob {
            key,
            size: p.size,
            reusable: p.reusable,
            findings: Arc::clone(&findings),
        });
        for input in p.inputs {
            self.record_input(input, key);
        }
        for waiter in p.waiters {
            self.resolve(waiter, &findings, p.reusable, report);
        }
    }

    /// At the end of a run: blobs that never finished (a scan cut short by Ctrl-C, or two
    /// archives each inside the other) are not recorded; the places linked to them get the
    /// findings gathered so far. Returns how many there were.
    pub(crate) fn finish(&mut self, report: &mut Vec<Finding>) -> u64 {
        let left: Vec<BlobKey> = self.pending.keys().copied().collect();
        for key in &left {
            if let Some(p) = self.pending.remove(key) {
                for w in p.waiters {
                    report.extend(p.findings.iter().map(|f| f.placed(&w.path, &w.members)));
                }
            }
        }
        left.len() as u64
    }
}

impl Pending {
    fn keep(&mut self, finding: StoredFinding, cap: u64) {
        let place = format!("{}\0{}", finding.members.join("!"), finding.rule);
        let n = self.per_place.entry(place).or_default();
        *n += 1;
        if *n > cap {
            self.over_cap += 1;
        } else {
            self.findings.push(finding);
        }
    }
}

/// Keeps one finding per place and byte range, as the validator does within a scan: the most
/// confident, validated, first-listed rule's. In a `.pyc` view, one per secret, a provider's
/// rule before a generic one.
fn one_per_range(findings: &mut Vec<StoredFinding>, order: &HashMap<String, usize>) {
    let rank = |f: &StoredFinding| {
        (
            std::cmp::Reverse(f.confidence),
            f.status == "unchecked",
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
