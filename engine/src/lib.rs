//! keysweep's engine: finds leaked credentials in bytes, files and directories.
//!
//! Build one [`Scanner`] from a [`RuleSet`] and [`ScannerOptions`]; it compiles every rule
//! into one Hyperscan database and is shared between threads. [`Scanner::scan_bytes`] scans
//! bytes as a file of a given name (archives opened in memory, decoded views, validation,
//! suppressions, package attribution: what `keysweep scan` reports for that file);
//! [`Scanner::scan_path`] scans a path on the calling thread; [`Scanner::scan_paths`] runs
//! worker threads over many paths into a [`Sink`]. See `docs/ARCHITECTURE.md` for the stages.
//!
//! ```
//! use keysweep::{RuleSet, Scanner, ScannerOptions};
//!
//! let scanner = Scanner::new(RuleSet::builtin()?, ScannerOptions::default())?;
//! let report = scanner.scan_bytes("notes.txt", b"nothing to see here")?;
//! assert!(report.findings.is_empty());
//! # Ok::<(), keysweep::Error>(())
//! ```
#![deny(missing_docs)]

mod api;
pub mod checks;
mod containers;
mod core;
mod datastore;
mod dedup;
mod error;
mod policy;
mod rules;
mod runtime;
pub mod sink;
mod stages;
mod util;
mod views;

pub use crate::api::{default_cache_dir, ScanReport, Scanner};
pub use crate::containers::Budget;
pub use crate::core::{
    normalize_name, CollectSink, Confidence, Finding, Location, Package, PackageKind, PathContext, Provenance, RuleRef,
    Sink, Summary, Validation, ValidationStatus, Warning, WarningKind,
};
pub use crate::datastore::{Datastore, DatastoreError, FindingFilter, RunRecord, Totals};
pub use crate::error::Error;
pub use crate::policy::suppress::{SuppressError, Suppression, Suppressions};
pub use crate::policy::{ReportFilter, ScannerOptions, Verdict, DEFAULT_DECODE_DEPTH, DEFAULT_MAX_FINDINGS_PER_FILE};
pub use crate::rules::{parse_rule_file, Rule, RuleError, RuleSet, RuleSyntax, ValidatorKind};
pub use crate::runtime::RunOptions;
pub use crate::stages::load::LoadPolicy;
pub use crate::stages::matcher::{check_each_rule, ScanError};
pub use crate::stages::walk::{Filters, Shard};
