//! `keysweep report`: the findings a datastore holds, printed without scanning.

use anyhow::{Context, Result};
use keysweep::datastore::{Datastore, FindingFilter};
use keysweep::{Confidence, Summary};

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
        package: args.package.as_deref().map(keysweep::core::normalize_name),
    };
    // As the scan reports: the same confidence filter, allowlist, baseline and inline allows.
    let suppressions = crate::cmd_scan::suppressions(&args.suppression)?;
    let mut summary = Summary::default();
    sink.begin()?;
    store.for_each_finding(&filter, &mut |finding| {
        if finding.confidence < min {
            summary.findings_below_threshold += 1;
            return Ok(true);
        }
        if let Some(reason) = suppressions.reason(&finding) {
            *summary.findings_suppressed.entry(reason.as_str()).or_default() += 1;
            return Ok(true);
        }
        summary.findings += 1;
        *summary.findings_per_rule.entry(finding.rule.id.clone()).or_default() += 1;
        sink.finding(&finding)
    })?;
    sink.finish(&summary)?;
    Ok(0)
}
