//! The finding and its stable JSON form (one object per JSON Lines line).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Confidence, Package, PathContext};
use crate::util::hex;

/// The rule that produced a finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    /// Stable rule id.
    pub id: String,
    /// Human-readable name.
    pub name: String,
}

/// What a structural check proved of a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationStatus {
    /// A checksum in the token proved it (GitHub, npm CRC32).
    ChecksumValid,
    /// The secret decoded and parsed as its format says (a key, a macaroon, a JWT).
    StructureValid,
    /// No check applies, or the check could not be completed.
    #[serde(other)]
    Unchecked,
}

impl std::fmt::Display for ValidationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ValidationStatus {
    /// The name used in reports and the datastore.
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationStatus::ChecksumValid => "checksum_valid",
            ValidationStatus::StructureValid => "structure_valid",
            ValidationStatus::Unchecked => "unchecked",
        }
    }

    /// The status a report names, if it is one.
    pub fn from_name(name: &str) -> Option<ValidationStatus> {
        [
            ValidationStatus::ChecksumValid,
            ValidationStatus::StructureValid,
            ValidationStatus::Unchecked,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// Whether a check proved anything.
    pub fn is_proven(self) -> bool {
        self != ValidationStatus::Unchecked
    }
}

/// What validation concluded about a finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Validation {
    /// What the check proved.
    pub status: ValidationStatus,
    /// Details the structural check decoded (algorithm, key type, …).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// Where a finding is: the file, the members inside it, the decoders applied, the position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The file on disk (lossy UTF-8 for non-UTF-8 paths).
    pub path: String,
    /// Archive members from outermost to innermost (empty for plain files).
    pub members: Vec<String>,
    /// Decoders applied to reach the secret (empty for raw bytes).
    pub decoders: Vec<String>,
    /// Byte offset of the secret in the innermost blob.
    pub offset: u64,
    /// Byte offset one past the secret.
    pub end: u64,
    /// 1-based line of the secret.
    pub line: u64,
    /// 1-based byte column of the secret.
    pub column: u64,
}

impl Location {
    /// The provenance chain as one string: `path!member!member`.
    pub fn display_path(&self) -> String {
        let mut s = self.path.clone();
        for m in &self.members {
            s.push('!');
            s.push_str(m);
        }
        s
    }
}

/// One secret at one place.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// The rule that matched.
    pub rule: RuleRef,
    /// The secret (lossy UTF-8); replaced by a hash marker when redacted.
    pub secret: String,
    /// SHA-256 of the secret's bytes: links the same secret across places without showing it.
    pub secret_sha256: String,
    /// The rule's confidence.
    pub confidence: Confidence,
    /// The validation outcome.
    pub validation: Validation,
    /// Where it is.
    pub location: Location,
    /// The kind of place it is in (test, fixture, example, docs), when the path says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<PathContext>,
    /// The release (wheel, sdist, egg) it was found in, when the path names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<Package>,
    /// The line around the secret (trimmed; long secrets shortened; masked when redacted).
    pub snippet: String,
    /// Byte range of the (possibly shortened) secret in `snippet`.
    #[serde(skip)]
    pub snippet_secret: std::ops::Range<usize>,
    /// Shannon entropy of the secret in bits per byte.
    pub entropy: f64,
    /// Stable across runs: rule, secret and location.
    pub fingerprint: String,
    /// The line holds a `keysweep:allow` comment: counted as suppressed, not reported.
    #[serde(skip)]
    pub allowed_inline: bool,
}

impl Finding {
    /// Computes the fingerprint from the rule id, the secret hash and the location.
    pub fn compute_fingerprint(rule: &str, secret_sha256: &str, location: &Location) -> String {
        let mut h = Sha256::new();
        for part in [rule, secret_sha256, &location.display_path()] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.update(location.decoders.join("/").as_bytes());
        h.update(location.offset.to_le_bytes());
        hex(&h.finalize()[..16])
    }

    /// Replaces the secret by its hash marker and masks it in the snippet.
    pub fn redact(&mut self) {
        if self.snippet.get(self.snippet_secret.clone()).is_some() {
            self.snippet.replace_range(self.snippet_secret.clone(), "[REDACTED]");
            self.snippet_secret = self.snippet_secret.start..self.snippet_secret.start + "[REDACTED]".len();
        } else {
            self.snippet = "[REDACTED]".to_owned();
        }
        self.secret = format!("sha256:{}", &self.secret_sha256[..16.min(self.secret_sha256.len())]);
    }
}
