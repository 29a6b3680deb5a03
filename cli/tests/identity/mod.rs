//! The library and the binary are one scanner: for every file of a corpus holding every
//! kind of artefact keysweep reads (plain text, configuration, notebooks, compiled Python,
//! ELF objects, UTF-16 text, encoded text, wheels, sdists, eggs, nested and compressed
//! archives, container images, corrupt archives, the bundled demo corpus), the library's
//! `Scanner::scan_bytes(path, bytes)` reports exactly the findings `keysweep scan -f jsonl`
//! reports for that file: the same JSON Lines, every field of every object.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use keysweep::{RuleSet, Scanner, ScannerOptions};
use serde_json::Value;

use crate::util::{keysweep, python, run_with_deadline, upload_token, Secrets};

/// Builds the binary artefacts of the corpus under `corpus/`: releases of every kind,
/// compiled Python, container images, a notebook and corrupt archives. The tokens come in
/// as one JSON object (argv[1]), generated at random by the test.
const BUILD_ARTEFACTS: &str = r##"
import bz2, gzip, hashlib, io, itertools, json, lzma, os, py_compile, struct, sys, tarfile, zipfile
T = json.loads(sys.argv[1])
C = "corpus"

def put(rel, data):
    path = os.path.join(C, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)

def tar_bytes(files, mode="w"):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode=mode) as t:
        for name, data in files:
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name); info.size = len(data); info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    return raw.getvalue()

def zip_bytes(files, method=zipfile.ZIP_DEFLATED):
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", method) as z:
        for name, data in files:
            z.writestr(name, data)
    return raw.getvalue()

counter = itertools.count()
def pyc(source):
    os.makedirs("build-pyc", exist_ok=True)
    src = os.path.join("build-pyc", "m%d.py" % next(counter))
    with open(src, "w") as f:
        f.write(source)
    py_compile.compile(src, cfile=src + "c", doraise=True)
    with open(src + "c", "rb") as f:
        return f.read()

# Compiled Python: a bare 40-hex token passed as access_token= and as the default of a
# github_token parameter, a prefixed token inside a longer constant, an AWS secret.
fetch_src = (
    "def _fetch_github_file(path, access_token=None):\n    return path\n\n"
    "def main():\n"
    f"    return _fetch_github_file('README.md', access_token='{T['hex_call']}')\n\n"
    f"def github_client(github_token='{T['hex_default']}'):\n"
    f"    return {{'Authorization': 'token {T['ghp_pyc_header']}'}}\n"
)
put("pyc/fetch.cpython-311.pyc", pyc(fetch_src))
put("pyc/settings.pyc", pyc(f"REGION = 'eu-west-1'\nGITHUB_TOKEN = '{T['ghp_pyc']}'\nAWS_SECRET_ACCESS_KEY = '{T['aws_pyc']}'\n"))

# A wheel (with a compiled module inside), an sdist with a test suite, a zip sdist, an egg.
put("dist/data_kit-0.3.1-py3-none-any.whl", zip_bytes([
    ("data_kit/__init__.py", ""),
    ("data_kit/settings.py", f"import os\n\nTOKEN = os.environ.get('T', '{T['wheel']}')\n"),
    ("data_kit/__pycache__/keys.cpython-311.pyc", pyc(f"AWS_SECRET_ACCESS_KEY = '{T['aws_wheel_pyc']}'\n")),
    ("data_kit-0.3.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: data-kit\nVersion: 0.3.1\n"),
    ("data_kit-0.3.1.dist-info/RECORD", ""),
]))
put("dist/acme_tool-1.2.0.tar.gz", tar_bytes([
    ("acme_tool-1.2.0/PKG-INFO", "Metadata-Version: 2.1\nName: acme-tool\nVersion: 1.2.0\n"),
    ("acme_tool-1.2.0/setup.py", "from setuptools import setup\nsetup(name='acme-tool', version='1.2.0')\n"),
    ("acme_tool-1.2.0/acme_tool/__init__.py", f"GITHUB_TOKEN = '{T['sdist']}'\n"),
    ("acme_tool-1.2.0/tests/test_api.py", f"def test_call():\n    token = '{T['sdist_test']}'\n"),
], "w:gz"))
put("dist/zip_proj-4.0.zip", zip_bytes([
    ("zip_proj-4.0/PKG-INFO", "Metadata-Version: 2.1\nName: zip-proj\nVersion: 4.0\n"),
    ("zip_proj-4.0/zip_proj/conf.py", f"token = '{T['zip']}'\n"),
]))
put("dist/acme_tool-1.2.0-py3.11.egg", zip_bytes([
    ("EGG-INFO/PKG-INFO", "Metadata-Version: 2.1\nName: acme-tool\nVersion: 1.2.0\n"),
    ("acme_tool/__init__.py", f"GITHUB_TOKEN = '{T['egg']}'\n"),
]))
# An sdist vendoring a wheel that holds a secret; bz2 and xz sdists.
inner = zip_bytes([("inner_lib/keys.py", f"KEY = '{T['nested']}'\n")])
put("dist/outer-1.0.tar.gz", tar_bytes([("outer-1.0/vendor/inner_lib-2.0-py3-none-any.whl", inner)], "w:gz"))
put("dist/bz_proj-1.0.tar.bz2", tar_bytes([("bz_proj-1.0/app.py", f"t = '{T['bz2']}'\n")], "w:bz2"))
put("dist/xz_proj-1.0.tar.xz", tar_bytes([("xz_proj-1.0/app.py", f"t = '{T['xz']}'\n")], "w:xz"))
# A single-file gzip.
put("misc/notes.txt.gz", gzip.compress(f"token: {T['gz']}\n".encode(), mtime=0))
# A release in a mirror's layout (a hash path under web/packages), its index page beside it.
put("mirror/web/packages/3f/1a/9c0e4b7d2a5f8e1c3b6d9a2e5f8c1b4d7a0e3f6c9b2d5e8f1a4c7b0d3e6f9a2c/Tiny_Pkg-0.9-py3-none-any.whl",
    zip_bytes([("tiny_pkg/__init__.py", f"TOKEN = '{T['mirror']}'\n")]))
put("mirror/web/simple/tiny-pkg/index.html", "<a href='x'>Tiny_Pkg-0.9-py3-none-any.whl</a>\n")

# Corrupt archives: a wheel cut before its central directory (stored, so the first member
# is whole), a zip whose CRC is wrong in both headers, a tar.gz cut in the middle.
whole = zip_bytes([("broken/keys.py", f"KEY = '{T['broken']}'\n"), ("broken/data.py", "y = 2\n" * 3000)], zipfile.ZIP_STORED)
put("dist/broken-0.1-py3-none-any.whl", whole[: len(whole) * 2 // 3])
data = bytearray(zip_bytes([("c.py", f"t = '{T['badcrc']}'\n")]))
for sig, off in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
    pos = data.find(sig)
    struct.pack_into("<I", data, pos + off, struct.unpack_from("<I", data, pos + off)[0] ^ 0xdeadbeef)
put("misc/badcrc.zip", bytes(data))
full = tar_bytes([("cut/keys.py", f"t = '{T['cut']}'\n"),
                  ("cut/filler.py", "".join(f"value_{i} = {i * 7919 % 100003}\n" for i in range(20000)))], "w:gz")
put("misc/cut.tar.gz", full[: len(full) // 2])

# Container images: an OCI image as `docker save` writes it today (a tar of the layout: a
# plain layer, a gzip layer that deletes a file of the first one, a config with Env and
# history), the same layout as a directory, and a legacy `docker save` tarball.
wheel = zip_bytes([("vendor_pkg/keys.py", f"KEY = '{T['img_wheel']}'\n")])
layer1 = tar_bytes([
    ("app/secrets.env", f"GITHUB_TOKEN={T['img_deleted']}\n"),
    ("usr/lib/python3.11/site-packages/vendor_pkg-1.0-py3-none-any.whl", wheel),
])
layer2 = gzip.compress(tar_bytes([("app/.wh.secrets.env", b""), ("app/main.py", f"T = '{T['img_layer2']}'\n")]), mtime=0)
config = json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/bin", f"GITHUB_TOKEN={T['img_env']}"]},
    "history": [{"created_by": f"/bin/sh -c curl -H 'Authorization: token {T['img_history']}' https://api.github.com/x"}],
    "rootfs": {"type": "layers", "diff_ids": []},
}).encode()
digest = lambda b: hashlib.sha256(b).hexdigest()
blobs = {digest(layer1): layer1, digest(layer2): layer2, digest(config): config}
manifest = json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + digest(config)},
    "layers": [{"digest": "sha256:" + digest(layer1)}, {"digest": "sha256:" + digest(layer2)}]}).encode()
blobs[digest(manifest)] = manifest
files = [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
         ("index.json", json.dumps({"manifests": [{"digest": "sha256:" + digest(manifest)}]}).encode())]
files += [("blobs/sha256/" + d, b) for d, b in blobs.items()]
for name, data in files:
    put("images/oci-dir/" + name, data)
put("images/image.tar", tar_bytes(files))
layer = tar_bytes([("etc/app.conf", f"[github]\ntoken = {T['legacy_layer']}\n")])
lid = digest(layer)
cfg = json.dumps({"config": {"Env": ["PATH=/usr/bin"]}, "rootfs": {"type": "layers", "diff_ids": ["sha256:" + lid]}}).encode()
cid = digest(cfg)
legacy_manifest = json.dumps([{"Config": cid + ".json", "RepoTags": ["acme/app:1"], "Layers": [lid + "/layer.tar"]}]).encode()
put("images/legacy.tar", tar_bytes([("manifest.json", legacy_manifest), (cid + ".json", cfg),
    (lid + "/VERSION", b"1.0"), (lid + "/json", b"{}"), (lid + "/layer.tar", layer)]))

# A notebook: a token in a cell's source, a key displayed by a cell's output.
cells = [
    {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [],
     "source": ["import boto3\n", "cfg = load()\n", f"session = GitHub(token=\"{T['ghp_nb']}\")"]},
    {"cell_type": "code", "execution_count": 2, "metadata": {}, "source": ["cfg['aws_secret_access_key']"],
     "outputs": [{"output_type": "execute_result", "execution_count": 2, "metadata": {},
                  "data": {"text/plain": [f"'{T['aws_nb']}'"]}}]},
]
nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
put("notebooks/analysis.ipynb", json.dumps(nb, indent=1))
"##;

/// Writes `bytes` at `root/rel`, making the directories.
fn put(root: &Path, rel: impl AsRef<Path>, bytes: impl AsRef<[u8]>) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(&path, bytes).expect("write fixture");
}

/// Copies a directory tree (regular files and directories).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let ft = entry.file_type().expect("file type");
        let target = to.join(entry.file_name());
        if ft.is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Every regular file under `root`, in the walker's order (sorted by name, depth first),
/// joined to `root` as the walker joins them.
fn files_under(root: &Path) -> Vec<PathBuf> {
    fn visit(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry"))
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let ft = entry.file_type().expect("file type");
            if ft.is_dir() {
                visit(&entry.path(), out);
            } else if ft.is_file() {
                out.push(entry.path());
            }
        }
    }
    let mut out = Vec::new();
    visit(root, &mut out);
    out
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Builds the corpus under `dir/corpus`; returns its root.
fn build_corpus(dir: &Path) -> PathBuf {
    let corpus = dir.join("corpus");
    let mut s = Secrets::new();

    // Tokens for the Python-built artefacts.
    let mut t = serde_json::Map::new();
    for name in [
        "ghp_pyc_header",
        "ghp_pyc",
        "wheel",
        "sdist",
        "sdist_test",
        "zip",
        "egg",
        "nested",
        "bz2",
        "xz",
        "gz",
        "mirror",
        "broken",
        "badcrc",
        "cut",
        "img_wheel",
        "img_deleted",
        "img_layer2",
        "img_env",
        "img_history",
        "legacy_layer",
        "ghp_nb",
    ] {
        t.insert(name.into(), s.github_classic("ghp_").into());
    }
    for name in ["hex_call", "hex_default"] {
        t.insert(name.into(), s.hex(40).into());
    }
    for name in ["aws_pyc", "aws_wheel_pyc", "aws_nb"] {
        t.insert(name.into(), s.aws_secret().into());
    }
    let tokens = Value::Object(t).to_string();
    python(dir, BUILD_ARTEFACTS, &[&tokens]);

    // The bundled demo corpus.
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/demo"),
        &corpus.join("demo"),
    );

    // A zstd sdist (python3.11 has no zstd module).
    let tar = {
        let mut builder = tar::Builder::new(Vec::new());
        let text = format!("t = '{}'\n", s.github_classic("ghp_"));
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "zst_proj-1.0/app.py", text.as_bytes())
            .expect("tar");
        builder.into_inner().expect("tar bytes")
    };
    put(
        &corpus,
        "dist/zst_proj-1.0.tar.zst",
        zstd::encode_all(&tar[..], 3).expect("zstd"),
    );

    // An ELF object: a plain C string, a UTF-16 (u"") and a UTF-32 (L"") string.
    let build = dir.join("build-c");
    fs::create_dir_all(&build).expect("mkdir");
    fs::write(
        build.join("keys.c"),
        format!(
            "#include <uchar.h>\n#include <wchar.h>\n\
             const char plain[] = \"token={}\";\n\
             const char16_t wide[] = u\"token={}\";\n\
             const wchar_t wider[] = L\"github_token={}\";\n",
            s.github_classic("ghp_"),
            s.github_classic("ghp_"),
            s.github_classic("ghp_"),
        ),
    )
    .expect("write keys.c");
    fs::create_dir_all(corpus.join("bin")).expect("mkdir");
    let status = Command::new("cc")
        .arg("-c")
        .arg("-o")
        .arg(corpus.join("bin/keys.o"))
        .arg("keys.c")
        .current_dir(&build)
        .status()
        .expect("cc");
    assert!(status.success(), "cc failed");

    // UTF-16LE text with a byte-order mark.
    let mut wide = vec![0xff, 0xfe];
    wide.extend(
        format!("# Windows settings\r\nGITHUB_TOKEN={}\r\n", s.github_classic("ghp_"))
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    put(&corpus, "text/windows-settings.txt", wide);

    // Plain source and configuration.
    put(
        &corpus,
        "app/settings.py",
        format!(
            "import os\n\nDEBUG = True\nGITHUB_TOKEN = \"{}\"\n",
            s.github_classic("ghp_")
        ),
    );
    put(
        &corpus,
        ".env",
        format!(
            "AWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\n",
            s.aws_key_id(),
            s.aws_secret()
        ),
    );
    put(&corpus, "empty.txt", "");
    put(&corpus, "clean.py", "print('hello')\n");
    // Look-alikes: a wrong checksum and documented examples.
    put(
        &corpus,
        "docs/usage.md",
        format!(
            "token = \"{}\"\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n\
             aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n\
             GITHUB_TOKEN=${{GITHUB_TOKEN}}\napi_key = \"<your-token>\"\n",
            s.github_wrong_checksum()
        ),
    );
    // Context: a test suite and a fixture.
    put(
        &corpus,
        "tests/test_settings.py",
        format!("def test_token():\n    token = \"{}\"\n", s.github_classic("ghp_")),
    );
    put(
        &corpus,
        "tests/fixtures/creds.json",
        format!("{{\"github_token\": \"{}\"}}\n", s.github_classic("gho_")),
    );
    // Two rules matching the same bytes: reported once.
    put(
        &corpus,
        ".pypirc",
        format!(
            "[distutils]\nindex-servers =\n    pypi\n\n[pypi]\nusername = __token__\npassword = {}\n",
            upload_token(&s.hex(32), &[r#"[1,["acme"]]"#])
        ),
    );
    // Over the per-file cap of one rule.
    let many: String = (0..1005).map(|_| format!("t={}\n", s.github_classic("ghp_"))).collect();
    put(&corpus, "many.txt", many);
    // A file name that is not UTF-8, with binary content.
    let mut content = vec![0xff, 0xfe, 0x00, 0x80];
    content.extend_from_slice(format!("\x00auth={}\x00", s.github_classic("ghu_")).as_bytes());
    content.push(0xc3);
    put(
        &corpus,
        Path::new("misc").join(std::ffi::OsStr::from_bytes(b"caf\xe9-\xff.bin")),
        content,
    );
    // A private key (multi-line).
    let key = Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
        .output()
        .expect("openssl");
    assert!(key.status.success(), "openssl failed");
    put(&corpus, "keys/deploy_key.pem", key.stdout);

    // Encoded text: escapes, percent-encoding, hex, byte lists, wrapped base64.
    let escaped: String = s
        .github_classic("ghp_")
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    put(
        &corpus,
        "encoded/app.js",
        format!("// settings\nconst region = 'eu';\nconst key = \"{escaped}\";\n"),
    );
    put(
        &corpus,
        "encoded/hook.sh",
        format!(
            "#!/bin/sh\ncurl \"https://ci.example.test/hook?payload=%7B%22token%22%3A%22{}%22%7D\"\n",
            s.github_classic("ghp_")
        ),
    );
    put(
        &corpus,
        "encoded/config.py",
        format!(
            "CONFIG_HEX = \"{}\"\n",
            hex(&format!("GITHUB_TOKEN={}", s.github_classic("ghp_")))
        ),
    );
    let items: Vec<String> = s.github_classic("ghp_").bytes().map(|b| format!("0x{b:02x}")).collect();
    put(
        &corpus,
        "encoded/key.h",
        format!(
            "static const unsigned char token[] = {{\n    {},\n    {}\n}};\n",
            items[..20].join(", "),
            items[20..].join(", ")
        ),
    );
    let env = format!(
        "# deploy\nREGION=eu-west-1\nAWS_SECRET_ACCESS_KEY={}\nGITHUB_TOKEN={}\n",
        s.aws_secret(),
        s.github_classic("ghp_")
    );
    let encoded = STANDARD.encode(env.repeat(2));
    let wrapped: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    put(&corpus, "encoded/deploy.env.b64", format!("{}\n", wrapped.join("\n")));
    // Decoder chains: base64 of escapes, of UTF-16, of gzip.
    let json = format!(
        "{{\"token\": \"{}\"}}",
        s.github_classic("ghp_")
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect::<String>()
    );
    let utf16: Vec<u8> = format!("$env:GITHUB_TOKEN = '{}'", s.github_classic("ghp_"))
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(
        &mut gz,
        format!("GITHUB_TOKEN={}\n", s.github_classic("ghp_")).as_bytes(),
    )
    .expect("gzip");
    let gzipped = gz.finish().expect("gzip");
    put(
        &corpus,
        "encoded/deploy.yaml",
        format!(
            "settings: {}\nlaunch: powershell -EncodedCommand {}\nwrite_files:\n- encoding: gz+b64\n  content: {}\nnote: {}\n",
            STANDARD.encode(&json),
            STANDARD.encode(&utf16),
            STANDARD.encode(&gzipped),
            STANDARD.encode(format!("GITHUB_TOKEN={}", s.github_classic("ghp_"))),
        ),
    );
    // A Kubernetes Secret: base64 values read next to their keys.
    put(
        &corpus,
        "encoded/secret.yaml",
        format!(
            "apiVersion: v1\nkind: Secret\ndata:\n  AWS_SECRET_ACCESS_KEY: {}\n  NOTE: {}\nstringData:\n  GITHUB_TOKEN: {}\n",
            STANDARD.encode(s.aws_secret()),
            STANDARD.encode("just a note, not a secret"),
            s.github_classic("ghp_")
        ),
    );

    // Configuration whose section label names the provider.
    let alnum = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    put(
        &corpus,
        "config/cohere.ini",
        format!(
            "[DEFAULT]\nlog_level = INFO\n\n[cohere]\napi_key = {}\n",
            s.pick(alnum, 40)
        ),
    );
    put(
        &corpus,
        "config/main.tf",
        format!(
            "provider \"cloudflare\" {{\n  email   = \"ops@acme.test\"\n  api_key = \"{}\"\n}}\n",
            s.hex(37)
        ),
    );
    put(
        &corpus,
        "config/Dockerfile",
        format!("FROM python:3.12-slim\nENV DATADOG_APP_KEY {}\n", s.hex(40)),
    );
    put(
        &corpus,
        "config/secrets.toml",
        format!(
            "[app]\nworkers = 4\n\n[tool.app.mistral]\napi_key = \"{}\"\n",
            s.pick(alnum, 32)
        ),
    );
    put(
        &corpus,
        "config/plain.cfg",
        format!("api_key = {}\n", s.pick(alnum, 40)),
    );

    // A split string literal in source, and the same pieces in a text file.
    let ghp = s.github_classic("ghp_");
    let (head, tail) = ghp.split_at(17);
    put(
        &corpus,
        "src/_internal.py",
        format!("\"\"\"constants\"\"\"\n\n_GITHUB_TOKEN = (\n    \"{head}\"\n    \"{tail}\"\n)\nOTHER = 'ab' + 'cd'\n"),
    );
    put(&corpus, "src/notes.txt", format!("\"{head}\"\n\"{tail}\"\n"));
    corpus
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v["location"][key].as_str().unwrap_or_default()
}

fn list_of<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v["location"][key]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The lines of `a` that `b` does not hold (as multisets).
fn only_in<'a>(a: &'a [String], b: &[String]) -> Vec<&'a str> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for line in b {
        *counts.entry(line.as_str()).or_default() += 1;
    }
    a.iter()
        .filter(|line| match counts.get_mut(line.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .map(String::as_str)
        .collect()
}

fn show(lines: &[&str], limit: usize) -> String {
    let mut text: String = lines.iter().take(limit).map(|l| format!("    {l}\n")).collect();
    if lines.len() > limit {
        text.push_str(&format!("    … and {} more\n", lines.len() - limit));
    }
    text
}

#[test]
fn library_scan_bytes_reports_exactly_what_the_cli_reports_for_every_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let corpus = build_corpus(dir.path());

    // The binary, once, on the whole corpus.
    let mut cmd = keysweep();
    cmd.args(["scan", "-f", "jsonl", "--no-cache", "-j", "2"]).arg(&corpus);
    let out = run_with_deadline(cmd, None, Duration::from_secs(300));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "keysweep scan: {stderr}");
    let stdout = String::from_utf8(out.stdout).expect("JSON Lines are UTF-8");
    let mut cli: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut all: Vec<Value> = Vec::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
        cli.entry(str_of(&v, "path").to_owned())
            .or_default()
            .push(line.to_owned());
        all.push(v);
    }

    // The library, file by file, under the path the binary prints.
    let scanner = Scanner::new(RuleSet::builtin().expect("builtin rules"), ScannerOptions::default()).expect("scanner");
    let files = files_under(&corpus);
    let mut mismatches = String::new();
    let mut library_total = 0;
    let mut scanned: BTreeSet<String> = BTreeSet::new();
    let mut library_warnings: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let path = file.to_string_lossy().into_owned();
        let bytes = fs::read(file).expect("read corpus file");
        let report = scanner
            .scan_bytes(&path, &bytes)
            .unwrap_or_else(|e| panic!("scan_bytes({path}): {e}"));
        let mut lib: Vec<String> = report
            .findings
            .iter()
            .map(|f| serde_json::to_string(f).expect("finding serializes"))
            .collect();
        lib.sort();
        library_total += lib.len();
        let mut bin = cli.remove(&path).unwrap_or_default();
        bin.sort();
        if lib != bin {
            mismatches.push_str(&format!(
                "== {path}: keysweep scan {} finding(s), scan_bytes {}\n  only in `keysweep scan`:\n{}  only in scan_bytes:\n{}",
                bin.len(),
                lib.len(),
                show(&only_in(&bin, &lib), 20),
                show(&only_in(&lib, &bin), 20),
            ));
        }
        if !report.warnings.is_empty() {
            library_warnings.insert(
                path.clone(),
                report
                    .warnings
                    .iter()
                    .map(|w| format!("{}: {}", w.path, w.message))
                    .collect(),
            );
        }
        assert!(scanned.insert(path.clone()), "{path} walked twice");
    }
    for (path, lines) in &cli {
        mismatches.push_str(&format!(
            "== {path}: reported by `keysweep scan` ({} finding(s)) but not a file of the walk\n{}",
            lines.len(),
            show(&lines.iter().map(String::as_str).collect::<Vec<_>>(), 5)
        ));
    }
    assert!(
        mismatches.is_empty(),
        "scan_bytes and `keysweep scan` differ:\n{mismatches}\nkeysweep stderr:\n{stderr}"
    );
    assert_eq!(library_total, all.len());
    assert!(
        stderr.contains(&format!("keysweep: {} files,", files.len())),
        "the binary scanned every file of the walk ({} files): {stderr}",
        files.len()
    );

    // Every file of the demo corpus is in the comparison.
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/demo");
    let demo_files = files_under(&demo);
    assert!(demo_files.len() >= 40, "demo corpus: {} files", demo_files.len());
    for f in &demo_files {
        let rel = f.strip_prefix(&demo).expect("under demo");
        let copy = corpus.join("demo").join(rel).to_string_lossy().into_owned();
        assert!(scanned.contains(&copy), "demo file {} not compared", rel.display());
    }

    // Warnings, per file: the binary prints `keysweep: warning: PATH[!MEMBER…]: MESSAGE`.
    // Reported, not asserted: the identity under test is that of the findings.
    let cli_warnings: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("keysweep: warning: "))
        .collect();
    let mut warning_differences = String::new();
    for path in &scanned {
        let mut bin: Vec<String> = cli_warnings
            .iter()
            .filter(|w| {
                w.strip_prefix(path.as_str())
                    .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('!'))
            })
            .map(|w| (*w).to_owned())
            .collect();
        bin.sort();
        let mut lib = library_warnings.get(path).cloned().unwrap_or_default();
        lib.sort();
        if bin != lib {
            warning_differences.push_str(&format!(
                "== {path}\n  only in `keysweep scan`:\n{}  only in scan_bytes:\n{}",
                show(&only_in(&bin, &lib), 10),
                show(&only_in(&lib, &bin), 10)
            ));
        }
    }
    if !warning_differences.is_empty() {
        eprintln!("identity: warnings differ (not a failure):\n{warning_differences}");
    }

    // The corrupt archives were warned about, and did not stop anything.
    let warned = |suffix: &str| {
        library_warnings
            .iter()
            .any(|(path, w)| path.ends_with(suffix) && !w.is_empty())
    };
    assert!(warned("misc/badcrc.zip"), "library warnings: {library_warnings:#?}");
    assert!(stderr.contains("badcrc.zip"), "{stderr}");

    // Every kind of artefact produced findings: the identity above is not vacuous.
    let count = |pred: &dyn Fn(&Value) -> bool| all.iter().filter(|f| pred(f)).count();
    let in_file = |suffix: &'static str| move |f: &Value| str_of(f, "path").ends_with(suffix);
    let member_of = |suffix: &'static str| {
        move |f: &Value| str_of(f, "path").ends_with(suffix) && !list_of(f, "members").is_empty()
    };
    let decoded = |name: &'static str| move |f: &Value| list_of(f, "decoders").contains(&name);
    let pypirc = corpus.join(".pypirc").to_string_lossy().into_owned();
    let kinds: Vec<(&str, usize)> = vec![
        ("demo corpus", count(&|f| str_of(f, "path").contains("/corpus/demo/"))),
        ("wheel member", count(&member_of("data_kit-0.3.1-py3-none-any.whl"))),
        (
            "pyc in a wheel",
            count(&|f| member_of("data_kit-0.3.1-py3-none-any.whl")(f) && decoded("pyc")(f)),
        ),
        ("sdist .tar.gz member", count(&member_of("acme_tool-1.2.0.tar.gz"))),
        (
            "test context in an sdist",
            count(&|f| member_of("acme_tool-1.2.0.tar.gz")(f) && f["context"] == "test"),
        ),
        ("zip sdist member", count(&member_of("zip_proj-4.0.zip"))),
        ("egg member", count(&member_of("acme_tool-1.2.0-py3.11.egg"))),
        (
            "wheel nested in an sdist",
            count(&|f| {
                let m = list_of(f, "members");
                str_of(f, "path").ends_with("outer-1.0.tar.gz") && m.len() == 2 && m[0].ends_with(".whl")
            }),
        ),
        ("tar.bz2 member", count(&member_of("bz_proj-1.0.tar.bz2"))),
        ("tar.xz member", count(&member_of("xz_proj-1.0.tar.xz"))),
        ("tar.zst member", count(&member_of("zst_proj-1.0.tar.zst"))),
        ("single-file gzip", count(&member_of("notes.txt.gz"))),
        (
            "mirror release",
            count(&|f| member_of("Tiny_Pkg-0.9-py3-none-any.whl")(f) && f["package"]["name"] == "tiny-pkg"),
        ),
        ("pyc", count(&|f| in_file(".pyc")(f) && decoded("pyc")(f))),
        (
            "bare hex token in a pyc",
            count(&|f| decoded("pyc")(f) && f["rule"]["id"] == "github.token.hex.context"),
        ),
        ("ELF object", count(&in_file("bin/keys.o"))),
        (
            "UTF-16 in the ELF object",
            count(&|f| in_file("bin/keys.o")(f) && decoded("utf16")(f)),
        ),
        ("UTF-16LE text with a BOM", count(&in_file("text/windows-settings.txt"))),
        (
            "OCI image tarball layer",
            count(&|f| {
                let m = list_of(f, "members");
                str_of(f, "path").ends_with("images/image.tar") && m.len() >= 2 && m[0].starts_with("blobs/sha256/")
            }),
        ),
        (
            "gzip layer of the image tarball",
            count(&|f| {
                str_of(f, "path").ends_with("images/image.tar")
                    && list_of(f, "members").iter().any(|m| m.ends_with("app/main.py"))
            }),
        ),
        (
            "OCI layout directory blob",
            count(&|f| str_of(f, "path").contains("images/oci-dir/blobs/sha256/")),
        ),
        (
            "legacy docker save layer",
            count(&|f| member_of("images/legacy.tar")(f) && list_of(f, "members").len() >= 2),
        ),
        ("base64", count(&decoded("base64"))),
        (
            "base64 of UTF-16",
            count(&|f| list_of(f, "decoders") == ["base64", "utf16"]),
        ),
        ("hex", count(&decoded("hex"))),
        ("escape", count(&decoded("escape"))),
        ("percent", count(&decoded("percent"))),
        ("notebook", count(&decoded("notebook"))),
        ("config sections", count(&decoded("sections"))),
        ("split literal", count(&decoded("concat"))),
        (
            "test context",
            count(&|f| in_file("tests/test_settings.py")(f) && f["context"] == "test"),
        ),
        (
            "two rules, one finding",
            count(&|f| str_of(f, "path") == pypirc && f["rule"]["id"] == "pypi.upload-token"),
        ),
        ("private key", count(&in_file("keys/deploy_key.pem"))),
        (
            "non-UTF-8 file name",
            count(&|f| str_of(f, "path").contains("caf\u{fffd}-")),
        ),
        ("corrupt zip", count(&in_file("misc/badcrc.zip"))),
    ];
    let table: String = kinds.iter().map(|(k, n)| format!("  {n:>5}  {k}\n")).collect();
    eprintln!(
        "identity: {} files, {} findings, identical per file; {} warning(s) from scan_bytes, {} from the binary\n{table}",
        files.len(),
        all.len(),
        library_warnings.values().map(Vec::len).sum::<usize>(),
        cli_warnings.len()
    );
    let missing: Vec<&str> = kinds.iter().filter(|(_, n)| *n == 0).map(|(k, _)| *k).collect();
    assert!(missing.is_empty(), "kinds without findings: {missing:?}\n{table}");
    assert_eq!(
        count(&in_file("many.txt")),
        1000,
        "the per-file cap applies on both sides"
    );
    assert_eq!(
        count(&|f| str_of(f, "path") == pypirc),
        1,
        "two rules on the same bytes: one finding"
    );
    assert_eq!(
        count(&in_file("docs/usage.md")) + count(&in_file("config/plain.cfg")) + count(&in_file("src/notes.txt")),
        0,
        "look-alikes stay silent"
    );
}
