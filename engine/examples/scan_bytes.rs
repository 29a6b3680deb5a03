//! Using the engine as a library: build it from the shipped rules, scan a buffer, then scan
//! a directory with worker threads into a sink.
//!
//! `cargo run -p keysweep-engine --example scan_bytes -- [DIR]`

use keysweep::{CollectSink, Engine, EngineOptions, Provenance, RuleSet, ScanOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::new(RuleSet::builtin()?, &EngineOptions::with_default_cache())?;
    println!("{} rules compiled", engine.rules().len());

    // A GitHub token with a valid checksum, built at run time.
    let random = "q8Zr2LmW5vXc9TbN4kPd7HsJ3fGa6Y";
    let token = format!(
        "ghp_{random}{}",
        keysweep::checks::base62(u64::from(crc32fast::hash(random.as_bytes())), 6)
    );
    let text = format!("import requests\nHEADERS = {{'Authorization': 'token {token}'}}\n");
    let mut scanner = engine.blob_scanner()?;
    for f in scanner.scan(text.as_bytes(), Provenance::file("inline.py"))? {
        println!(
            "{}:{}:{} {} {}",
            f.location.path, f.location.line, f.location.column, f.rule.id, f.secret
        );
    }

    if let Some(dir) = std::env::args_os().nth(1) {
        let mut sink = CollectSink::default();
        let summary = engine.scan_paths(&[dir.into()], &ScanOptions::default(), &mut sink)?;
        println!(
            "{} files, {} bytes, {} findings, {} warnings",
            summary.files_scanned,
            summary.bytes_scanned,
            sink.findings.len(),
            sink.warnings.len()
        );
    }
    Ok(())
}
