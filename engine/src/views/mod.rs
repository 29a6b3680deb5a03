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

use crate::core::{Excerpt, TextKind, View, Views};
pub(crate) use crate::util::line_around;

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
        && crate::util::shannon_entropy(s) >= 3.0
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::excerpt_at;

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
