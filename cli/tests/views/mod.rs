//! Decoded views end to end: compiled Python, binaries, and text hidden by encodings,
//! built inside the test run, with the decoder chain and the place in the file asserted.

use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::util::{find, python, scan, Secrets};

fn decoders(finding: &serde_json::Value) -> Vec<&str> {
    finding["location"]["decoders"]
        .as_array()
        .expect("decoders")
        .iter()
        .filter_map(|d| d.as_str())
        .collect()
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Escaped, percent-encoded, hex-encoded, byte-listed and line-wrapped base64 secrets are
/// found with their decoder, placed at the encoded bytes of the file, and only when
/// decoding is on.
#[test]
fn encoded_text_is_decoded_and_placed_at_the_encoded_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let tokens: Vec<String> = (0..5).map(|_| s.github_classic("ghp_")).collect();
    let aws = s.aws_secret();
    let escaped: String = tokens[0].chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
    let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).expect("write");
    write(
        "app.js",
        format!("// settings\nconst region = 'eu';\nconst key = \"{escaped}\";\n"),
    );
    write(
        "hook.sh",
        format!(
            "#!/bin/sh\ncurl \"https://ci.example.test/hook?payload=%7B%22token%22%3A%22{}%22%7D\"\n",
            tokens[1]
        ),
    );
    write(
        "config.py",
        format!("CONFIG_HEX = \"{}\"\n", hex(&format!("GITHUB_TOKEN={}", tokens[2]))),
    );
    let items: Vec<String> = tokens[3].bytes().map(|b| format!("0x{b:02x}")).collect();
    write(
        "key.h",
        format!(
            "static const unsigned char token[] = {{\n    {},\n    {}\n}};\n",
            items[..20].join(", "),
            items[20..].join(", ")
        ),
    );
    let env = format!(
        "# deploy\nREGION=eu-west-1\nAWS_SECRET_ACCESS_KEY={aws}\nGITHUB_TOKEN={}\n",
        tokens[4]
    );
    let encoded = STANDARD.encode(env.repeat(2));
    let wrapped: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    write("deploy.env.b64", format!("{}\n", wrapped.join("\n")));

    let (out, findings) = scan(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let js = find(&findings, &tokens[0]);
    assert_eq!(decoders(js), ["escape"]);
    // Placed at the escaped text in the file: line 3, after `const key = "`.
    assert_eq!(
        (js["location"]["line"].as_u64(), js["location"]["column"].as_u64()),
        (Some(3), Some(14))
    );
    assert_eq!(decoders(find(&findings, &tokens[1])), ["percent"]);
    assert_eq!(decoders(find(&findings, &tokens[2])), ["hex"]);
    let listed = find(&findings, &tokens[3]);
    assert_eq!(decoders(listed), ["hex"]);
    assert_eq!(listed["location"]["line"].as_u64(), Some(2));
    assert_eq!(decoders(find(&findings, &aws)), ["base64"]);
    assert_eq!(decoders(find(&findings, &tokens[4])), ["base64"]);

    let (_, raw) = scan(dir.path(), &["--no-decode"]);
    for secret in tokens.iter().chain([&aws]) {
        assert!(
            raw.iter().all(|f| f["secret"] != secret.as_str()),
            "{secret} found without decoding"
        );
    }
}

/// Chains of decoders are followed up to `--max-decode-depth`: base64 of an escaped
/// string, base64 of UTF-16 (PowerShell's -EncodedCommand), base64 of gzip (cloud-init).
#[test]
fn decoder_chains_are_followed_up_to_the_depth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let [escaped, wide, zipped, plain] = [(); 4].map(|_| s.github_classic("ghp_"));
    let json = format!(
        "{{\"token\": \"{}\"}}",
        escaped
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect::<String>()
    );
    let utf16: Vec<u8> = format!("$env:GITHUB_TOKEN = '{wide}'")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, format!("GITHUB_TOKEN={zipped}\n").as_bytes()).expect("gzip");
    let gzipped = gz.finish().expect("gzip");
    std::fs::write(
        dir.path().join("deploy.yaml"),
        format!(
            "settings: {}\nlaunch: powershell -EncodedCommand {}\nwrite_files:\n- encoding: gz+b64\n  content: {}\nnote: {}\n",
            STANDARD.encode(&json),
            STANDARD.encode(&utf16),
            STANDARD.encode(&gzipped),
            STANDARD.encode(format!("GITHUB_TOKEN={plain}")),
        ),
    )
    .expect("write");

    let (_, findings) = scan(dir.path(), &[]);
    assert_eq!(decoders(find(&findings, &escaped)), ["base64", "escape"]);
    assert_eq!(decoders(find(&findings, &wide)), ["base64", "utf16"]);
    let unzipped = find(&findings, &zipped);
    assert_eq!(decoders(unzipped), ["base64"]);
    assert_eq!(
        unzipped["location"]["members"].as_array().map(Vec::len),
        Some(1),
        "{unzipped:#}"
    );
    // Every finding is placed on the line of its outermost encoded run.
    assert_eq!(find(&findings, &escaped)["location"]["line"].as_u64(), Some(1));
    assert_eq!(find(&findings, &wide)["location"]["line"].as_u64(), Some(2));

    let (_, shallow) = scan(dir.path(), &["--max-decode-depth", "1"]);
    find(&shallow, &plain);
    find(&shallow, &zipped);
    for deeper in [&escaped, &wide] {
        assert!(
            shallow.iter().all(|f| f["secret"] != deeper.as_str()),
            "{deeper} past the depth"
        );
    }
}

/// A notebook is read as the code it holds: a key displayed by a cell is read next to
/// the expression that displayed it.
#[test]
fn notebooks_are_read_as_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let aws = s.aws_secret();
    let token = s.github_classic("ghp_");
    python(
        dir.path(),
        r#"
import json, sys
cells = [
    {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [],
     "source": ["import boto3\n", "cfg = load()\n", f"session = GitHub(token=\"{sys.argv[2]}\")"]},
    {"cell_type": "code", "execution_count": 2, "metadata": {}, "source": ["cfg['aws_secret_access_key']"],
     "outputs": [{"output_type": "execute_result", "execution_count": 2, "metadata": {},
                  "data": {"text/plain": [f"'{sys.argv[1]}'"]}}]},
]
nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
json.dump(nb, open("analysis.ipynb", "w"), indent=1)
"#,
        &[&aws, &token],
    );
    let (_, findings) = scan(dir.path(), &[]);
    assert_eq!(decoders(find(&findings, &aws)), ["notebook"]);
    // A parsed notebook replaces its JSON: the token is reported once.
    let hits: Vec<_> = findings.iter().filter(|f| f["secret"] == token.as_str()).collect();
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(decoders(hits[0]), ["notebook"]);
}

/// The leak that motivated keysweep: a bare 40-hex GitHub token in a compiled `.pyc`,
/// passed as `access_token=` to a GitHub helper. Compiled here with the machine's python3.
#[test]
fn compiled_python_yields_keyword_context_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let hex = s.hex(40);
    let default = s.hex(40);
    let header = s.github_classic("ghp_");
    let aws = s.aws_secret();
    python(
        dir.path(),
        r#"
import os, py_compile, sys, zipfile
os.makedirs("src", exist_ok=True)
open("src/fetch.py", "w").write(
    "def _fetch_github_file(path, access_token=None):\n    return path\n\n"
    "def main():\n"
    f"    return _fetch_github_file('README.md', access_token='{sys.argv[1]}')\n\n"
    f"def github_client(github_token='{sys.argv[3]}'):\n"
    f"    return {{'Authorization': 'token {sys.argv[4]}'}}\n"
)
open("src/settings.py", "w").write(f"REGION = 'eu-west-1'\nAWS_SECRET_ACCESS_KEY = '{sys.argv[2]}'\n")
os.makedirs("out", exist_ok=True)
py_compile.compile("src/fetch.py", cfile="out/fetch.cpython.pyc", doraise=True)
py_compile.compile("src/settings.py", cfile="settings.pyc", doraise=True)
with zipfile.ZipFile("out/app-1.0-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as z:
    z.write("settings.pyc", "app/__pycache__/settings.cpython-311.pyc")
"#,
        &[&hex, &aws, &default, &header],
    );
    let (_, findings) = scan(&dir.path().join("out"), &[]);
    let token = find(&findings, &hex);
    assert_eq!(token["rule"]["id"], "github.token.hex.context");
    assert_eq!(token["location"]["decoders"], serde_json::json!(["pyc"]));
    // A default argument lives among the enclosing code's constants.
    assert_eq!(find(&findings, &default)["rule"]["id"], "github.token.hex.context");
    // A token inside a longer constant ends where the constant does, not at the next
    // marshal type byte: found once, in the view that replaces the raw bytes.
    let hits: Vec<_> = findings.iter().filter(|f| f["secret"] == header.as_str()).collect();
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(hits[0]["location"]["decoders"], serde_json::json!(["pyc"]));
    let secret = find(&findings, &aws);
    assert_eq!(secret["location"]["decoders"], serde_json::json!(["pyc"]));
    assert_eq!(
        secret["location"]["members"],
        serde_json::json!(["app/__pycache__/settings.cpython-311.pyc"])
    );
    assert_eq!(secret["package"]["name"], "app");
}

/// Secrets in binaries: a raw ASCII constant and a UTF-16 (`u"…"`) constant in an ELF
/// object compiled here with `cc`.
#[test]
fn elf_objects_yield_raw_and_utf16_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let ascii = s.github_classic("ghp_");
    let wide = s.github_classic("ghp_");
    let source = format!(
        "#include <uchar.h>\nconst char plain[] = \"token={ascii}\";\nconst char16_t wide[] = u\"token={wide}\";\n"
    );
    std::fs::write(dir.path().join("keys.c"), source).expect("write");
    let status = Command::new("cc")
        .args(["-c", "-o", "keys.o", "keys.c"])
        .current_dir(dir.path())
        .status()
        .expect("cc");
    assert!(status.success());
    std::fs::remove_file(dir.path().join("keys.c")).expect("rm source");
    let (_, findings) = scan(dir.path(), &[]);
    assert_eq!(find(&findings, &ascii)["location"]["decoders"], serde_json::json!([]));
    assert_eq!(
        find(&findings, &wide)["location"]["decoders"],
        serde_json::json!(["utf16"])
    );
}

/// A Kubernetes Secret keeps values base64-encoded: the decoded view reads them next to
/// their keys, and reports only what was decoded.
#[test]
fn base64_wrapped_secrets_are_read_in_place() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let aws = s.aws_secret();
    let plain = s.github_classic("ghp_");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&aws);
    std::fs::write(
        dir.path().join("secret.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\ndata:\n  AWS_SECRET_ACCESS_KEY: {encoded}\n  NOTE: {}\nstringData:\n  GITHUB_TOKEN: {plain}\n",
            base64::engine::general_purpose::STANDARD.encode("just a note, not a secret")
        ),
    )
    .expect("write");
    let (_, findings) = scan(dir.path(), &[]);
    let found = find(&findings, &aws);
    assert_eq!(found["location"]["decoders"], serde_json::json!(["base64"]));
    // The plain token is reported once, from the file itself, not again from the view.
    let plain_hits: Vec<_> = findings.iter().filter(|f| f["secret"] == plain.as_str()).collect();
    assert_eq!(plain_hits.len(), 1, "{plain_hits:#?}");
    assert_eq!(plain_hits[0]["location"]["decoders"], serde_json::json!([]));
}

#[test]
fn nested_configuration_is_read_with_its_labels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut s = Secrets::new();
    let alnum = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let cohere = s.pick(alnum, 40);
    let cloudflare = s.hex(37);
    let datadog = s.hex(40);
    let mistral = s.pick(alnum, 32);
    std::fs::write(
        d.join("cohere.ini"),
        format!("[DEFAULT]\nlog_level = INFO\n\n[cohere]\napi_key = {cohere}\n"),
    )
    .expect("write");
    std::fs::write(
        d.join("main.tf"),
        format!("provider \"cloudflare\" {{\n  email   = \"ops@acme.test\"\n  api_key = \"{cloudflare}\"\n}}\n"),
    )
    .expect("write");
    std::fs::write(
        d.join("Dockerfile"),
        format!("FROM python:3.12-slim\nENV DATADOG_APP_KEY {datadog}\n"),
    )
    .expect("write");
    std::fs::write(
        d.join("secrets.toml"),
        format!("[app]\nworkers = 4\n\n[tool.app.mistral]\napi_key = \"{mistral}\"\n"),
    )
    .expect("write");
    // The same keys with no label say nothing of their provider.
    std::fs::write(d.join("plain.cfg"), format!("api_key = {}\n", s.pick(alnum, 40))).expect("write");
    let (_, findings) = scan(d, &[]);
    let at = |secret: &str| {
        let f = find(&findings, secret);
        (
            f["rule"]["id"].as_str().unwrap_or_default().to_owned(),
            decoders(f).join(","),
            f["location"]["line"].as_u64(),
        )
    };
    assert_eq!(at(&cohere), ("cohere.api-key".into(), "sections".into(), Some(5)));
    assert_eq!(
        at(&cloudflare),
        ("cloudflare.global-api-key.context".into(), "sections".into(), Some(3))
    );
    assert_eq!(
        at(&datadog),
        ("datadog.app-key.context".into(), "sections".into(), Some(2))
    );
    assert_eq!(at(&mistral), ("mistral.api-key".into(), "sections".into(), Some(5)));
    assert!(
        findings.iter().all(|f| !f["location"]["path"]
            .as_str()
            .unwrap_or_default()
            .ends_with("plain.cfg")),
        "{findings:#?}"
    );
    let (_, raw) = scan(d, &["--no-decode"]);
    assert!(
        raw.iter().all(|f| f["secret"] != cohere.as_str()),
        "found without the view: {raw:#?}"
    );
}

#[test]
fn split_literals_are_joined_in_source_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut s = Secrets::new();
    let ghp = s.github_classic("ghp_");
    let (head, tail) = ghp.split_at(17);
    std::fs::write(
        d.join("_internal.py"),
        format!("\"\"\"constants\"\"\"\n\n_GITHUB_TOKEN = (\n    \"{head}\"\n    \"{tail}\"\n)\nOTHER = 'ab' + 'cd'\n"),
    )
    .expect("write");
    // The same pieces in a file that is not source code are left alone.
    std::fs::write(d.join("notes.txt"), format!("\"{head}\"\n\"{tail}\"\n")).expect("write");
    let (_, findings) = scan(d, &[]);
    let f = find(&findings, &ghp);
    assert_eq!(decoders(f), ["concat"]);
    assert_eq!(
        (f["location"]["line"].as_u64(), f["location"]["column"].as_u64()),
        (Some(4), Some(6))
    );
    assert_eq!(
        findings.iter().filter(|f| f["secret"] == ghp.as_str()).count(),
        1,
        "{findings:#?}"
    );
    let (_, raw) = scan(d, &["--no-decode"]);
    assert!(raw.iter().all(|f| f["secret"] != ghp.as_str()));
}
