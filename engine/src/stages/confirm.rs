//! The validator stage: confirms candidate windows with each rule's full regex, extracts the
//! secret, and applies entropy floors, structural checks, placeholder allowlists and exact
//! dedup. Candidates may be false positives; confirmed findings are never dropped silently.

use std::collections::HashSet;
use std::sync::Arc;

use crate::checks::placeholders::is_placeholder;
use crate::checks::{check, CheckOutcome, Surroundings};
use crate::core::context_of;
use crate::core::{excerpt_at, Excerpt};
use crate::core::{Confidence, Provenance};
use crate::core::{Finding, Location, RuleRef, Validation, ValidationStatus};
use crate::rules::RuleSet;
use crate::util::line_around;
use crate::util::{sha256_hex, shannon_entropy};

/// A candidate window shipped from a scan worker: a copy of the bytes, so the worker can
/// release the file at once, and what is needed to place a match in lines and columns.
#[derive(Clone, Debug)]
pub struct ShippedWindow {
    /// Index of the rule.
    pub rule: u32,
    /// Offset in the blob of `bytes[lead]`.
    pub start: u64,
    /// Number of context bytes before the window proper (0 or 1): lets `\b` and `^` see
    /// the byte before the window.
    pub lead: usize,
    /// The window's bytes (with the lead byte).
    pub bytes: Vec<u8>,
    /// The window was cut short of its rule's span (merged windows are capped): a match
    /// reaching its last byte may continue in the next window, which holds it whole.
    pub cut_at_end: bool,
    /// 1-based line number at `start`.
    pub line_at_start: u64,
    /// Offset in the blob where that line begins.
    pub line_start_offset: u64,
}

/// All candidate windows of one blob.
#[derive(Debug)]
pub struct CandidateBatch {
    /// The blob's provenance.
    pub provenance: Arc<Provenance>,
    /// Its windows.
    pub windows: Vec<ShippedWindow>,
}

/// Confirms candidates against rules.
pub struct Validator {
    rules: Arc<RuleSet>,
    dedup_across_rules: bool,
}

/// Longest snippet kept, in bytes on each side of the secret.
const SNIPPET_CONTEXT: usize = 60;

impl Validator {
    /// A validator over a rule set.
    pub fn new(rules: Arc<RuleSet>) -> Self {
        Validator {
            rules,
            dedup_across_rules: true,
        }
    }

    /// Whether a byte range confirmed by several rules is reported once (the default) or
    /// once per rule (what `rules check` needs to see every rule's own examples).
    pub fn set_dedup_across_rules(&mut self, on: bool) {
        self.dedup_across_rules = on;
    }

    /// Confirms every window of a batch; findings in blob order, each place once.
    pub fn confirm(&self, batch: &CandidateBatch) -> Vec<Finding> {
        let mut seen = HashSet::new();
        let mut findings = Vec::new();
        for window in &batch.windows {
            self.confirm_window(window, &batch.provenance, &mut seen, &mut findings);
        }
        if self.dedup_across_rules {
            dedup_across_rules(&mut findings);
            if batch.provenance.decoders.last().is_some_and(|d| d == "pyc") {
                once_per_secret(&mut findings);
            }
        }
        if let Some(origin) = &batch.provenance.origin {
            for finding in &mut findings {
                place_in_blob(finding, origin);
            }
        }
        findings
    }

    fn confirm_window(
        &self,
        window: &ShippedWindow,
        provenance: &Provenance,
        seen: &mut HashSet<(u32, u64, u64)>,
        out: &mut Vec<Finding>,
    ) {
        let Some(rule) = self.rules.rules().get(window.rule as usize) else {
            return;
        };
        let hay = &window.bytes;
        let mut at = window.lead;
        while at <= hay.len() {
            let Some(caps) = rule.regex.captures_at(hay, at) else {
                break;
            };
            let Some(whole) = caps.get(0) else { break };
            at = if whole.end() > whole.start() {
                whole.end()
            } else {
                whole.end() + 1
            };
            if window.cut_at_end && whole.end() == hay.len() {
                // The window was cut where the next one starts: that one holds the whole match.
                continue;
            }
            let Some(secret) = caps.get(rule.secret_group).filter(|m| !m.is_empty()) else {
                continue;
            };
            let abs_start = window.start + (secret.start() - window.lead) as u64;
            let abs_end = window.start + (secret.end() - window.lead) as u64;
            if let Some(focus) = &provenance.focus {
                // The match, or the byte before it, must be decoded: a keyword before a decoded
                // value counts, and so does a token after a decoded `=` (encoded, `%3Dghp_…`
                // gave the rule no boundary to start at; after a token, `%2F` gave one).
                let match_start = (window.start + whole.start().saturating_sub(window.lead) as u64).saturating_sub(1);
                let match_end = window.start + whole.end().saturating_sub(window.lead) as u64;
                if !focus.iter().any(|&(s, e)| match_start < e && s < match_end) {
                    continue;
                }
            }
            if !seen.insert((window.rule, abs_start, abs_end)) {
                continue;
            }
            let bytes = secret.as_bytes();
            let entropy = shannon_entropy(bytes);
            if rule.syntax.min_entropy.is_some_and(|floor| entropy < floor) {
                continue;
            }
            let validation = match rule.syntax.validator {
                None => Validation {
                    status: ValidationStatus::Unchecked,
                    details: serde_json::Map::new(),
                },
                Some(kind) => match check(
                    kind,
                    bytes,
                    Surroundings {
                        matched: whole.as_bytes(),
                        after: &hay[whole.start()..],
                    },
                ) {
                    CheckOutcome::Invalid(_) => continue,
                    CheckOutcome::Valid(details) => Validation {
                        status: if details.iter().any(|(k, _)| *k == "checksum") {
                            ValidationStatus::ChecksumValid
                        } else {
                            ValidationStatus::StructureValid
                        },
                        details: details.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                    },
                    CheckOutcome::Unproven(details) => Validation {
                        status: ValidationStatus::Unchecked,
                        details: details.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                    },
                },
            };
            // A secret whose structure was proven is only matched against documented keys
            // and strong markers: random bodies contain `xxxx` or `dummy` by chance.
            if is_placeholder(bytes, validation.status.is_proven()) {
                continue;
            }
            let (line, column) = line_and_column(window, secret.start());
            let (snippet, snippet_secret) = snippet(hay, window.lead, secret.start(), secret.end());
            let location = Location {
                path: provenance.path.clone(),
                members: provenance.members.clone(),
                decoders: provenance.decoders.clone(),
                offset: abs_start,
                end: abs_end,
                line,
                column,
            };
            let secret_sha256 = sha256_hex(bytes);
            let fingerprint = Finding::compute_fingerprint(rule.id(), &secret_sha256, &location);
            let confidence = effective_confidence(rule.syntax.confidence, &validation);
            let context = context_of(&location.path, &location.members);
            out.push(Finding {
                rule: RuleRef {
                    id: rule.id().to_owned(),
                    name: rule.syntax.name.clone(),
                },
                secret: String::from_utf8_lossy(bytes).into_owned(),
                secret_sha256,
                confidence,
                validation,
                location,
                snippet,
                snippet_secret,
                context,
                package: provenance.package.clone(),
                entropy: (entropy * 1000.0).round() / 1000.0,
                fingerprint,
                allowed_inline: allowed_inline(hay, window.lead, secret.start(), secret.end()),
            });
        }
    }
}

/// The rule's confidence says how specific its pattern is; validation moves it. A checksum
/// proves the token (high); a structural check that could not be completed (a key body that
/// does not parse, an access key id of no known layout) lowers high to medium.
fn effective_confidence(rule: Confidence, validation: &Validation) -> Confidence {
    match validation.status {
        ValidationStatus::ChecksumValid => Confidence::High,
        ValidationStatus::Unchecked if !validation.details.is_empty() && rule == Confidence::High => Confidence::Medium,
        _ => rule,
    }
}

/// The marker that allows a secret in place, on the line where it starts or ends
/// (`TOKEN = "…"  # keysweep:allow`).
const ALLOW_MARKER: &[u8] = b"keysweep:allow";

fn allowed_inline(hay: &[u8], lead: usize, start: usize, end: usize) -> bool {
    // The lines the secret starts and ends on, 256 bytes each side at most: a marker far
    // along a minified line does not hide every secret on it.
    let found = |at: usize| {
        let (from, to) = line_around(hay, at, at, 256, 256);
        memchr::memmem::find(&hay[from.max(lead)..to], ALLOW_MARKER).is_some()
    };
    found(start) || found(end)
}

/// Moves a finding in a decoded view to the encoded bytes it came from.
fn place_in_blob(finding: &mut Finding, origin: &[Excerpt]) {
    let Some(excerpt) = excerpt_at(origin, finding.location.offset) else {
        return;
    };
    let location = &mut finding.location;
    location.offset = excerpt.blob_start;
    location.end = excerpt.blob_end;
    location.line = excerpt.line;
    location.column = excerpt.column;
    finding.fingerprint = Finding::compute_fingerprint(&finding.rule.id, &finding.secret_sha256, location);
}

/// One report per secret per place: when several rules confirm the same byte range (a
/// provider token inside a `.pypirc` password slot), the most confident, validated,
/// first-listed rule keeps it.
fn dedup_across_rules(findings: &mut Vec<Finding>) {
    let rank = |f: &Finding| (std::cmp::Reverse(f.confidence), !f.validation.status.is_proven());
    findings.sort_by(|a, b| {
        (a.location.offset, a.location.end, rank(a)).cmp(&(b.location.offset, b.location.end, rank(b)))
    });
    findings.dedup_by(|later, kept| {
        later.location.offset == kept.location.offset && later.location.end == kept.location.end
    });
}

/// A `.pyc` view writes a constant once per credential-like name it may belong to, so its
/// lines are guesses: each secret is reported once, by a provider's rule where one matched
/// (a generic rule's guess of `auth_token = "AC…"` yields to the account-id rule that knows
/// the value), then by confidence, then by position.
fn once_per_secret(findings: &mut Vec<Finding>) {
    let rank = |f: &Finding| {
        (
            f.rule.id.starts_with("generic."),
            std::cmp::Reverse(f.confidence),
            !f.validation.status.is_proven(),
            f.location.offset,
        )
    };
    findings.sort_by(|a, b| (&a.secret_sha256, rank(a)).cmp(&(&b.secret_sha256, rank(b))));
    findings.dedup_by(|later, kept| later.secret_sha256 == kept.secret_sha256);
    findings.sort_by_key(|f| f.location.offset);
}

fn line_and_column(window: &ShippedWindow, pos: usize) -> (u64, u64) {
    let before = &window.bytes[window.lead..pos];
    let newlines = memchr::memchr_iter(b'\n', before).count() as u64;
    let column = match memchr::memrchr(b'\n', before) {
        Some(nl) => (pos - window.lead - nl - 1) as u64,
        None => window.start + (pos - window.lead) as u64 - window.line_start_offset,
    };
    (window.line_at_start + newlines, column + 1)
}

/// Longest part of a secret shown in a snippet (multi-line keys are long).
const SNIPPET_SECRET_MAX: usize = 80;

/// The line around a secret: up to `SNIPPET_CONTEXT` bytes each side on the same line, the
/// secret itself shortened to `SNIPPET_SECRET_MAX` characters. Returns the text and the byte
/// range of the secret in it, so redaction masks exactly that range.
fn snippet(hay: &[u8], lead: usize, start: usize, end: usize) -> (String, std::ops::Range<usize>) {
    let (from, to) = line_around(hay, start, end, SNIPPET_CONTEXT.min(start - lead), SNIPPET_CONTEXT);
    let clean = |bytes: &[u8]| -> String {
        String::from_utf8_lossy(bytes)
            .chars()
            .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
            .collect()
    };
    let prefix = clean(&hay[from..start]);
    let mut secret = clean(&hay[start..end]);
    if secret.chars().count() > SNIPPET_SECRET_MAX {
        secret = secret.chars().take(SNIPPET_SECRET_MAX).collect::<String>() + "…";
    }
    let suffix = clean(&hay[end..to]);
    let prefix = prefix.trim_start();
    let mut text = String::with_capacity(prefix.len() + secret.len() + suffix.len());
    text.push_str(prefix);
    let range = text.len()..text.len() + secret.len();
    text.push_str(&secret);
    text.push_str(suffix.trim_end());
    (text, range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_moves_confidence() {
        let v = |status: ValidationStatus, details: &[&str]| Validation {
            status,
            details: details
                .iter()
                .map(|k| (k.to_string(), serde_json::Value::Bool(false)))
                .collect(),
        };
        assert_eq!(
            effective_confidence(Confidence::Medium, &v(ValidationStatus::ChecksumValid, &["checksum"])),
            Confidence::High
        );
        assert_eq!(
            effective_confidence(Confidence::High, &v(ValidationStatus::Unchecked, &["parsed"])),
            Confidence::Medium
        );
        assert_eq!(
            effective_confidence(Confidence::High, &v(ValidationStatus::Unchecked, &[])),
            Confidence::High
        );
        assert_eq!(
            effective_confidence(Confidence::Low, &v(ValidationStatus::StructureValid, &["alg"])),
            Confidence::Low
        );
    }

    #[test]
    fn line_and_column_count_from_window_and_line_start() {
        let w = ShippedWindow {
            rule: 0,
            start: 100,
            lead: 1,
            bytes: b"xab\ncd secret".to_vec(),
            cut_at_end: false,
            line_at_start: 7,
            line_start_offset: 95,
        };
        // "ab" starts at offset 100, on line 7 which began at 95: column 6.
        assert_eq!(line_and_column(&w, 1), (7, 6));
        // "secret" is on the next line, after "cd ".
        assert_eq!(line_and_column(&w, 7), (8, 4));
    }
}
