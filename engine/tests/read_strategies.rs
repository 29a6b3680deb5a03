//! Every read strategy (buffer, mmap, chunked stream) finds the same secrets at the same
//! positions, including a secret that straddles a stream chunk boundary.

use std::path::{Path, PathBuf};

use keysweep::{parse_rule_file, LoadPolicy};
use keysweep::{CollectSink, Confidence, RuleSet, RunOptions, Scanner, ScannerOptions};

const RULES: &str = r#"
[[rule]]
id = "acme.key"
name = "Acme key"
pattern = '''\b(?P<secret>acme_[a-z0-9]{20})\b'''
confidence = "high"

[[rule]]
id = "acme.live"
name = "Acme live key (variable length)"
pattern = '''\b(?P<secret>acmelive_[a-zA-Z0-9]{10,90})\b'''
confidence = "high"

[[rule]]
id = "acme.password"
name = "Acme password in context"
pattern = '''(?i)acme_password\s*=\s*"(?P<secret>[^"\s]{12,64})"'''
prefilter = '''(?i)acme_password'''
confidence = "medium"
"#;

/// Every finding, at every confidence, without a per-file cap.
fn every_finding() -> ScannerOptions {
    ScannerOptions {
        min_confidence: Confidence::Low,
        max_findings_per_file_and_rule: None,
        ..ScannerOptions::default()
    }
}

fn engine() -> Scanner {
    let rules = parse_rule_file(Path::new("acme.toml"), RULES).expect("rules");
    Scanner::new(RuleSet::from_rules(rules).expect("set"), every_finding()).expect("engine")
}

fn scan(engine: &Scanner, path: &Path, load: LoadPolicy) -> Vec<(String, String, u64, u64, u64)> {
    let options = RunOptions {
        threads: 1,
        load,
        ..RunOptions::default()
    };
    let mut sink = CollectSink::default();
    let summary = engine
        .scan_paths(&[PathBuf::from(path)], &options, &mut sink)
        .expect("scan");
    assert_eq!(summary.files_scanned, 1);
    let mut out: Vec<_> = sink
        .findings
        .into_iter()
        .map(|f| {
            (
                f.rule.id,
                f.secret,
                f.location.offset,
                f.location.line,
                f.location.column,
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn buffer_mmap_and_stream_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.txt");
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!("line {i} filler filler filler\n"));
    }
    // Chunks are 97 bytes in the streamed run: place secrets so some straddle a boundary.
    text.push_str("x = acme_k3j5h7g9f1d3s5a7q9w1\n");
    text.push_str("    ACME_PASSWORD = \"Zq8-Wm3!Lr5@Tx\"\n");
    for i in 0..50 {
        text.push_str(&format!("more {i}\n"));
    }
    text.push_str("acme_p0o9i8u7y6t5r4e3w2q1");
    std::fs::write(&path, &text).expect("write");

    let engine = engine();
    let buffered = scan(
        &engine,
        &path,
        LoadPolicy {
            read_max: u64::MAX,
            ..LoadPolicy::default()
        },
    );
    let mapped = scan(
        &engine,
        &path,
        LoadPolicy {
            read_max: 0,
            ..LoadPolicy::default()
        },
    );
    let streamed = scan(
        &engine,
        &path,
        LoadPolicy {
            read_max: 0,
            map_max: 0,
            chunk: 97,
            ..LoadPolicy::default()
        },
    );
    assert_eq!(buffered.len(), 3, "{buffered:?}");
    assert_eq!(buffered, mapped);
    assert_eq!(buffered, streamed);
    let key = &buffered
        .iter()
        .find(|f| f.1 == "acme_k3j5h7g9f1d3s5a7q9w1")
        .expect("key");
    assert_eq!((key.3, key.4), (201, 5));
    let password = &buffered.iter().find(|f| f.0 == "acme.password").expect("password");
    assert_eq!(
        (password.1.as_str(), password.3, password.4),
        ("Zq8-Wm3!Lr5@Tx", 202, 22)
    );
    let last = &buffered
        .iter()
        .find(|f| f.1 == "acme_p0o9i8u7y6t5r4e3w2q1")
        .expect("last");
    assert_eq!((last.3, last.4), (253, 1));
}

#[test]
fn the_same_secret_at_one_place_is_reported_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dense.txt");
    // Hundreds of triggers whose windows overlap: each secret once.
    let text: String = (0..300)
        .map(|i| format!("acme_{:020}\n", 10_000_000_000_000_000u64 + i * 7919))
        .collect();
    std::fs::write(&path, text).expect("write");
    let found = scan(&engine(), &path, LoadPolicy::default());
    assert_eq!(found.len(), 300);
    let mut offsets: Vec<u64> = found.iter().map(|f| f.2).collect();
    offsets.dedup();
    assert_eq!(offsets.len(), 300);
}

#[test]
fn database_cache_is_written_reused_and_survives_corruption() {
    let cache = tempfile::tempdir().expect("tempdir");
    let rules = || RuleSet::from_rules(parse_rule_file(Path::new("acme.toml"), RULES).expect("rules")).expect("set");
    let build = |what: &str| Scanner::with_cache(rules(), every_finding(), Some(cache.path())).expect(what);
    let probe = |scanner: &Scanner| {
        let found = scanner
            .scan_bytes("x", b"k = acme_k3j5h7g9f1d3s5a7q9w1\n")
            .expect("scan")
            .findings;
        assert_eq!(found.len(), 1);
    };
    probe(&build("first build"));
    let files: Vec<_> = std::fs::read_dir(cache.path())
        .expect("cache dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].extension().is_some_and(|e| e == "hsdb"));
    probe(&build("cached build"));
    // A truncated or foreign cache file is ignored and replaced, never trusted.
    std::fs::write(&files[0], b"not a database").expect("corrupt");
    probe(&build("rebuild"));
    assert!(std::fs::metadata(&files[0]).expect("cache file").len() > 100);
}

#[test]
fn merged_windows_cut_at_the_cap_never_yield_truncated_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dense.txt");
    // Triggers every 300 bytes merge into windows that the 1 MiB cap must cut; a cut inside a
    // variable-length token must not report a truncated copy of it.
    let mut rng = fastrand::Rng::with_seed(7);
    let alphabet: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
    let mut text = String::new();
    let mut tokens = Vec::new();
    for _ in 0..5_000 {
        let token: String = (0..90).map(|_| alphabet[rng.usize(..alphabet.len())]).collect();
        text.push_str(&format!("{:<300}\n", format!("k = acmelive_{token}")));
        tokens.push(format!("acmelive_{token}"));
    }
    std::fs::write(&path, text).expect("write");
    let found = scan(&engine(), &path, LoadPolicy::default());
    let secrets: Vec<&str> = found.iter().map(|f| f.1.as_str()).collect();
    assert_eq!(secrets.len(), tokens.len(), "duplicates or losses");
    let mut expected: Vec<&str> = tokens.iter().map(String::as_str).collect();
    expected.sort_unstable();
    let mut got = secrets.clone();
    got.sort_unstable();
    assert_eq!(got, expected);
}

#[test]
fn a_sink_that_says_stop_receives_nothing_more() {
    struct FirstOnly(usize);
    impl keysweep::Sink for FirstOnly {
        fn finding(&mut self, _: &keysweep::Finding) -> std::io::Result<bool> {
            self.0 += 1;
            Ok(false)
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..50 {
        std::fs::write(
            dir.path().join(format!("f{i}.txt")),
            format!("acme_k3j5h7g9f1d3s5a7q{i:03}\n"),
        )
        .expect("write");
    }
    let mut sink = FirstOnly(0);
    let options = RunOptions {
        threads: 2,
        ..RunOptions::default()
    };
    engine()
        .scan_paths(&[dir.path().to_owned()], &options, &mut sink)
        .expect("scan");
    assert_eq!(sink.0, 1);
}

#[test]
fn dense_tokens_across_stream_chunks_are_reported_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dense-stream.txt");
    let mut rng = fastrand::Rng::with_seed(11);
    let alphabet: Vec<char> = ('a'..='z').chain('0'..='9').collect();
    let mut text = String::new();
    let mut expected = Vec::new();
    for i in 0..400 {
        let token: String = (0..20).map(|_| alphabet[rng.usize(..alphabet.len())]).collect();
        // Tokens 30 to 60 bytes apart: windows of one rule chain across many chunks.
        text.push_str(&format!("{} acme_{token}\n", "x".repeat(i % 31)));
        expected.push(format!("acme_{token}"));
    }
    std::fs::write(&path, &text).expect("write");
    let engine = engine();
    let buffered = scan(&engine, &path, LoadPolicy::default());
    let streamed = scan(
        &engine,
        &path,
        LoadPolicy {
            read_max: 0,
            map_max: 0,
            chunk: 97,
            ..LoadPolicy::default()
        },
    );
    assert_eq!(buffered.len(), 400);
    assert_eq!(streamed, buffered, "streamed findings differ (duplicates or losses)");
}
