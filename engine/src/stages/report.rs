//! The reporting end of a scan: every event of the workers and validators is reduced here,
//! on one thread, into the summary and the sink, through the one [`ReportFilter`]; with a
//! datastore, the ledger holds a blob's findings until the blob is complete.

use crate::core::{Finding, Sink, Summary, Warning, WarningKind};
use crate::dedup::Ledger;
use crate::policy::{ReportFilter, Verdict};
use crate::stages::worker::Event;

/// The reporting end of a scan: confidence filter, per-file cap, counters, and (with a
/// datastore) the dedup ledger.
pub(crate) struct Reporter<'a> {
    pub(crate) filter: ReportFilter,
    pub(crate) summary: &'a mut Summary,
    pub(crate) ledger: Option<&'a mut Ledger>,
}

impl Reporter<'_> {
    /// Findings of one place (a batch, or a linked blob) through the filter to the sink.
    fn report(&mut self, findings: &[Finding], sink: &mut dyn Sink) -> std::io::Result<bool> {
        for f in findings {
            match self.filter.judge(f, self.summary) {
                Verdict::Report => {
                    if !sink.finding(f)? {
                        return Ok(false);
                    }
                }
                Verdict::Hold => {}
                Verdict::HoldAndWarn(w) => sink.warning(&w)?,
            }
        }
        Ok(true)
    }

    /// Blobs that never finished (the run was stopped) are counted with a warning.
    pub(crate) fn finish_ledger(&mut self, sink: &mut dyn Sink, interrupted: bool) -> std::io::Result<()> {
        let Some(ledger) = self.ledger.as_deref_mut() else {
            return Ok(());
        };
        let unfinished = ledger.finish();
        ledger.counters.copy_to(self.summary);
        let counters = ledger.counters;
        let mut problems = Vec::new();
        if unfinished > 0 && !interrupted {
            problems.push(format!(
                "{unfinished} blob(s) did not finish scanning: not recorded in the datastore"
            ));
        }
        if counters.unreadable > 0 {
            problems.push(format!(
                "{} blob(s) committed in this run could not be read back for a place linked to them: \
                 their findings there are in the datastore, not in this output",
                counters.unreadable
            ));
        }
        if counters.dropped > 0 {
            self.summary.findings_over_cap += counters.dropped;
            problems.push(format!(
                "{} finding(s) past the per-file memory guard were dropped (a file not reused; rescan it alone)",
                counters.dropped
            ));
        }
        for message in problems {
            let w = Warning {
                kind: WarningKind::Unreadable,
                path: String::new(),
                message,
            };
            *self.summary.warnings.entry(w.kind.as_str()).or_default() += 1;
            sink.warning(&w)?;
        }
        Ok(())
    }

    pub(crate) fn reduce(&mut self, event: Event, sink: &mut dyn Sink) -> std::io::Result<bool> {
        match event {
            Event::Findings(findings, chain) => {
                // With a datastore, a file's findings are reported once its blob is complete:
                // what the scan prints is what the datastore holds.
                if let (Some(chain), Some(ledger)) = (&chain, self.ledger.as_deref_mut()) {
                    ledger.confirmed(&findings, chain);
                    let complete = ledger.take_linked();
                    return self.report(&complete, sink);
                }
                return self.report(&findings, sink);
            }
            Event::Blob(event) => {
                let mut linked = Vec::new();
                if let Some(ledger) = self.ledger.as_deref_mut() {
                    ledger.event(event);
                    linked = ledger.take_linked();
                    ledger.counters.copy_to(self.summary);
                }
                return self.report(&linked, sink);
            }
            _ => {}
        }
        let summary = &mut *self.summary;
        match event {
            Event::Findings(..) | Event::Blob(_) => {}
            Event::Unchanged { bytes } => {
                summary.files_unchanged += 1;
                summary.bytes_unchanged += bytes;
            }
            Event::ScannedTwice(n) => summary.blobs_scanned_twice += n,
            Event::Warning(w) => {
                *summary.warnings.entry(w.kind.as_str()).or_default() += 1;
                sink.warning(&w)?;
            }
            Event::Scanned { bytes } => {
                summary.files_scanned += 1;
                summary.bytes_scanned += bytes;
            }
            Event::Unpacked(stats) => {
                summary.archives_opened += stats.archives;
                summary.members_scanned += stats.members;
                summary.bytes_unpacked += stats.bytes_unpacked;
                summary.budget_hits += stats.budget_hits;
                summary.corrupt_inputs += stats.corrupt;
                summary.members_reused += stats.members_reused;
            }
            Event::Filtered => summary.files_filtered += 1,
            Event::OtherShard => summary.files_other_shard += 1,
            Event::SymlinkSkipped => summary.symlinks_skipped += 1,
        }
        Ok(true)
    }
}
