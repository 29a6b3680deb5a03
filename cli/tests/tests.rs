//! Integration tests: the `keysweep` binary on fixtures built inside each test.

mod archives;
mod datastore;
mod findings;
mod identity;
mod suppression;
mod util;
mod views;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use util::{jsonl, keysweep, rule_ids, run, run_with_deadline, Secrets};

fn write(dir: &Path, name: &str, content: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(&path, content).expect("write fixture");
    path
}

fn scan_jsonl(args: &[&std::ffi::OsStr]) -> (std::process::Output, Vec<serde_json::Value>) {
    let mut cmd = keysweep();
    cmd.args(["scan", "--format", "jsonl", "-j", "2"]).args(args);
    let out = run(cmd);
    let findings = jsonl(&out);
    (out, findings)
}

#[test]
fn finds_secrets_with_positions_and_exit_code_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let ghp = s.github_classic("ghp_");
    let key_id = s.aws_key_id();
    let secret = s.aws_secret();
    write(
        dir.path(),
        "app/settings.py",
        &format!("import os\n\nDEBUG = True\nGITHUB_TOKEN = \"{ghp}\"\n"),
    );
    write(
        dir.path(),
        ".env",
        &format!("AWS_ACCESS_KEY_ID={key_id}\nAWS_SECRET_ACCESS_KEY={secret}\n"),
    );
    write(dir.path(), "clean.txt", "nothing to see here\n");
    let (out, findings) = scan_jsonl(&[dir.path().as_os_str()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gh = findings
        .iter()
        .find(|f| f["secret"] == ghp.as_str())
        .unwrap_or_else(|| panic!("github token not found in {findings:#?}"));
    assert!(gh["rule"]["id"].as_str().unwrap_or_default().starts_with("github."));
    assert_eq!(gh["location"]["line"], 4);
    assert_eq!(gh["location"]["column"], 17);
    assert_eq!(gh["validation"]["status"], "checksum_valid");
    assert_eq!(gh["confidence"], "high");
    assert!(gh["location"]["path"]
        .as_str()
        .unwrap_or_default()
        .ends_with("app/settings.py"));
    assert_eq!(gh["fingerprint"].as_str().map(str::len), Some(32));
    assert!(findings.iter().any(|f| f["secret"] == key_id.as_str()), "{findings:#?}");
    assert!(findings.iter().any(|f| f["secret"] == secret.as_str()), "{findings:#?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("3 files"), "summary: {stderr}");
}

#[test]
fn clean_tree_exits_0_and_exit_zero_masks_findings() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a.py", "print('hello')\n");
    let (out, findings) = scan_jsonl(&[dir.path().as_os_str()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(findings.is_empty());

    let token = Secrets::new().github_classic("ghs_");
    write(dir.path(), "b.py", &format!("t = '{token}'\n"));
    let mut cmd = keysweep();
    cmd.args(["scan", "--exit-zero", "--quiet"]).arg(dir.path());
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&token),
        "pretty output names the secret"
    );
}

#[test]
fn wrong_checksum_and_documented_examples_are_not_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let wrong = s.github_wrong_checksum();
    write(
        dir.path(),
        "docs.md",
        &format!(
            "token = \"{wrong}\"\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n\
             aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n\
             GITHUB_TOKEN=${{GITHUB_TOKEN}}\napi_key = \"<your-token>\"\n"
        ),
    );
    let (out, findings) = scan_jsonl(&[dir.path().as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{findings:#?}");
}

#[test]
fn bare_hex_github_token_in_keyword_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hex = Secrets::new().hex(40);
    write(
        dir.path(),
        "fetch.py",
        &format!("def main():\n    data = _fetch_github_file(access_token=\"{hex}\")\n"),
    );
    let (_, findings) = scan_jsonl(&[dir.path().as_os_str()]);
    assert!(findings.iter().any(|f| f["secret"] == hex.as_str()), "{findings:#?}");
    // A commit SHA in a URL is not a token.
    let sha = Secrets::new().hex(40);
    write(
        dir.path(),
        "fetch.py",
        &format!("url = 'https://github.com/org/repo/commit/{sha}'\n"),
    );
    let (_, findings) = scan_jsonl(&[dir.path().as_os_str()]);
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn json_and_sarif_formats_parse_and_sarif_validates_against_the_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = Secrets::new().github_classic("ghp_");
    write(
        dir.path(),
        "dir with space/conf.yml",
        &format!("github:\n  token: {token}\n"),
    );
    let mut cmd = keysweep();
    cmd.args(["scan", "--format", "json"]).arg(dir.path());
    let out = run(cmd);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON array");
    assert_eq!(doc.as_array().map(Vec::len), Some(1));

    let mut cmd = keysweep();
    cmd.args(["scan", "--format", "sarif"]).arg(dir.path());
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).expect("SARIF JSON");
    let schema: serde_json::Value = serde_json::from_str(include_str!("data/sarif-schema-2.1.0.json")).expect("schema");
    let validator = jsonschema::draft4::new(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "SARIF invalid: {errors:#?}");
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["locations"][0]["physicalLocation"]["region"]["startLine"], 2);
    let uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap_or_default();
    assert!(uri.ends_with("dir%20with%20space/conf.yml"), "{uri}");
    let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
    assert_eq!(
        sarif["runs"][0]["tool"]["driver"]["rules"][index]["id"],
        result["ruleId"]
    );
}

#[test]
fn redact_hides_secrets_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = Secrets::new().github_classic("gho_");
    write(dir.path(), "a.cfg", &format!("oauth = {token}\n"));
    // A multi-line secret must not survive in the snippet either.
    let key = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
        .output()
        .expect("openssl");
    let pem = String::from_utf8(key.stdout).expect("pem");
    let body_line = pem.lines().nth(1).expect("pem body").to_owned();
    write(dir.path(), "key.pem", &pem);
    let report = tempfile::tempdir().expect("tempdir");
    for format in ["pretty", "json", "jsonl", "sarif"] {
        let output = report.path().join(format!("report.{format}"));
        let mut cmd = keysweep();
        cmd.args(["scan", "--redact", "--format", format, "--output"])
            .arg(&output)
            .arg(dir.path());
        let out = run(cmd);
        assert_eq!(out.status.code(), Some(1), "{format}");
        assert!(out.stdout.is_empty(), "--output leaves standard output empty");
        let text = fs::read_to_string(&output).expect("report file");
        assert!(!text.contains(&token), "{format} leaks the secret: {text}");
        assert!(!text.contains(&body_line[..40]), "{format} leaks the key body: {text}");
        assert!(
            text.contains("sha256:") || text.contains("secretSha256"),
            "{format}: {text}"
        );
    }
}

#[test]
fn special_files_broken_links_and_vanished_paths_are_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = Secrets::new().github_classic("ghp_");
    write(dir.path(), "real.txt", &format!("token={token}\n"));
    write(dir.path(), "empty.txt", "");
    let fifo = dir.path().join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    std::os::unix::fs::symlink(dir.path().join("nowhere"), dir.path().join("dangling")).expect("symlink");
    let missing = dir.path().join("does-not-exist");

    let mut cmd = keysweep();
    cmd.args(["scan", "--format", "jsonl"])
        .arg(dir.path())
        .arg(&fifo)
        .arg("/dev/null")
        .arg(&missing);
    // A scanner that opens the FIFO blocks forever: the deadline turns that into a failure.
    let out = run_with_deadline(cmd, None, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(jsonl(&out).len(), 1);
    assert!(stderr.contains("a FIFO"), "{stderr}");
    assert!(stderr.contains("a device"), "{stderr}");
    assert!(stderr.contains("broken symbolic link"), "{stderr}");
    assert!(stderr.contains("does-not-exist"), "{stderr}");
    for counter in ["special_file", "broken_symlink", "not_found"] {
        assert!(
            stderr.contains(&format!("warning: {counter}")),
            "{counter} not counted: {stderr}"
        );
    }
}

#[test]
fn nothing_scannable_exits_2_and_bad_arguments_exit_2() {
    let mut cmd = keysweep();
    cmd.args(["scan", "/definitely/not/here"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing could be scanned"));

    let mut cmd = keysweep();
    cmd.args(["scan", "--format", "xml", "."]);
    assert_eq!(run(cmd).status.code(), Some(2));
}

#[test]
fn permission_denied_is_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = Secrets::new().github_classic("ghp_");
    write(dir.path(), "ok.txt", &format!("t={token}\n"));
    let locked = write(dir.path(), "locked.txt", "secret stuff\n");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod dir");
    fs::set_permissions(dir.path().join("ok.txt"), fs::Permissions::from_mode(0o644)).expect("chmod");
    // Root reads anything: drop to an unprivileged user when running as root.
    let is_root = unsafe_free_uid() == 0;
    let mut cmd = if is_root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_keysweep"))
            .env("KEYSWEEP_CACHE_DIR", dir.path().join("cache-nobody"));
        c
    } else {
        keysweep()
    };
    cmd.args(["scan", "--format", "jsonl", "--no-cache"]).arg(dir.path());
    let out = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("warning: permission_denied"), "{stderr}");
    assert!(stderr.contains("locked.txt"), "{stderr}");
}

fn unsafe_free_uid() -> u32 {
    // The owner of /proc/self is the effective user, without libc.
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX)
}

#[test]
fn non_utf8_paths_and_contents_are_scanned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = Secrets::new().github_classic("ghu_");
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9-\xff.bin");
    let mut content = vec![0xff, 0xfe, 0x00, 0x80];
    content.extend_from_slice(format!("\x00auth={token}\x00").as_bytes());
    content.push(0xc3);
    fs::write(dir.path().join(name), &content).expect("write");
    let (out, findings) = scan_jsonl(&[dir.path().as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0]["secret"], token.as_str());
    assert!(findings[0]["location"]["path"]
        .as_str()
        .unwrap_or_default()
        .contains("caf\u{fffd}-"));
}

#[test]
fn paths_from_stdin_and_file_with_include_exclude() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let a = write(dir.path(), "a.py", &format!("t = '{}'\n", s.github_classic("ghp_")));
    let b = write(dir.path(), "b.txt", &format!("t = '{}'\n", s.github_classic("ghp_")));
    let list = format!("{}\n{}\n", a.display(), b.display());
    let mut cmd = keysweep();
    cmd.args(["scan", "--format", "jsonl", "-"]);
    let out = run_with_deadline(cmd, Some(list.as_bytes()), Duration::from_secs(30));
    assert_eq!(jsonl(&out).len(), 2);

    let list_file = write(dir.path(), "list/paths.txt", &list);
    let mut cmd = keysweep();
    cmd.args(["scan", "--format", "jsonl", "--paths-from"]).arg(&list_file);
    assert_eq!(jsonl(&run(cmd)).len(), 2);

    let (_, findings) = scan_jsonl(&["--include".as_ref(), "*.py".as_ref(), dir.path().as_os_str()]);
    assert_eq!(findings.len(), 1);
    let (_, findings) = scan_jsonl(&["--exclude".as_ref(), "*.py".as_ref(), dir.path().as_os_str()]);
    assert_eq!(findings.len(), 1);
    assert!(findings[0]["location"]["path"]
        .as_str()
        .unwrap_or_default()
        .ends_with("b.txt"));
}

#[test]
fn max_file_size_skips_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = Secrets::new().github_classic("ghp_");
    write(dir.path(), "big.txt", &format!("{}\nt={token}\n", "a".repeat(4096)));
    let mut cmd = keysweep();
    cmd.args(["scan", "--format", "jsonl", "--max-file-size", "1K"])
        .arg(dir.path());
    let out = run(cmd);
    assert_eq!(jsonl(&out).len(), 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: too_large"));
}

#[test]
fn malformed_rule_file_names_file_rule_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "broken.toml",
        "[[rule]]\nid = \"acme.token\"\nname = \"Acme\"\npattern = '''acme_(?P<secret>[a-z]{10'''\nconfidence = \"high\"\n",
    );
    let mut cmd = keysweep();
    cmd.args(["scan", "--rules"]).arg(dir.path()).arg(dir.path());
    let out = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("broken.toml") && stderr.contains("acme.token"),
        "{stderr}"
    );

    write(dir.path(), "broken.toml", "[[rule]]\nid = \"acme.token\"\n");
    let mut cmd = keysweep();
    cmd.args(["rules", "check", "--rules"]).arg(dir.path());
    let out = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("broken.toml") && stderr.contains("missing field"),
        "{stderr}"
    );
}

#[test]
fn custom_rules_add_and_replace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules");
    write(
        &rules,
        "acme.toml",
        r#"[[rule]]
id = "acme.api-key"
name = "Acme API key"
pattern = '''\b(?P<secret>acme_[a-z0-9]{24})\b'''
confidence = "high"
references = ["https://acme.invalid/docs/keys"]
examples = ["key = acme_k3j5h7g9f1d3s5a7q9w1e3r5", "ACME=acme_z8x6c4v2b0n8m6l4k2j0h8g6"]
negative_examples = ["acme_short"]
"#,
    );
    write(dir.path(), "src/x.py", "k = 'acme_p0o9i8u7y6t5r4e3w2q1a2s3'\n");
    let mut cmd = keysweep();
    cmd.args(["scan", "--format", "jsonl", "--rules"])
        .arg(&rules)
        .arg(dir.path().join("src"));
    let findings = jsonl(&run(cmd));
    assert_eq!(rule_ids(&findings), vec!["acme.api-key"]);

    let mut cmd = keysweep();
    cmd.args(["rules", "check", "--no-builtin-rules", "--rules"])
        .arg(&rules);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn builtin_rules_check_passes() {
    let mut cmd = keysweep();
    cmd.args(["rules", "check"]);
    let out = run_with_deadline(cmd, None, Duration::from_secs(300));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let count: usize = stdout
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(count >= 200, "{stdout}");
}

#[test]
fn readme_rule_table_is_generated_from_the_rules() {
    let mut cmd = keysweep();
    cmd.args(["rules", "list", "--markdown"]);
    let out = run(cmd);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).expect("README");
    let (begin, end) = (
        "<!-- rules table: keysweep rules list --markdown -->\n",
        "<!-- end of rules table -->",
    );
    let start = readme.find(begin).expect("README has the table's begin marker") + begin.len();
    let stop = readme[start..].find(end).expect("end marker") + start;
    assert!(
        readme[start..stop] == table,
        "README's rule table is stale: regenerate it with `keysweep rules list --markdown`"
    );
}

#[test]
fn help_reads_like_a_manual() {
    let mut cmd = keysweep();
    cmd.args(["scan", "--help"]);
    let out = run(cmd);
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--format",
        "--redact",
        "--exit-zero",
        "--paths-from",
        "--threads",
        "Exit status",
    ] {
        assert!(text.contains(needle), "{needle} missing from help");
    }
}

/// Recall on planted, format-valid secrets in source, config, `.env`, YAML, JSON and notebook
/// files, and silence on look-alikes, at the default confidence. The corpus is generated fresh
/// (random seed, printed on failure) by `corpora/plant.py`.
#[test]
fn planted_corpus_recall_and_lookalike_silence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = fastrand::u32(..);
    let plant = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/plant.py");
    let status = std::process::Command::new("python3")
        .arg(&plant)
        .arg(dir.path())
        .args(["--seed", &seed.to_string(), "--count-per-kind", "4"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run plant.py");
    assert!(status.success(), "plant.py failed (seed {seed})");

    let scan = |sub: &str| {
        let mut cmd = keysweep();
        cmd.args(["scan", "--format", "jsonl", "--exclude", "manifest.jsonl"])
            .arg(dir.path().join(sub));
        jsonl(&run(cmd))
    };
    let manifest: Vec<serde_json::Value> = fs::read_to_string(dir.path().join("planted/manifest.jsonl"))
        .expect("manifest")
        .lines()
        .map(|l| serde_json::from_str(l).expect("manifest line"))
        .collect();
    let findings = scan("planted");
    let found = |planted: &serde_json::Value| {
        let file = planted["file"].as_str().unwrap_or_default();
        let secret = planted["secret"].as_str().unwrap_or_default();
        findings.iter().any(|f| {
            let path = f["location"]["path"].as_str().unwrap_or_default();
            let got = f["secret"].as_str().unwrap_or_default();
            path.ends_with(&format!("/planted/{file}"))
                && (got == secret || got.contains(secret) || (got.len() >= 8 && secret.contains(got)))
        })
    };
    let missed: Vec<String> = manifest
        .iter()
        .filter(|p| !found(p))
        .map(|p| format!("{} in {}", p["kind"], p["file"]))
        .collect();
    let recall = 1.0 - missed.len() as f64 / manifest.len() as f64;
    assert!(manifest.len() > 150, "corpus too small: {}", manifest.len());
    assert!(recall >= 0.95, "recall {recall:.3} (seed {seed}); missed: {missed:#?}");

    let false_positives = scan("lookalikes");
    assert!(
        false_positives.is_empty(),
        "look-alikes reported at medium+ (seed {seed}): {false_positives:#?}"
    );
}

#[test]
fn findings_over_the_per_file_cap_are_counted_and_warned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let text: String = (0..1005).map(|_| format!("t={}\n", s.github_classic("ghp_"))).collect();
    write(dir.path(), "many.txt", &text);
    let (out, findings) = scan_jsonl(&[dir.path().as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(findings.len(), 1000, "{stderr}");
    assert!(stderr.contains("5 over the per-file cap"), "{stderr}");
    assert!(stderr.contains("warning: findings_capped"), "{stderr}");
}

#[test]
fn one_secret_at_one_place_is_one_finding_even_when_two_rules_match() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let token = util::upload_token(&s.hex(32), &[r#"[1,["acme"]]"#]);
    write(
        dir.path(),
        ".pypirc",
        &format!("[distutils]\nindex-servers =\n    pypi\n\n[pypi]\nusername = __token__\npassword = {token}\n"),
    );
    let (_, findings) = scan_jsonl(&[dir.path().as_os_str()]);
    assert_eq!(rule_ids(&findings), vec!["pypi.upload-token"], "{findings:#?}");
    assert_eq!(findings[0]["secret"], token.as_str());
}

#[test]
fn shards_split_the_files_and_merge_into_the_unsharded_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("mirror");
    let mut s = Secrets::new();
    for i in 0..24 {
        write(
            &tree,
            &format!("pkg{i:02}/settings.py"),
            &format!(
                "GITHUB_TOKEN = \"{}\"\nAWS_ACCESS_KEY_ID = \"{}\"\n",
                s.github_classic("ghp_"),
                s.aws_key_id()
            ),
        );
    }
    let report = |name: &str, extra: &[&str]| {
        let path = dir.path().join(name);
        let mut cmd = keysweep();
        cmd.args(["scan", "-q", "--exit-zero", "-f", "jsonl", "-o"])
            .arg(&path)
            .args(extra)
            .arg(&tree);
        assert!(run(cmd).status.success());
        path
    };
    let fingerprints = |path: &Path| -> Vec<String> {
        let mut v: Vec<String> = fs::read_to_string(path)
            .expect("report")
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("json")["fingerprint"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        v.sort();
        v
    };
    let whole = fingerprints(&report("whole.jsonl", &[]));
    assert_eq!(whole.len(), 48);
    let shards: Vec<_> = (1..=3)
        .map(|k| report(&format!("shard{k}.jsonl"), &["--shard", &format!("{k}/3")]))
        .collect();
    let sizes: Vec<usize> = shards.iter().map(|p| fingerprints(p).len()).collect();
    assert!(
        sizes.iter().all(|&n| n > 0 && n < 48),
        "each shard holds part of the files: {sizes:?}"
    );
    assert_eq!(sizes.iter().sum::<usize>(), 48, "no file in two shards: {sizes:?}");
    // Merging the shards, one of them twice, gives the unsharded report.
    let merged = dir.path().join("merged.jsonl");
    let mut cmd = keysweep();
    cmd.arg("merge").args(&shards).arg(&shards[0]).arg("-o").arg(&merged);
    assert!(run(cmd).status.success());
    assert_eq!(fingerprints(&merged), whole);
    let mut bad = keysweep();
    bad.args(["scan", "--shard", "4/3"]).arg(&tree);
    assert_eq!(run(bad).status.code(), Some(2));
}

#[test]
fn ctrl_c_stops_the_scan_and_keeps_what_was_found() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    // Enough text that one thread is still scanning when the first finding arrives.
    let filler = "x = compute(a, b)  # nothing secret on this line at all\n".repeat(2000);
    let count = 1500;
    for i in 0..count {
        write(
            dir.path(),
            &format!("m{i:04}.py"),
            &format!("{filler}GITHUB_TOKEN = \"{}\"\n", s.github_classic("ghp_")),
        );
    }
    let mut cmd = keysweep();
    cmd.args(["scan", "-j", "1", "-f", "jsonl"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a first finding").expect("read");
    // SAFETY: sending SIGINT to the child we spawned.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let rest: Vec<String> = lines.map(|l| l.expect("read")).collect();
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\r'),
        "no progress bar when piped: {stderr:?}"
    );
    // Every line written is a whole finding, and the scan stopped early.
    for line in std::iter::once(&first).chain(&rest) {
        serde_json::from_str::<serde_json::Value>(line).expect("a whole JSON line");
    }
    assert!(
        rest.len() + 1 < count,
        "{} findings: the scan did not stop",
        rest.len() + 1
    );
}
