//! Rule files (`rules/*.toml`) → typed, validated rules.
//!
//! A rule is data: a full pattern (confirmed by the `regex` crate), an optional cheap
//! Hyperscan prefilter, a confirmation window, an entropy floor, an optional structural
//! validator and examples that `keysweep rules check` runs through the real scanning path.

use std::collections::HashSet;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::Confidence;
use crate::util::hex;

/// The rule files shipped with keysweep, compiled into the binary so that it works anywhere.
const BUILTIN_RULE_FILES: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

/// Default bytes of context before a trigger's end that the confirming regex sees.
pub const DEFAULT_WINDOW_BEFORE: u32 = 256;
/// Default bytes of context after a trigger's end that the confirming regex sees.
pub const DEFAULT_WINDOW_AFTER: u32 = 256;
/// Hard cap on a window side: keeps a hostile rule file from turning windows into copies of files.
pub const MAX_WINDOW: u32 = 64 * 1024;

/// A structural check run on the extracted secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValidatorKind {
    /// GitHub's classic token format: 30 base62 characters, then their CRC32 in 6 base62 digits.
    GithubCrc32,
    /// npm's token format, the same checksum scheme as GitHub's.
    NpmCrc32,
    /// A JSON Web Token: base64url JSON header with `alg`, a JSON payload, a signature.
    Jwt,
    /// A PEM block whose body is valid base64.
    Pem,
    /// A Discord bot token: its first part is the base64url of a 17-20 digit user id.
    DiscordBotToken,
    /// Base64 of `user:password` (HTTP Basic, Docker `auth`, npm `_auth`): printable, one colon.
    BasicAuth,
    /// Base64 of a PEM private key block (kubeconfig `client-key-data`, env vars).
    Base64PemPrivateKey,
    /// A random base64 key (AWS secret access key shape): must not decode to readable text.
    RandomBase64,
    /// A package-index upload token: `pypi-` + a binary macaroon (location, identifier, caveats).
    PypiMacaroon,
    /// An AWS access key id: the account id it encodes, when it encodes one.
    AwsKeyId,
    /// A cloud service-account key file: its project, client e-mail and key.
    GcpServiceAccount,
    /// Base64 of a PKCS#12 key store: its header (version 3, a PKCS#7 content).
    Pkcs12,
    /// Grafana's service-account token checksum: CRC32, little-endian hex.
    GrafanaCrc32,
    /// A value assigned to a token-like name: the name must not say it is a digest.
    TokenName,
    /// A registry auth token of any age: an `npm_` one must carry its checksum.
    NpmAuthToken,
}

/// One rule as written in a rule file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSyntax {
    /// Stable dotted identifier, unique across all rule files.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// The full pattern; the secret is the group named `secret`, or group 1.
    pub pattern: String,
    /// A cheap Hyperscan pattern matching inside every match of `pattern`.
    #[serde(default)]
    pub prefilter: Option<String>,
    /// Bytes before a trigger's end given to the confirming regex.
    #[serde(default)]
    pub window_before: Option<u32>,
    /// Bytes after a trigger's end given to the confirming regex.
    #[serde(default)]
    pub window_after: Option<u32>,
    /// Shannon entropy floor of the secret, in bits per byte.
    #[serde(default)]
    pub min_entropy: Option<f64>,
    /// Structural validator of the secret.
    #[serde(default)]
    pub validator: Option<ValidatorKind>,
    /// How much a finding is worth.
    pub confidence: Confidence,
    /// Where the provider documents the format.
    #[serde(default)]
    pub references: Vec<String>,
    /// Texts that must yield this rule.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Texts that must not yield this rule.
    #[serde(default)]
    pub negative_examples: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFileSyntax {
    #[serde(default)]
    rule: Vec<RuleSyntax>,
}

/// A rule ready for scanning: its syntax plus its origin and compiled confirmation regex.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The rule as written.
    pub syntax: RuleSyntax,
    /// The file it came from (`<builtin>/name.toml` for shipped rules).
    pub source: PathBuf,
    /// The confirming regex (bytes, ASCII classes, like Hyperscan without UTF-8 mode).
    pub regex: regex::bytes::Regex,
    /// Index of the capture group holding the secret.
    pub secret_group: usize,
}

impl Rule {
    /// The rule's id.
    pub fn id(&self) -> &str {
        &self.syntax.id
    }
    /// The expression Hyperscan scans for.
    pub fn trigger(&self) -> String {
        match &self.syntax.prefilter {
            Some(p) => p.clone(),
            None => strip_group_names(&self.syntax.pattern),
        }
    }
    /// Bytes before a trigger's end that the confirming regex sees.
    pub fn window_before(&self) -> u32 {
        self.syntax.window_before.unwrap_or(DEFAULT_WINDOW_BEFORE)
    }
    /// Bytes after a trigger's end that the confirming regex sees.
    pub fn window_after(&self) -> u32 {
        self.syntax.window_after.unwrap_or(DEFAULT_WINDOW_AFTER)
    }
}

/// Hyperscan has no named groups; `(?P<name>` and `(?<name>` become plain groups.
pub fn strip_group_names(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let bytes = pattern.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            out.push_str(&pattern[i..i + 2]);
            i += 2;
            continue;
        }
        let rest = &pattern[i..];
        let skip = if rest.starts_with("(?P<") {
            Some(4)
        } else if rest.starts_with("(?<") && !rest.starts_with("(?<=") && !rest.starts_with("(?<!") {
            Some(3)
        } else {
            None
        };
        if let Some(skip) = skip {
            if let Some(close) = rest[skip..].find('>') {
                out.push('(');
                i += skip + close + 1;
                continue;
            }
        }
        let ch = rest.chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

/// A rule file or rule that cannot be used, naming the file, the rule and the reason.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The file could not be read.
    #[error("{path}: cannot read rule file: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the rule format.
    #[error("{path}: invalid rule file: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// One rule is invalid.
    #[error("{path}: rule {id:?}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The rule id.
        id: String,
        /// Why.
        reason: String,
    },
    /// No rules at all.
    #[error("no rules loaded")]
    Empty,
}

/// All rules of one scan, in a fixed order (a rule's index is its Hyperscan id).
#[derive(Clone, Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// The rules shipped with keysweep.
    pub fn builtin() -> Result<Self, RuleError> {
        let mut rules = Vec::new();
        for (name, text) in BUILTIN_RULE_FILES {
            rules.extend(parse_rule_file(Path::new("<builtin>").join(name).as_path(), text)?);
        }
        Self::from_rules(rules)
    }

    /// Rules from every `*.toml` file of a directory (or one file).
    pub fn from_path(path: &Path) -> Result<Self, RuleError> {
        Self::from_rules(load_rules_from_path(path)?)
    }

    /// The builtin rules, then each path's rules; a rule with an id already present replaces it.
    pub fn builtin_with(extra: &[PathBuf]) -> Result<Self, RuleError> {
        let mut rules = Self::builtin()?.rules;
        for path in extra {
            for rule in load_rules_from_path(path)? {
                match rules.iter_mut().find(|r| r.id() == rule.id()) {
                    Some(slot) => *slot = rule,
                    None => rules.push(rule),
                }
            }
        }
        Self::from_rules(rules)
    }

    /// Checks uniqueness and builds the set.
    pub fn from_rules(rules: Vec<Rule>) -> Result<Self, RuleError> {
        if rules.is_empty() {
            return Err(RuleError::Empty);
        }
        let mut seen = HashSet::new();
        for rule in &rules {
            if !seen.insert(rule.id().to_owned()) {
                return Err(RuleError::Invalid {
                    path: rule.source.clone(),
                    id: rule.id().to_owned(),
                    reason: "duplicate rule id".into(),
                });
            }
        }
        Ok(RuleSet { rules })
    }

    /// The rules, indexed by Hyperscan id.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the set is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// A hash of everything that decides what the set matches: keys the database cache.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        for rule in &self.rules {
            // serde_json of the syntax is deterministic (struct field order).
            h.update(serde_json::to_vec(&rule.syntax).unwrap_or_default());
            h.update([0]);
        }
        hex(&h.finalize())
    }
}

fn load_rules_from_path(path: &Path) -> Result<Vec<Rule>, RuleError> {
    let read_err = |source| RuleError::Read {
        path: path.to_owned(),
        source,
    };
    let mut files = Vec::new();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "toml") {
                files.push(p);
            }
        }
        files.sort();
    } else {
        files.push(path.to_owned());
    }
    let mut rules = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| RuleError::Read {
            path: file.clone(),
            source,
        })?;
        rules.extend(parse_rule_file(&file, &text)?);
    }
    Ok(rules)
}

/// Parses one rule file and checks each rule's own fields.
pub fn parse_rule_file(path: &Path, text: &str) -> Result<Vec<Rule>, RuleError> {
    let file: RuleFileSyntax = toml::from_str(text).map_err(|e| RuleError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    file.rule.into_iter().map(|syntax| compile_rule(path, syntax)).collect()
}

fn compile_rule(path: &Path, syntax: RuleSyntax) -> Result<Rule, RuleError> {
    let invalid = |reason: String| RuleError::Invalid {
        path: path.to_owned(),
        id: syntax.id.clone(),
        reason,
    };
    let id_ok = !syntax.id.is_empty()
        && syntax
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !id_ok {
        return Err(invalid(
            "id must be non-empty lowercase ascii, digits, '.', '_' or '-'".into(),
        ));
    }
    for (side, value) in [
        ("window_before", syntax.window_before),
        ("window_after", syntax.window_after),
    ] {
        if value.is_some_and(|v| v > MAX_WINDOW) {
            return Err(invalid(format!("{side} is larger than {MAX_WINDOW}")));
        }
    }
    if let Some(e) = syntax.min_entropy {
        if !(0.0..=8.0).contains(&e) {
            return Err(invalid(format!("min_entropy {e} is outside 0..8")));
        }
    }
    let regex = regex::bytes::RegexBuilder::new(&syntax.pattern)
        .unicode(false)
        .size_limit(64 << 20)
        .build()
        .map_err(|e| invalid(format!("pattern does not compile: {e}")))?;
    if syntax.prefilter.is_none() {
        // The window must hold a whole match, measured back from Hyperscan's end offset.
        let before = syntax.window_before.unwrap_or(DEFAULT_WINDOW_BEFORE) as usize;
        match max_match_len(&syntax.pattern) {
            Some(len) if len < before => {}
            Some(len) => {
                return Err(invalid(format!(
                    "pattern matches up to {len} bytes but window_before is {before}: raise it or add a prefilter"
                )))
            }
            None => {
                return Err(invalid(
                    "pattern has no length bound: add a prefilter on its prefix and a window_after that covers it"
                        .into(),
                ))
            }
        }
    }
    let secret_group = match regex.capture_names().position(|n| n == Some("secret")) {
        Some(i) => i,
        None if regex.captures_len() > 1 => 1,
        None => return Err(invalid("pattern has no `secret` group and no group 1".into())),
    };
    Ok(Rule {
        syntax,
        source: path.to_owned(),
        regex,
        secret_group,
    })
}

/// The longest match a pattern can make, in bytes; `None` when unbounded.
fn max_match_len(pattern: &str) -> Option<usize> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    hir.properties().maximum_len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_stripped_for_hyperscan() {
        assert_eq!(strip_group_names(r"a(?P<secret>b)c"), "a(b)c");
        assert_eq!(strip_group_names(r"(?<x>b)(?<=y)"), "(b)(?<=y)");
        assert_eq!(strip_group_names(r"\(?P<x>"), r"\(?P<x>");
    }

    #[test]
    fn unbounded_patterns_need_a_prefilter() {
        let text = r#"
[[rule]]
id = "demo.long"
name = "long"
pattern = '''tok_(?P<secret>[a-z]{10,})'''
confidence = "high"
"#;
        let err = parse_rule_file(Path::new("demo.toml"), text)
            .expect_err("unbounded")
            .to_string();
        assert!(err.contains("no length bound"), "{err}");
        let text = text.replace("[a-z]{10,}", "[a-z]{300}");
        let err = parse_rule_file(Path::new("demo.toml"), &text)
            .expect_err("too long")
            .to_string();
        assert!(err.contains("window_before is 256"), "{err}");
    }

    #[test]
    fn malformed_rule_names_file_and_id() {
        let text = r#"
[[rule]]
id = "demo.bad"
name = "bad"
pattern = "(unclosed"
confidence = "high"
"#;
        let err = parse_rule_file(Path::new("rules/demo.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("rules/demo.toml"), "{err}");
        assert!(err.contains("demo.bad"), "{err}");
        assert!(err.contains("does not compile"), "{err}");
    }
}
