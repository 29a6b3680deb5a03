//! The one entry point: a [`Scanner`] built once from rules and options, that scans bytes (as
//! a file of a given name), a path, or many paths with worker threads into a sink. Every
//! front end (the CLI, the Python package, the stdio server, the Ray driver) is a thin layer
//! on it, so the same bytes give the same findings everywhere.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::core::{CollectSink, Finding, Sink, Summary, Warning};
use crate::error::Error;
use crate::policy::{ReportFilter, ScannerOptions};
use crate::rules::RuleSet;
use crate::runtime::RunOptions;
use crate::stages::confirm::{CandidateBatch, Validator};
use crate::stages::load::LoadPolicy;
use crate::stages::matcher::Compiled;
use crate::stages::report::Reporter;
use crate::stages::walk::{walk, Enumerated, Filters};
use crate::stages::worker::{Event, Outlet, Worker};

/// A compiled rule set and what to find with it: build it once, share it between threads
/// (`Send + Sync`; each call takes a Hyperscan scratch from an internal pool).
///
/// ```
/// use keysweep::{RuleSet, Scanner, ScannerOptions};
///
/// let scanner = Scanner::new(RuleSet::builtin()?, ScannerOptions::default())?;
/// // A GitHub token with a valid CRC32 checksum, built at run time.
/// let body = "q8Zr2LmW5vXc9TbN4kPd7HsJ3fGa6Y";
/// let token = format!("ghp_{body}{}", keysweep::checks::base62(u64::from(crc32fast::hash(body.as_bytes())), 6));
/// let report = scanner.scan_bytes("app/settings.py", format!("GITHUB_TOKEN = '{token}'\n").as_bytes())?;
/// assert_eq!(report.findings.len(), 1);
/// assert_eq!(report.findings[0].rule.id, "github.pat.classic");
/// assert_eq!(report.findings[0].location.line, 1);
/// # Ok::<(), keysweep::Error>(())
/// ```
pub struct Scanner {
    compiled: Compiled,
    options: ScannerOptions,
    validator: Validator,
    /// Idle workers, each with its scratch and read buffer: reused call after call.
    idle: Mutex<Vec<Worker>>,
}

/// What one in-place scan found: findings in order of arrival, warnings, and the counters.
#[derive(Debug, Default)]
pub struct ScanReport {
    /// Findings reported (after the confidence filter, suppressions and per-place cap).
    pub findings: Vec<Finding>,
    /// Warnings: corrupt members, budgets hit, unreadable files.
    pub warnings: Vec<Warning>,
    /// The counters `keysweep scan` prints.
    pub summary: Summary,
}

impl Scanner {
    /// Compiles `rules` for scanning with `options` (no database cache).
    pub fn new(rules: RuleSet, options: ScannerOptions) -> Result<Scanner, Error> {
        Scanner::with_cache(rules, options, None)
    }

    /// As [`Scanner::new`], loading the compiled database from `cache_dir` when it holds
    /// one for the same rules, and storing it there otherwise (see [`default_cache_dir`]).
    pub fn with_cache(rules: RuleSet, options: ScannerOptions, cache_dir: Option<&Path>) -> Result<Scanner, Error> {
        let compiled = Compiled::build(rules, cache_dir)?;
        let mut validator = Validator::new(Arc::clone(&compiled.rules));
        validator.set_dedup_across_rules(!options.report_every_rule);
        Ok(Scanner {
            compiled,
            options,
            validator,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The rules.
    pub fn rules(&self) -> &RuleSet {
        &self.compiled.rules
    }

    /// The options it was built with.
    pub fn options(&self) -> &ScannerOptions {
        &self.options
    }

    /// Scans `bytes` as if they were a file at `name`: sniffed, unpacked in memory within
    /// the budgets, every view and decoder applied, validated, filtered and attributed to the
    /// package the name gives: exactly what `keysweep scan` reports for such a file.
    pub fn scan_bytes(&self, name: &str, bytes: &[u8]) -> Result<ScanReport, Error> {
        self.in_place(|worker, out| worker.scan_buffer(name, bytes, out))
    }

    /// Scans a file, or every file under a directory, on the calling thread (files are read
    /// or mapped as `keysweep scan` reads them).
    pub fn scan_path(&self, path: &Path) -> Result<ScanReport, Error> {
        self.in_place(|worker, out| {
            walk(path, &Filters::default(), &mut |item| {
                match item {
                    Enumerated::File(job) => worker.scan_job(&job, out),
                    Enumerated::Warning(w) => out.event(Event::Warning(w)),
                    Enumerated::Filtered => out.event(Event::Filtered),
                    Enumerated::OtherShard => out.event(Event::OtherShard),
                    Enumerated::SymlinkSkipped => out.event(Event::SymlinkSkipped),
                }
                true
            });
        })
    }

    /// Scans files and directories with worker threads, streaming results into `sink`
    /// (memory stays bounded: channels are bounded, files are released once scanned).
    pub fn scan_paths(&self, inputs: &[PathBuf], run: &RunOptions, sink: &mut dyn Sink) -> Result<Summary, Error> {
        crate::runtime::run(&self.compiled, &self.options, inputs, run, sink)
    }

    /// Runs `scan` with an idle worker, confirming and reporting its output in place.
    fn in_place(&self, scan: impl FnOnce(&mut Worker, &dyn Outlet)) -> Result<ScanReport, Error> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut worker = match pooled {
            Some(w) => w,
            None => Worker::new(&self.compiled.db, &self.options, LoadPolicy::default())?,
        };
        let mut summary = Summary::default();
        let reporter = Reporter {
            filter: ReportFilter::new(
                self.options.min_confidence,
                Arc::clone(&self.options.suppressions),
                self.options.max_findings_per_file_and_rule,
            ),
            summary: &mut summary,
            ledger: None,
        };
        let out = InPlace {
            validator: &self.validator,
            state: RefCell::new((reporter, CollectSink::default())),
        };
        scan(&mut worker, &out);
        let (_, sink) = out.state.into_inner();
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(worker);
        Ok(ScanReport {
            findings: sink.findings,
            warnings: sink.warnings,
            summary,
        })
    }
}

/// The outlet of an in-place scan: each batch is confirmed at once and every event reduced
/// by the same reporting end a threaded run uses.
struct InPlace<'a> {
    validator: &'a Validator,
    state: RefCell<(Reporter<'a>, CollectSink)>,
}

impl Outlet for InPlace<'_> {
    fn batch(&self, batch: CandidateBatch, chain: Option<crate::dedup::Chain>) {
        let findings = self.validator.confirm(&batch);
        self.event(Event::Findings(findings, chain));
    }
    fn event(&self, event: Event) {
        let (reporter, sink) = &mut *self.state.borrow_mut();
        // A collecting sink cannot fail.
        let _ = reporter.reduce(event, sink);
    }
}

/// The default database cache: `$KEYSWEEP_CACHE_DIR`, else `$XDG_CACHE_HOME/keysweep`, else
/// `~/.cache/keysweep`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KEYSWEEP_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(Path::new(&dir).join("keysweep"));
    }
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/keysweep"))
}
