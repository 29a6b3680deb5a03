//! What a finding says about itself: structural validation details (keys parsed, macaroons
//! decoded, account ids, service-account files), confidence, and the kind of place it is in.

use std::fs;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;

use crate::util::{find, python, scan, upload_token, Secrets};

fn write(dir: &Path, name: &str, content: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, content).expect("write");
}

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The finding whose secret holds `marker` (private keys are reported whole).
fn containing<'a>(findings: &'a [serde_json::Value], marker: &str) -> &'a serde_json::Value {
    findings
        .iter()
        .find(|f| f["secret"].as_str().is_some_and(|s| s.contains(marker)))
        .unwrap_or_else(|| panic!("no finding holds {marker}: {findings:#?}"))
}

fn details(f: &serde_json::Value) -> &serde_json::Value {
    &f["validation"]["details"]
}

#[test]
fn private_keys_are_parsed_for_type_size_and_encryption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    sh(
        d,
        "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out pkcs8.pem 2>/dev/null \
         && openssl genrsa -traditional -out pkcs1.pem 1024 2>/dev/null \
         && openssl ecparam -name secp384r1 -genkey -noout -out sec1.pem \
         && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -aes256 -pass pass:hunter22 -out enc.pem 2>/dev/null \
         && ssh-keygen -q -t ed25519 -N '' -f id_ed25519 \
         && ssh-keygen -q -t rsa -b 3072 -N 'correct horse' -f id_rsa",
    );
    let (_, findings) = scan(d, &[]);
    let key = |file: &str| -> serde_json::Value {
        let text = fs::read_to_string(d.join(file)).expect("key");
        let body_line = text.lines().nth(2).expect("body").to_owned();
        let f = containing(&findings, &body_line);
        assert_eq!(f["validation"]["status"], "structure_valid", "{file}: {f:#}");
        details(f).clone()
    };
    let pkcs8 = key("pkcs8.pem");
    assert_eq!(
        (pkcs8["type"].as_str(), pkcs8["bits"].as_u64()),
        (Some("rsa"), Some(2048)),
        "{pkcs8}"
    );
    assert_eq!(
        (pkcs8["format"].as_str(), pkcs8["encrypted"].as_bool()),
        (Some("pkcs8"), Some(false))
    );
    let pkcs1 = key("pkcs1.pem");
    assert_eq!(
        (pkcs1["format"].as_str(), pkcs1["bits"].as_u64()),
        (Some("pkcs1"), Some(1024)),
        "{pkcs1}"
    );
    let sec1 = key("sec1.pem");
    assert_eq!(
        (sec1["curve"].as_str(), sec1["bits"].as_u64()),
        (Some("P-384"), Some(384)),
        "{sec1}"
    );
    assert_eq!(key("enc.pem")["encrypted"], true);
    let ed = key("id_ed25519");
    assert_eq!(
        (ed["type"].as_str(), ed["format"].as_str()),
        (Some("ed25519"), Some("openssh")),
        "{ed}"
    );
    assert_eq!(ed["encrypted"], false);
    let rsa = key("id_rsa");
    assert_eq!(
        (rsa["bits"].as_u64(), rsa["encrypted"].as_bool()),
        (Some(3072), Some(true)),
        "{rsa}"
    );
    // The public halves are not secrets.
    assert!(findings
        .iter()
        .all(|f| !f["location"]["path"].as_str().unwrap_or_default().ends_with(".pub")));
}

#[test]
fn openpgp_secret_keys_are_parsed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::create_dir(d.join("gnupg")).expect("mkdir");
    sh(
        d,
        "chmod 700 gnupg && export GNUPGHOME=$PWD/gnupg \
         && gpg --batch --quiet --passphrase '' --quick-gen-key 'Release Bot <bot@acme.test>' rsa2048 sign never 2>/dev/null \
         && gpg --batch --quiet --pinentry-mode loopback --passphrase '' --armor --export-secret-keys > release-key.asc",
    );
    fs::remove_dir_all(d.join("gnupg")).ok();
    let (_, findings) = scan(d, &[]);
    let f = containing(&findings, "BEGIN PGP PRIVATE KEY BLOCK");
    assert_eq!(f["validation"]["status"], "structure_valid", "{f:#}");
    let d = details(f);
    assert_eq!(
        (d["type"].as_str(), d["bits"].as_u64()),
        (Some("rsa"), Some(2048)),
        "{d}"
    );
    assert_eq!(
        (d["format"].as_str(), d["encrypted"].as_bool()),
        (Some("openpgp"), Some(false))
    );
}

#[test]
fn a_key_body_that_does_not_parse_is_reported_at_medium() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let lines: Vec<String> = (0..6).map(|_| s.pick(alphabet, 64)).collect();
    write(
        dir.path(),
        "deploy/key.pem",
        &format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
            lines.join("\n")
        ),
    );
    let (_, findings) = scan(dir.path(), &[]);
    let f = containing(&findings, &lines[0]);
    assert_eq!(
        (f["confidence"].as_str(), f["validation"]["status"].as_str()),
        (Some("medium"), Some("unchecked"))
    );
    assert_eq!(details(f)["parsed"], false);
    let (_, high_only) = scan(dir.path(), &["--confidence", "high"]);
    assert!(high_only.is_empty(), "{high_only:#?}");
}

#[test]
fn upload_tokens_are_decoded_as_macaroons_with_their_scope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = "3f2b9c1e-7a4d-4e8b-9f60-2c5d8e1a7b34";
    let project = upload_token(id, &["[0,1924992000,1700000000]", r#"[1,["acme-widgets"]]"#]);
    let user = upload_token(
        "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
        &[r#"[3,"0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"]"#],
    );
    // The same prefix, but the signature is cut short: the packets do not hold together.
    let broken = project[..project.len() - 8].to_owned();
    write(
        dir.path(),
        ".pypirc",
        &format!("[distutils]\nindex-servers = main\n\n[main]\nusername = __token__\npassword = {project}\n"),
    );
    write(dir.path(), "ci.env", &format!("TWINE_PASSWORD={user}\n"));
    write(dir.path(), "old.env", &format!("TWINE_PASSWORD={broken}\n"));
    let (_, findings) = scan(dir.path(), &[]);
    let p = find(&findings, &project);
    assert_eq!(p["validation"]["status"], "structure_valid");
    let d = details(p);
    assert_eq!(
        (d["identifier"].as_str(), d["scope"].as_str()),
        (Some(id), Some("project")),
        "{d}"
    );
    assert_eq!(d["projects"], serde_json::json!(["acme-widgets"]));
    assert_eq!(d["expires"], 1_924_992_000u64);
    assert_eq!(details(find(&findings, &user))["scope"], "user");
    assert!(
        findings
            .iter()
            .all(|f| f["rule"]["id"].as_str() != Some("pypi.upload-token") || f["secret"] != broken.as_str()),
        "a token whose macaroon does not parse is not reported as one: {findings:#?}"
    );
}

/// An access key id that encodes `account` (the layout of ids issued since 2019).
fn key_id_for(account: u64, s: &mut Secrets) -> String {
    const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bits48 = (1u64 << 47) | (account << 7) | fastrand::u64(..128);
    let bits50 = (bits48 << 2) | fastrand::u64(..4);
    let head: String = (0..10)
        .rev()
        .map(|i| B32[((bits50 >> (5 * i)) & 31) as usize] as char)
        .collect();
    format!("AKIA{head}{}", s.pick(B32, 6))
}

#[test]
fn aws_key_ids_name_their_account_and_checksums_raise_confidence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Secrets::new();
    let key_id = key_id_for(123_456_789_012, &mut s);
    let github = s.github_classic("ghp_");
    write(
        dir.path(),
        "deploy/settings.py",
        &format!("AWS_ACCESS_KEY_ID = \"{key_id}\"\nGITHUB_TOKEN = \"{github}\"\n"),
    );
    let (_, findings) = scan(dir.path(), &[]);
    let aws = find(&findings, &key_id);
    assert_eq!(details(aws)["account_id"], "123456789012", "{aws:#}");
    let gh = find(&findings, &github);
    assert_eq!(
        (gh["validation"]["status"].as_str(), gh["confidence"].as_str()),
        (Some("checksum_valid"), Some("high"))
    );
}

#[test]
fn service_account_files_and_jwts_report_what_they_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    sh(
        d,
        "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.pem 2>/dev/null",
    );
    let mut s = Secrets::new();
    let key_id = s.hex(40);
    python(
        d,
        "import json,sys; key=open('sa.pem').read(); json.dump({'type':'service_account',\
         'project_id':'orbital-ledger-318204','private_key_id':sys.argv[1],'private_key':key,\
         'client_email':'deployer@orbital-ledger-318204.iam.gserviceaccount.com',\
         'client_id':'108234567890123456789'}, open('credentials.json','w'), indent=2)",
        &[&key_id],
    );
    fs::remove_file(d.join("sa.pem")).expect("rm");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwt = format!(
        "{}.{}.{}",
        b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64.encode(r#"{"iss":"billing-svc","sub":"worker","exp":1924992000}"#),
        s.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 43)
    );
    write(d, "svc.env", &format!("SERVICE_JWT={jwt}\n"));
    let (_, findings) = scan(d, &[]);
    let sa = find(&findings, &key_id);
    let sd = details(sa);
    assert_eq!(
        sd["client_email"], "deployer@orbital-ledger-318204.iam.gserviceaccount.com",
        "{sa:#}"
    );
    assert_eq!(
        (sd["project_id"].as_str(), sd["bits"].as_u64()),
        (Some("orbital-ledger-318204"), Some(2048))
    );
    let jd = details(find(&findings, &jwt)).clone();
    assert_eq!(
        (jd["alg"].as_str(), jd["iss"].as_str(), jd["exp"].as_u64()),
        (Some("HS256"), Some("billing-svc"), Some(1_924_992_000))
    );
}

#[test]
fn findings_say_when_they_sit_in_tests_examples_or_docs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut s = Secrets::new();
    let tokens: Vec<String> = (0..5).map(|_| s.github_classic("ghp_")).collect();
    write(d, "acme/settings.py", &format!("GITHUB_TOKEN = \"{}\"\n", tokens[0]));
    write(
        d,
        "tests/test_client.py",
        &format!("GITHUB_TOKEN = \"{}\"\n", tokens[1]),
    );
    write(d, "docs/usage.rst", &format!("export GITHUB_TOKEN={}\n", tokens[2]));
    write(d, "examples/sync.py", &format!("GITHUB_TOKEN = \"{}\"\n", tokens[3]));
    // A wheel: the member's path decides.
    python(
        d,
        "import zipfile,sys; z=zipfile.ZipFile('acme-1.0-py3-none-any.whl','w');\
         z.writestr('acme/tests/test_api.py', 'TOKEN = \"%s\"\\n' % sys.argv[1]); z.close()",
        &[&tokens[4]],
    );
    let (_, findings) = scan(d, &[]);
    let context = |t: &str| {
        find(&findings, t)
            .get("context")
            .and_then(|c| c.as_str())
            .map(str::to_owned)
    };
    assert_eq!(context(&tokens[0]), None);
    assert_eq!(context(&tokens[1]).as_deref(), Some("test"));
    assert_eq!(context(&tokens[2]).as_deref(), Some("docs"));
    assert_eq!(context(&tokens[3]).as_deref(), Some("example"));
    assert_eq!(context(&tokens[4]).as_deref(), Some("test"));
}

#[test]
fn pkcs12_key_stores_and_checksummed_service_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    sh(
        d,
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -days 2 -subj /CN=ci 2>/dev/null \
         && openssl pkcs12 -export -inkey k.pem -in c.pem -out signing.p12 -passout pass:Qz81kTp4Wm 2>/dev/null \
         && openssl x509 -in c.pem -outform DER -out c.der",
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let p12 = b64.encode(fs::read(d.join("signing.p12")).expect("p12"));
    let cert = b64.encode(fs::read(d.join("c.der")).expect("der"));
    for f in ["k.pem", "c.pem", "signing.p12", "c.der"] {
        fs::remove_file(d.join(f)).expect("rm");
    }
    let mut s = Secrets::new();
    let body = format!(
        "glsa_{}",
        s.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 32)
    );
    let crc: String = crc32fast::hash(body.as_bytes())
        .to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let grafana = format!("{body}_{crc}");
    let wrong = format!("{body}_{}", crc.chars().rev().collect::<String>());
    write(
        d,
        "ci.env",
        &format!("SIGNING_CERT_P12={p12}\nCA_CERT_DER={cert}\nGRAFANA_TOKEN={grafana}\nOLD_GRAFANA_TOKEN={wrong}\n"),
    );
    let (_, findings) = scan(d, &[]);
    let store = find(&findings, &p12);
    assert_eq!(store["rule"]["id"], "pkcs12.base64");
    assert_eq!(
        (details(store)["format"].as_str(), details(store)["complete"].as_bool()),
        (Some("pkcs12"), Some(true))
    );
    assert!(
        findings
            .iter()
            .all(|f| f["rule"]["id"] != "pkcs12.base64" || f["secret"] == p12.as_str()),
        "{findings:#?}"
    );
    let g = find(&findings, &grafana);
    assert_eq!(
        (g["validation"]["status"].as_str(), g["confidence"].as_str()),
        (Some("checksum_valid"), Some("high"))
    );
    assert!(
        findings.iter().all(|f| f["secret"] != wrong.as_str()),
        "wrong checksum reported: {findings:#?}"
    );
}
