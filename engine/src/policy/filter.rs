//! The one filter between confirmed findings and a report, used by every result path (a
//! threaded scan, `scan_bytes`, a datastore report): confidence, suppressions, and the cap
//! on findings of one rule per place. Every finding it holds back is counted.

use std::collections::HashMap;
use std::sync::Arc;

use super::suppress::Suppressions;
use crate::core::{Confidence, Finding, Summary, Warning, WarningKind};

/// What the filter says of one finding.
#[derive(Debug)]
pub enum Verdict {
    /// Report it (the summary has counted it).
    Report,
    /// Counted, not reported.
    Hold,
    /// Counted, not reported, and the first over the cap of its place: say so.
    HoldAndWarn(Warning),
}

/// Confidence floor, suppressions and per-place cap, with the counts they keep.
pub struct ReportFilter {
    min: Confidence,
    suppressions: Arc<Suppressions>,
    cap: u64,
    per_place: HashMap<(String, String), u64>,
}

impl ReportFilter {
    /// A filter reporting findings at `min` or above that `suppressions` do not name, at
    /// most `cap` of one rule per place (`None`: no cap).
    pub fn new(min: Confidence, suppressions: Arc<Suppressions>, cap: Option<u64>) -> ReportFilter {
        ReportFilter {
            min,
            suppressions,
            cap: cap.unwrap_or(u64::MAX),
            per_place: HashMap::new(),
        }
    }

    /// Judges `finding`, counting it in `summary` whatever the verdict.
    pub fn judge(&mut self, finding: &Finding, summary: &mut Summary) -> Verdict {
        if finding.confidence < self.min {
            summary.findings_below_threshold += 1;
            return Verdict::Hold;
        }
        if let Some(reason) = self.suppressions.reason(finding) {
            *summary.findings_suppressed.entry(reason.as_str()).or_default() += 1;
            return Verdict::Hold;
        }
        if self.cap != u64::MAX {
            let count = self
                .per_place
                .entry((finding.location.display_path(), finding.rule.id.clone()))
                .or_default();
            *count += 1;
            if *count > self.cap {
                summary.findings_over_cap += 1;
                if *count == self.cap + 1 {
                    let warning = Warning {
                        kind: WarningKind::FindingsCapped,
                        path: finding.location.display_path(),
                        message: format!(
                            "more than {} findings of {}: the rest are counted, not reported",
                            self.cap, finding.rule.id
                        ),
                    };
                    *summary.warnings.entry(warning.kind.as_str()).or_default() += 1;
                    return Verdict::HoldAndWarn(warning);
                }
                return Verdict::Hold;
            }
        }
        summary.findings += 1;
        *summary.findings_per_rule.entry(finding.rule.id.clone()).or_default() += 1;
        Verdict::Report
    }
}
