//! The datastore: an embedded SQLite database that makes bulk scans resumable, incremental
//! and deduplicated. It holds the inputs scanned (path, size, mtime, content key), every blob
//! scanned (a file or an archive member, by a 128-bit hash of its bytes) under a scan
//! profile (the rules and the options that decide what is found), each blob's findings with
//! their place inside it, and one row of counters per run.
//!
//! A blob's findings are stored relative to it, flattened over everything inside it: a
//! wheel's row lists the findings of its members too, so an input's findings are one indexed
//! lookup. Writes come from one thread in batched transactions ([`writer`]); the scan's
//! workers read through their own connections (WAL lets readers run beside the writer).
//! A blob and its findings, and an input and the blob it names, commit together or not at
//! all, so a run killed at any moment leaves nothing half-written: rerunning it scans what
//! was not committed and reuses what was.

mod merge;
mod stored;
pub(crate) mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use sha2::{Digest, Sha256};

pub use stored::StoredFinding;

use crate::rules::RuleSet;
use crate::util::hex;

/// Everything that can go wrong with a datastore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatastoreError {
    /// SQLite failed.
    #[error("datastore {path}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The file is a SQLite database of another program or another layout version.
    #[error("{path} is not a keysweep datastore (layout {found:?}, expected {expected})")]
    Layout {
        /// The database file.
        path: PathBuf,
        /// The layout version found, if any.
        found: Option<String>,
        /// The version this build writes.
        expected: u32,
    },
    /// The sink given the stored findings failed to write.
    #[error("writing results: {0}")]
    Sink(std::io::Error),
    /// The writer thread stopped unexpectedly: what it had not committed is lost (rerun).
    #[error("datastore {path}: the writer stopped; rerun to record what this run scanned")]
    WriterStopped {
        /// The database file.
        path: PathBuf,
    },
    /// A stored finding could not be read back.
    #[error("datastore {path}: a stored finding is damaged: {message}")]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// Version of the table layout; a datastore of another version is refused, not migrated.
const LAYOUT_VERSION: u32 = 1;

/// Bumped whenever the engine finds something different in the same bytes with the same
/// rules (a new view, a changed validator): stored results of older engines are not reused.
pub const SCAN_SEMANTICS: u32 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS profile(
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    base TEXT NOT NULL,
    rules TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS blob(
    key BLOB NOT NULL,
    profile INTEGER NOT NULL,
    size INTEGER NOT NULL,
    reusable INTEGER NOT NULL,
    findings INTEGER NOT NULL,
    levels INTEGER NOT NULL,
    PRIMARY KEY(key, profile)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS finding(
    blob BLOB NOT NULL,
    profile INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    rule TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY(blob, profile, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS input(
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER,
    blob BLOB NOT NULL,
    profile INTEGER NOT NULL,
    package TEXT,
    run INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS input_package ON input(package);
CREATE TABLE IF NOT EXISTS run(
    id INTEGER PRIMARY KEY,
    profile INTEGER NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    interrupted INTEGER,
    counters TEXT
);
";

/// A datastore file. Cheap to clone; each user opens its own connection.
#[derive(Clone, Debug)]
pub struct Datastore {
    path: PathBuf,
}

/// What decides the findings in given bytes: the engine's scan semantics and the options
/// (the *base*), and each rule's matching fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Hex SHA-256 over the base and every rule's hash, in order.
    pub hash: String,
    /// Hex SHA-256 over the engine's scan semantics and the options.
    pub base: String,
    /// Each rule's id and the hash of its matching fields, in rule order.
    pub rules: Vec<(String, String)>,
}

impl Profile {
    /// The profile of scanning with `rules` under `options`: decoded views, archive budgets
    /// and the per-place cap on findings kept. A rule's name, references and examples are left
    /// out: editing them rescans nothing.
    pub fn new(rules: &RuleSet, options: &crate::policy::ScannerOptions) -> Profile {
        let mut base = format!(
            "keysweep scan semantics {SCAN_SEMANTICS}\0decode {}\0cap {:?}\0",
            options.decode_depth, options.max_findings_per_file_and_rule
        );
        if let Some(b) = &options.archives {
            base.push_str(&format!(
                "archives {} {} {} {} {}\0",
                b.max_depth, b.max_unpacked_bytes, b.max_entries, b.max_ratio, b.member_buffer
            ));
        }
        let base = hex(&Sha256::digest(base.as_bytes()));
        let rules: Vec<(String, String)> = rules
            .rules()
            .iter()
            .map(|rule| {
                let s = &rule.syntax;
                let fields = serde_json::json!([
                    s.id,
                    s.pattern,
                    s.prefilter,
                    s.window_before,
                    s.window_after,
                    s.min_entropy,
                    s.validator,
                    s.confidence
                ]);
                (s.id.clone(), hex(&Sha256::digest(fields.to_string().as_bytes())[..16]))
            })
            .collect();
        let mut h = Sha256::new();
        h.update(base.as_bytes());
        for (_, rule) in &rules {
            h.update([0]);
            h.update(rule.as_bytes());
        }
        Profile {
            hash: hex(&h.finalize()),
            base,
            rules,
        }
    }
}

/// How a run under a new profile reuses the blobs of the profile before it (same base, other
/// rules): their findings of rules that did not change are kept, and they are scanned again
/// with only the rules that are new or changed.
#[derive(Clone, Debug)]
pub struct DeltaPlan {
    /// The earlier profile's id.
    pub previous: i64,
    /// Indices (in the current rule set) of the rules new or changed since it.
    pub added: Vec<usize>,
    /// Ids of its rules that are gone or changed: a blob holding a finding of one is scanned
    /// again in full, since that finding may have hidden another rule's at the same bytes.
    pub removed: std::collections::HashSet<String>,
}

/// The key of a blob: a 128-bit hash of its bytes (XXH3, tens of GB/s) with its length.
/// It is not a cryptographic hash: the datastore trusts the files it is given not to be
/// crafted to collide with one another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(pub u128);

impl BlobKey {
    /// The key of `bytes` found under a name that decides `salt` (see
    /// [`crate::containers::name_salt`]): the same bytes under a name that selects other views
    /// are another blob.
    pub fn of(bytes: &[u8], salt: &str) -> BlobKey {
        let seed = (bytes.len() as u64) ^ xxhash_rust::xxh3::xxh3_64(salt.as_bytes()).rotate_left(17);
        BlobKey(xxhash_rust::xxh3::xxh3_128_with_seed(bytes, seed))
    }

    /// A key for an input whose bytes were streamed, not held: it names this one scan of the
    /// file (`scan` is unique in the run), not its content, and is never reused.
    pub fn of_place(path: &str, size: u64, mtime_ns: Option<i64>, scan: u64) -> BlobKey {
        let mut text = format!("place\0{path}\0{size}\0{scan}\0").into_bytes();
        text.extend_from_slice(&mtime_ns.unwrap_or(-1).to_le_bytes());
        text.extend_from_slice(&now_secs().to_le_bytes());
        BlobKey(!xxhash_rust::xxh3::xxh3_128(&text))
    }

    pub(crate) fn bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }
}

/// Counters of one run, as stored.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct RunCounters {
    /// Inputs whose bytes were read (new or changed).
    pub files_scanned: u64,
    /// Inputs skipped as unchanged since an earlier run.
    pub files_unchanged: u64,
    /// Blobs (files and members) scanned.
    pub blobs_scanned: u64,
    /// Blobs scanned with only the rules added since the previous profile.
    #[serde(default)]
    pub blobs_delta_scanned: u64,
    /// Blobs scanned again because their scan elsewhere was in flight or cut short.
    #[serde(default)]
    pub blobs_scanned_twice: u64,
    /// Blobs not scanned because the same bytes were scanned before, in this run or an earlier one.
    pub blobs_reused: u64,
    /// Bytes of the reused blobs.
    pub bytes_reused: u64,
    /// Bytes read from the inputs scanned.
    pub bytes_scanned: u64,
    /// Findings reported by the run.
    pub findings: u64,
}

/// One run, as stored.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunRecord {
    /// Run number in this datastore.
    pub id: i64,
    /// The profile's hash.
    pub profile: String,
    /// Start, in seconds since the epoch.
    pub started: f64,
    /// End, when the run finished (killed runs have none).
    pub finished: Option<f64>,
    /// Whether it was interrupted.
    pub interrupted: Option<bool>,
    /// Its counters (killed runs have none).
    pub counters: Option<RunCounters>,
}

/// Totals over the whole datastore.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Totals {
    /// Inputs recorded.
    pub inputs: u64,
    /// Blobs recorded (under every profile).
    pub blobs: u64,
    /// Bytes of the blobs recorded.
    pub blob_bytes: u64,
    /// Blob findings stored (each once per blob, however many places hold it).
    pub stored_findings: u64,
}

/// Which findings [`Datastore::for_each_finding`] reads.
#[derive(Clone, Debug, Default)]
pub struct FindingFilter {
    /// Only these rule ids (any, when empty).
    pub rules: Vec<String>,
    /// Only inputs that are releases of this project (normalised name).
    pub package: Option<String>,
}

pub(crate) fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Datastore {
    /// Opens `path`, creating the datastore if the file does not exist.
    pub fn open(path: &Path) -> Result<Datastore, DatastoreError> {
        let store = Datastore { path: path.to_owned() };
        let conn = store.connect(false)?;
        let found: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'layout'", [], |r| r.get(0))
            .optional()
            .or_else(|e| match e {
                // No meta table yet: a new file (or someone else's database, checked below).
                rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.starts_with("no such table") => Ok(None),
                e => Err(e),
            })
            .map_err(|e| store.error(e))?;
        match found {
            Some(v) if v == LAYOUT_VERSION.to_string() => {}
            Some(v) => return Err(store.layout_error(Some(v))),
            None => {
                let tables: i64 = conn
                    .query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'table'", [], |r| {
                        r.get(0)
                    })
                    .map_err(|e| store.error(e))?;
                if tables > 0 && conn.prepare("SELECT 1 FROM meta").is_err() {
                    return Err(store.layout_error(None));
                }
                conn.execute_batch(SCHEMA).map_err(|e| store.error(e))?;
                conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('layout', ?1)",
                    [LAYOUT_VERSION.to_string()],
                )
                .map_err(|e| store.error(e))?;
            }
        }
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, source: rusqlite::Error) -> DatastoreError {
        DatastoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    pub(crate) fn writer_stopped(&self) -> DatastoreError {
        DatastoreError::WriterStopped {
            path: self.path.clone(),
        }
    }

    fn layout_error(&self, found: Option<String>) -> DatastoreError {
        DatastoreError::Layout {
            path: self.path.clone(),
            found,
            expected: LAYOUT_VERSION,
        }
    }

    /// A connection: WAL (readers beside the one writer), `synchronous=NORMAL` (a commit
    /// survives the process being killed; only a power cut may lose the last ones).
    pub(crate) fn connect(&self, read_only: bool) -> Result<Connection, DatastoreError> {
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(&self.path, flags).map_err(|e| self.error(e))?;
        conn.busy_timeout(Duration::from_secs(60)).map_err(|e| self.error(e))?;
        if !read_only {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| self.error(e))?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| self.error(e))?;
        // Blob keys are random: a lookup or insert touches pages all over the table, so each
        // connection keeps more of them than SQLite's default 2 MB.
        conn.pragma_update(None, "cache_size", -65536)
            .map_err(|e| self.error(e))?;
        Ok(conn)
    }

    /// The id of `profile`, registering it if new.
    pub(crate) fn profile_id(&self, profile: &Profile) -> Result<i64, DatastoreError> {
        let conn = self.connect(false)?;
        let rules = serde_json::to_string(&profile.rules).unwrap_or_default();
        conn.execute(
            "INSERT OR IGNORE INTO profile(hash, base, rules, created) VALUES (?1, ?2, ?3, ?4)",
            params![profile.hash, profile.base, rules, now_secs()],
        )
        .map_err(|e| self.error(e))?;
        conn.query_row("SELECT id FROM profile WHERE hash = ?1", [&profile.hash], |r| r.get(0))
            .map_err(|e| self.error(e))
    }

    /// The plan for reusing the last run's blobs when that run had the same base and other
    /// rules; `None` when there is nothing to reuse that way.
    pub(crate) fn delta_plan(&self, profile: &Profile, id: i64) -> Result<Option<DeltaPlan>, DatastoreError> {
        let conn = self.connect(false)?;
        let previous: Option<(i64, String)> = conn
            .query_row(
                "SELECT profile.id, profile.rules FROM run JOIN profile ON profile.id = run.profile
                 WHERE profile.base = ?1 AND profile.id != ?2 ORDER BY run.id DESC LIMIT 1",
                params![profile.base, id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.error(e))?;
        let Some((previous, rules)) = previous else {
            return Ok(None);
        };
        let Ok(old) = serde_json::from_str::<Vec<(String, String)>>(&rules) else {
            return Ok(None);
        };
        let old_set: std::collections::HashSet<&(String, String)> = old.iter().collect();
        let new_set: std::collections::HashSet<&(String, String)> = profile.rules.iter().collect();
        Ok(Some(DeltaPlan {
            previous,
            added: (0..profile.rules.len())
                .filter(|&i| !old_set.contains(&profile.rules[i]))
                .collect(),
            removed: old
                .iter()
                .filter(|r| !new_set.contains(r))
                .map(|(id, _)| id.clone())
                .collect(),
        }))
    }

    /// Starts a run: its row, numbered.
    pub(crate) fn start_run(&self, profile: i64) -> Result<i64, DatastoreError> {
        let conn = self.connect(false)?;
        conn.execute(
            "INSERT INTO run(profile, started) VALUES (?1, ?2)",
            params![profile, now_secs()],
        )
        .map_err(|e| self.error(e))?;
        Ok(conn.last_insert_rowid())
    }

    /// The runs, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, DatastoreError> {
        let conn = self.connect(true)?;
        let mut stmt = conn
            .prepare(
                "SELECT run.id, profile.hash, run.started, finished, interrupted, counters
                 FROM run JOIN profile ON profile.id = run.profile ORDER BY run.id",
            )
            .map_err(|e| self.error(e))?;
        let rows = stmt
            .query_map([], |r| {
                let counters: Option<String> = r.get(5)?;
                Ok(RunRecord {
                    id: r.get(0)?,
                    profile: r.get(1)?,
                    started: r.get(2)?,
                    finished: r.get(3)?,
                    interrupted: r.get::<_, Option<i64>>(4)?.map(|i| i != 0),
                    counters: counters.and_then(|c| serde_json::from_str(&c).ok()),
                })
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    /// Totals over the datastore.
    pub fn totals(&self) -> Result<Totals, DatastoreError> {
        let conn = self.connect(true)?;
        let one = |sql: &str| -> Result<u64, DatastoreError> {
            conn.query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .map_err(|e| self.error(e))
        };
        Ok(Totals {
            inputs: one("SELECT count(*) FROM input")?,
            blobs: one("SELECT count(*) FROM blob")?,
            blob_bytes: one("SELECT coalesce(sum(size), 0) FROM blob")?,
            stored_findings: one("SELECT count(*) FROM finding")?,
        })
    }

    /// Every finding of every input, placed at that input, in order of path: what a scan of
    /// them all would report (every confidence; the caller filters).
    pub fn for_each_finding(
        &self,
        filter: &FindingFilter,
        each: &mut dyn FnMut(crate::core::Finding) -> std::io::Result<bool>,
    ) -> Result<(), DatastoreError> {
        let conn = self.connect(true)?;
        let mut sql = String::from(
            "SELECT input.path, finding.body FROM input
             JOIN finding ON finding.blob = input.blob AND finding.profile = input.profile
             WHERE (?1 IS NULL OR input.package = ?1)",
        );
        if !filter.rules.is_empty() {
            sql.push_str(" AND finding.rule IN (SELECT value FROM json_each(?2))");
        }
        sql.push_str(" ORDER BY input.path, finding.seq");
        let mut stmt = conn.prepare(&sql).map_err(|e| self.error(e))?;
        let rules = serde_json::Value::from(filter.rules.clone()).to_string();
        let mut rows = if filter.rules.is_empty() {
            stmt.query(params![filter.package])
        } else {
            stmt.query(params![filter.package, rules])
        }
        .map_err(|e| self.error(e))?;
        while let Some(row) = rows.next().map_err(|e| self.error(e))? {
            let path: String = row.get(0).map_err(|e| self.error(e))?;
            let body: String = row.get(1).map_err(|e| self.error(e))?;
            let stored: StoredFinding = serde_json::from_str(&body).map_err(|e| DatastoreError::Damaged {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
            if !each(stored.placed(&path, &[])).map_err(DatastoreError::Sink)? {
                break;
            }
        }
        Ok(())
    }

    /// Adds everything in the datastore at `other` to this one (inputs, blobs, findings,
    /// runs); what both hold is kept once.
    pub fn absorb(&self, other: &Path) -> Result<(), DatastoreError> {
        Datastore::open(other)?;
        merge::absorb(self, other)
    }
}

/// What a worker asks the datastore while scanning, on its own read connection.
pub(crate) struct Lookup {
    conn: Connection,
    profile: i64,
    delta: Option<std::sync::Arc<DeltaPlan>>,
    path: PathBuf,
}

/// What the datastore knows of a blob under the current profile.
pub(crate) enum Known {
    /// Never scanned (or not reusably).
    No,
    /// Scanned: its findings, placed relative to it, and the levels of members opened below it.
    Yes(Vec<StoredFinding>, u32),
    /// Scanned under the previous profile, with no finding of a removed rule: these findings
    /// stand, and only the added rules need to scan it.
    Delta(Vec<StoredFinding>, u32),
}

impl Lookup {
    pub(crate) fn new(
        store: &Datastore,
        profile: i64,
        delta: Option<std::sync::Arc<DeltaPlan>>,
    ) -> Result<Lookup, DatastoreError> {
        let conn = store.connect(true)?;
        Ok(Lookup {
            conn,
            profile,
            delta,
            path: store.path.clone(),
        })
    }

    fn error(&self, source: rusqlite::Error) -> DatastoreError {
        DatastoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Whether `path` was scanned under this profile when it had this size and mtime.
    /// A path that encodes its content hash (a mirror's layout) is unchanged at the same size.
    pub(crate) fn input_unchanged(&self, path: &str, size: u64, mtime_ns: Option<i64>) -> Result<bool, DatastoreError> {
        let row: Option<(i64, Option<i64>)> = self
            .conn
            .prepare_cached("SELECT size, mtime_ns FROM input WHERE path = ?1 AND profile = ?2")
            .and_then(|mut s| {
                s.query_row(params![path, self.profile], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(|e| self.error(e))?;
        Ok(match row {
            Some((s, m)) if s as u64 == size => m == mtime_ns && m.is_some() || names_its_content(path),
            _ => false,
        })
    }

    /// What is known of a blob of this size: scanned reusably under this profile, or under
    /// the previous one (see [`DeltaPlan`]).
    pub(crate) fn blob(&self, key: BlobKey, size: u64) -> Result<Known, DatastoreError> {
        if let Some((findings, levels)) = self.findings(key, size, self.profile)? {
            return Ok(Known::Yes(findings, levels));
        }
        let Some(plan) = &self.delta else {
            return Ok(Known::No);
        };
        Ok(match self.findings(key, size, plan.previous)? {
            Some((findings, levels)) if !findings.iter().any(|f| plan.removed.contains(&f.rule)) => {
                Known::Delta(findings, levels)
            }
            _ => Known::No,
        })
    }

    /// The findings of a blob this run committed, reusable or not (a file cut short by its
    /// own budget is still that file's result).
    pub(crate) fn committed(&self, key: BlobKey) -> Result<Option<Vec<StoredFinding>>, DatastoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT body FROM finding WHERE blob = ?1 AND profile = ?2 ORDER BY seq")
            .map_err(|e| self.error(e))?;
        let exists: bool = self
            .conn
            .prepare_cached("SELECT count(*) FROM blob WHERE key = ?1 AND profile = ?2")
            .and_then(|mut s| s.query_row(params![key.bytes(), self.profile], |r| r.get::<_, i64>(0)))
            .map_err(|e| self.error(e))?
            > 0;
        if !exists {
            return Ok(None);
        }
        let bodies = stmt
            .query_map(params![key.bytes(), self.profile], |r| r.get::<_, String>(0))
            .map_err(|e| self.error(e))?;
        let mut findings = Vec::new();
        for body in bodies {
            let body = body.map_err(|e| self.error(e))?;
            match serde_json::from_str(&body) {
                Ok(f) => findings.push(f),
                Err(_) => return Ok(None),
            }
        }
        Ok(Some(findings))
    }

    /// A blob's findings and levels, if it was scanned reusably under `profile`.
    #[allow(clippy::type_complexity)]
    fn findings(
        &self,
        key: BlobKey,
        size: u64,
        profile: i64,
    ) -> Result<Option<(Vec<StoredFinding>, u32)>, DatastoreError> {
        let found: Option<(i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT findings, levels FROM blob WHERE key = ?1 AND profile = ?2 AND size = ?3 AND reusable = 1",
            )
            .and_then(|mut s| {
                s.query_row(params![key.bytes(), profile, size as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
            .map_err(|e| self.error(e))?;
        let Some((count, levels)) = found else {
            return Ok(None);
        };
        let levels = levels.clamp(0, i64::from(u32::MAX)) as u32;
        if count == 0 {
            return Ok(Some((Vec::new(), levels)));
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT body FROM finding WHERE blob = ?1 AND profile = ?2 ORDER BY seq")
            .map_err(|e| self.error(e))?;
        let bodies = stmt
            .query_map(params![key.bytes(), profile], |r| r.get::<_, String>(0))
            .map_err(|e| self.error(e))?;
        let mut findings = Vec::with_capacity(count.clamp(0, 1024) as usize);
        for body in bodies {
            let body = body.map_err(|e| self.error(e))?;
            match serde_json::from_str(&body) {
                Ok(f) => findings.push(f),
                // A damaged row: scan the blob again rather than trust it.
                Err(_) => return Ok(None),
            }
        }
        Ok(Some((findings, levels)))
    }
}

/// Whether a path names its content, as a content-addressed mirror lays files out:
/// `…/ab/cd/<hash>/name-1.0.tar.gz`, the parent a hash of 32 or more hex digits under two
/// directories of two, which are its first digits. Only that layout counts: a hex directory
/// elsewhere (a container layer, a checkout named by commit) says nothing of its files.
pub fn names_its_content(path: &str) -> bool {
    let mut parts = path.rsplit('/');
    parts.next();
    let (Some(hash), Some(second), Some(first)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    hash.len() >= 32
        && hex(hash)
        && first.len() == 2
        && second.len() == 2
        && hex(first)
        && hex(second)
        && hash
            .to_ascii_lowercase()
            .starts_with(&format!("{first}{second}").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_addressed_paths() {
        let h = "4f1c".repeat(16);
        assert!(names_its_content(&format!("mirror/packages/4f/1c/{h}/pkg-1.0.tar.gz")));
        assert!(!names_its_content(&format!("mirror/packages/4f/1d/{h}/pkg-1.0.tar.gz")));
        assert!(!names_its_content("mirror/packages/pkg-1.0.tar.gz"));
        assert!(!names_its_content(&format!("overlay2/{h}/diff/app/settings.py")));
        assert!(!names_its_content(&h));
    }

    #[test]
    fn blob_keys_depend_on_every_byte_and_the_length() {
        assert_ne!(BlobKey::of(b"abc", ""), BlobKey::of(b"abd", ""));
        assert_ne!(BlobKey::of(b"", ""), BlobKey::of(b"\0", ""));
        assert_eq!(BlobKey::of(b"same", "Source"), BlobKey::of(b"same", "Source"));
        assert_ne!(BlobKey::of(b"same", "Source"), BlobKey::of(b"same", "Other"));
        assert_ne!(
            BlobKey::of_place("a", 1, Some(2), 0),
            BlobKey::of_place("a", 1, Some(2), 1)
        );
    }

    #[test]
    fn opening_refuses_other_databases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let other = dir.path().join("other.db");
        let conn = Connection::open(&other).expect("sqlite");
        conn.execute_batch("CREATE TABLE t(x)").expect("table");
        drop(conn);
        assert!(matches!(Datastore::open(&other), Err(DatastoreError::Layout { .. })));
        let mine = dir.path().join("mine.db");
        Datastore::open(&mine).expect("create");
        Datastore::open(&mine).expect("reopen");
    }
}
