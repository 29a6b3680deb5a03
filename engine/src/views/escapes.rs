//! Escaped text decoded in place: backslash escapes (`\u0067`, `\x67`, octal `\147`, and JSON's `\"`,
//! which wraps every string in a notebook's cells and every JSON document kept inside a
//! string) and percent-encoding (`%7B%22token%22…` in URLs and form bodies). Only stretches
//! dense with escapes are decoded: a lone `\n` or `%s` changes nothing a rule would see.

use crate::util::hex_digit;

use super::{line_around, ExcerptView, LineCounter, View};

/// Escapes further apart than this start a new stretch.
const GAP: usize = 128;
/// Weight a stretch needs before it is decoded: one escape of a character (`\u005f`,
/// `%3A`), or two of the common `\/` and `%20`.
const MIN_WEIGHT: usize = 2;
/// Context kept before a stretch (a key's name) and after it (a value after `%3D`).
const CONTEXT_BEFORE: usize = 128;
const CONTEXT_AFTER: usize = 128;

fn hex_at(data: &[u8], at: usize, digits: usize) -> Option<u32> {
    let bytes = data.get(at..at + digits)?;
    bytes
        .iter()
        .try_fold(0u32, |acc, &c| Some(acc << 4 | u32::from(hex_digit(c)?)))
}

/// The two kinds of escapes, each its own view.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Backslash = 0,
    Percent = 1,
}

fn octal_at(data: &[u8], at: usize) -> Option<u8> {
    let digits = data.get(at..at + 3)?;
    let value = digits.iter().try_fold(0u32, |acc, &c| {
        (b'0'..=b'7').contains(&c).then(|| acc << 3 | u32::from(c - b'0'))
    })?;
    u8::try_from(value).ok()
}

/// An escape at the start of `data[at..]` that decodes to something a rule reads
/// differently: its kind, length and weight.
///
/// Quotes, line breaks and backslashes weigh nothing but keep a stretch going: a PEM key
/// in a JSON string is one stretch from `BEGIN` to `END`. A percent-encoded `:`, `=`, `/`, `+`, `@`,
/// quote or brace is what splits a token or a URL from its key, and weighs as much as two.
fn escape_at(data: &[u8], at: usize) -> Option<(Kind, usize, usize)> {
    match data[at] {
        b'%' => {
            let byte = hex_at(data, at + 1, 2)? as u8;
            let weight = if b":=/+@\"'{}&".contains(&byte) { 2 } else { 1 };
            Some((Kind::Percent, 3, weight))
        }
        _ => match data.get(at + 1)? {
            b'u' => hex_at(data, at + 2, 4).map(|_| (Kind::Backslash, 6, 2)),
            b'x' => hex_at(data, at + 2, 2).map(|_| (Kind::Backslash, 4, 2)),
            b'0'..=b'3' => octal_at(data, at + 1).map(|_| (Kind::Backslash, 4, 2)),
            b'/' => Some((Kind::Backslash, 2, 1)),
            // `\\\"`: a quote escaped twice, JSON kept in a string inside JSON.
            b'\\' if data.get(at + 2..at + 4) == Some(b"\\\"") => Some((Kind::Backslash, 2, 1)),
            // Rules read `\"` as a quote already: decoding it would find the same again.
            b'"' | b'n' | b'r' | b't' | b'\\' => Some((Kind::Backslash, 2, 0)),
            _ => None,
        },
    }
}

/// Decodes backslash escapes in `text` into `out`, recording the decoded ranges.
fn unescape(text: &[u8], out: &mut Vec<u8>, focus: &mut Vec<(u64, u64)>) {
    let mut i = 0;
    while i < text.len() {
        let Some(off) = memchr::memchr(b'\\', &text[i..]) else {
            out.extend_from_slice(&text[i..]);
            return;
        };
        out.extend_from_slice(&text[i..i + off]);
        i += off;
        let at = out.len() as u64;
        let taken = match text.get(i + 1) {
            Some(b'u') => match hex_at(text, i + 2, 4) {
                // A surrogate pair is two escapes for one character.
                Some(hi @ 0xd800..=0xdbff) => match (text.get(i + 6..i + 8), hex_at(text, i + 8, 4)) {
                    (Some(b"\\u"), Some(lo @ 0xdc00..=0xdfff)) => {
                        push_char(out, 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00));
                        12
                    }
                    _ => 0,
                },
                Some(code) => {
                    push_char(out, code);
                    6
                }
                None => 0,
            },
            Some(b'x') => match hex_at(text, i + 2, 2) {
                Some(byte) => {
                    out.push(byte as u8);
                    4
                }
                None => 0,
            },
            Some(b'0'..=b'3') => match octal_at(text, i + 1) {
                Some(byte) => {
                    out.push(byte);
                    4
                }
                None => 0,
            },
            Some(&c @ (b'"' | b'\'' | b'\\' | b'/')) => {
                out.push(c);
                2
            }
            Some(b'n') => {
                out.push(b'\n');
                2
            }
            Some(b't') => {
                out.push(b'\t');
                2
            }
            Some(b'r') => {
                out.push(b'\r');
                2
            }
            _ => 0,
        };
        if taken == 0 {
            out.push(b'\\');
            i += 1;
        } else {
            add_focus(focus, at, out.len() as u64);
            i += taken;
        }
    }
}

fn push_char(out: &mut Vec<u8>, code: u32) {
    let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// Decodes `%XX` in `text` into `out`, recording the decoded ranges. Where a `+` was
/// itself encoded (`%2B`), the text is a form body and a bare `+` is a space.
fn unpercent(text: &[u8], out: &mut Vec<u8>, focus: &mut Vec<(u64, u64)>) {
    let form = memchr::memmem::find(text, b"%2B")
        .or_else(|| memchr::memmem::find(text, b"%2b"))
        .is_some();
    let mut i = 0;
    while i < text.len() {
        let next = if form {
            memchr::memchr2(b'%', b'+', &text[i..])
        } else {
            memchr::memchr(b'%', &text[i..])
        };
        let Some(off) = next else {
            out.extend_from_slice(&text[i..]);
            return;
        };
        out.extend_from_slice(&text[i..i + off]);
        i += off;
        if text[i] == b'+' {
            let at = out.len() as u64;
            out.push(b' ');
            add_focus(focus, at, at + 1);
            i += 1;
            continue;
        }
        match hex_at(text, i + 1, 2) {
            Some(byte) => {
                let at = out.len() as u64;
                out.push(byte as u8);
                add_focus(focus, at, at + 1);
                i += 3;
            }
            None => {
                out.push(b'%');
                i += 1;
            }
        }
    }
}

/// Adds a decoded range, merged with the previous one when they touch.
fn add_focus(focus: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    match focus.last_mut() {
        Some(last) if last.1 == start => last.1 = end,
        _ => focus.push((start, end)),
    }
}

/// A stretch of escapes of one kind under construction.
struct Stretch {
    first: usize,
    end: usize,
    weight: usize,
}

/// The escape and percent views of text: each stretch dense with escapes, with its line
/// around it, decoded.
pub fn views(data: &[u8]) -> Vec<View> {
    // One counter per kind: stretches of the two kinds close out of order.
    let mut lines = [LineCounter::new(data), LineCounter::new(data)];
    let mut out: [ExcerptView; 2] = Default::default();
    let mut open: [Option<Stretch>; 2] = [None, None];
    let mut close = |stretch: Stretch, kind: Kind, out: &mut [ExcerptView; 2]| {
        if stretch.weight < MIN_WEIGHT {
            return;
        }
        let view = &mut out[kind as usize];
        if view.bytes.len() >= super::MAX_TEXT_VIEW {
            return;
        }
        let (from, to) = line_around(data, stretch.first, stretch.end, CONTEXT_BEFORE, CONTEXT_AFTER);
        view.origin
            .push(lines[kind as usize].excerpt(view.bytes.len(), stretch.first, stretch.end));
        match kind {
            Kind::Backslash => unescape(&data[from..to], &mut view.bytes, &mut view.focus),
            Kind::Percent => unpercent(&data[from..to], &mut view.bytes, &mut view.focus),
        }
        view.bytes.push(b'\n');
    };
    let mut i = 0;
    while let Some(off) = memchr::memchr2(b'\\', b'%', &data[i..]) {
        let at = i + off;
        let Some((kind, len, weight)) = escape_at(data, at) else {
            i = at + 1;
            continue;
        };
        i = at + len;
        let slot = &mut open[kind as usize];
        match slot {
            Some(s) if at - s.end <= GAP && memchr::memchr(b'\n', &data[s.end..at]).is_none() => {
                s.end = at + len;
                s.weight += weight;
            }
            // Only an escape that weighs may start a stretch.
            _ if weight == 0 => {}
            _ => {
                let fresh = Stretch {
                    first: at,
                    end: at + len,
                    weight,
                };
                if let Some(done) = slot.replace(fresh) {
                    close(done, kind, &mut out);
                }
            }
        }
    }
    for kind in [Kind::Backslash, Kind::Percent] {
        if let Some(done) = open[kind as usize].take() {
            close(done, kind, &mut out);
        }
    }
    let [backslash, percent] = out;
    [(backslash, "escape"), (percent, "percent")]
        .into_iter()
        .filter_map(|(b, decoder)| b.finish(decoder))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view_text(data: &str, decoder: &str) -> Option<String> {
        views(data.as_bytes())
            .into_iter()
            .find(|v| v.decoder == decoder)
            .map(|v| String::from_utf8(v.bytes).expect("utf-8"))
    }

    #[test]
    fn json_strings_are_unescaped_where_a_character_was_escaped() {
        let cell =
            "   \"source\": [\n    \"token = \\\"ghu\\u005fZq8Wm3Lr5Tx\\\"\\n\",\n    \"print(\\\"x\\\")\\n\"\n   ]\n";
        assert_eq!(
            view_text(cell, "escape").as_deref(),
            Some("    \"token = \"ghu_Zq8Wm3Lr5Tx\"\n\",\n")
        );
        // Escaped quotes alone are left to the rules, which read `\"` as a quote.
        assert!(view_text("\"password = \\\"Zq8Wm3Lr5Tx\\\"\\n\",\n", "escape").is_none());
        assert!(view_text(cell, "percent").is_none());
    }

    #[test]
    fn unicode_and_byte_escapes_are_decoded() {
        let js = r#"const k = "\u0067\u0068\u0070_\x61\x62\ud83d\ude00";"#;
        assert_eq!(
            view_text(js, "escape").as_deref(),
            Some("const k = \"ghp_ab\u{1f600}\";\n")
        );
        assert_eq!(
            view_text(r#"k = "\147\150\160_\x61""#, "escape").as_deref(),
            Some("k = \"ghp_a\"\n")
        );
        // An escaped backslash is not the start of an escape.
        assert!(view_text(r#"path = "C:\\x41\\u0042""#, "escape").is_none());
    }

    #[test]
    fn a_pem_key_in_a_json_string_is_one_stretch() {
        let body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW";
        let json = format!(
            r#"{{"key":"\u002d\u002d\u002d\u002d\u002dBEGIN OPENSSH PRIVATE KEY\u002d\u002d\u002d\u002d\u002d\n{body}\n{body}\n{body}\n{body}\n\u002d\u002d\u002d\u002d\u002dEND OPENSSH PRIVATE KEY\u002d\u002d\u002d\u002d\u002d"}}"#
        );
        let text = view_text(&json, "escape").expect("a view");
        assert!(
            text.contains(&format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n")),
            "{text}"
        );
        assert!(text.contains("\n-----END OPENSSH PRIVATE KEY-----\"}"), "{text}");
        assert_eq!(text.lines().count(), 6, "{text}");
        // A token split from its key by one encoded `:` is decoded.
        assert_eq!(
            view_text("bot=900333042%3AAAPM6mbxVzuJuoyW3NAiK\n", "percent").as_deref(),
            Some("bot=900333042:AAPM6mbxVzuJuoyW3NAiK\n")
        );
    }

    #[test]
    fn percent_encoded_stretches_are_decoded_and_lone_escapes_are_not() {
        let url = "GET /hook?data=%7B%22token%22%3A%22Zq8Wm3Lr5Tx%22%7D HTTP/1.1\nprint('%s' % x, '100%')\n";
        let views = views(url.as_bytes());
        assert_eq!(views.len(), 1);
        let view = &views[0];
        assert_eq!(view.decoder, "percent");
        assert_eq!(
            String::from_utf8_lossy(&view.bytes),
            "GET /hook?data={\"token\":\"Zq8Wm3Lr5Tx\"} HTTP/1.1\n"
        );
        assert_eq!((view.origin[0].line, view.origin[0].column), (1, 16));
        // The focus is the decoded characters: `{"`, `":"`, `"}`.
        assert_eq!(view.focus.as_ref().map(Vec::len), Some(3));
    }
}
