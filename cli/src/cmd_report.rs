//! `keysweep report`: the findings a datastore holds, printed without scanning.

use anyhow::{Context, Result};
use std::sync::Arc;

use keysweep::{Confidence, Datastore, FindingFilter, ReportFilter, Summary, Verdict};

use crate::args::{ConfidenceArg, ReportArgs};
use crate::rules_load::rule_set;

/// Prints the findings (or, with `--stats`, the totals and runs).
pub fn run(args: &ReportArgs) -> Result<i32> {
    anyhow::ensure!(
        args.datastore.is_file(),
        "{}: no such datastore",
        args.datastore.display()
    );
    let store = Datastore::open(&args.datastore).context("opening the datastore")?;
    if args.stats {
        let stats = serde_json::json!({
            "totals": store.totals()?,
            "runs": store.runs()?,
        });
        println!("{}", serde_json::to_string_pretty(&stats)?);
        return Ok(0);
    }
    let rules = rule_set(&args.rules)?;
    let mut sink = crate::output::sink(args.format, args.output.as_deref(), args.redact, args.color, &rules)?;
    let min = match args.confidence {
        ConfidenceArg::Low => Confidence::Low,
        ConfidenceArg::Medium => Confidence::Medium,
        ConfidenceArg::High => Confidence::High,
    };
    let filter = FindingFilter {
        rules: args.rule.clone(),
        package: args.package.as_deref().map(keysweep::normalize_name),
    };
    // As the scan reports: the same confidence filter, allowlist, baseline and inline allows.
    // The cap was applied when the datastore recorded the findings.
    let suppressions = Arc::new(crate::cmd_scan::suppressions(&args.suppression)?);
    let mut report_filter = ReportFilter::new(min, suppressions, None);
    let mut summary = Summary::default();
    sink.begin()?;
    store.for_each_finding(
        &filter,
        &mut |finding| match report_filter.judge(&finding, &mut summary) {
            Verdict::Report => sink.finding(&finding),
            Verdict::Hold => Ok(true),
            Verdict::HoldAndWarn(w) => sink.warning(&w).map(|()| true),
        },
    )?;
    sink.finish(&summary)?;
    Ok(0)
}
