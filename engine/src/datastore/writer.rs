//! The datastore's single writer: takes records over a channel and commits them in batches
//! (one transaction per 50 ms or 20,000 records), so the scan never waits on SQLite and a
//! kill loses at most the last batch, which the next run simply scans again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;
use rusqlite::{params, Connection, OptionalExtension};

use super::{now_secs, BlobKey, Datastore, DatastoreError, RunCounters, StoredFinding};

/// One thing to record.
pub(crate) enum Record {
    /// A blob scanned under the run's profile, with its findings (flattened over its members).
    Blob {
        key: BlobKey,
        size: u64,
        /// False when its scan was cut by a budget of the file it sat in, or its key names a
        /// place rather than bytes: stored for its input, never reused elsewhere.
        reusable: bool,
        findings: Arc<Vec<StoredFinding>>,
        /// Levels of members opened below it (0: none): a place deeper than the archive
        /// depth budget allows for that many may not link to it.
        levels: u32,
    },
    /// An input and the blob that holds its bytes.
    Input {
        path: String,
        size: u64,
        mtime_ns: Option<i64>,
        key: BlobKey,
        package: Option<String>,
    },
    /// The run's counters, at its end.
    Finish { counters: RunCounters, interrupted: bool },
}

/// Blobs claimed by this run and not yet committed. A worker that meets a blob already
/// scanned links to it instead of scanning it; one still being scanned elsewhere it scans
/// again as part of what holds it, since the other scan may turn out cut short by a budget of
/// the file it sits in (a file waits for the same file, whose scan is the same as its own).
/// Committed blobs leave the map (the workers then find them in the datastore), so it holds
/// only what is in flight or queued.
#[derive(Default)]
pub(crate) struct Claims {
    keys: Mutex<HashMap<BlobKey, ClaimState>>,
    scans: AtomicU64,
}

/// Where a claimed blob is.
#[derive(Clone, Debug)]
pub(crate) enum ClaimState {
    /// Being scanned; `top`: as a file of its own.
    InFlight { top: bool },
    /// Its scan is over (the reporting thread may still wait for batches); `reusable`: not
    /// cut short; `top`: it was scanned as a file of its own; `levels` of members below it.
    Left { reusable: bool, top: bool, levels: u32 },
    /// Scanned and gathered, waiting to be committed: its findings and levels.
    Done(Arc<Vec<StoredFinding>>, u32),
    /// A file scanned and gathered, cut short by its own budgets: only the same file may
    /// link to it (its scan would be the same).
    DoneTop(Arc<Vec<StoredFinding>>),
}

impl Claims {
    /// Claims `key` (`top`: for a file of its own); `None` when it was free (and is now in
    /// flight), else its state.
    pub(crate) fn claim(&self, key: BlobKey, top: bool) -> Option<ClaimState> {
        let Ok(mut keys) = self.keys.lock() else {
            return Some(ClaimState::InFlight { top: false });
        };
        match keys.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => Some(e.get().clone()),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(ClaimState::InFlight { top });
                None
            }
        }
    }

    /// The scan of `key` is over.
    pub(crate) fn left(&self, key: BlobKey, reusable: bool, levels: u32) {
        if let Ok(mut keys) = self.keys.lock() {
            if let Some(state @ ClaimState::InFlight { .. }) = keys.get_mut(&key) {
                let top = matches!(state, ClaimState::InFlight { top: true });
                *state = ClaimState::Left { reusable, top, levels };
            }
        }
    }

    /// The state of `key`, if claimed and not committed.
    pub(crate) fn state(&self, key: BlobKey) -> Option<ClaimState> {
        self.keys.lock().ok().and_then(|k| k.get(&key).cloned())
    }

    /// Marks `key` scanned, with its findings.
    pub(crate) fn done(&self, key: BlobKey, findings: Arc<Vec<StoredFinding>>, levels: u32) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(key, ClaimState::Done(findings, levels));
        }
    }

    /// Marks the file `key` scanned, cut short by its own budgets, with its findings.
    pub(crate) fn done_top(&self, key: BlobKey, findings: Arc<Vec<StoredFinding>>) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(key, ClaimState::DoneTop(findings));
        }
    }

    /// Drops the claim on `key` at once: its scan is not to be reused.
    pub(crate) fn drop_claim(&self, key: BlobKey) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.remove(&key);
        }
    }

    /// A number unique in the run, for keys that name one scan of a place.
    pub(crate) fn next_scan(&self) -> u64 {
        self.scans.fetch_add(1, Ordering::Relaxed)
    }

    fn release(&self, keys: &[BlobKey]) {
        if let Ok(mut set) = self.keys.lock() {
            for k in keys {
                if matches!(set.get(k), Some(ClaimState::Done(..) | ClaimState::DoneTop(_))) {
                    set.remove(k);
                }
            }
        }
    }
}

const BATCH_TIME: Duration = Duration::from_millis(50);
const BATCH_RECORDS: usize = 20_000;

/// Writes records until the channel closes; the first error stops writing (the scan goes on)
/// and is returned.
pub(crate) fn run(
    store: &Datastore,
    profile: i64,
    run: i64,
    records: Receiver<Record>,
    claims: &Claims,
) -> Result<(), DatastoreError> {
    let mut conn = store.connect(false)?;
    let mut committed_keys = Vec::new();
    let mut failure = None;
    while let Ok(first) = records.recv() {
        if failure.is_some() {
            continue; // drain: the scan must not block on a broken datastore
        }
        let started = Instant::now();
        let result = write_batch(&mut conn, profile, run, first, &records, started, &mut committed_keys);
        match result {
            Ok(()) => claims.release(&committed_keys),
            Err(e) => failure = Some(store.error(e)),
        }
        committed_keys.clear();
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn write_batch(
    conn: &mut Connection,
    profile: i64,
    run: i64,
    first: Record,
    records: &Receiver<Record>,
    started: Instant,
    keys: &mut Vec<BlobKey>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let mut record = Some(first);
    let mut count = 0;
    while let Some(r) = record.take() {
        write_one(&tx, profile, run, r, keys)?;
        count += 1;
        if count >= BATCH_RECORDS {
            break;
        }
        let left = BATCH_TIME.saturating_sub(started.elapsed());
        record = records.recv_timeout(left).ok();
    }
    tx.commit()
}

fn write_one(tx: &Connection, profile: i64, run: i64, record: Record, keys: &mut Vec<BlobKey>) -> rusqlite::Result<()> {
    match record {
        Record::Blob {
            key,
            size,
            reusable,
            findings,
            levels,
        } => {
            let k = key.bytes();
            // A reusable row is never replaced by one that is not (a scan cut short elsewhere);
            // otherwise the older row goes with its findings, so a blob's rows come from one scan.
            let existing: Option<bool> = tx
                .prepare_cached("SELECT reusable FROM blob WHERE key = ?1 AND profile = ?2")?
                .query_row(params![k, profile], |r| r.get(0))
                .optional()?;
            if existing == Some(true) && !reusable {
                return Ok(());
            }
            tx.prepare_cached("DELETE FROM finding WHERE blob = ?1 AND profile = ?2")?
                .execute(params![k, profile])?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO blob(key, profile, size, reusable, findings, levels)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                k,
                profile,
                size as i64,
                reusable,
                findings.len() as i64,
                levels
            ])?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO finding(blob, profile, seq, rule, secret_sha256, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (seq, f) in findings.iter().enumerate() {
                let body = serde_json::to_string(f).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
                insert.execute(params![k, profile, seq as i64, f.rule, f.secret_sha256, body])?;
            }
            keys.push(key);
        }
        Record::Input {
            path,
            size,
            mtime_ns,
            key,
            package,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO input(path, size, mtime_ns, blob, profile, package, run)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![path, size as i64, mtime_ns, key.bytes(), profile, package, run])?;
        }
        Record::Finish { counters, interrupted } => {
            let counters = serde_json::to_string(&counters).unwrap_or_default();
            tx.execute(
                "UPDATE run SET finished = ?1, interrupted = ?2, counters = ?3 WHERE id = ?4",
                params![now_secs(), interrupted, counters, run],
            )?;
        }
    }
    Ok(())
}
