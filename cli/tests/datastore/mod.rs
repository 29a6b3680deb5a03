//! `--datastore`: resume after a kill, content dedup across package versions, incremental
//! reruns, changed rules, sharded datastores merged, `keysweep report`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::{keysweep, python, run, Secrets};

/// `keysweep scan -q --exit-zero --datastore DB` over `inputs`, with `extra` arguments.
fn scan_into(db: &Path, inputs: &[&Path], extra: &[&str]) -> std::process::Output {
    let mut cmd = keysweep();
    cmd.args(["scan", "-q", "--exit-zero", "-f", "jsonl", "--datastore"])
        .arg(db)
        .args(if extra.contains(&"-j") {
            &[][..]
        } else {
            &["-j", "2"][..]
        })
        .args(extra)
        .args(inputs);
    let out = run(cmd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Every finding the datastore holds (any confidence), as sorted JSON lines.
fn report_lines(db: &Path, extra: &[&str]) -> Vec<String> {
    let mut cmd = keysweep();
    cmd.args(["report", "-f", "jsonl", "--confidence", "low"])
        .arg(db)
        .args(extra);
    let out = run(cmd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// The datastore's totals and runs.
fn stats(db: &Path) -> serde_json::Value {
    let mut cmd = keysweep();
    cmd.args(["report", "--stats"]).arg(db);
    let out = run(cmd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stats JSON")
}

fn last_run(db: &Path) -> serde_json::Value {
    let s = stats(db);
    let runs = s["runs"].as_array().expect("runs").clone();
    runs.last().expect("a run")["counters"].clone()
}

/// Builds release files with python3's zipfile and tarfile: `spec` is JSON
/// `{archive name: {member name: text}}`; prints nothing, writes into `dir`.
const BUILD_ARCHIVES: &str = r#"
import io, json, sys, tarfile, zipfile
spec = json.loads(open(sys.argv[1]).read())
for name, members in spec.items():
    if name.endswith(".tar.gz"):
        with tarfile.open(name, "w:gz") as tar:
            for member, text in members.items():
                data = text.encode()
                info = tarfile.TarInfo(member)
                info.size = len(data)
                info.mtime = 1700000000
                tar.addfile(info, io.BytesIO(data))
    else:
        with zipfile.ZipFile(name, "w", zipfile.ZIP_DEFLATED) as z:
            for member, text in members.items():
                z.writestr(member, text)
"#;

fn build_archives(dir: &Path, spec: &serde_json::Value) {
    let spec_path = dir.join("spec.json");
    fs::write(&spec_path, spec.to_string()).expect("spec");
    python(dir, BUILD_ARCHIVES, &[spec_path.to_str().expect("utf-8 path")]);
    fs::remove_file(spec_path).expect("remove spec");
}

/// A module of `lines` lines of code, with a secret in it when one is given.
fn module(name: &str, lines: usize, secret: Option<&str>) -> String {
    let mut text = format!("\"\"\"{name}: generated for the dedup tests.\"\"\"\n");
    for i in 0..lines {
        text.push_str(&format!("def {name}_{i}(x):\n    return x * {i} + len('{name}')\n"));
    }
    if let Some(secret) = secret {
        text.push_str(&format!("API_TOKEN = \"{secret}\"\n"));
    }
    text
}

#[test]
fn two_versions_of_a_package_share_their_files_and_scan_them_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let releases = dir.path().join("releases");
    fs::create_dir(&releases).expect("mkdir");
    let mut s = Secrets::new();
    let shared_token = s.github_classic("ghp_");
    let new_token = s.github_classic("ghp_");
    // Ten modules shared by both wheels and the sdist (one holds a token); each release
    // also has files of its own.
    let mut shared = serde_json::Map::new();
    for i in 0..10 {
        let secret = (i == 3).then_some(shared_token.as_str());
        shared.insert(
            format!("demo/mod{i}.py"),
            module(&format!("mod{i}"), 120, secret).into(),
        );
    }
    let release = |version: &str, prefix: &str, extra: &[(&str, String)]| {
        let mut members = serde_json::Map::new();
        for (name, text) in &shared {
            members.insert(format!("{prefix}{name}"), text.clone());
        }
        for (name, text) in extra {
            members.insert(format!("{prefix}{name}"), text.clone().into());
        }
        members.insert(
            format!("{prefix}demo/version.py"),
            format!("VERSION = '{version}'\n").into(),
        );
        serde_json::Value::Object(members)
    };
    let spec = serde_json::json!({
        "demo-1.0-py3-none-any.whl": release("1.0", "", &[("demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n".into())]),
        "demo-1.1-py3-none-any.whl": release("1.1", "", &[
            ("demo-1.1.dist-info/METADATA", "Name: demo\nVersion: 1.1\n".into()),
            ("demo/client.py", module("client", 100, Some(&new_token))),
        ]),
        "demo-1.1.tar.gz": release("1.1", "demo-1.1/", &[
            ("PKG-INFO", "Name: demo\nVersion: 1.1\n".into()),
            ("demo/client.py", module("client", 100, Some(&new_token))),
        ]),
    });
    build_archives(&releases, &spec);
    // The same wheel copied under another name is one blob too.
    fs::copy(
        releases.join("demo-1.0-py3-none-any.whl"),
        releases.join("copy-of-demo-1.0-py3-none-any.whl"),
    )
    .expect("copy");

    // Expected counts from the artefacts themselves: distinct blobs are the distinct member
    // texts plus the distinct files; everything else is a reuse. Members under 4 KiB are
    // scanned as part of their archive, not deduplicated.
    let mut member_texts: Vec<String> = Vec::new();
    for members in spec.as_object().expect("spec").values() {
        for text in members.as_object().expect("members").values() {
            let text = text.as_str().expect("text");
            if text.len() >= 4096 {
                member_texts.push(text.to_owned());
            }
        }
    }
    // Places met: the four files and the members of all but the copy (whose file is reused
    // whole, so its members are never opened).
    let occurrences = member_texts.len() as u64 + 4;
    member_texts.sort();
    member_texts.dedup();
    let distinct = member_texts.len() as u64 + 3;

    let db = dir.path().join("scan.db");
    let out = scan_into(&db, &[&releases], &[]);
    let first = last_run(&db);
    assert_eq!(first["blobs_scanned"], distinct, "{first}");
    // Every place met is scanned, reused, or scanned again as part of its archive because the
    // other worker was scanning the same bytes at that moment.
    let count = |k: &str| first[k].as_u64().unwrap_or(0);
    assert_eq!(
        count("blobs_scanned") + count("blobs_reused") + count("blobs_scanned_twice"),
        occurrences,
        "{first}"
    );
    let totals = &stats(&db)["totals"];
    assert_eq!(totals["blobs"], distinct, "{totals}");
    assert_eq!(totals["inputs"], 4);

    // The shared token is reported in all four release files, the new one in both 1.1 files,
    // though each module was scanned once.
    let found = crate::util::jsonl(&out);
    let places = |secret: &str| {
        let mut p: Vec<String> = found
            .iter()
            .filter(|f| f["secret"] == secret)
            .map(|f| {
                let l = &f["location"];
                format!(
                    "{}!{}",
                    Path::new(l["path"].as_str().unwrap_or(""))
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    l["members"][0].as_str().unwrap_or("")
                )
            })
            .collect();
        p.sort();
        p
    };
    assert_eq!(
        places(&shared_token),
        vec![
            "copy-of-demo-1.0-py3-none-any.whl!demo/mod3.py",
            "demo-1.0-py3-none-any.whl!demo/mod3.py",
            "demo-1.1-py3-none-any.whl!demo/mod3.py",
            "demo-1.1.tar.gz!demo-1.1/demo/mod3.py",
        ]
    );
    assert_eq!(places(&new_token).len(), 2);
    // Each place keeps its own package.
    let packages: Vec<&str> = found
        .iter()
        .filter(|f| f["secret"] == shared_token.as_str())
        .filter_map(|f| f["package"]["version"].as_str())
        .collect();
    assert!(packages.contains(&"1.0") && packages.contains(&"1.1"), "{packages:?}");
    // The report prints the same findings without scanning, and filters by package and rule.
    let reported = report_lines(&db, &[]);
    assert_eq!(reported.len(), found.len());
    // The copy is named for another project.
    assert_eq!(report_lines(&db, &["--package", "Demo"]).len(), found.len() - 1);
    assert!(report_lines(&db, &["--package", "other"]).is_empty());
    assert!(report_lines(&db, &["--rule", "aws.access-key-id"]).is_empty());

    // Unchanged: nothing is read again.
    let out = scan_into(&db, &[&releases], &[]);
    let second = last_run(&db);
    assert_eq!(second["files_unchanged"], 4, "{second}");
    assert_eq!(second["blobs_scanned"], 0, "{second}");
    assert!(crate::util::jsonl(&out).is_empty());
    // A file touched but not changed is read and hashed, then its findings are reused.
    let wheel = releases.join("demo-1.1-py3-none-any.whl");
    let f = fs::File::options().write(true).open(&wheel).expect("open");
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .expect("set mtime");
    drop(f);
    let out = scan_into(&db, &[&releases], &[]);
    let third = last_run(&db);
    assert_eq!(third["files_unchanged"], 3, "{third}");
    assert_eq!(third["blobs_scanned"], 0, "{third}");
    assert_eq!(third["blobs_reused"], 1, "{third}");
    assert_eq!(
        crate::util::jsonl(&out).len(),
        2,
        "the touched wheel's findings are reported again"
    );
    assert_eq!(report_lines(&db, &[]), reported);
}

/// A tree where a kill lands mid-scan: many files, copies of one another, archives sharing
/// members, and secrets everywhere.
fn busy_tree(dir: &Path, s: &mut Secrets) -> PathBuf {
    let tree = dir.join("tree");
    fs::create_dir(&tree).expect("mkdir");
    let filler: String = (0..3000).map(|i| format!("value_{i} = compute({i})\n")).collect();
    for i in 0..240 {
        let text = format!(
            "{filler}GITHUB_TOKEN = \"{}\"\nAWS_ACCESS_KEY_ID = \"{}\"\n",
            s.github_classic("ghp_"),
            s.aws_key_id()
        );
        let sub = tree.join(format!("d{:02}", i % 16));
        fs::create_dir_all(&sub).expect("mkdir");
        fs::write(sub.join(format!("settings{i}.py")), &text).expect("write");
        if i % 8 == 0 {
            fs::write(sub.join(format!("copy{i}.py")), &text).expect("write");
        }
    }
    let mut spec = serde_json::Map::new();
    let common = module("common", 2000, Some(&s.github_classic("ghp_")));
    for i in 0..12 {
        spec.insert(
            format!("pkg{i}-1.0-py3-none-any.whl"),
            serde_json::json!({
                "pkg/common.py": common,
                "pkg/own.py": module(&format!("own{i}"), 500, Some(&s.github_classic("ghp_"))),
            }),
        );
    }
    build_archives(&tree, &serde_json::Value::Object(spec));
    tree
}

fn committed_inputs(db: &Path) -> u64 {
    let Ok(conn) = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    conn.query_row("SELECT count(*) FROM input", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
        .unwrap_or(0)
}

#[test]
fn a_scan_killed_mid_way_resumes_to_exactly_the_findings_of_an_uninterrupted_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let tree = busy_tree(dir.path(), &mut s);
    let whole = dir.path().join("whole.db");
    scan_into(&whole, &[&tree], &["-j", "1"]);
    let expected = report_lines(&whole, &[]);
    let total = stats(&whole)["totals"]["inputs"].as_u64().unwrap_or(0);
    assert!(expected.len() > 500, "{}", expected.len());

    // Kill -9 twice, once early and once later, then let a third run finish. A kill counts
    // when it left the datastore part-way: some inputs committed, not all.
    let killed = dir.path().join("killed.db");
    let mut mid_way = Vec::new();
    for fraction in [5, 2] {
        let mut cmd = keysweep();
        cmd.args(["scan", "-q", "--exit-zero", "-j", "1", "-f", "jsonl", "--datastore"])
            .arg(&killed)
            .arg(&tree)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().expect("spawn");
        let target = (total / fraction).max(1);
        let deadline = Instant::now() + Duration::from_secs(120);
        while committed_inputs(&killed) < target && Instant::now() < deadline {
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        use std::os::unix::process::ExitStatusExt;
        let committed = committed_inputs(&killed);
        if status.signal() == Some(9) && committed < total {
            mid_way.push(committed);
        }
    }
    assert!(!mid_way.is_empty(), "no kill landed mid-scan");
    eprintln!("killed mid-way with {mid_way:?} of {total} inputs committed");
    let partial = committed_inputs(&killed);
    scan_into(&killed, &[&tree], &["-j", "2"]);
    assert_eq!(report_lines(&killed, &[]), expected);
    let runs = stats(&killed)["runs"].as_array().expect("runs").clone();
    let finished = runs.last().expect("run")["counters"].clone();
    assert!(
        finished["files_unchanged"].as_u64().unwrap_or(0) >= partial,
        "the resumed run skipped what was committed: {finished}"
    );
    assert!(runs[0]["finished"].is_null(), "a killed run has no end");
}

#[test]
fn sharded_datastores_merge_into_the_unsharded_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let tree = dir.path().join("mirror");
    for i in 0..24 {
        let sub = tree.join(format!("pkg{i:02}"));
        fs::create_dir_all(&sub).expect("mkdir");
        fs::write(
            sub.join("settings.py"),
            format!(
                "GITHUB_TOKEN = \"{}\"\nAWS_ACCESS_KEY_ID = \"{}\"\n",
                s.github_classic("ghp_"),
                s.aws_key_id()
            ),
        )
        .expect("write");
        // Every package also carries the same vendored file: shards dedup it on their own.
        fs::write(
            sub.join("vendored.py"),
            module("vendored", 50, Some("ghp_notarealtokenbutlongenough0000000000")),
        )
        .expect("write");
    }
    let whole = dir.path().join("whole.db");
    scan_into(&whole, &[&tree], &[]);
    let expected = report_lines(&whole, &[]);
    let shards: Vec<PathBuf> = (1..=3)
        .map(|k| {
            let db = dir.path().join(format!("shard{k}.db"));
            scan_into(&db, &[&tree], &["--shard", &format!("{k}/3")]);
            db
        })
        .collect();
    let sizes: Vec<usize> = shards.iter().map(|db| report_lines(db, &[]).len()).collect();
    assert!(sizes.iter().all(|&n| n > 0 && n < expected.len()), "{sizes:?}");
    let merged = dir.path().join("merged.db");
    let mut cmd = keysweep();
    cmd.arg("merge").args(&shards).arg(&shards[0]).arg("-o").arg(&merged);
    let out = run(cmd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(report_lines(&merged, &[]), expected);
    assert_eq!(stats(&merged)["totals"]["inputs"], 48);
    // Reports and datastores do not mix, and a datastore merge needs its output named.
    let mut cmd = keysweep();
    cmd.arg("merge").args(&shards);
    assert_eq!(run(cmd).status.code(), Some(2));
}

#[test]
fn a_changed_rule_rescans_and_an_edited_description_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("src");
    fs::create_dir(&tree).expect("mkdir");
    for i in 0..6 {
        fs::write(
            tree.join(format!("f{i}.txt")),
            format!("ticket ACME-{i:04}-SECRETVALUE{i}\n"),
        )
        .expect("write");
    }
    let rules = dir.path().join("rules");
    fs::create_dir(&rules).expect("mkdir");
    let rule = |name: &str, pattern: &str| {
        format!("[[rule]]\nid = \"acme.ticket\"\nname = \"{name}\"\npattern = '''{pattern}'''\nconfidence = \"high\"\n")
    };
    fs::write(
        rules.join("acme.toml"),
        rule("ACME ticket", r"ACME-\d{4}-(?P<secret>SECRETVALUE\d)"),
    )
    .expect("rule");
    let db = dir.path().join("scan.db");
    let with_rules = ["--rules", rules.to_str().expect("utf-8")];
    scan_into(&db, &[&tree], &with_rules);
    assert_eq!(report_lines(&db, &["--rule", "acme.ticket"]).len(), 6);
    // A new name (or references, examples) changes nothing that is found: nothing is read.
    fs::write(
        rules.join("acme.toml"),
        rule("ACME support ticket", r"ACME-\d{4}-(?P<secret>SECRETVALUE\d)"),
    )
    .expect("rule");
    scan_into(&db, &[&tree], &with_rules);
    assert_eq!(last_run(&db)["files_unchanged"], 6);
    // A new pattern does: every file is scanned again, and the report follows the new rule.
    fs::write(
        rules.join("acme.toml"),
        rule("ACME support ticket", r"ACME-000[0-2]-(?P<secret>SECRETVALUE\d)"),
    )
    .expect("rule");
    scan_into(&db, &[&tree], &with_rules);
    let run = last_run(&db);
    assert_eq!(run["files_scanned"], 6, "{run}");
    assert_eq!(run["files_unchanged"], 0, "{run}");
    assert_eq!(report_lines(&db, &["--rule", "acme.ticket"]).len(), 3);
}

#[test]
fn a_file_that_is_not_a_datastore_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_db = dir.path().join("notes.db");
    fs::write(&not_db, "plain text, not SQLite").expect("write");
    let mut cmd = keysweep();
    cmd.args(["scan", "-q", "--datastore"]).arg(&not_db).arg(dir.path());
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("datastore"));
    assert_eq!(fs::read_to_string(&not_db).expect("read"), "plain text, not SQLite");
}

#[test]
fn an_added_rule_scans_alone_and_a_removed_rule_rescans_only_what_it_hid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("src");
    fs::create_dir(&tree).expect("mkdir");
    let mut s = Secrets::new();
    // Secrets of letters alone that spell a naming word (`KEY`) read as placeholders: each
    // one holds a digit.
    let mut token = |n: usize| {
        format!(
            "{}7{}",
            s.pick(b"ABCDEFGHJKLMNPQRSTUVWXYZ", n / 2),
            s.pick(b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", n - n / 2 - 1)
        )
    };
    let mut tickets = Vec::new();
    let mut orders = Vec::new();
    for _ in 0..7 {
        tickets.push(token(16));
    }
    for _ in 0..4 {
        orders.push(token(12));
    }
    for (i, ticket) in tickets[..6].iter().enumerate() {
        let text = format!("ticket ACME-{i:04}-{ticket}\n");
        fs::write(tree.join(format!("ticket{i}.txt")), text).expect("write");
    }
    for (i, order) in orders[..3].iter().enumerate() {
        let text = format!("order ORDER-{order}\n");
        fs::write(tree.join(format!("order{i}.txt")), text).expect("write");
    }
    fs::write(tree.join("plain.txt"), "nothing to see\n").expect("write");
    // Members of 4 KiB and more are blobs of their own.
    let padding = "# padding\n".repeat(500);
    build_archives(
        &tree,
        &serde_json::json!({"bundle-1.0-py3-none-any.whl": {
            "bundle/ticket.txt": format!("{padding}ACME-9999-{}\n", tickets[6]),
            "bundle/order.txt": format!("{padding}ORDER-{}\n", orders[3]),
        }}),
    );
    // `acme.ticket` and the vaguer `acme.code` confirm the same bytes; the first wins them.
    let ticket = "[[rule]]\nid = \"acme.ticket\"\nname = \"ACME ticket\"\npattern = '''ACME-\\d{4}-(?P<secret>[A-Z0-9]{16})'''\nconfidence = \"high\"\n";
    let code = "[[rule]]\nid = \"acme.code\"\nname = \"ACME code\"\npattern = '''-(?P<secret>[A-Z0-9]{16})\\b'''\nconfidence = \"medium\"\n";
    let order = "[[rule]]\nid = \"acme.order\"\nname = \"ACME order\"\npattern = '''ORDER-(?P<secret>[A-Z0-9]{12})'''\nconfidence = \"high\"\n";
    let rules = |name: &str, files: &[&str]| -> PathBuf {
        let d = dir.path().join(name);
        fs::create_dir(&d).expect("mkdir");
        for (i, text) in files.iter().enumerate() {
            fs::write(d.join(format!("r{i}.toml")), text).expect("rule");
        }
        d
    };
    let scan_with = |db: &Path, rules: &Path| {
        scan_into(
            db,
            &[&tree],
            &["--no-builtin-rules", "--rules", rules.to_str().expect("utf-8")],
        );
        last_run(db)
    };
    let fresh = |rules: &Path| {
        let db = dir.path().join(format!(
            "fresh-{}.db",
            rules
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        scan_with(&db, rules);
        report_lines(&db, &[])
    };
    let db = dir.path().join("scan.db");
    let first = rules("first", &[ticket, code]);
    scan_with(&db, &first);
    let tickets = report_lines(&db, &["--rule", "acme.ticket"]);
    assert_eq!(tickets.len(), 7, "{tickets:#?}\n{:#?}", report_lines(&db, &[]));
    assert!(report_lines(&db, &["--rule", "acme.code"]).is_empty());

    // A rule added: every blob is scanned with it alone; the other findings stand.
    let added = rules("added", &[ticket, code, order]);
    let run = scan_with(&db, &added);
    assert_eq!(run["blobs_scanned"], 0, "{run}");
    assert_eq!(run["blobs_delta_scanned"], 13, "11 files and 2 members: {run}");
    assert_eq!(report_lines(&db, &[]), fresh(&added));
    assert_eq!(report_lines(&db, &["--rule", "acme.order"]).len(), 4);

    // A rule removed: what holds none of its findings is kept as it is; what does is scanned
    // again in full, since the removed rule hid `acme.code` there.
    let removed = rules("removed", &[code, order]);
    let run = scan_with(&db, &removed);
    assert_eq!(run["blobs_scanned"], 8, "6 tickets, the wheel and its ticket: {run}");
    assert_eq!(run["blobs_delta_scanned"], 0, "{run}");
    assert_eq!(run["blobs_reused"], 5, "{run}");
    assert_eq!(report_lines(&db, &[]), fresh(&removed));
    assert_eq!(report_lines(&db, &["--rule", "acme.code"]).len(), 7);
}

#[test]
fn the_same_bytes_under_names_that_select_other_views_are_other_blobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("src");
    fs::create_dir(&tree).expect("mkdir");
    let mut s = Secrets::new();
    let token = s.github_classic("ghp_");
    // A token split over two literals is joined by the `concat` view, which only source
    // files get: the `.py` has a finding, the `.txt` with the same bytes has none.
    let (head, tail) = token.split_at(20);
    let text = format!("TOKEN = (\n    \"{head}\"\n    \"{tail}\"\n)\n");
    fs::write(tree.join("a_notes.txt"), &text).expect("write");
    fs::write(tree.join("z_settings.py"), &text).expect("write");
    // A gzip stream's member is named after it: copies under two names keep their own names.
    python(
        &tree,
        "import gzip,sys; open('a_env.txt.gz','wb').write(gzip.compress(open(sys.argv[1]).read().encode(), mtime=0))",
        &[tree.join("z_settings.py").to_str().expect("utf-8")],
    );
    fs::copy(tree.join("a_env.txt.gz"), tree.join("b_conf.py.gz")).expect("copy");
    let plain = {
        let mut cmd = keysweep();
        cmd.args([
            "scan",
            "-q",
            "--exit-zero",
            "-j",
            "1",
            "-f",
            "jsonl",
            "--confidence",
            "low",
        ])
        .arg(&tree);
        let mut lines: Vec<String> = crate::util::jsonl(&run(cmd))
            .iter()
            .map(|f| format!("{} {}", f["location"]["path"], f["location"]["members"]))
            .collect();
        lines.sort();
        lines
    };
    assert!(plain.iter().any(|l| l.contains("z_settings.py")), "{plain:?}");
    assert!(
        plain
            .iter()
            .any(|l| l.contains("b_conf.py.gz") && l.contains("b_conf.py")),
        "{plain:?}"
    );
    let db = dir.path().join("scan.db");
    scan_into(&db, &[&tree], &["-j", "1"]);
    let mut stored: Vec<String> = report_lines(&db, &[])
        .iter()
        .map(|l| {
            let f: serde_json::Value = serde_json::from_str(l).expect("json");
            format!("{} {}", f["location"]["path"], f["location"]["members"])
        })
        .collect();
    stored.sort();
    assert_eq!(stored, plain);
}

#[test]
fn a_blob_cut_short_by_its_file_budget_is_not_reused_where_it_fits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("src");
    fs::create_dir(&tree).expect("mkdir");
    let mut s = Secrets::new();
    let token = s.github_classic("ghp_");
    // a_outer.zip holds deep.zip > middle.zip > inner.zip > secret.txt, then middle.zip
    // itself; b_copy.zip is a copy of middle.zip. With --max-depth 3, inner.zip is opened
    // where middle.zip sits at depth 1 or 0, not where it sits at depth 2: that first scan of
    // middle.zip is cut short and must not stand for the others; and 0_copy.zip, scanned
    // first, opens deeper than deep.zip!middle.zip may, so that place must not link to it.
    // (Incompressible padding keeps middle.zip over the 4 KiB below which members are not
    // deduplicated.)
    let padding = "# padding\n".repeat(500);
    python(
        &tree,
        "import io, sys, zipfile\n\
def z(entries):\n    b = io.BytesIO()\n    with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as f:\n        for n, d in entries: f.writestr(n, d)\n    return b.getvalue()\n\
inner = z([('secret.txt', sys.argv[1] + sys.argv[2])])\n\
import base64, os\n\
middle = z([('inner.zip', inner), ('pad.txt', base64.b64encode(os.urandom(9000)))])\n\
open('a_outer.zip', 'wb').write(z([('deep.zip', z([('middle.zip', middle)])), ('middle.zip', middle)]))\n\
open('b_copy.zip', 'wb').write(middle)\n\
open('0_copy.zip', 'wb').write(middle)\n",
        &[&padding, &format!("TOKEN = '{token}'\n")],
    );
    let scan = |extra: &[&str]| {
        let mut cmd = keysweep();
        cmd.args(["scan", "-q", "--exit-zero", "--max-depth", "3", "-f", "jsonl"])
            .args(extra)
            .arg(&tree);
        crate::util::jsonl(&run(cmd)).len()
    };
    let plain = scan(&[]);
    assert_eq!(plain, 3, "found in 0_copy.zip, b_copy.zip and a_outer.zip!middle.zip");
    for jobs in ["1", "2"] {
        let db = dir.path().join(format!("scan{jobs}.db"));
        let with_store = {
            let mut cmd = keysweep();
            cmd.args([
                "scan",
                "-q",
                "--exit-zero",
                "--max-depth",
                "3",
                "-f",
                "jsonl",
                "-j",
                jobs,
                "--datastore",
            ])
            .arg(&db)
            .arg(&tree);
            crate::util::jsonl(&run(cmd)).len()
        };
        assert_eq!(with_store, plain, "-j {jobs}");
        assert_eq!(report_lines(&db, &[]).len(), plain, "-j {jobs}");
    }
}

#[test]
fn copies_of_a_file_cut_short_by_its_own_budget_all_report_its_findings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("src");
    fs::create_dir(&tree).expect("mkdir");
    let mut s = Secrets::new();
    // A truncated gzip stream: every copy warns (corrupt), so its blob is not reusable, yet
    // each copy is the same file with the same findings, and links to the first.
    let text: String = (0..5)
        .map(|i| format!("AWS_ACCESS_KEY_ID_{i} = \"{}\"\n", s.aws_key_id()))
        .collect::<String>()
        + &"# filler line\n".repeat(2000);
    let first = tree.join("notes000.txt.gz");
    python(
        &tree,
        "import gzip, sys; data = gzip.compress(sys.argv[1].encode(), mtime=0); open('notes000.txt.gz', 'wb').write(data[: len(data) - 12])",
        &[&text],
    );
    for i in 1..200 {
        fs::copy(&first, tree.join(format!("notes{i:03}.txt.gz"))).expect("copy");
    }
    let mut cmd = keysweep();
    cmd.args(["scan", "-q", "--exit-zero", "-j", "2", "-f", "jsonl"])
        .arg(&tree);
    let plain = crate::util::jsonl(&run(cmd)).len();
    assert_eq!(plain, 1000);
    for round in 0..3 {
        let db = dir.path().join(format!("scan{round}.db"));
        let out = scan_into(&db, &[&tree], &[]);
        assert_eq!(crate::util::jsonl(&out).len(), plain, "round {round}");
        assert_eq!(report_lines(&db, &[]).len(), plain, "round {round}");
    }
}
