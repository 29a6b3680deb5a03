//! `keysweep rules list` and `keysweep rules check`.

use std::io::Write;

use anyhow::Result;
use keysweep::{Confidence, ScannerOptions};

use crate::args::RulesArgs;
use crate::rules_load::{rule_set, scanner};

/// Prints the rules, one per line.
pub fn list(args: &RulesArgs, json: bool, markdown: bool) -> Result<i32> {
    let rules = rule_set(args)?;
    let mut out = std::io::stdout().lock();
    if markdown {
        out.write_all(markdown_table(&rules).as_bytes())?;
        return Ok(0);
    }
    for rule in rules.rules() {
        let s = &rule.syntax;
        if json {
            let v = serde_json::json!({
                "id": s.id, "name": s.name, "confidence": s.confidence,
                "validator": s.validator, "references": s.references,
                "source": rule.source.display().to_string(),
            });
            writeln!(out, "{v}")?;
        } else {
            writeln!(out, "{:<44} {:<7} {}", s.id, s.confidence.as_str(), s.name)?;
        }
    }
    Ok(0)
}

/// The README's rule table: one row per rule, its name linked to the provider's format.
pub fn markdown_table(rules: &keysweep::RuleSet) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut text = format!(
        "{} rules.\n\n| file | id | confidence | check | what it finds |\n| --- | --- | --- | --- | --- |\n",
        rules.len()
    );
    for rule in rules.rules() {
        let s = &rule.syntax;
        let file = rule
            .source
            .file_stem()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let check = s
            .validator
            .and_then(|v| serde_json::to_value(v).ok())
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let name = match s.references.first() {
            Some(url) => format!("[{}]({})", cell(&s.name), url),
            None => cell(&s.name),
        };
        text.push_str(&format!(
            "| {file} | `{}` | {} | {} | {name} |\n",
            s.id,
            s.confidence.as_str(),
            if check.is_empty() {
                String::new()
            } else {
                format!("`{check}`")
            }
        ));
    }
    text
}

/// The name examples are scanned under: no extension, so no view chosen by file name.
const EXAMPLE_NAME: &str = "<example>";

/// Verifies every rule; prints each problem and exits 1 if there is any.
pub fn check(args: &RulesArgs) -> Result<i32> {
    let rules = rule_set(args)?;
    let mut problems = Vec::new();
    for err in keysweep::check_each_rule(&rules) {
        problems.push(err.to_string());
    }
    if !problems.is_empty() {
        return report(&problems, rules.len());
    }
    // Examples go through the scan's one entry point, views and decoders included, at every
    // confidence; each rule must find its own examples, even where a more specific rule
    // also does.
    let options = ScannerOptions {
        min_confidence: Confidence::Low,
        max_findings_per_file_and_rule: None,
        report_every_rule: true,
        ..ScannerOptions::default()
    };
    let scanner = scanner(rules.clone(), options, true)?;
    for rule in rules.rules() {
        let s = &rule.syntax;
        let at = format!("{}: rule {:?}", rule.source.display(), s.id);
        if s.examples.len() < 2 {
            problems.push(format!("{at}: needs at least 2 examples, has {}", s.examples.len()));
        }
        if s.negative_examples.is_empty() {
            problems.push(format!("{at}: needs at least 1 negative example"));
        }
        if s.references.is_empty() {
            problems.push(format!("{at}: needs a reference to the documented format"));
        }
        for (i, example) in s.examples.iter().enumerate() {
            let findings = scanner.scan_bytes(EXAMPLE_NAME, example.as_bytes())?.findings;
            if !findings.iter().any(|f| f.rule.id == s.id) {
                problems.push(format!("{at}: example {} is not found: {example:?}", i + 1));
            }
        }
        for (i, example) in s.negative_examples.iter().enumerate() {
            let findings = scanner.scan_bytes(EXAMPLE_NAME, example.as_bytes())?.findings;
            if let Some(f) = findings.iter().find(|f| f.rule.id == s.id) {
                problems.push(format!(
                    "{at}: negative example {} is found (secret {:?}): {example:?}",
                    i + 1,
                    f.secret
                ));
            }
        }
    }
    report(&problems, rules.len())
}

fn report(problems: &[String], count: usize) -> Result<i32> {
    if problems.is_empty() {
        println!("{count} rules OK");
        return Ok(0);
    }
    for p in problems {
        eprintln!("keysweep: {p}");
    }
    eprintln!("keysweep: {} problem(s) in {count} rules", problems.len());
    Ok(1)
}
