//! Findings a user has already dealt with: an allowlist file (fingerprints, secret regexes,
//! path globs), a baseline report of known findings, and inline `keysweep:allow` comments.
//! Suppressed findings are counted in the summary by reason, never dropped silently.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::core::Finding;

/// A user's allowlist or baseline could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SuppressError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid allowlist or report.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Why a finding was not reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suppression {
    /// A `keysweep:allow` comment on its line.
    Inline,
    /// A fingerprint, regex or path of `--allowlist`.
    Allowlist,
    /// Present in the `--baseline` report.
    Baseline,
}

impl Suppression {
    /// The name used in the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            Suppression::Inline => "inline",
            Suppression::Allowlist => "allowlist",
            Suppression::Baseline => "baseline",
        }
    }
}

/// The allowlist file (TOML).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowlistFile {
    /// Free text, for the reader.
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    /// Finding fingerprints, as reported.
    #[serde(default)]
    fingerprints: Vec<String>,
    /// Regexes matched against the secret.
    #[serde(default)]
    regexes: Vec<String>,
    /// Globs matched against the file's path and each member's path.
    #[serde(default)]
    paths: Vec<String>,
}

/// Everything that suppresses findings; empty by default.
#[derive(Clone, Debug, Default)]
pub struct Suppressions {
    fingerprints: HashSet<String>,
    regexes: Vec<regex::Regex>,
    path_globs: Vec<globset::Glob>,
    paths: Option<globset::GlobSet>,
    /// (rule id, secret hash, path chain) of baseline findings: a line moved by an edit
    /// changes the offset, and so the fingerprint, but not these.
    baseline: HashSet<(String, String, String)>,
    baseline_fingerprints: HashSet<String>,
    /// Inline `keysweep:allow` comments are not obeyed: a mirror scan reads other people's
    /// code, whose authors could hide a leak behind one.
    pub ignore_inline: bool,
}

fn read(path: &Path) -> Result<String, SuppressError> {
    std::fs::read_to_string(path).map_err(|source| SuppressError::Read {
        path: path.to_owned(),
        source,
    })
}

fn invalid(path: &Path, reason: impl ToString) -> SuppressError {
    SuppressError::Invalid {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

impl Suppressions {
    /// Adds an allowlist file:
    ///
    /// ```toml
    /// fingerprints = ["b7e0c1…"]            # as reported
    /// regexes = ['''^AKIA[A-Z2-7]{12}TEST$''']  # matched against the secret
    /// paths = ["tests/fixtures/**", "*.md"]  # file path or member path, at any depth
    /// ```
    pub fn add_allowlist(&mut self, path: &Path) -> Result<(), SuppressError> {
        let file: AllowlistFile = toml::from_str(&read(path)?).map_err(|e| invalid(path, e.message()))?;
        self.fingerprints.extend(file.fingerprints);
        for pattern in file.regexes {
            let regex = regex::Regex::new(&pattern).map_err(|e| invalid(path, format!("regex {pattern:?}: {e}")))?;
            self.regexes.push(regex);
        }
        if !file.paths.is_empty() {
            for pattern in &file.paths {
                // Anchored with a leading `/`; otherwise at any depth, so `tests/**` also
                // covers `pkg-1.0/tests/…` inside an sdist.
                let glob = match pattern.strip_prefix('/') {
                    Some(anchored) => anchored.to_owned(),
                    None if pattern.starts_with("**") => pattern.clone(),
                    None => format!("**/{pattern}"),
                };
                let glob = globset::Glob::new(&glob).map_err(|e| invalid(path, format!("path {pattern:?}: {e}")))?;
                self.path_globs.push(glob);
            }
            let mut set = globset::GlobSetBuilder::new();
            for glob in &self.path_globs {
                set.add(glob.clone());
            }
            self.paths = Some(set.build().map_err(|e| invalid(path, e))?);
        }
        Ok(())
    }

    /// Adds a baseline: a keysweep report (JSON array, JSON object with `findings`, or
    /// JSON Lines). Returns how many findings it holds.
    pub fn add_baseline(&mut self, path: &Path) -> Result<usize, SuppressError> {
        let text = read(path)?;
        let findings: Vec<Value> = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => items,
            Ok(Value::Object(mut report)) if report.contains_key("findings") => match report.remove("findings") {
                Some(Value::Array(items)) => items,
                _ => return Err(invalid(path, "`findings` is not a list")),
            },
            // JSON Lines (one finding alone parses as one object too).
            _ => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
                .map(|(i, l)| serde_json::from_str(l).map_err(|e| invalid(path, format!("line {}: {e}", i + 1))))
                .collect::<Result<_, _>>()?,
        };
        let mut count = 0;
        for f in &findings {
            let text_at = |keys: &[&str]| -> Option<String> {
                let mut v = f;
                for k in keys {
                    v = v.get(k)?;
                }
                v.as_str().map(str::to_owned)
            };
            let Some(fingerprint) = text_at(&["fingerprint"]) else {
                return Err(invalid(path, "a finding without a fingerprint: not a keysweep report"));
            };
            self.baseline_fingerprints.insert(fingerprint);
            if let (Some(rule), Some(hash), Some(file)) = (
                text_at(&["rule", "id"]),
                text_at(&["secret_sha256"]),
                text_at(&["location", "path"]),
            ) {
                let mut chain = file;
                for member in f
                    .pointer("/location/members")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    chain.push('!');
                    chain.push_str(member.as_str().unwrap_or_default());
                }
                self.baseline.insert((rule, hash, chain));
            }
            count += 1;
        }
        Ok(count)
    }

    /// Whether nothing is suppressed but inline comments.
    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
            && self.regexes.is_empty()
            && self.paths.is_none()
            && self.baseline.is_empty()
            && self.baseline_fingerprints.is_empty()
    }

    /// Why this finding is not to be reported, if it is not.
    pub fn reason(&self, f: &Finding) -> Option<Suppression> {
        if f.allowed_inline && !self.ignore_inline {
            return Some(Suppression::Inline);
        }
        if self.is_empty() {
            return None;
        }
        if self.fingerprints.contains(&f.fingerprint)
            || self.regexes.iter().any(|r| r.is_match(&f.secret))
            || self
                .paths
                .as_ref()
                .is_some_and(|set| set.is_match(&f.location.path) || f.location.members.iter().any(|m| set.is_match(m)))
        {
            return Some(Suppression::Allowlist);
        }
        if self.baseline_fingerprints.contains(&f.fingerprint)
            || (!self.baseline.is_empty()
                && self
                    .baseline
                    .contains(&(f.rule.id.clone(), f.secret_sha256.clone(), f.location.display_path())))
        {
            return Some(Suppression::Baseline);
        }
        None
    }
}
