//! String literals split in pieces and joined by the language: `"pul-bb78…" "99c1…"`,
//! `'ab' + 'cd'`, or one piece per line inside parentheses. The pieces are written as one
//! literal, after the name they are assigned to, so a token cut in two is whole again.

use super::{ExcerptView, LineCounter, View};

/// Larger blobs are data, not code someone split a token in.
const MAX_BLOB: usize = 1 << 20;
/// A piece must be this long to be part of a split token.
const MIN_PIECE: usize = 4;
/// Bytes kept before the first piece (the name it is assigned to).
const MAX_HEAD: usize = 128;
/// Pieces joined into one literal at most.
const MAX_PIECES: usize = 16;

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+' | b'/' | b'=' | b'.' | b':' | b'~')
}

/// A literal closing at `close` (its quote): where its piece starts, when the piece is
/// token-like.
fn piece_before(data: &[u8], close: usize) -> Option<usize> {
    let quote = data[close];
    let len = data[..close].iter().rev().take_while(|&&b| is_token_byte(b)).count();
    let open = close.checked_sub(len + 1)?;
    (len >= MIN_PIECE && data[open] == quote).then_some(open + 1)
}

/// After a literal closing at `close`: the next piece of the same literal (its opening
/// quote + 1 and its closing quote), across spaces, one `+`, and a line break when
/// `may_break` (a break ends a statement unless the pieces sit in parentheses or the line
/// ends with `\`).
fn next_piece(data: &[u8], close: usize, may_break: bool) -> Option<(usize, usize)> {
    let quote = data[close];
    let mut at = close + 1;
    let mut plus = false;
    let mut lines = 0;
    while let Some(&b) = data.get(at) {
        match b {
            b' ' | b'\t' | b'\r' => {}
            b'\\' if data.get(at + 1) == Some(&b'\n') => {
                // An explicit continuation: the break after it is part of the statement.
                at += 1;
            }
            b'\n' if lines < 1 && may_break => lines += 1,
            b'+' if !plus => plus = true,
            _ => break,
        }
        at += 1;
        if at - close > 64 {
            return None;
        }
    }
    if data.get(at) != Some(&quote) || at == close + 1 {
        return None;
    }
    let start = at + 1;
    let len = data[start..].iter().take_while(|&&b| is_token_byte(b)).count();
    let end = start + len;
    (len >= MIN_PIECE && data.get(end) == Some(&quote)).then_some((start, end))
}

fn is_gap_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'+' | b'\\')
}

/// Quotes followed by a space, a line break or a `+`: where a piece may end. Found 16
/// bytes at a time (most quotes are followed by `,`, `)` or a letter).
fn quotes_before_a_gap(data: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut out = Vec::new();
    let mut base = 0;
    while base + 17 <= data.len() {
        let (quotes, gaps) = masks16(&data[base..base + 17]);
        let mut hits = quotes & gaps;
        while hits != 0 {
            out.push(base + hits.trailing_zeros() as usize);
            hits &= hits - 1;
        }
        base += 16;
    }
    for at in base..data.len() {
        if matches!(data[at], b'"' | b'\'') && data.get(at + 1).copied().is_some_and(is_gap_byte) {
            out.push(at);
        }
    }
    out.into_iter()
}

/// Bit i: `chunk[i]` is a quote / `chunk[i + 1]` is a gap byte (`chunk` holds 17 bytes).
#[cfg(target_arch = "x86_64")]
fn masks16(chunk: &[u8]) -> (u32, u32) {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of x86_64; both loads read 16 bytes inside `chunk` (17 long).
    unsafe {
        let here = _mm_loadu_si128(chunk.as_ptr().cast());
        let next = _mm_loadu_si128(chunk.as_ptr().add(1).cast());
        let is = |v: __m128i, b: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8));
        let quotes = _mm_or_si128(is(here, b'"'), is(here, b'\''));
        let gaps = _mm_or_si128(
            _mm_or_si128(
                _mm_or_si128(is(next, b' '), is(next, b'\n')),
                _mm_or_si128(is(next, b'\t'), is(next, b'\r')),
            ),
            _mm_or_si128(is(next, b'+'), is(next, b'\\')),
        );
        (_mm_movemask_epi8(quotes) as u32, _mm_movemask_epi8(gaps) as u32)
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn masks16(chunk: &[u8]) -> (u32, u32) {
    let (mut quotes, mut gaps) = (0, 0);
    for i in 0..16 {
        quotes |= u32::from(matches!(chunk[i], b'"' | b'\'')) << i;
        gaps |= u32::from(is_gap_byte(chunk[i + 1])) << i;
    }
    (quotes, gaps)
}

/// The joined literals of `data`, or `None` when nothing is split.
pub fn view(data: &[u8]) -> Option<View> {
    if data.len() > MAX_BLOB {
        return None;
    }
    let mut out = ExcerptView::default();
    let mut lines = LineCounter::new(data);
    let mut done = 0; // quotes before this were part of a joined literal
    for close in quotes_before_a_gap(data) {
        if close < done {
            continue;
        }
        let Some(first) = piece_before(data, close) else {
            continue;
        };
        // Pieces one per line are joined only where the first starts its line (inside
        // parentheses): `x = "ab"` then `"cd"` on the next line are two statements.
        let line_start = memchr::memrchr(b'\n', &data[..first]).map_or(0, |p| p + 1);
        let may_break = data[line_start..first - 1].iter().all(|b| b.is_ascii_whitespace());
        let Some(mut next) = next_piece(data, close, may_break) else {
            continue;
        };
        if out.bytes.len() >= super::MAX_TEXT_VIEW {
            break;
        }
        // The name the literal is assigned to: on its line, or on the line before when the
        // pieces start a line (inside parentheses).
        let mut head = &data[line_start..first - 1];
        if head.iter().all(|b| b.is_ascii_whitespace()) && line_start > 0 {
            let prev_start = memchr::memrchr(b'\n', &data[..line_start - 1]).map_or(0, |p| p + 1);
            head = data[prev_start..line_start - 1].trim_ascii_end();
            head = head.strip_suffix(b"(").unwrap_or(head).trim_ascii_end();
        }
        // The name, not the whole line: a minified line would fill the view.
        let head = &head[head.len().saturating_sub(MAX_HEAD)..];
        let head = head.trim_ascii();
        out.bytes.extend_from_slice(head);
        if !head.is_empty() && !head.ends_with(b"(") {
            out.bytes.push(b' ');
        }
        out.bytes.push(data[close]);
        let view_start = out.bytes.len();
        out.bytes.extend_from_slice(&data[first..close]);
        let mut last_end = close;
        for _ in 1..MAX_PIECES {
            // The join is what this view adds: a match must span it.
            let join = out.bytes.len() as u64;
            out.focus.push((join - 1, join + 1));
            out.bytes.extend_from_slice(&data[next.0..next.1]);
            last_end = next.1;
            match next_piece(data, last_end, may_break) {
                Some(more) => next = more,
                None => break,
            }
        }
        out.bytes.push(data[close]);
        out.bytes.push(b'\n');
        out.origin.push(lines.excerpt(view_start, first, last_end));
        done = last_end + 1;
    }
    out.finish("concat")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(data: &str) -> String {
        view(data.as_bytes())
            .map(|v| String::from_utf8(v.bytes).expect("utf-8"))
            .unwrap_or_default()
    }

    #[test]
    fn pieces_are_joined_after_their_name() {
        assert_eq!(
            text("TOKEN = (\n    \"pul-bb7840dd51\"\n    \"99c18fa6eb9e\"\n)\n"),
            "TOKEN = \"pul-bb7840dd5199c18fa6eb9e\"\n"
        );
        assert_eq!(
            text("key = 'sk-ab12' + 'cd34ef' + 'gh56'\n"),
            "key = 'sk-ab12cd34efgh56'\n"
        );
        assert_eq!(text("call(\"abcd\" \"efgh\")\n"), "call(\"abcdefgh\"\n");
    }

    #[test]
    fn gap_search_agrees_with_the_byte_loop() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..5000)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                b"\"' \n+\\ab,"[(rng % 9) as usize]
            })
            .collect();
        let fast: Vec<usize> = quotes_before_a_gap(&data).collect();
        let slow: Vec<usize> = (0..data.len())
            .filter(|&i| matches!(data[i], b'"' | b'\'') && data.get(i + 1).copied().is_some_and(is_gap_byte))
            .collect();
        assert_eq!(fast, slow);
    }

    #[test]
    fn prose_and_separate_literals_are_left_alone() {
        assert_eq!(text("x = \"a b c d\" \"e f g h\"\n"), "");
        assert_eq!(text("f(\"alpha\", \"beta\")\nd = {\"key\": \"value\"}\n"), "");
        assert_eq!(text("s = \"ab\" \"cd\"\n"), "", "pieces too short");
        assert_eq!(
            text("TOKEN = \"abcdefgh\"\n\"cell_type\": \"code\"\n"),
            "",
            "two statements"
        );
    }
}
