//! The library's one entry point on files read into memory: each file's bytes go through
//! `Scanner::scan_bytes` under its path, and the findings come out as JSON Lines in exactly
//! the schema of `keysweep scan -f jsonl` (warnings on standard error).
//!
//! `cargo run --release -p keysweep-engine --example scan_bytes -- FILE...`

use std::io::Write;

use keysweep::{RuleSet, Scanner, ScannerOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = keysweep::default_cache_dir();
    let scanner = Scanner::with_cache(RuleSet::builtin()?, ScannerOptions::default(), cache.as_deref())?;
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let found = scan_files(&scanner, &paths, &mut std::io::stdout().lock())?;
    std::process::exit(i32::from(found));
}

/// Writes the findings of each file as JSON Lines; true when there is any.
fn scan_files(scanner: &Scanner, paths: &[String], out: &mut dyn Write) -> Result<bool, Box<dyn std::error::Error>> {
    let mut found = false;
    for path in paths {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("scan_bytes: {path}: {e}");
                continue;
            }
        };
        let report = scanner.scan_bytes(path, &bytes)?;
        for warning in &report.warnings {
            eprintln!("scan_bytes: warning: {}: {}", warning.path, warning.message);
        }
        for finding in &report.findings {
            writeln!(out, "{}", serde_json::to_string(finding)?)?;
            found = true;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo test` runs this (the example is built with `test = true`): a wheel-like zip
    /// would need a zip writer, so a base64-wrapped token shows the views at work instead.
    #[test]
    fn prints_one_json_line_per_finding() {
        use base64::Engine as _;
        let body = "Xw7pK2mR9sT4vB6nC8qL1zD3fG5hJ0";
        let token = format!(
            "ghp_{body}{}",
            keysweep::checks::base62(u64::from(crc32fast::hash(body.as_bytes())), 6)
        );
        let wrapped = base64::engine::general_purpose::STANDARD.encode(format!("token={token}\n"));
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("blob.txt");
        std::fs::write(&file, format!("payload: {wrapped}\n")).expect("write");
        let scanner = Scanner::new(RuleSet::builtin().expect("rules"), ScannerOptions::default()).expect("scanner");
        let mut out = Vec::new();
        let path = file.display().to_string();
        assert!(scan_files(&scanner, std::slice::from_ref(&path), &mut out).expect("scan"));
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["rule"]["id"], "github.pat.classic");
        assert_eq!(lines[0]["secret"], token);
        assert_eq!(lines[0]["location"]["path"], path);
        assert_eq!(lines[0]["location"]["decoders"], serde_json::json!(["base64"]));
    }
}
