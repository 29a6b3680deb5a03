//! keysweep's engine: finds leaked credentials in bytes, files and directories.
//!
//! Rules compile into one Hyperscan database; files are read or memory-mapped and scanned by
//! worker threads that each own a Hyperscan scratch; candidate windows go over bounded
//! crossbeam channels to a validator stage that confirms them with each rule's full regex,
//! entropy floor and structural checks; findings reach the caller through a [`Sink`].
//!
//! ```no_run
//! use keysweep::{Engine, EngineOptions, Provenance, RuleSet};
//!
//! let engine = Engine::new(RuleSet::builtin()?, &EngineOptions::default())?;
//! let mut scanner = engine.blob_scanner()?;
//! for finding in scanner.scan(b"token = 'ghp_...'", Provenance::file("inline"))? {
//!     println!("{} at {}", finding.rule.id, finding.location.line);
//! }
//! # Ok::<(), keysweep::Error>(())
//! ```
#![deny(missing_docs)]

pub mod checks;
pub mod containers;
pub mod core;
pub mod datastore;
mod dedup;
mod pipeline;
pub mod policy;
pub mod rules;
pub mod sink;
pub mod stages;
pub mod util;
pub mod views;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::core::{CollectSink, Confidence, Finding, Location, Provenance, Sink, Summary, Warning, WarningKind};
pub use pipeline::ScanOptions;
pub use rules::RuleSet;
use stages::{confirm as validate, matcher as scan};

/// Everything that can fail in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rule file or rule is invalid.
    #[error(transparent)]
    Rules(#[from] rules::RuleError),
    /// Hyperscan could not compile or scan.
    #[error(transparent)]
    Scan(#[from] scan::ScanError),
    /// A file could not be read back.
    #[error("reading input: {0}")]
    Read(std::io::Error),
    /// The datastore failed.
    #[error(transparent)]
    Datastore(#[from] datastore::DatastoreError),
    /// The sink failed to write.
    #[error("writing results: {0}")]
    Sink(std::io::Error),
}

/// How an engine is built.
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    /// Where compiled databases are cached (keyed by the rules' hash); `None` disables it.
    pub cache_dir: Option<PathBuf>,
}

impl EngineOptions {
    /// Options with the default cache directory: `$KEYSWEEP_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/keysweep`, else `~/.cache/keysweep`.
    pub fn with_default_cache() -> Self {
        EngineOptions {
            cache_dir: default_cache_dir(),
        }
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KEYSWEEP_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(Path::new(&dir).join("keysweep"));
    }
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/keysweep"))
}

/// A compiled rule set, shareable across threads.
#[derive(Clone)]
pub struct Engine {
    rules: Arc<RuleSet>,
    db: Arc<scan::Database>,
}

impl Engine {
    /// Compiles (or loads from the cache) the database for `rules`.
    pub fn new(rules: RuleSet, options: &EngineOptions) -> Result<Engine, Error> {
        let db = scan::Database::build(&rules, options.cache_dir.as_deref())?;
        Ok(Engine {
            rules: Arc::new(rules),
            db: Arc::new(db),
        })
    }

    /// The rules.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// A single-threaded scanner of in-memory blobs (owns one scratch; reuse it).
    pub fn blob_scanner(&self) -> Result<BlobScanner, Error> {
        Ok(BlobScanner {
            scanner: scan::Scanner::new(Arc::clone(&self.db))?,
            validator: validate::Validator::new(Arc::clone(&self.rules)),
        })
    }

    /// Scans files and directories with worker threads, sending results to `sink`.
    pub fn scan_paths(&self, inputs: &[PathBuf], options: &ScanOptions, sink: &mut dyn Sink) -> Result<Summary, Error> {
        pipeline::run(self, inputs, options, sink)
    }
}

/// Scans bytes on the calling thread: scan, then confirm. Findings of every confidence.
pub struct BlobScanner {
    scanner: scan::Scanner,
    validator: validate::Validator,
}

impl BlobScanner {
    /// Report a byte range once per rule that confirms it, instead of once (see
    /// [`validate::Validator::set_dedup_across_rules`]).
    pub fn report_every_rule(&mut self) {
        self.validator.set_dedup_across_rules(false);
    }

    /// All confirmed findings in `bytes`, in order of position.
    pub fn scan(&mut self, bytes: &[u8], provenance: Provenance) -> Result<Vec<Finding>, Error> {
        let windows = self.scanner.scan(bytes)?;
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let provenance = Arc::new(provenance);
        let mut findings = Vec::new();
        pipeline::ship(bytes, pipeline::Base::START, windows, &mut |windows| {
            let batch = validate::CandidateBatch {
                provenance: Arc::clone(&provenance),
                windows,
            };
            findings.extend(self.validator.confirm(&batch));
        });
        findings.sort_by(|a, b| (a.location.offset, &a.rule.id).cmp(&(b.location.offset, &b.rule.id)));
        Ok(findings)
    }
}
