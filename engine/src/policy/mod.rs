//! What is reported of what was found: the scanner's options, allowlists, baselines and
//! inline allows, and the one filter (confidence, suppressions, per-place cap) every result
//! path applies.

mod filter;
mod options;
pub mod suppress;

pub use filter::{ReportFilter, Verdict};
pub use options::{ScannerOptions, DEFAULT_DECODE_DEPTH, DEFAULT_MAX_FINDINGS_PER_FILE};
