//! What a scan tells its caller besides findings: warnings, the summary, and the sink trait.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use serde::Serialize;

use super::Finding;

/// Why an input was skipped or only partly scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WarningKind {
    /// Permission denied.
    PermissionDenied,
    /// Could not be read for another reason.
    Unreadable,
    /// A symbolic link to nothing.
    BrokenSymlink,
    /// A FIFO, socket or device: never opened, so the scan cannot hang on it.
    SpecialFile,
    /// Gone between listing and opening.
    Vanished,
    /// Larger than `--max-file-size`.
    TooLarge,
    /// Changed size while being scanned: what was read was scanned.
    Changed,
    /// A directory could not be listed.
    Walk,
    /// An input named on the command line does not exist.
    NotFound,
    /// Too many findings of one rule in one file: the rest are counted, not reported.
    FindingsCapped,
    /// A corrupt or truncated archive or member: what was readable was scanned.
    CorruptArchive,
    /// An unpacking budget (depth, size, entries, ratio, overlap) was hit: the rest skipped.
    BudgetExceeded,
}

impl WarningKind {
    /// Short name, as counted in the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::PermissionDenied => "permission_denied",
            WarningKind::Unreadable => "unreadable",
            WarningKind::BrokenSymlink => "broken_symlink",
            WarningKind::SpecialFile => "special_file",
            WarningKind::Vanished => "vanished",
            WarningKind::TooLarge => "too_large",
            WarningKind::Changed => "changed",
            WarningKind::Walk => "walk",
            WarningKind::NotFound => "not_found",
            WarningKind::FindingsCapped => "findings_capped",
            WarningKind::CorruptArchive => "corrupt_archive",
            WarningKind::BudgetExceeded => "budget_exceeded",
        }
    }
}

/// One warning about one input.
#[derive(Clone, Debug, Serialize)]
pub struct Warning {
    /// What happened.
    pub kind: WarningKind,
    /// The input (lossy UTF-8).
    pub path: String,
    /// Details.
    pub message: String,
}

/// Counters of a finished scan.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Files whose bytes were scanned (wholly or partly).
    pub files_scanned: u64,
    /// Bytes scanned.
    pub bytes_scanned: u64,
    /// Inputs skipped by include/exclude filters.
    pub files_filtered: u64,
    /// Files left to other shards (`--shard K/N`).
    pub files_other_shard: u64,
    /// Symbolic links found while walking and not followed.
    pub symlinks_skipped: u64,
    /// Wall time.
    #[serde(serialize_with = "serialize_secs")]
    pub elapsed: Duration,
    /// Findings reported (at or above the confidence threshold).
    pub findings: u64,
    /// Confirmed findings below the confidence threshold (not reported).
    pub findings_below_threshold: u64,
    /// Confirmed findings over the per-file, per-rule cap (counted, not reported).
    pub findings_over_cap: u64,
    /// Findings not reported because of an inline comment, the allowlist or the baseline.
    pub findings_suppressed: BTreeMap<&'static str, u64>,
    /// Containers opened (archives and compressed streams, nested ones included).
    pub archives_opened: u64,
    /// Archive members scanned.
    pub members_scanned: u64,
    /// Bytes decompressed or read out of archives.
    pub bytes_unpacked: u64,
    /// Unpacking budgets hit.
    pub budget_hits: u64,
    /// Corrupt or truncated archives and members.
    pub corrupt_inputs: u64,
    /// Inputs not read: unchanged since an earlier run recorded in the datastore.
    pub files_unchanged: u64,
    /// Bytes of the unchanged inputs.
    pub bytes_unchanged: u64,
    /// Blobs (files and members) scanned and recorded in the datastore.
    pub blobs_scanned: u64,
    /// Blobs scanned with only the rules added since the previous profile (the findings of
    /// the others stand).
    pub blobs_delta_scanned: u64,
    /// Blobs not scanned: the same bytes were scanned before, in this run or an earlier one.
    pub blobs_reused: u64,
    /// Blobs scanned again (as part of what holds them) because their scan elsewhere in this
    /// run was in flight at that moment, or cut short by a budget of its file.
    pub blobs_scanned_twice: u64,
    /// Bytes of the reused blobs.
    pub bytes_reused: u64,
    /// Archive members among the reused blobs.
    pub members_reused: u64,
    /// With `count_ahead`: files listed so far by the counting walk.
    pub files_listed: u64,
    /// Bytes of those files.
    pub bytes_listed: u64,
    /// The counting walk has listed everything.
    pub listing_done: bool,
    /// The scan was cancelled (Ctrl-C) before every input was scanned; what was found is
    /// reported.
    pub interrupted: bool,
    /// Findings reported, per rule id.
    pub findings_per_rule: BTreeMap<String, u64>,
    /// Warnings, per kind.
    pub warnings: BTreeMap<&'static str, u64>,
}

fn serialize_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Summary {
    /// Total warnings.
    pub fn warning_count(&self) -> u64 {
        self.warnings.values().sum()
    }

    /// Throughput in MB/s (10^6 bytes).
    pub fn megabytes_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.bytes_scanned as f64 / 1e6 / secs
        } else {
            0.0
        }
    }
}

/// Receives the results of a scan, on one thread, in order of arrival.
pub trait Sink {
    /// Before the first finding.
    fn begin(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// One finding; return `false` to stop the scan.
    fn finding(&mut self, finding: &Finding) -> io::Result<bool>;
    /// One warning.
    fn warning(&mut self, _warning: &Warning) -> io::Result<()> {
        Ok(())
    }
    /// The counters so far, about ten times a second while the scan runs (a progress bar).
    fn progress(&mut self, _summary: &Summary) {}
    /// After the last finding.
    fn finish(&mut self, _summary: &Summary) -> io::Result<()> {
        Ok(())
    }
}

/// A sink that keeps everything in memory: handy for library users and tests.
#[derive(Debug, Default)]
pub struct CollectSink {
    /// Findings in arrival order.
    pub findings: Vec<Finding>,
    /// Warnings in arrival order.
    pub warnings: Vec<Warning>,
}

impl Sink for CollectSink {
    fn finding(&mut self, finding: &Finding) -> io::Result<bool> {
        self.findings.push(finding.clone());
        Ok(true)
    }
    fn warning(&mut self, warning: &Warning) -> io::Result<()> {
        self.warnings.push(warning.clone());
        Ok(())
    }
}
