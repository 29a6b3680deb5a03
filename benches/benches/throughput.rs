//! Engine throughput with the full shipped rule set on source-like text.
//!
//! The corpus is synthetic but shaped like a package tree: Python modules, config files and
//! docs, with a few planted secrets, so candidate windows and validation are exercised.
//! `baseline/memchr` counts newlines over the same bytes: a memory-bandwidth reference
//! measured in the same run, so results can be read as a ratio on a noisy machine.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keysweep::{Confidence, RuleSet, Scanner, ScannerOptions};

/// About 8 MiB of Python/config-like text with a secret every ~64 KiB.
fn source_like_corpus() -> Vec<u8> {
    let module = r#"import os
import logging
from typing import Optional

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30
API_BASE = os.environ.get("SERVICE_URL", "http://localhost:8080")


class Client:
    """A small HTTP client with retries and a token taken from the environment."""

    def __init__(self, token: Optional[str] = None, timeout: int = DEFAULT_TIMEOUT):
        self.token = token or os.environ.get("SERVICE_TOKEN")
        self.timeout = timeout
        self.session = None

    def request(self, method, path, **kwargs):
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        logger.debug("%s %s", method, path)
        return self.session.request(method, API_BASE + path, headers=headers, timeout=self.timeout)

[tool.setuptools]
packages = ["client"]
password_file = "/etc/client/password"
# Settings: see docs/configuration.md for every key and its default value.
"#;
    // A checksum-valid GitHub token built at run time, and an AWS key id, every ~64 KiB.
    let random = "q8Zr2LmW5vXc9TbN4kPd7HsJ3fGa6Y";
    let checksum = keysweep::checks::base62(u64::from(crc32fast::hash(random.as_bytes())), 6);
    let secret_line =
        format!("GITHUB_TOKEN = \"ghp_{random}{checksum}\"\nAWS_ACCESS_KEY_ID = \"AKIA2E0A8F3B7K4C9QZ6\"\n");
    let mut out = Vec::with_capacity(9 << 20);
    let mut i = 0;
    while out.len() < 8 << 20 {
        out.extend_from_slice(module.as_bytes());
        i += 1;
        if i % 64 == 0 {
            out.extend_from_slice(secret_line.as_bytes());
        }
    }
    out
}

fn throughput(c: &mut Criterion) {
    // The matcher and validator alone: raw bytes, no containers or views, every finding.
    let raw = ScannerOptions {
        min_confidence: Confidence::Low,
        archives: None,
        decode_depth: 0,
        max_findings_per_file_and_rule: None,
        ..ScannerOptions::default()
    };
    let cache = keysweep::default_cache_dir();
    let engine =
        Scanner::with_cache(RuleSet::builtin().expect("builtin rules"), raw, cache.as_deref()).expect("engine");
    // What `keysweep scan` does with such a file: views and decoders too.
    let full = Scanner::with_cache(
        RuleSet::builtin().expect("builtin rules"),
        ScannerOptions::default(),
        cache.as_deref(),
    )
    .expect("engine");
    let corpus = source_like_corpus();
    let mut group = c.benchmark_group("scan");
    group.throughput(Throughput::Bytes(corpus.len() as u64));
    group.sample_size(20);
    group.bench_function(BenchmarkId::new("baseline", "count-newlines"), |b| {
        b.iter(|| count_newlines(&corpus))
    });
    // A bench that finds nothing measures nothing: the planted tokens must come out.
    let found = engine.scan_bytes("bench", &corpus).expect("scan").findings;
    assert!(
        found.iter().any(|f| f.rule.id == "github.pat.classic"),
        "planted token not found among {} findings: {:?}",
        found.len(),
        found
            .iter()
            .take(5)
            .map(|f| (&f.rule.id, &f.secret))
            .collect::<Vec<_>>()
    );
    group.bench_function(
        BenchmarkId::new("engine", format!("{}-rules", engine.rules().len())),
        |b| b.iter(|| engine.scan_bytes("bench", &corpus).expect("scan").findings.len()),
    );
    group.bench_function(BenchmarkId::new("scan_bytes", "views-and-decoders"), |b| {
        b.iter(|| full.scan_bytes("bench.py", &corpus).expect("scan").findings.len())
    });
    group.finish();
}

fn count_newlines(data: &[u8]) -> usize {
    data.iter().filter(|&&b| b == b'\n').count()
}

criterion_group!(benches, throughput);
criterion_main!(benches);
