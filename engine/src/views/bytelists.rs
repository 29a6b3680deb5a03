//! Byte lists in source: `{0x70, 0x6f, 0x73, …}` as `xxd -i` writes them to embed data in
//! C, and as code hides a string from `strings`. A list of text, over as many lines as it
//! runs, becomes one line naming it the way source names a string: `database_url =
//! "postgres://…"`.

use super::{LineCounter, View};
use crate::util::hex_digit;

/// Items a list needs before it is decoded: a secret is longer.
const MIN_ITEMS: usize = 8;
/// Separators between two items at most (`, ` and a line break with indentation).
const MAX_SEPARATOR: usize = 16;
/// How far before a list its name is sought.
const CONTEXT_BEFORE: usize = 128;
/// Decoded bytes per blob at most.
const MAX_VIEW: usize = 1 << 20;

/// The byte at `data[at..]` written as `0xNN` (exactly two digits), if it is one.
fn item_at(data: &[u8], at: usize) -> Option<u8> {
    let digits = data.get(at..at + 4)?;
    if digits[0] != b'0' || !matches!(digits[1], b'x' | b'X') || data.get(at + 4).is_some_and(u8::is_ascii_hexdigit) {
        return None;
    }
    Some(hex_digit(digits[2])? << 4 | hex_digit(digits[3])?)
}

/// The list starting at `at`: its bytes and where its last item ends.
fn list_at(data: &[u8], at: usize) -> (Vec<u8>, usize) {
    let mut bytes = Vec::new();
    let mut i = at;
    let mut end = at;
    while let Some(byte) = item_at(data, i) {
        bytes.push(byte);
        i += 4;
        end = i;
        let gap = data[i..]
            .iter()
            .take(MAX_SEPARATOR)
            .take_while(|c| matches!(c, b',' | b' ' | b'\t' | b'\r' | b'\n'))
            .count();
        i += gap;
    }
    (bytes, end)
}

/// The last identifier before a list (`token` in `char token[] = {`), when only
/// declaration punctuation stands between them.
fn name_before(context: &[u8]) -> Option<&[u8]> {
    let end = context.len()
        - context
            .iter()
            .rev()
            .take_while(|c| b" \t\r\n=[]{(:,".contains(c))
            .count();
    let ident = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    let start = end - context[..end].iter().rev().take_while(|c| ident(c)).count();
    (start < end && !context[start].is_ascii_digit()).then(|| &context[start..end])
}

/// The view of `data`'s byte lists that hold text, and one view per list that holds a
/// payload (UTF-16 text, a compressed stream).
pub fn views(data: &[u8]) -> Vec<View> {
    let mut payloads = Vec::new();
    let mut lines = LineCounter::new(data);
    let mut out = Vec::new();
    let mut focus = Vec::new();
    let mut origin = Vec::new();
    let mut resume = 0;
    for at in memchr::memmem::find_iter(data, b"0x") {
        if at < resume || out.len() >= MAX_VIEW {
            continue;
        }
        // `abc0x12` is an identifier, not a list.
        if at > 0 && (data[at - 1].is_ascii_alphanumeric() || data[at - 1] == b'_') {
            continue;
        }
        let (bytes, end) = list_at(data, at);
        resume = end.max(at + 2);
        if bytes.len() < MIN_ITEMS {
            continue;
        }
        if !bytes.iter().all(|&b| (0x20..0x7f).contains(&b) || b == b'\n') {
            if super::runs::is_payload(&bytes) && payloads.len() < 64 {
                let excerpt = lines.excerpt(0, at, end);
                payloads.push(View {
                    decoder: "hex",
                    bytes,
                    focus: None,
                    origin: vec![excerpt],
                });
            }
            continue;
        }
        origin.push(lines.excerpt(out.len(), at, end));
        if let Some(name) = name_before(&data[at.saturating_sub(CONTEXT_BEFORE)..at]) {
            out.extend_from_slice(name);
            out.extend_from_slice(b" = ");
        }
        let start = out.len() as u64;
        out.push(b'"');
        out.extend_from_slice(&bytes);
        out.push(b'"');
        focus.push((start, out.len() as u64));
        out.push(b'\n');
    }
    let text = (!origin.is_empty()).then_some(View {
        decoder: "hex",
        bytes: out,
        focus: Some(focus),
        origin,
    });
    text.into_iter().chain(payloads).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_lists_of_text_are_decoded_over_lines() {
        let list: Vec<String> = "ghp_Zq8Wm3Lr5Tx".bytes().map(|b| format!("0x{b:02x}")).collect();
        let source = format!(
            "static const unsigned char token[] = {{\n    {},\n    {}\n}};\nint flags = 0x01 | 0x02;\nstatic const unsigned char png[] = {{0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a}};\n",
            list[..8].join(", "),
            list[8..].join(", ")
        );
        let views = views(source.as_bytes());
        assert_eq!(views.len(), 1, "the PNG header is neither text nor a payload");
        let view = &views[0];
        assert_eq!(String::from_utf8_lossy(&view.bytes), "token = \"ghp_Zq8Wm3Lr5Tx\"\n");
        assert_eq!((view.origin[0].line, view.origin[0].column), (2, 5));
    }
}
