//! Decoded views of a blob: the same content as a rule would need to see it. A `.pyc`'s
//! names next to its constants, a binary's UTF-16 strings, text wrapped in base64 or hex,
//! escaped strings (`\u0067`, octal, `\/`), percent-encoding and C byte lists, decoded in
//! place, and notebooks read as code. Views are decoded again, up to a depth, so a chain such as base64 of an escaped
//! string is followed; each finding records the chain in `location.decoders`.
//!
//! Views are compact: most keep only the excerpts that were decoded, so their cost follows
//! what was found, not the size of the blob. Where a view repeats bytes of its blob (the
//! line around a decoded run), it names the decoded ranges (its focus) and only matches
//! touching one are kept: the rest was already found in the blob itself.

pub mod bytelists;
pub mod concat;
pub mod escapes;
pub mod notebook;
pub mod pyc;
pub mod runs;
pub mod sections;
pub mod utf16;

use std::sync::Arc;

use crate::validate::Provenance;

/// How deep views are decoded by default (base64 of an escaped string is 2).
pub const DEFAULT_DEPTH: u32 = 3;

/// Bytes decoded from a blob, ready to scan.
#[derive(Debug, Default)]
pub struct View {
    /// The decoder's name, as reported in `location.decoders`.
    pub decoder: &'static str,
    /// The decoded text.
    pub bytes: Vec<u8>,
    /// The ranges of `bytes` that were decoded; `None` when all of it is new.
    pub focus: Option<Vec<(u64, u64)>>,
    /// Where the view's parts came from in the blob, by view offset; empty when parts
    /// cannot be placed (a `.pyc`'s pairs).
    pub origin: Vec<Excerpt>,
}

/// A part of a view and the encoded bytes of the blob it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Excerpt {
    /// Where the part starts in the view (it ends where the next begins).
    pub view_start: u64,
    /// The encoded bytes in the blob.
    pub blob_start: u64,
    /// End of the encoded bytes.
    pub blob_end: u64,
    /// 1-based line of `blob_start` in the blob.
    pub line: u64,
    /// 1-based byte column of `blob_start`.
    pub column: u64,
}

/// The excerpt holding view offset `at`.
pub fn excerpt_at(origin: &[Excerpt], at: u64) -> Option<&Excerpt> {
    let after = origin.partition_point(|e| e.view_start <= at);
    after.checked_sub(1).map(|i| &origin[i])
}

/// Most decoded text one text view holds.
pub(crate) const MAX_TEXT_VIEW: usize = 1 << 20;

/// A compact view under construction: for each decoded range, the line around it with
/// the decoded text in its place (`runs`, `escapes`, `sections`, `concat`).
#[derive(Default)]
pub(crate) struct ExcerptView {
    pub(crate) bytes: Vec<u8>,
    pub(crate) focus: Vec<(u64, u64)>,
    pub(crate) origin: Vec<Excerpt>,
}

impl ExcerptView {
    /// The finished view, if anything was decoded.
    pub(crate) fn finish(self, decoder: &'static str) -> Option<View> {
        (!self.origin.is_empty()).then_some(View {
            decoder,
            bytes: self.bytes,
            focus: Some(self.focus),
            origin: self.origin,
        })
    }
}

/// The bounds of the line around `data[start..end]`, at most `before` and `after` bytes
/// beyond it on each side.
pub(crate) fn line_around(data: &[u8], start: usize, end: usize, before: usize, after: usize) -> (usize, usize) {
    let lower = start.saturating_sub(before);
    let from = memchr::memrchr(b'\n', &data[lower..start]).map_or(lower, |p| lower + p + 1);
    let upper = (end + after).min(data.len());
    let to = memchr::memchr(b'\n', &data[end..upper]).map_or(upper, |p| end + p);
    (from, to)
}

/// Lines and columns of increasing offsets in one blob, counted once.
pub(crate) struct LineCounter<'a> {
    data: &'a [u8],
    counted_to: usize,
    line: u64,
    line_start: usize,
}

impl<'a> LineCounter<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        LineCounter {
            data,
            counted_to: 0,
            line: 1,
            line_start: 0,
        }
    }

    /// The excerpt for encoded bytes `start..end`, placed at `view_start`. Offsets must
    /// not decrease from one call to the next.
    pub(crate) fn excerpt(&mut self, view_start: usize, start: usize, end: usize) -> Excerpt {
        let from = self.counted_to.min(start);
        for nl in memchr::memchr_iter(b'\n', &self.data[from..start]) {
            self.line += 1;
            self.line_start = from + nl + 1;
        }
        self.counted_to = self.counted_to.max(start);
        Excerpt {
            view_start: view_start as u64,
            blob_start: start as u64,
            blob_end: end as u64,
            line: self.line,
            // Runs found out of order (UTF-16 at two alignments) keep the last line seen.
            column: start.saturating_sub(self.line_start) as u64 + 1,
        }
    }
}

/// Words that make a name worth pairing with string constants.
const CREDENTIAL_WORDS: &[&[u8]] = &[
    b"token",
    b"secret",
    b"key",
    b"passw",
    b"pwd",
    b"auth",
    b"credential",
    b"api",
    b"login",
];

/// A constant worth pairing with a credential-like name: secret-sized, one word, random-ish.
pub(crate) fn looks_like_a_value(s: &[u8]) -> bool {
    (8..=4096).contains(&s.len())
        && !s.iter().any(|b| b.is_ascii_whitespace())
        && crate::finding::shannon_entropy(s) >= 3.0
}

pub(crate) fn is_identifier(s: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && (s[0].is_ascii_alphabetic() || s[0] == b'_')
        && s.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

pub(crate) fn is_credential_name(name: &[u8]) -> bool {
    CREDENTIAL_WORDS
        .iter()
        .any(|w| name.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w)))
}

/// Whether a blob looks binary (a NUL in its first 8 KiB).
pub fn is_binary(data: &[u8]) -> bool {
    memchr::memchr(0, &data[..data.len().min(8192)]).is_some()
}

/// The views of one blob, one level deep.
#[derive(Debug, Default)]
pub struct Views {
    /// The first view holds everything the blob's bytes could show (a parsed `.pyc`'s
    /// constants, each on its own line; a notebook's text): the bytes need not be scanned.
    pub replace_blob: bool,
    /// The views.
    pub list: Vec<View>,
}

/// What a file's name says its text is, for the views that only pay off there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    /// Configuration: INI, TOML, YAML, Terraform, properties, Dockerfiles.
    Config,
    /// Program source, where a literal may be split in pieces.
    Code,
    /// Anything else.
    Other,
}

impl TextKind {
    /// The kind of a file (or archive member) by its name.
    pub fn of(name: &str) -> TextKind {
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name).to_ascii_lowercase();
        let ext = base.rsplit_once('.').map_or("", |(_, e)| e);
        if base.starts_with("dockerfile")
            || base.starts_with("containerfile")
            || matches!(
                ext,
                "ini"
                    | "cfg"
                    | "conf"
                    | "toml"
                    | "tf"
                    | "tfvars"
                    | "hcl"
                    | "yaml"
                    | "yml"
                    | "properties"
                    | "dockerfile"
            )
        {
            TextKind::Config
        } else if matches!(
            ext,
            "py" | "pyi"
                | "pyw"
                | "ipynb"
                | "js"
                | "mjs"
                | "cjs"
                | "ts"
                | "jsx"
                | "tsx"
                | "rb"
                | "go"
                | "java"
                | "kt"
                | "php"
                | "cs"
                | "swift"
                | "scala"
                | "sh"
                | "bash"
                | "zsh"
                | "ps1"
                | "c"
                | "h"
                | "cc"
                | "cpp"
                | "hpp"
                | "rs"
                | "lua"
                | "pl"
        ) {
            TextKind::Code
        } else {
            TextKind::Other
        }
    }
}

/// The views of `data`, one level deep; `kind` is what its name says it is.
pub fn views_of(data: &[u8], kind: TextKind) -> Views {
    let mut views = Views::default();
    if pyc::is_pyc(data) {
        if let Some(view) = pyc::view(data) {
            views.replace_blob = true;
            views.list.push(view);
            return views;
        }
    } else if is_binary(data) {
        // Machine code is read for its wide strings only: base64 in a binary is rare, and
        // a pass over every byte of every binary is not (decoded wide text is read again).
        views.list.extend(utf16::views(data));
        return views;
    } else if notebook::is_notebook(data) {
        if let Some(view) = notebook::view(data) {
            // The notebook's text is all in the view; its own escapes are decoded there.
            views.replace_blob = true;
            views.list.push(view);
            return views;
        }
    } else {
        views.list.extend(escapes::views(data));
        views.list.extend(bytelists::views(data));
        match kind {
            TextKind::Config => views.list.extend(sections::view(data)),
            TextKind::Code => views.list.extend(concat::view(data)),
            TextKind::Other => {}
        }
    }
    views.list.extend(runs::views(data));
    views
}

/// The provenance of `view`, a view of a blob from `parent`: its decoder added, and its
/// excerpts placed in the outermost blob that can be placed.
pub fn provenance_of(parent: &Provenance, view: &View) -> Provenance {
    let mut child = parent.decoded(view.decoder);
    let mut focus = view.focus.clone();
    // In a view that repeats its blob's bytes around what it decoded, runs in the repeated
    // bytes were decoded from the blob itself already: only what lies in the parent's
    // decoded ranges is new.
    if let Some(outer) = &parent.focus {
        let new = |e: &Excerpt| outer.iter().any(|&(s, t)| e.blob_start < t && s < e.blob_end);
        match &mut focus {
            Some(spans) => spans.retain(|&(s, _)| excerpt_at(&view.origin, s).is_some_and(new)),
            None if !view.origin.is_empty() && !view.origin.iter().any(new) => focus = Some(Vec::new()),
            None => {}
        }
    }
    child.focus = focus.map(Arc::new);
    child.origin = match (&parent.origin, view.origin.is_empty()) {
        (_, true) => None,
        // In the blob itself, or in a view that cannot be placed (a `.pyc`'s): place there.
        (None, false) => Some(Arc::new(view.origin.clone())),
        // Each excerpt lies in an excerpt of the parent: report that one, in the blob.
        (Some(outer), false) => Some(Arc::new(
            view.origin
                .iter()
                .filter_map(|e| {
                    excerpt_at(outer, e.blob_start).map(|o| Excerpt {
                        view_start: e.view_start,
                        ..*o
                    })
                })
                .collect(),
        )),
    };
    child
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_carry_lines_and_columns() {
        let data = b"a\nbb\n  xyz\n";
        let mut lines = LineCounter::new(data);
        assert_eq!(lines.excerpt(0, 0, 1).line, 1);
        let e = lines.excerpt(5, 7, 10);
        assert_eq!((e.line, e.column, e.blob_start, e.blob_end), (3, 3, 7, 10));
        let origin = [lines.excerpt(0, 7, 8), e];
        assert_eq!(excerpt_at(&origin, 4).map(|e| e.view_start), Some(0));
        assert_eq!(excerpt_at(&origin, 9).map(|e| e.view_start), Some(5));
    }
}
