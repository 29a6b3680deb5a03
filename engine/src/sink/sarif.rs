//! SARIF 2.1.0, as GitHub code scanning accepts it: one run, every rule in the driver,
//! one result per finding with a physical location and a stable partial fingerprint.

use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};

use super::prepared;
use crate::core::{Confidence, Finding, Sink, Summary};
use crate::rules::RuleSet;

/// Collects findings and writes one SARIF log at the end.
pub struct SarifSink<W: Write> {
    out: W,
    redact: bool,
    rules: Vec<Value>,
    rule_index: std::collections::HashMap<String, usize>,
    results: Vec<Value>,
    cwd: Option<PathBuf>,
}

impl<W: Write> SarifSink<W> {
    /// A sink over `out` describing `rules` in the tool driver.
    pub fn new(out: W, redact: bool, rules: &RuleSet) -> Self {
        let mut rule_index = std::collections::HashMap::new();
        let rules = rules
            .rules()
            .iter()
            .enumerate()
            .map(|(i, r)| {
                rule_index.insert(r.id().to_owned(), i);
                let mut rule = json!({
                    "id": r.id(),
                    "name": r.syntax.name,
                    "shortDescription": { "text": r.syntax.name },
                    "fullDescription": { "text": format!("{} ({} confidence)", r.syntax.name, r.syntax.confidence) },
                    "defaultConfiguration": { "level": level(r.syntax.confidence) },
                    "properties": { "tags": ["security", "secret"], "precision": precision(r.syntax.confidence) },
                });
                if let Some(uri) = r.syntax.references.first() {
                    rule["helpUri"] = json!(uri);
                }
                rule
            })
            .collect();
        SarifSink {
            out,
            redact,
            rules,
            rule_index,
            results: Vec::new(),
            cwd: std::env::current_dir().ok(),
        }
    }
}

fn level(c: Confidence) -> &'static str {
    match c {
        Confidence::High => "error",
        Confidence::Medium => "warning",
        Confidence::Low => "note",
    }
}

fn precision(c: Confidence) -> &'static str {
    match c {
        Confidence::High => "high",
        Confidence::Medium => "medium",
        Confidence::Low => "low",
    }
}

/// Percent-encodes a path for a URI, keeping separators.
fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A URI for a finding's file: relative to the working directory when under it (what code
/// scanning resolves against the repository), else an absolute `file://` URI.
fn uri_of(path: &str, cwd: Option<&Path>) -> String {
    let p = Path::new(path);
    let absolute: PathBuf = match cwd {
        Some(cwd) if p.is_relative() => cwd.join(p),
        _ => p.to_owned(),
    };
    let normal = normalize(&absolute);
    if let Some(rel) = cwd.and_then(|cwd| normal.strip_prefix(cwd).ok()) {
        return percent_encode(&rel.to_string_lossy());
    }
    if normal.is_absolute() {
        return format!("file://{}", percent_encode(&normal.to_string_lossy()));
    }
    percent_encode(&normal.to_string_lossy())
}

/// Removes `.` and resolves `..` lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

impl<W: Write> Sink for SarifSink<W> {
    fn finding(&mut self, finding: &Finding) -> io::Result<bool> {
        let f = prepared(finding, self.redact);
        let loc = &f.location;
        let mut message = format!("{} found", f.rule.name);
        if !loc.members.is_empty() {
            message.push_str(&format!(" in {}", loc.members.join(" → ")));
        }
        let mut result = json!({
            "ruleId": f.rule.id,
            "level": level(f.confidence),
            "message": { "text": message },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": { "uri": uri_of(&loc.path, self.cwd.as_deref()) },
                    // No startColumn: ours counts bytes, SARIF's counts UTF-16 code units.
                    "region": {
                        "startLine": loc.line,
                        "snippet": { "text": f.snippet },
                    }
                }
            }],
            "partialFingerprints": { "keysweep/v1": f.fingerprint },
            "properties": {
                "confidence": f.confidence.as_str(),
                "validation": f.validation.status,
                "secretSha256": f.secret_sha256,
                "members": loc.members,
                "decoders": loc.decoders,
                "context": f.context.map(|c| c.as_str()),
            }
        });
        if let Some(&i) = self.rule_index.get(&f.rule.id) {
            result["ruleIndex"] = json!(i);
        }
        self.results.push(result);
        Ok(true)
    }

    fn finish(&mut self, _summary: &Summary) -> io::Result<()> {
        let log = json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": { "driver": {
                    "name": "keysweep",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": self.rules,
                }},
                "results": std::mem::take(&mut self.results),
            }]
        });
        serde_json::to_writer_pretty(&mut self.out, &log)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn uris_are_relative_to_the_working_directory_or_absolute() {
        let cwd = Some(Path::new("/work/repo"));
        assert_eq!(super::uri_of("./a b/c#d.py", cwd), "a%20b/c%23d.py");
        assert_eq!(super::uri_of("/work/repo/src/x.py", cwd), "src/x.py");
        assert_eq!(super::uri_of("../other/x.py", cwd), "file:///work/other/x.py");
        assert_eq!(super::uri_of("/etc/app.conf", cwd), "file:///etc/app.conf");
    }
}
