//! What a scanner finds and reports: the options a [`crate::Scanner`] is built with.

use std::sync::Arc;

use super::suppress::Suppressions;
use crate::containers::Budget;
use crate::core::Confidence;

/// How deep views are decoded by default (base64 of an escaped string is 2).
pub const DEFAULT_DECODE_DEPTH: u32 = 3;

/// Findings of one rule reported per place by default before the rest are only counted.
pub const DEFAULT_MAX_FINDINGS_PER_FILE: u64 = 1000;

/// What is found and what of it is reported; the defaults are `keysweep scan`'s.
#[derive(Clone, Debug)]
pub struct ScannerOptions {
    /// Findings below this confidence are counted, not reported.
    pub min_confidence: Confidence,
    /// Open archives and compressed streams, under this budget; `None` scans them raw.
    pub archives: Option<Budget>,
    /// Decoded views (`.pyc` pairs, UTF-16, base64, hex, escapes, percent-encoding) are
    /// chained up to this depth; 0 scans bytes only as they are.
    pub decode_depth: u32,
    /// Findings of one rule reported per place before the rest are only counted (with a
    /// warning): a generated or hostile file must not turn the report into gigabytes.
    pub max_findings_per_file_and_rule: Option<u64>,
    /// Allowlist and baseline; inline `keysweep:allow` comments apply unless it says not.
    pub suppressions: Arc<Suppressions>,
    /// Report a byte range once per rule that confirms it, instead of once for the most
    /// confident rule (what `rules check` needs to see every rule's own examples).
    pub report_every_rule: bool,
}

impl Default for ScannerOptions {
    fn default() -> Self {
        ScannerOptions {
            min_confidence: Confidence::Medium,
            archives: Some(Budget::default()),
            decode_depth: DEFAULT_DECODE_DEPTH,
            max_findings_per_file_and_rule: Some(DEFAULT_MAX_FINDINGS_PER_FILE),
            suppressions: Arc::default(),
            report_every_rule: false,
        }
    }
}
