//! Documented example keys and placeholders: values that look like secrets and are not.

/// Keys that providers publish in their documentation for everyone to use.
const DOCUMENTED_KEYS: &[&str] = &[
    // The storage emulator's fixed development account key (Azurite, Azure Storage Emulator).
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    // The Cosmos DB emulator's fixed key, the same on every installation.
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==",
    // The client secret shown in Microsoft Entra's documentation of the secret format.
    "abc8Q~defghijklmnopqrstuvwxyz-_.~0123456",
    // The example access token of GitHub's REST API description (OpenAPI examples).
    "e72e16c7e42f292c6912e7710c838347ae178b4a",
    // The example bot token of Slack's OAuth documentation, copied into many test suites.
    "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
    // RFC 7617's example (`Aladdin:open sesame`).
    "QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
    // RFC 6749's example client credentials (`s6BhdRkqt3:gX1fBat3bV`), in clear and in Basic form.
    "gX1fBat3bV",
    "czZCaGRSa3F0MzpnWDFmQmF0M2JW",
    // The JWT introduction's example token (HS256, "John Doe").
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
];

/// Parts of documented examples that mark any secret holding them: the JWT introduction's
/// claims ("John Doe", iat 1516239022), whatever the token was re-signed or cut with.
const DOCUMENTED_PARTS: &[&str] = &["eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"];

/// Documented example keys and obvious placeholders, never reported. `proven`: the secret
/// passed a checksum or structural check, so only documented keys and strong markers apply.
pub fn is_placeholder(secret: &[u8], proven: bool) -> bool {
    // Markers that random tokens never contain by chance.
    const STRONG: &[&str] = &[
        "example",
        "changeme",
        "change_me",
        "change-me",
        "your_",
        "your-",
        "yourtoken",
        "yourkey",
        "placeholder",
        "redacted",
        "[filtered]",
        "<",
        ">",
        "${",
        "{{",
        "$(",
        "%(",
        "os.environ",
        "getenv",
    ];
    // Markers a long random token may contain by chance (`xXxx`, `duMmY`): matched in one
    // case only, and not at all once a checksum or structure proved the token.
    const WEAK: &[&str] = &[
        "xxxx",
        "XXXX",
        "dummy",
        "DUMMY",
        "[password",
        "password]",
        "insert",
        "INSERT",
        "replace",
        "REPLACE",
        "123456789",
        // Ascending hex runs: `01234567-89ab-cdef-…` in documentation.
        "01234567",
        "89abcdef",
        "abcdefghij",
        "ABCDEFGHIJ",
        "qwertyuiop",
        "*****",
        "....",
    ];
    const WHOLE: &[&str] = &[
        "password",
        "passw0rd",
        "secret",
        "token",
        "admin",
        "root",
        "none",
        "null",
        "true",
        "false",
        "undefined",
        "string",
        "default",
        "pass",
        // The default keystore password of the JDK's keytool.
        "changeit",
        "test",
        "testing",
    ];
    // Words that name the value instead of being it: `pypi-token`, `my_secret_key`.
    const NAMING_WORDS: &[&str] = &["token", "password", "passwd", "secret", "key", "pass", "api"];
    let holds = |part: &str| secret.windows(part.len()).any(|w| w == part.as_bytes());
    if DOCUMENTED_KEYS.iter().any(|k| k.as_bytes() == secret) || DOCUMENTED_PARTS.iter().any(|p| holds(p)) {
        return true;
    }
    let lower = secret.to_ascii_lowercase();
    let Ok(lower) = std::str::from_utf8(&lower) else {
        return false;
    };
    if STRONG.iter().any(|m| lower.contains(m)) {
        return true;
    }
    if proven {
        return false;
    }
    let text = String::from_utf8_lossy(secret);
    if WEAK.iter().any(|m| text.contains(m)) || WHOLE.contains(&lower) {
        return true;
    }
    let only_words = secret
        .iter()
        .all(|&b| b.is_ascii_alphabetic() || b == b'-' || b == b'_');
    if only_words && NAMING_WORDS.iter().any(|w| lower.contains(w)) {
        return true;
    }
    // Runs of one character dominate placeholder values (`0000…`, `aaaa…`).
    let distinct = {
        let mut seen = [false; 256];
        secret
            .iter()
            .filter(|&&b| !std::mem::replace(&mut seen[b as usize], true))
            .count()
    };
    secret.len() >= 8 && distinct <= 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_recognised() {
        for p in [
            "AKIAIOSFODNN7EXAMPLE",
            "xxxxxxxxxxxxxxxx",
            "<your-token>",
            "${GITHUB_TOKEN}",
            "changeme",
            "00000000000",
        ] {
            assert!(is_placeholder(p.as_bytes(), false), "{p}");
        }
        assert!(!is_placeholder(b"ghp_Zk3q9TfLm2PxW8vB4nYc7RhJd5GsQa1b2c3d", false));
        // Weak markers match in one case only: random mixed-case bodies do not trip them.
        assert!(!is_placeholder(b"sk_live_4fQ9zduMmYm2LxXxxOT8pR7vWb3nK", false));
        assert!(is_placeholder(b"sk_live_4fQ9zdummy2LxXxxOT8pR7vWb3nK", false));
        // A proven token that happens to contain a weak marker is still a token.
        assert!(!is_placeholder(b"ghp_4fQ9zdummy2LxXxxOT8pR7vWb3nK", true));
    }
}
