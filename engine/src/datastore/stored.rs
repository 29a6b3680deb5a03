//! A finding as stored under a blob: its place relative to the blob, and everything the bytes
//! decided. What depends on where the blob sits (the path, the context, the package, the
//! fingerprint) is computed again for each place it is linked to.

use serde::{Deserialize, Serialize};

use crate::core::Confidence;
use crate::core::{Finding, Location, RuleRef, Validation, ValidationStatus};

/// One finding relative to the blob that holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredFinding {
    /// Rule id.
    pub rule: String,
    /// Rule name.
    pub name: String,
    /// The secret (lossy UTF-8).
    pub secret: String,
    /// SHA-256 of the secret.
    pub secret_sha256: String,
    /// Confidence after validation.
    pub confidence: Confidence,
    /// Validation status.
    pub status: ValidationStatus,
    /// Validation details.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, serde_json::Value>,
    /// Members below the blob, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// Decoders applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decoders: Vec<String>,
    /// Offset, end, line and column in the innermost blob.
    pub at: [u64; 4],
    /// The line around the secret.
    pub snippet: String,
    /// Byte range of the secret in the snippet.
    pub snippet_secret: [usize; 2],
    /// Entropy, bits per byte.
    pub entropy: f64,
    /// A `keysweep:allow` comment on the line.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allowed_inline: bool,
}

impl StoredFinding {
    /// `finding` relative to the blob that sits `depth` members deep in its location.
    pub fn relative(finding: &Finding, depth: usize) -> StoredFinding {
        let l = &finding.location;
        StoredFinding {
            rule: finding.rule.id.clone(),
            name: finding.rule.name.clone(),
            secret: finding.secret.clone(),
            secret_sha256: finding.secret_sha256.clone(),
            confidence: finding.confidence,
            status: finding.validation.status,
            details: finding.validation.details.clone(),
            members: l.members.get(depth..).unwrap_or_default().to_vec(),
            decoders: l.decoders.clone(),
            at: [l.offset, l.end, l.line, l.column],
            snippet: finding.snippet.clone(),
            snippet_secret: [finding.snippet_secret.start, finding.snippet_secret.end],
            entropy: finding.entropy,
            allowed_inline: finding.allowed_inline,
        }
    }

    /// This finding inside a blob found at `path` below `members`: the place, context,
    /// package and fingerprint of that place.
    pub fn placed(&self, path: &str, members: &[String]) -> Finding {
        let mut all = members.to_vec();
        all.extend(self.members.iter().cloned());
        let location = Location {
            path: path.to_owned(),
            members: all,
            decoders: self.decoders.clone(),
            offset: self.at[0],
            end: self.at[1],
            line: self.at[2],
            column: self.at[3],
        };
        let fingerprint = Finding::compute_fingerprint(&self.rule, &self.secret_sha256, &location);
        let context = crate::core::context_of(&location.path, &location.members);
        let package = crate::core::package_of(&location.path, &location.members);
        Finding {
            rule: RuleRef {
                id: self.rule.clone(),
                name: self.name.clone(),
            },
            secret: self.secret.clone(),
            secret_sha256: self.secret_sha256.clone(),
            confidence: self.confidence,
            validation: Validation {
                status: self.status,
                details: self.details.clone(),
            },
            location,
            context,
            package,
            snippet: self.snippet.clone(),
            snippet_secret: self.snippet_secret[0]..self.snippet_secret[1],
            entropy: self.entropy,
            fingerprint,
            allowed_inline: self.allowed_inline,
        }
    }
}
