//! Findings a user has dealt with: inline `keysweep:allow`, `--allowlist`, `--baseline`.
//! Each is counted in the summary, never dropped silently.

use std::fs;
use std::path::Path;

use crate::util::{keysweep, python, run, scan, Secrets};

fn write(dir: &Path, name: &str, content: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, content).expect("write");
}

fn secrets(findings: &[serde_json::Value]) -> Vec<String> {
    let mut s: Vec<String> = findings
        .iter()
        .filter_map(|f| f["secret"].as_str().map(str::to_owned))
        .collect();
    s.sort();
    s
}

#[test]
fn inline_allow_comments_suppress_only_their_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let (allowed, kept) = (s.github_classic("ghp_"), s.github_classic("ghp_"));
    write(
        dir.path(),
        "conf.py",
        &format!("FIXTURE_TOKEN = \"{allowed}\"  # keysweep:allow (revoked, used by tests)\nLIVE = \"{kept}\"\n"),
    );
    let (out, findings) = scan(dir.path(), &[]);
    assert_eq!(secrets(&findings), [kept]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 suppressed (inline)"), "{stderr}");
    let (_, all) = scan(dir.path(), &["--no-inline-allow"]);
    assert_eq!(all.len(), 2, "{all:#?}");
}

#[test]
fn allowlist_file_by_fingerprint_regex_and_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("tree");
    let mut s = Secrets::new();
    let t: Vec<String> = (0..4).map(|_| s.github_classic("ghp_")).collect();
    write(&d, "app/a.py", &format!("GITHUB_TOKEN = \"{}\"\n", t[0]));
    write(&d, "app/b.py", &format!("GITHUB_TOKEN = \"{}\"\n", t[1]));
    write(&d, "app/c.py", &format!("GITHUB_TOKEN = \"{}\"\n", t[3]));
    // The path glob reaches into an sdist member (`pkg-1.0/tests/fixtures/…`).
    python(
        &d,
        "import tarfile,io,sys; t=tarfile.open('pkg-1.0.tar.gz','w:gz'); b=('TOKEN=%s\\n' % sys.argv[1]).encode();\
         i=tarfile.TarInfo('pkg-1.0/tests/fixtures/cfg.env'); i.size=len(b); t.addfile(i, io.BytesIO(b)); t.close()",
        &[&t[2]],
    );
    let (_, before) = scan(&d, &[]);
    assert_eq!(before.len(), 4, "{before:#?}");
    let fingerprint = before
        .iter()
        .find(|f| f["secret"] == t[0].as_str())
        .and_then(|f| f["fingerprint"].as_str())
        .expect("fingerprint")
        .to_owned();
    let allowlist = dir.path().join("allow.toml");
    fs::write(
        &allowlist,
        format!(
            "description = \"reviewed 2026-11\"\nfingerprints = [\"{fingerprint}\"]\nregexes = ['''^{}$''']\npaths = [\"tests/fixtures/**\"]\n",
            t[1]
        ),
    )
    .expect("write allowlist");
    let (out, after) = scan(&d, &["--allowlist", allowlist.to_str().expect("utf-8")]);
    assert_eq!(secrets(&after), [t[3].clone()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("3 suppressed (allowlist)"), "{stderr}");

    fs::write(&allowlist, "regexes = ['''(unclosed''']\n").expect("write");
    let mut cmd = keysweep();
    cmd.args(["scan", "--allowlist"]).arg(&allowlist).arg(&d);
    let bad = run(cmd);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("allow.toml") && stderr.contains("(unclosed"),
        "{stderr}"
    );
}

#[test]
fn baseline_hides_known_findings_even_after_lines_move() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("tree");
    let mut s = Secrets::new();
    let (old, new) = (s.github_classic("ghp_"), s.github_classic("ghp_"));
    write(&d, "app/settings.py", &format!("GITHUB_TOKEN = \"{old}\"\n"));
    for format in ["jsonl", "json"] {
        let report = dir.path().join(format!("baseline.{format}"));
        let mut cmd = keysweep();
        cmd.args(["scan", "--exit-zero", "-q", "-f", format, "-o"])
            .arg(&report)
            .arg(&d);
        assert!(run(cmd).status.success());
        assert!(fs::read_to_string(&report).expect("report").contains(&old));
    }
    // Lines above move the old secret (new offset, new fingerprint); a new secret arrives.
    write(
        &d,
        "app/settings.py",
        &format!("import os\n\nDEBUG = False\nGITHUB_TOKEN = \"{old}\"\nDEPLOY_TOKEN = \"{new}\"\n"),
    );
    for format in ["jsonl", "json"] {
        let report = dir.path().join(format!("baseline.{format}"));
        let (out, findings) = scan(&d, &["--baseline", report.to_str().expect("utf-8")]);
        assert_eq!(secrets(&findings), std::slice::from_ref(&new), "{format}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("1 suppressed (baseline)"), "{stderr}");
    }
    let not_a_report = dir.path().join("notes.txt");
    fs::write(&not_a_report, "these are not findings\n").expect("write");
    let mut cmd = keysweep();
    cmd.args(["scan", "--baseline"]).arg(&not_a_report).arg(&d);
    assert_eq!(run(cmd).status.code(), Some(2));
}
