//! `keysweep merge`: the reports of a sharded scan as one, each finding once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Reads findings from a JSON Lines report or a JSON array report.
fn findings(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&text) {
        return Ok(items);
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}:{}: not a finding", path.display(), i + 1)))
        .collect()
}

/// Whether `path` is a SQLite database (a datastore) rather than a report.
fn is_datastore(path: &Path) -> bool {
    let mut magic = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok_and(|()| &magic == b"SQLite format 3\0")
}

/// Merges datastores into `output` (created if missing): inputs, blobs, findings and runs,
/// each blob's findings once.
fn merge_datastores(stores: &[std::path::PathBuf], output: &Path) -> Result<i32> {
    let target = keysweep::Datastore::open(output).with_context(|| format!("opening {}", output.display()))?;
    for store in stores {
        anyhow::ensure!(
            std::fs::canonicalize(store).ok() != std::fs::canonicalize(output).ok(),
            "{} is the output itself",
            store.display()
        );
        target
            .absorb(store)
            .with_context(|| format!("merging {}", store.display()))?;
    }
    let totals = target.totals()?;
    eprintln!(
        "keysweep: merged {} datastores into {}: {} inputs, {} blobs, {} stored findings",
        stores.len(),
        output.display(),
        totals.inputs,
        totals.blobs,
        totals.stored_findings
    );
    Ok(0)
}

/// Writes the merged report: findings ordered by place, each fingerprint once (the
/// fingerprint names rule, secret, path chain, decoders and offset: the same finding in two
/// reports is one finding).
pub fn run(reports: &[std::path::PathBuf], output: Option<&Path>) -> Result<i32> {
    let stores = reports.iter().filter(|r| is_datastore(r)).count();
    if stores > 0 {
        if stores < reports.len() {
            bail!("merge either reports or datastores, not both");
        }
        let Some(output) = output else {
            bail!("merging datastores needs -o OUTPUT (the datastore to merge into)");
        };
        return merge_datastores(reports, output);
    }
    let mut merged: BTreeMap<(String, u64, String), Value> = BTreeMap::new();
    let mut read = 0usize;
    for report in reports {
        for f in findings(report)? {
            let Some(fingerprint) = f.get("fingerprint").and_then(Value::as_str).map(str::to_owned) else {
                bail!(
                    "{}: a finding without a fingerprint: not a keysweep report",
                    report.display()
                );
            };
            let place = f
                .pointer("/location/path")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let members = f.pointer("/location/members").map(Value::to_string).unwrap_or_default();
            let offset = f.pointer("/location/offset").and_then(Value::as_u64).unwrap_or(0);
            read += 1;
            merged
                .entry((place + "\0" + &members, offset, fingerprint))
                .or_insert(f);
        }
    }
    let mut out: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    for f in merged.values() {
        serde_json::to_writer(&mut out, f)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    eprintln!(
        "keysweep: merged {} reports: {} findings read, {} unique",
        reports.len(),
        read,
        merged.len()
    );
    Ok(0)
}
