//! Archives built inside the test run with python3 (setuptools sdists and eggs, wheels,
//! compressed tars, nested and hostile archives), scanned in memory by the binary.

use std::path::Path;
use std::process::Command;

use crate::util::{find, jsonl, keysweep, python, run_measuring_rss, scan, Secrets};

const BUILD_RELEASES: &str = r#"
import io, os, sys, tarfile, zipfile, subprocess, shutil, bz2, lzma
t_wheel, t_sdist, t_zip, t_egg, t_bz2, t_xz, t_nested = sys.argv[1:8]
os.makedirs("dist", exist_ok=True)
# A real sdist and egg, built by setuptools from a tiny project.
os.makedirs("proj/acme_tool", exist_ok=True)
open("proj/setup.py", "w").write("from setuptools import setup\nsetup(name='Acme_Tool', version='1.2.0', packages=['acme_tool'])\n")
open("proj/acme_tool/__init__.py", "w").write(f"GITHUB_TOKEN = '{t_sdist}'\n")
subprocess.run([sys.executable, "setup.py", "-q", "sdist", "--formats=gztar", "-d", "../dist"], cwd="proj", check=True, capture_output=True)
open("proj/acme_tool/__init__.py", "w").write(f"GITHUB_TOKEN = '{t_egg}'\n")
subprocess.run([sys.executable, "setup.py", "-q", "bdist_egg", "-d", "../dist"], cwd="proj", check=True, capture_output=True)
# A wheel: the zip layout of the wheel specification.
with zipfile.ZipFile("dist/data_kit-0.3.1-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("data_kit/__init__.py", "")
    z.writestr("data_kit/settings.py", f"import os\n\nTOKEN = os.environ.get('T', '{t_wheel}')\n")
    z.writestr("data_kit-0.3.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: data-kit\nVersion: 0.3.1\n")
    z.writestr("data_kit-0.3.1.dist-info/RECORD", "")
# A zip sdist.
with zipfile.ZipFile("dist/zip_proj-4.0.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("zip_proj-4.0/zip_proj/conf.py", f"token = '{t_zip}'\n")
def tar_with(path, mode, member, text):
    with tarfile.open(path, mode) as t:
        data = text.encode()
        info = tarfile.TarInfo(member); info.size = len(data)
        t.addfile(info, io.BytesIO(data))
tar_with("dist/bz_proj-1.0.tar.bz2", "w:bz2", "bz_proj-1.0/app.py", f"t = '{t_bz2}'\n")
tar_with("dist/xz_proj-1.0.tar.xz", "w:xz", "xz_proj-1.0/app.py", f"t = '{t_xz}'\n")
tar_with("plain.tar", "w", "zst_proj-1.0/app.py", "placeholder\n")
# An sdist vendoring a wheel that holds a secret.
with zipfile.ZipFile("inner_lib-2.0-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("inner_lib/keys.py", f"KEY = '{t_nested}'\n")
with tarfile.open("dist/outer-1.0.tar.gz", "w:gz") as t:
    t.add("inner_lib-2.0-py3-none-any.whl", arcname="outer-1.0/vendor/inner_lib-2.0-py3-none-any.whl")
"#;

#[test]
fn release_files_of_every_kind_are_opened_and_attributed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let tokens: Vec<String> = (0..8).map(|_| s.github_classic("ghp_")).collect();
    let args: Vec<&str> = tokens.iter().map(String::as_str).collect();
    python(dir.path(), BUILD_RELEASES, &args[..7]);
    // zstd: python3.11 has no zstd module, so the test compresses a tar itself.
    let tar = {
        let mut builder = tar::Builder::new(Vec::new());
        let text = format!("t = '{}'\n", tokens[7]);
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "zst_proj-1.0/app.py", text.as_bytes())
            .expect("tar");
        builder.into_inner().expect("tar bytes")
    };
    let zst = zstd::encode_all(&tar[..], 3).expect("zstd");
    std::fs::write(dir.path().join("dist/zst_proj-1.0.tar.zst"), zst).expect("write");

    let (out, findings) = scan(&dir.path().join("dist"), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");

    let expect = |token: &str, file_suffix: &str, member_suffix: &str, name: &str, kind: &str| {
        let f = find(&findings, token);
        let path = f["location"]["path"].as_str().unwrap_or_default();
        assert!(path.ends_with(file_suffix), "{path} vs {file_suffix}");
        let members: Vec<&str> = f["location"]["members"]
            .as_array()
            .map(|m| m.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        assert!(
            members.last().is_some_and(|m| m.ends_with(member_suffix)),
            "{members:?} vs {member_suffix}"
        );
        assert_eq!(f["package"]["name"], name, "{f:#}");
        assert_eq!(f["package"]["kind"], kind, "{f:#}");
    };
    expect(&tokens[0], ".whl", "data_kit/settings.py", "data-kit", "wheel");
    expect(
        &tokens[1],
        "-1.2.0.tar.gz",
        "acme_tool/__init__.py",
        "acme-tool",
        "sdist",
    );
    expect(&tokens[2], "zip_proj-4.0.zip", "zip_proj/conf.py", "zip-proj", "sdist");
    expect(&tokens[3], ".egg", "acme_tool/__init__.py", "acme-tool", "egg");
    expect(&tokens[4], ".tar.bz2", "bz_proj-1.0/app.py", "bz-proj", "sdist");
    expect(&tokens[5], ".tar.xz", "xz_proj-1.0/app.py", "xz-proj", "sdist");
    expect(&tokens[7], ".tar.zst", "zst_proj-1.0/app.py", "zst-proj", "sdist");
    // The vendored wheel: the chain names both hops, the package is the published sdist.
    let nested = find(&findings, &tokens[6]);
    assert_eq!(
        nested["location"]["members"],
        serde_json::json!(["outer-1.0/vendor/inner_lib-2.0-py3-none-any.whl", "inner_lib/keys.py"])
    );
    assert_eq!(nested["package"]["filename"], "outer-1.0.tar.gz");
    assert_eq!(nested["location"]["line"], 1);
    assert!(stderr.contains("archives:"), "{stderr}");

    // --no-archives scans the bytes as they are: compressed members hide their secrets.
    let (_, raw) = scan(&dir.path().join("dist"), &["--no-archives"]);
    assert!(raw.iter().all(|f| f["secret"] != tokens[0].as_str()), "{raw:#?}");
}

const BUILD_HOSTILE: &str = r##"
import io, os, sys, struct, tarfile, zipfile, zlib
token_bomb, token_overlap, token_deep, token_crc, token_trunc, token_big, token_junk = sys.argv[1:8]
os.makedirs("hostile", exist_ok=True)
# A zip bomb: 64 MiB of zeros deflate to ~64 KiB (ratio ~1000), next to a real member.
with zipfile.ZipFile("hostile/bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("zeros.bin", b"\0" * (64 << 20))
    z.writestr("app/config.py", f"t = '{token_bomb}'\n")
# An overlapping-entry zip bomb: a second central-directory entry points at the first
# member's local header.
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
    z.writestr("a.py", f"t = '{token_overlap}'\n")
    z.writestr("b.py", "x = 1\n")
data = bytearray(buf.getvalue())
cd = data.rfind(b"PK\x01\x02")  # the last central-directory entry: b.py
struct.pack_into("<I", data, cd + 42, 0)
open("hostile/overlap.zip", "wb").write(data)
# 100 levels of zip in zip, a secret at the bottom.
blob = f"t = '{token_deep}'\n".encode()
name = "leaf.py"
for level in range(100):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_STORED) as z:
        z.writestr(name, blob)
    blob, name = inner.getvalue(), f"level{level}.zip"
open("hostile/deep.zip", "wb").write(blob)
# A zip whose CRC is wrong in both headers.
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("c.py", f"t = '{token_crc}'\n")
data = bytearray(buf.getvalue())
for sig, off in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
    pos = data.find(sig)
    struct.pack_into("<I", data, pos + off, struct.unpack_from("<I", data, pos + off)[0] ^ 0xdeadbeef)
open("hostile/badcrc.zip", "wb").write(data)
# A tar cut in the middle of its second member.
with tarfile.open("t.tar", "w") as t:
    for n, text in (("first.py", f"t = '{token_trunc}'\n"), ("second.py", "y = 2\n" * 5000)):
        d = text.encode(); info = tarfile.TarInfo(n); info.size = len(d); t.addfile(info, io.BytesIO(d))
full = open("t.tar", "rb").read()
open("hostile/truncated.tar", "wb").write(full[: 1024 + 9000])
# A 40 MiB member (streamed, not held) with a secret across a 1 MiB chunk boundary.
line = b"# filler filler filler filler filler filler filler filler filler\n"
body = bytearray(line * ((40 << 20) // len(line)))
at = (3 << 20) - 20
body[at - 1:at] = b"\n"
secret = f"k = '{token_big}'\n".encode()
body[at:at + len(secret)] = secret
with tarfile.open("hostile/big.tar.gz", "w:gz", compresslevel=1) as t:
    info = tarfile.TarInfo("big/data.py"); info.size = len(body)
    t.addfile(info, io.BytesIO(bytes(body)))
open("hostile/line.txt", "w").write(str(bytes(body[:at]).count(b"\n") + 1))
# A directory that does not parse, behind thousands of end-of-directory records: a parser
# that retries from every earlier record takes quadratic time.
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
    for i in range(3000):
        z.writestr(f"f{i}.txt", "x")
data = bytearray(buf.getvalue())
eocd = data.rfind(b"PK\x05\x06")
last_cd = data.rfind(b"PK\x01\x02")
data[last_cd:last_cd + 4] = b"XX\x01\x02"
record = bytes(data[eocd:eocd + 22])
open("hostile/quadratic.zip", "wb").write(bytes(data) + record * 3000)
# gzip magic, then no gzip at all: the bytes are scanned as they are.
open("hostile/junk.bin", "wb").write(b"\x1f\x8bnot gzip at all\n" + f"t = '{token_junk}'\n".encode())
# gzip of gzip of zeros: each level within the ratio, the whole far beyond it.
import gzip
open("hostile/double.gz", "wb").write(gzip.compress(gzip.compress(b"\0" * (200 << 20), 9), 9))
"##;

#[test]
fn hostile_archives_warn_count_and_keep_scanning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let tokens: Vec<String> = (0..7).map(|_| s.github_classic("ghp_")).collect();
    let args: Vec<&str> = tokens.iter().map(String::as_str).collect();
    python(dir.path(), BUILD_HOSTILE, &args);
    let hostile = dir.path().join("hostile");
    let mut cmd = keysweep();
    cmd.args(["scan", "--format", "jsonl", "-j", "2"]).arg(&hostile);
    let (out, peak_kib) = run_measuring_rss(cmd);
    let findings = jsonl(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // Bombs, deep nests and a 40 MiB streamed member: memory stays bounded.
    assert!(peak_kib < 400 * 1024, "peak RSS {} MiB", peak_kib / 1024);

    // Zip bomb: the ratio budget stops the zeros; the real member is still scanned.
    assert!(
        stderr.contains("zeros.bin") && stderr.contains("compression-ratio"),
        "{stderr}"
    );
    find(&findings, &tokens[0]);
    // Overlapping entries: the overlap is refused, the first member found once.
    assert!(stderr.contains("overlap"), "{stderr}");
    let overlap: Vec<_> = findings.iter().filter(|f| f["secret"] == tokens[1].as_str()).collect();
    assert_eq!(overlap.len(), 1, "{overlap:#?}");
    // 100 levels: opened to the depth budget, then scanned raw: the stored secret is
    // still visible in the raw bytes of the deepest opened level.
    assert!(stderr.contains("nested deeper than 8"), "{stderr}");
    let deep = find(&findings, &tokens[2]);
    assert_eq!(deep["location"]["members"].as_array().map(Vec::len), Some(8));
    // Wrong CRC: warned, scanned anyway.
    assert!(stderr.contains("CRC mismatch"), "{stderr}");
    find(&findings, &tokens[3]);
    // Truncated tar: the first member is scanned, the cut is a warning.
    find(&findings, &tokens[4]);
    assert!(stderr.contains("truncated.tar"), "{stderr}");
    // A member larger than the in-memory budget streams through; the position is exact.
    let big = find(&findings, &tokens[5]);
    let expected_line: u64 = std::fs::read_to_string(hostile.join("line.txt"))
        .expect("line")
        .trim()
        .parse()
        .expect("number");
    assert_eq!(big["location"]["line"], expected_line);
    assert_eq!(big["location"]["offset"], (3u64 << 20) - 20 + 5);
    // A directory behind thousands of end records: refused at once, scanned raw.
    assert!(
        stderr.contains("quadratic.zip") && stderr.contains("unreadable zip"),
        "{stderr}"
    );
    // Magic bytes without a stream: the raw bytes are scanned.
    find(&findings, &tokens[6]);
    // Nested compression cannot multiply the ratio: the file-wide cap stops it.
    assert!(
        stderr.contains("double.gz") && stderr.contains("bytes unpacked from this file"),
        "{stderr}"
    );
    for counter in ["budget_exceeded", "corrupt_archive"] {
        assert!(stderr.contains(&format!("warning: {counter}")), "{counter}: {stderr}");
    }
    assert!(stderr.contains("budget hits"), "{stderr}");
}

#[test]
fn unpacked_bytes_budget_stops_a_file_and_the_scan_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = Secrets::new().github_classic("ghp_");
    python(
        dir.path(),
        r#"
import sys, zipfile, os
os.makedirs("in", exist_ok=True)
with zipfile.ZipFile("in/big.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for i in range(8):
        z.writestr(f"part{i}.txt", os.urandom(1 << 20).hex())
open("in/plain.py", "w").write(f"t = '{sys.argv[1]}'\n")
"#,
        &[&token],
    );
    let (out, findings) = scan(&dir.path().join("in"), &["--max-unpacked-bytes", "3M"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bytes unpacked from this file"), "{stderr}");
    find(&findings, &token);
}

const PACK_PLANTED: &str = r#"
import gzip, io, json, os, shutil, sys, tarfile, zipfile, bz2, lzma
root, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
kinds = ["wheel", "sdist", "zipsdist", "egg", "bz2", "xz", "nested", "gz"]
expect = []
manifest = [json.loads(l) for l in open(os.path.join(root, "manifest.jsonl"))]
projects = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
def files(proj):
    base = os.path.join(root, proj)
    for dirpath, _, names in os.walk(base):
        for n in names:
            full = os.path.join(dirpath, n)
            yield full, os.path.relpath(full, base)
for i, proj in enumerate(projects):
    kind = kinds[i % len(kinds)]
    name = f"proj{i}"
    if kind == "wheel":
        fname = f"{name}-1.{i}-py3-none-any.whl"; prefix = ""
        with zipfile.ZipFile(os.path.join(out, fname), "w", zipfile.ZIP_DEFLATED) as z:
            for full, rel in files(proj): z.write(full, rel)
    elif kind in ("sdist", "bz2", "xz"):
        ext = {"sdist": "gz", "bz2": "bz2", "xz": "xz"}[kind]
        fname = f"{name}-1.{i}.tar.{ext}"; prefix = f"{name}-1.{i}/"
        with tarfile.open(os.path.join(out, fname), f"w:{ext}") as t:
            for full, rel in files(proj): t.add(full, prefix + rel)
    elif kind == "zipsdist":
        fname = f"{name}-1.{i}.zip"; prefix = f"{name}-1.{i}/"
        with zipfile.ZipFile(os.path.join(out, fname), "w", zipfile.ZIP_DEFLATED) as z:
            for full, rel in files(proj): z.write(full, prefix + rel)
    elif kind == "egg":
        fname = f"{name}-1.{i}-py3.11.egg"; prefix = ""
        with zipfile.ZipFile(os.path.join(out, fname), "w", zipfile.ZIP_DEFLATED) as z:
            for full, rel in files(proj): z.write(full, rel)
    elif kind == "nested":
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
            for full, rel in files(proj): z.write(full, rel)
        fname = f"{name}-1.{i}.tar.gz"; prefix = f"{name}-1.{i}/vendor/dep-0.1-py3-none-any.whl!"
        with tarfile.open(os.path.join(out, fname), "w:gz") as t:
            data = inner.getvalue(); info = tarfile.TarInfo(f"{name}-1.{i}/vendor/dep-0.1-py3-none-any.whl"); info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    else:
        # single-file gzip per planted file, under a directory named like a wheel: no package
        fname = None
        for full, rel in files(proj):
            dest = os.path.join(out, "loose", proj, rel + ".gz")
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(full, "rb") as src, gzip.open(dest, "wb") as dst: shutil.copyfileobj(src, dst)
    for m in manifest:
        if m["file"].startswith(proj + "/"):
            rel = m["file"][len(proj) + 1:]
            if fname:
                expect.append({"file": fname, "member": prefix + rel, "secret": m["secret"], "package": name, "kind": kind})
            else:
                expect.append({"file": os.path.join("loose", proj, rel + ".gz"), "member": os.path.basename(rel), "secret": m["secret"], "package": None, "kind": kind})
json.dump(expect, open(os.path.join(out, "..", "expect.json"), "w"))
"#;

/// Recall inside every container kind, with package attribution: the planted corpus of
/// `corpora/plant.py`, packed into wheels, sdists (gz, bz2, xz, zip), eggs, single-file
/// gzip and a wheel vendored in an sdist.
#[test]
fn planted_secrets_in_every_container_are_found_and_attributed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = fastrand::u32(..).to_string();
    let plant = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/plant.py");
    let status = Command::new("python3")
        .arg(&plant)
        .arg(dir.path().join("corpus"))
        .args(["--seed", &seed, "--count-per-kind", "3", "--planted-only"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("plant.py");
    assert!(status.success());
    let root = dir.path().join("corpus/planted");
    let out = dir.path().join("packed");
    python(
        dir.path(),
        PACK_PLANTED,
        &[root.to_str().expect("utf-8"), out.to_str().expect("utf-8")],
    );
    let expect: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("expect.json")).expect("expect")).expect("json");
    let (_, findings) = scan(&out, &[]);
    let mut missed = Vec::new();
    for e in &expect {
        let secret = e["secret"].as_str().unwrap_or_default();
        let file = e["file"].as_str().unwrap_or_default();
        let member = e["member"].as_str().unwrap_or_default();
        let ok = findings.iter().any(|f| {
            let got = f["secret"].as_str().unwrap_or_default();
            let chain: Vec<&str> = f["location"]["members"]
                .as_array()
                .map(|m| m.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            let package_ok = match e["package"].as_str() {
                Some(name) => f["package"]["name"] == name,
                None => f.get("package").is_none(),
            };
            f["location"]["path"].as_str().unwrap_or_default().ends_with(file)
                && chain.join("!") == member
                && package_ok
                && (got == secret || got.contains(secret) || (got.len() >= 8 && secret.contains(got)))
        });
        if !ok {
            missed.push(format!("{} {} {}", e["kind"], file, member));
        }
    }
    let recall = 1.0 - missed.len() as f64 / expect.len() as f64;
    assert!(expect.len() > 100, "{}", expect.len());
    assert!(recall >= 0.97, "recall {recall:.3} (seed {seed}); missed: {missed:#?}");
}

#[test]
fn a_mirror_root_is_walked_through_web_packages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = Secrets::new().github_classic("ghp_");
    python(
        dir.path(),
        r#"
import os, sys, zipfile
pkg = "mirror/web/packages/3f/1a/9c0e4b7d2a5f8e1c3b6d9a2e5f8c1b4d7a0e3f6c9b2d5e8f1a4c7b0d3e6f9a2c"
os.makedirs(pkg)
with zipfile.ZipFile(f"{pkg}/Tiny_Pkg-0.9-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("tiny_pkg/__init__.py", f"TOKEN = '{sys.argv[1]}'\n")
os.makedirs("mirror/web/simple/tiny-pkg")
open("mirror/web/simple/tiny-pkg/index.html", "w").write(f"<a href='x'>{sys.argv[1]}</a>\n")
"#,
        &[&token],
    );
    let (_, findings) = scan(&dir.path().join("mirror"), &[]);
    assert_eq!(findings.len(), 1, "index pages are not scanned: {findings:#?}");
    assert_eq!(findings[0]["package"]["name"], "tiny-pkg");
    assert_eq!(findings[0]["package"]["version"], "0.9");
    let path = findings[0]["location"]["path"].as_str().unwrap_or_default();
    assert!(path.contains("web/packages/3f/1a/"), "{path}");
}

const BUILD_IMAGES: &str = r#"
import hashlib, io, json, os, sys, tarfile, gzip, zipfile
t_env, t_history, t_deleted, t_wheel, t_layer2 = sys.argv[1:6]
def tar_bytes(files, gz=False):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        for name, data in files:
            info = tarfile.TarInfo(name); info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    data = raw.getvalue()
    return gzip.compress(data) if gz else data
wheel = io.BytesIO()
with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("vendor_pkg/keys.py", f"KEY = '{t_wheel}'\n")
layer1 = tar_bytes([
    ("app/secrets.env", f"GITHUB_TOKEN={t_deleted}\n".encode()),
    ("usr/lib/python3.11/site-packages/vendor_pkg-1.0-py3-none-any.whl", wheel.getvalue()),
])
# Layer 2 deletes app/secrets.env (a whiteout): the file is still in layer 1 of the image.
layer2 = tar_bytes([("app/.wh.secrets.env", b""), ("app/main.py", f"T = '{t_layer2}'\n".encode())], gz=True)
config = json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/bin", f"GITHUB_TOKEN={t_env}"]},
    "history": [{"created_by": f"/bin/sh -c curl -H 'Authorization: token {t_history}' https://api.github.com/x"}],
    "rootfs": {"type": "layers", "diff_ids": []},
}).encode()
digest = lambda b: hashlib.sha256(b).hexdigest()
blobs = {digest(layer1): layer1, digest(layer2): layer2, digest(config): config}
# An OCI image layout, as a directory and as a tar (what `docker save` writes today).
manifest = json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + digest(config)},
    "layers": [{"digest": "sha256:" + digest(layer1)}, {"digest": "sha256:" + digest(layer2)}]}).encode()
blobs[digest(manifest)] = manifest
files = [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
         ("index.json", json.dumps({"manifests": [{"digest": "sha256:" + digest(manifest)}]}).encode())]
files += [("blobs/sha256/" + d, b) for d, b in blobs.items()]
os.makedirs("images/oci-dir", exist_ok=True)
for name, data in files:
    os.makedirs(os.path.dirname(os.path.join("images/oci-dir", name)) or "images/oci-dir", exist_ok=True)
    open(os.path.join("images/oci-dir", name), "wb").write(data)
open("images/image.tar", "wb").write(tar_bytes(files))
open("layer1.txt", "w").write(digest(layer1))
"#;

/// `docker save` / OCI image tarballs and layout directories: every layer (files deleted
/// by a later layer included), archives inside layers, and the image config's Env and
/// history are scanned, with the layer digest in the member chain.
#[test]
fn container_images_are_scanned_layer_by_layer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let tokens: Vec<String> = (0..5).map(|_| s.github_classic("ghp_")).collect();
    let args: Vec<&str> = tokens.iter().map(String::as_str).collect();
    python(dir.path(), BUILD_IMAGES, &args);
    let layer1 = std::fs::read_to_string(dir.path().join("layer1.txt")).expect("digest");
    for image in ["images/image.tar", "images/oci-dir"] {
        let (out, findings) = scan(&dir.path().join(image), &[]);
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        for token in &tokens {
            find(&findings, token);
        }
        let deleted = find(&findings, &tokens[2]);
        let chain = deleted["location"]["members"].to_string() + deleted["location"]["path"].as_str().unwrap_or("");
        assert!(chain.contains(&layer1), "layer digest in provenance: {chain}");
        assert!(chain.contains("app/secrets.env"), "{chain}");
        let vendored = find(&findings, &tokens[3]);
        assert!(
            vendored["location"]["members"]
                .to_string()
                .contains("vendor_pkg-1.0-py3-none-any.whl"),
            "{vendored:#}"
        );
    }
}
