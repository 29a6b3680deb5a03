//! Structural checks of extracted secrets: checksums and decodable shapes.

mod keys;
mod macaroon;
pub mod placeholders;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::rules::ValidatorKind;

/// What a check decoded, for the report: `("alg", "HS256")`, `("bits", 2048)`.
pub type Details = Vec<(&'static str, Value)>;

/// What a structural check concluded.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckOutcome {
    /// The structure holds (checksum right, parts decode); details for the report.
    Valid(Details),
    /// The shape is plausible but could not be proven (a key body that does not parse);
    /// reported as `unchecked`, with what was learned.
    Unproven(Details),
    /// The structure does not hold: not this kind of secret.
    Invalid(&'static str),
}

/// What a check may read besides the secret.
#[derive(Clone, Copy, Debug, Default)]
pub struct Surroundings<'a> {
    /// The whole text the rule's pattern matched (the name before a value, say).
    pub matched: &'a [u8],
    /// The window the rule was confirmed in, from the match on (a service-account file's
    /// other fields).
    pub after: &'a [u8],
}

/// Runs a validator on a secret.
pub fn check(kind: ValidatorKind, secret: &[u8], around: Surroundings<'_>) -> CheckOutcome {
    match kind {
        ValidatorKind::GithubCrc32 | ValidatorKind::NpmCrc32 => check_crc32_base62(secret),
        ValidatorKind::Jwt => check_jwt(secret),
        ValidatorKind::Pem => check_pem(secret),
        ValidatorKind::DiscordBotToken => check_discord_bot_token(secret),
        ValidatorKind::BasicAuth => check_basic_auth(secret),
        ValidatorKind::Base64PemPrivateKey => check_base64_pem(secret),
        ValidatorKind::RandomBase64 => check_random_base64(secret),
        ValidatorKind::PypiMacaroon => check_pypi_macaroon(secret),
        ValidatorKind::AwsKeyId => check_aws_key_id(secret),
        ValidatorKind::GcpServiceAccount => check_gcp_service_account(around.after),
        ValidatorKind::GrafanaCrc32 => check_grafana_crc32(secret),
        ValidatorKind::TokenName => check_token_name(around.matched),
        // Legacy tokens (UUIDs, base64 `_auth` pairs) have no checksum; `npm_` ones do.
        ValidatorKind::NpmAuthToken if secret.starts_with(b"npm_") => check_crc32_base62(secret),
        ValidatorKind::NpmAuthToken => CheckOutcome::Unproven(Vec::new()),
        ValidatorKind::Pkcs12 => check_pkcs12(secret),
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `value` in base62, left-padded with '0' to `width` digits.
pub fn base62(mut value: u64, width: usize) -> String {
    let mut digits = Vec::with_capacity(width);
    while value > 0 {
        digits.push(BASE62[(value % 62) as usize]);
        value /= 62;
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// GitHub's and npm's token checksum: `prefix_` + random + base62(CRC32(random)) in 6 digits.
fn check_crc32_base62(token: &[u8]) -> CheckOutcome {
    let Some(sep) = token.iter().position(|&b| b == b'_') else {
        return CheckOutcome::Invalid("no prefix separator");
    };
    let body = &token[sep + 1..];
    if body.len() <= 6 || !body.iter().all(u8::is_ascii_alphanumeric) {
        return CheckOutcome::Invalid("body is not base62");
    }
    let (random, checksum) = body.split_at(body.len() - 6);
    let expected = base62(u64::from(crc32fast::hash(random)), 6);
    if expected.as_bytes() == checksum {
        CheckOutcome::Valid(vec![("checksum", json!("crc32"))])
    } else {
        CheckOutcome::Invalid("checksum mismatch")
    }
}

fn decode_base64url(part: &[u8]) -> Option<Vec<u8>> {
    let trimmed: &[u8] = part
        .strip_suffix(b"==")
        .or_else(|| part.strip_suffix(b"="))
        .unwrap_or(part);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed).ok()
}

fn check_jwt(token: &[u8]) -> CheckOutcome {
    let parts: Vec<&[u8]> = token.split(|&b| b == b'.').collect();
    if parts.len() != 3 {
        return CheckOutcome::Invalid("not three parts");
    }
    let Some(header) = decode_base64url(parts[0]).and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
    else {
        return CheckOutcome::Invalid("header is not base64url JSON");
    };
    let Some(alg) = header.get("alg").and_then(|a| a.as_str()) else {
        return CheckOutcome::Invalid("header has no alg");
    };
    let Some(payload) = decode_base64url(parts[1]).and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
    else {
        return CheckOutcome::Invalid("payload is not base64url JSON");
    };
    if !payload.is_object() {
        return CheckOutcome::Invalid("payload is not a JSON object");
    }
    if alg.eq_ignore_ascii_case("none") || parts[2].len() < 16 {
        return CheckOutcome::Invalid("unsigned token");
    }
    // Supabase's anon key is meant for browsers; its row-level security is the guard.
    if payload.get("role").and_then(|r| r.as_str()) == Some("anon") {
        return CheckOutcome::Invalid("public anon key");
    }
    let mut details = vec![("alg", json!(alg))];
    for claim in ["iss", "sub", "aud", "exp"] {
        if let Some(v) = payload.get(claim) {
            details.push((claim, v.clone()));
        }
    }
    CheckOutcome::Valid(details)
}

fn check_discord_bot_token(token: &[u8]) -> CheckOutcome {
    let id_part = token.split(|&b| b == b'.').next().unwrap_or_default();
    match decode_base64url(id_part) {
        Some(id) if (17..=20).contains(&id.len()) && id.iter().all(u8::is_ascii_digit) => {
            CheckOutcome::Valid(vec![("user_id", json!(String::from_utf8_lossy(&id)))])
        }
        _ => CheckOutcome::Invalid("first part is not a base64url user id"),
    }
}

fn decode_base64_any(text: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let clean: Vec<u8> = text.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    STANDARD
        .decode(&clean)
        .or_else(|_| URL_SAFE.decode(&clean))
        .ok()
        .or_else(|| {
            let unpadded: &[u8] = clean
                .strip_suffix(b"==")
                .or_else(|| clean.strip_suffix(b"="))
                .unwrap_or(&clean);
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded).ok()
        })
}

fn check_basic_auth(encoded: &[u8]) -> CheckOutcome {
    let Some(plain) = decode_base64_any(encoded) else {
        return CheckOutcome::Invalid("not base64");
    };
    let Ok(text) = std::str::from_utf8(&plain) else {
        return CheckOutcome::Invalid("not text");
    };
    match text.split_once(':') {
        Some((user, password))
            if !password.is_empty()
                && text.chars().all(|c| c.is_ascii_graphic() || c == ' ')
                && !placeholders::is_placeholder(password.as_bytes(), false) =>
        {
            CheckOutcome::Valid(vec![("user", json!(user))])
        }
        _ => CheckOutcome::Invalid("not user:password"),
    }
}

fn check_base64_pem(encoded: &[u8]) -> CheckOutcome {
    let Some(plain) = decode_base64_any(encoded) else {
        return CheckOutcome::Invalid("not base64");
    };
    if !plain.windows(11).any(|w| w == b"PRIVATE KEY") {
        return CheckOutcome::Invalid("not a private key");
    }
    match check_pem(&plain) {
        CheckOutcome::Valid(mut details) => {
            details.push(("encoding", json!("base64")));
            CheckOutcome::Valid(details)
        }
        CheckOutcome::Unproven(mut details) => {
            details.push(("encoding", json!("base64")));
            CheckOutcome::Unproven(details)
        }
        invalid => invalid,
    }
}

/// Random key bytes almost never decode to mostly printable text; base64 of prose does.
fn check_random_base64(encoded: &[u8]) -> CheckOutcome {
    let Some(plain) = decode_base64_any(encoded) else {
        return CheckOutcome::Valid(Vec::new());
    };
    let printable = plain.iter().filter(|b| b.is_ascii_graphic() || **b == b' ').count();
    if !plain.is_empty() && printable * 10 >= plain.len() * 9 {
        CheckOutcome::Invalid("decodes to text")
    } else {
        CheckOutcome::Valid(Vec::new())
    }
}

/// A PEM (or PGP armor) block whose body decodes as base64 to something key-sized.
/// Lines may be separated by real newlines or by the two characters `\n` (keys inside JSON).
fn check_pem(block: &[u8]) -> CheckOutcome {
    let text = String::from_utf8_lossy(block).replace("\\r", "\n").replace("\\n", "\n");
    let mut body = String::new();
    let mut encrypted = false;
    let mut kind = String::new();
    // Notebook sources keep each line as a JSON string in a list: `"MIIE…\\n",`.
    for line in text
        .lines()
        .map(|l| l.trim().trim_matches(|c| matches!(c, '"' | ',' | '\\')).trim())
    {
        if line.starts_with("-----BEGIN ") {
            kind = line.trim_matches('-').trim_start_matches("BEGIN ").to_owned();
            continue;
        }
        if line.starts_with("-----END ") {
            break;
        }
        if line.contains(':') {
            // RFC 1421 / RFC 4880 armor headers (Proc-Type, DEK-Info, Version, Comment).
            encrypted |= line.starts_with("Proc-Type: 4,ENCRYPTED");
            continue;
        }
        if line.starts_with('=') && line.len() <= 5 {
            continue; // PGP armor CRC24 line
        }
        body.push_str(line);
    }
    let body: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = match base64::engine::general_purpose::STANDARD.decode(body.as_bytes()) {
        Ok(der) if der.len() >= 32 => der,
        Ok(_) => return CheckOutcome::Invalid("body too short for a key"),
        Err(_) => return CheckOutcome::Invalid("body is not base64"),
    };
    if encrypted {
        // A legacy encrypted body (RFC 1421 `DEK-Info`) is ciphertext: nothing more to read.
        return CheckOutcome::Valid(vec![("type", json!(kind)), ("encrypted", json!(true))]);
    }
    match keys::parse_der(&kind, &der) {
        Some(facts) => {
            let mut details = vec![("type", json!(facts.algorithm)), ("format", json!(facts.format))];
            if let Some(bits) = facts.bits {
                details.push(("bits", json!(bits)));
            }
            if let Some(curve) = facts.curve {
                details.push(("curve", json!(curve)));
            }
            details.push(("encrypted", json!(facts.encrypted)));
            CheckOutcome::Valid(details)
        }
        // Truncated or hand-made bodies (documentation, tests) do not parse.
        None => CheckOutcome::Unproven(vec![("type", json!(kind)), ("parsed", json!(false))]),
    }
}

/// Base64 of a PKCS#12 file (RFC 7292): `PFX ::= SEQUENCE { version 3, authSafe ContentInfo
/// (id-data or id-signedData), macData }`. Only the header is read: a key store is a
/// credential whatever it holds, and its contents are encrypted.
fn check_pkcs12(encoded: &[u8]) -> CheckOutcome {
    const PKCS7: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07];
    let Some(der) = decode_base64_any(encoded) else {
        return CheckOutcome::Invalid("not base64");
    };
    match der.as_slice() {
        [0x30, 0x82, h, l, 0x02, 0x01, 0x03, 0x30, 0x82, _, _, rest @ ..]
            if rest.starts_with(PKCS7) && matches!(rest.get(PKCS7.len()), Some(0x01 | 0x02)) =>
        {
            let size = usize::from(*h) << 8 | usize::from(*l);
            CheckOutcome::Valid(vec![
                ("format", json!("pkcs12")),
                ("bytes", json!(size + 4)),
                ("complete", json!(der.len() >= size + 4)),
            ])
        }
        _ => CheckOutcome::Invalid("not a PKCS#12 header"),
    }
}

/// A Grafana service-account token: `glsa_` + 32 base62 + `_` + the CRC32 of everything
/// before that `_`, as 8 hex digits of its little-endian bytes.
fn check_grafana_crc32(token: &[u8]) -> CheckOutcome {
    let Some(split) = token.iter().rposition(|&b| b == b'_') else {
        return CheckOutcome::Invalid("no checksum");
    };
    let crc = crc32fast::hash(&token[..split]).to_le_bytes();
    let expected: String = crc.iter().map(|b| format!("{b:02x}")).collect();
    if token[split + 1..] == *expected.as_bytes() {
        CheckOutcome::Valid(vec![("checksum", json!("crc32"))])
    } else {
        CheckOutcome::Invalid("checksum mismatch")
    }
}

/// A value named like a token whose name says it is a digest of one (`token_sha`,
/// `auth_token_hash`): a hash, not a credential.
fn check_token_name(matched: &[u8]) -> CheckOutcome {
    let name_end = matched
        .iter()
        .position(|b| matches!(b, b'=' | b':' | b'(' | b',' | b'"' | b'\'' | b' '))
        .unwrap_or(matched.len());
    const DIGESTS: &[&str] = &[
        "sha",
        "sha1",
        "sha256",
        "sha512",
        "hash",
        "digest",
        "checksum",
        "md5",
        "fingerprint",
        "etag",
        "commit",
    ];
    let digest = matched[..name_end]
        .split(|b| matches!(b, b'_' | b'-' | b'.'))
        .any(|word| DIGESTS.iter().any(|d| word.eq_ignore_ascii_case(d.as_bytes())));
    if digest {
        CheckOutcome::Invalid("the name says it is a digest")
    } else {
        // A name proves nothing about the value: it stays unchecked.
        CheckOutcome::Unproven(Vec::new())
    }
}

/// `pypi-` + base64url of a binary macaroon.
fn check_pypi_macaroon(token: &[u8]) -> CheckOutcome {
    let body = token.splitn(2, |&b| b == b'-').nth(1).unwrap_or_default();
    // The prefix already names the index; a body that is not a macaroon is a made-up or
    // damaged token, still worth a look, at lower confidence.
    match decode_base64url(body).and_then(|binary| macaroon::parse(&binary)) {
        Some(m) => CheckOutcome::Valid(m.details()),
        None => CheckOutcome::Unproven(vec![("parsed", json!(false))]),
    }
}

/// RFC 4648 base32 digit.
fn base32_digit(c: u8) -> Option<u64> {
    match c {
        b'A'..=b'Z' => Some(u64::from(c - b'A')),
        b'2'..=b'7' => Some(u64::from(c - b'2') + 26),
        _ => None,
    }
}

/// An AWS access key id: 4-letter prefix, then base32. Since 2019 its first 48 bits
/// after the prefix carry the account id (bits 46..7); older ids (5th character below
/// `Q`) do not. The id is never rejected: the account is reported when it is there.
fn check_aws_key_id(id: &[u8]) -> CheckOutcome {
    let (prefix, body) = id.split_at(4.min(id.len()));
    let kind = match prefix {
        b"AKIA" => "long-term access key",
        b"ASIA" => "temporary (STS) access key",
        _ => "access key",
    };
    let mut details = vec![("kind", json!(kind))];
    let digits: Option<Vec<u64>> = body.iter().take(10).map(|&c| base32_digit(c)).collect();
    match digits {
        Some(digits) if digits.len() == 10 && digits[0] >= 16 => {
            // 10 base32 digits = 50 bits; the first 48 are the bytes the account lives in.
            let bits50 = digits.iter().fold(0u64, |acc, &d| (acc << 5) | d);
            let bits48 = bits50 >> 2;
            let account = (bits48 & 0x7fff_ffff_ff80) >> 7;
            details.push(("account_id", json!(format!("{account:012}"))));
            CheckOutcome::Valid(details)
        }
        // Ids issued before 2019 are base32 too, and encode no account.
        Some(digits) if digits.len() == 10 => CheckOutcome::Valid(details),
        _ => CheckOutcome::Unproven(details),
    }
}

/// A service-account key file: the fields beside the key id, and the key itself. Only the
/// first 8 KiB after the match are read (a key file is about 2.3 KB).
fn check_gcp_service_account(file: &[u8]) -> CheckOutcome {
    let file = &file[..file.len().min(8 << 10)];
    let text = String::from_utf8_lossy(file);
    let field = |name: &str| -> Option<String> {
        let at = text.find(&format!("\"{name}\""))?;
        let rest = text[at + name.len() + 2..].trim_start_matches(|c: char| c.is_whitespace() || c == ':' || c == '\\');
        let rest = rest.strip_prefix('"')?;
        Some(rest[..rest.find(['"', '\\'])?].to_owned())
    };
    let mut details = Vec::new();
    for name in ["project_id", "client_email", "client_id"] {
        if let Some(value) = field(name) {
            details.push((name, json!(value)));
        }
    }
    let finder = |needle: &[u8], from: usize| memchr::memmem::find(&file[from..], needle).map(|p| from + p);
    if let Some(start) = finder(b"-----BEGIN", 0) {
        // The key ends with the `-----` that closes its END line.
        let end = finder(b"-----END", start)
            .and_then(|e| finder(b"-----", e + 8))
            .map_or(file.len(), |e| e + 5);
        if let CheckOutcome::Valid(key) = check_pem(&file[start..end]) {
            details.extend(key.into_iter().filter(|(k, _)| matches!(*k, "type" | "bits")));
        }
    }
    if details.iter().any(|(k, _)| *k == "client_email") {
        CheckOutcome::Valid(details)
    } else {
        CheckOutcome::Unproven(details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github_token(random: &str) -> String {
        format!(
            "ghp_{random}{}",
            base62(u64::from(crc32fast::hash(random.as_bytes())), 6)
        )
    }

    #[test]
    fn crc32_checksum_accepts_right_and_rejects_wrong() {
        let token = github_token("Zk3q9TfLm2PxW8vB4nYc7RhJd5GsQa");
        assert_eq!(token.len(), 40);
        assert!(matches!(
            check(ValidatorKind::GithubCrc32, token.as_bytes(), Surroundings::default()),
            CheckOutcome::Valid(_)
        ));
        let mut wrong = token.into_bytes();
        let last = wrong.len() - 1;
        wrong[last] = if wrong[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            check(ValidatorKind::GithubCrc32, &wrong, Surroundings::default()),
            CheckOutcome::Invalid("checksum mismatch")
        );
    }

    #[test]
    fn basic_auth_and_encoded_keys() {
        let enc = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(matches!(
            check(
                ValidatorKind::BasicAuth,
                enc(b"deploy:s3cr3t-Pw").as_bytes(),
                Surroundings::default()
            ),
            CheckOutcome::Valid(_)
        ));
        assert!(matches!(
            check(
                ValidatorKind::BasicAuth,
                enc(b"no colon").as_bytes(),
                Surroundings::default()
            ),
            CheckOutcome::Invalid(_)
        ));
        let text = enc(b"this is plain English text, not a key");
        assert!(matches!(
            check(ValidatorKind::RandomBase64, text.as_bytes(), Surroundings::default()),
            CheckOutcome::Invalid(_)
        ));
        let random = enc(&(0u8..30)
            .map(|i| i.wrapping_mul(97).wrapping_add(13))
            .collect::<Vec<_>>());
        assert!(matches!(
            check(ValidatorKind::RandomBase64, random.as_bytes(), Surroundings::default()),
            CheckOutcome::Valid(_)
        ));
    }

    #[test]
    fn base62_pads_to_width() {
        assert_eq!(base62(0, 6), "000000");
        assert_eq!(base62(61, 2), "0z");
        assert_eq!(base62(62, 2), "10");
    }

    #[test]
    fn jwt_needs_json_header_with_alg() {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let good = format!(
            "{}.{}.{}",
            enc(r#"{"alg":"HS256","typ":"JWT"}"#),
            enc(r#"{"iss":"svc","exp":1900000000}"#),
            "c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWc"
        );
        match check(ValidatorKind::Jwt, good.as_bytes(), Surroundings::default()) {
            CheckOutcome::Valid(d) => assert!(d.contains(&("iss", json!("svc")))),
            other => panic!("{other:?}"),
        }
        let bad = format!("{}.{}.sig", enc("not json"), enc("{}"));
        assert!(matches!(
            check(ValidatorKind::Jwt, bad.as_bytes(), Surroundings::default()),
            CheckOutcome::Invalid(_)
        ));
    }
}
