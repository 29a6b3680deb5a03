//! Decoded views of text: base64 runs decoded in place, so a secret wrapped in base64 (a
//! Kubernetes Secret's `data:`, an env file) is read next to its key, `AWS_SECRET_ACCESS_KEY:
//! <decoded>`. Only runs that decode to text are replaced; findings from a view are kept
//! only where they touch a decoded span (the rest of the view repeats the original).

use base64::Engine as _;

/// Shortest base64 run worth decoding (18 bytes of text).
const MIN_RUN: usize = 24;

/// Base64 (standard and URL-safe) alphabet membership, as a table: this runs on every byte
/// of every text file.
static B64: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'-' || c == b'_';
        b += 1;
    }
    table
};

fn is_b64(b: u8) -> bool {
    B64[b as usize]
}

/// Context kept around a decoded run: the line before it (at most this much) and after.
const CONTEXT_BEFORE: usize = 256;
const CONTEXT_AFTER: usize = 64;
/// Decoded bytes per blob at most: a view stays small whatever the file holds.
const MAX_VIEW: usize = 1 << 20;

/// Runs longer than this are payloads (images, archives), not wrapped secrets.
const MAX_RUN: usize = 64 * 1024;

fn decode_body(body: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    STANDARD_NO_PAD
        .decode(body)
        .or_else(|_| URL_SAFE_NO_PAD.decode(body))
        .ok()
}

fn is_text(plain: &[u8]) -> bool {
    plain
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) || matches!(b, b'\n' | b'\r' | b'\t'))
}

fn decode(run: &[u8]) -> Option<Vec<u8>> {
    let body: &[u8] = run
        .strip_suffix(b"==")
        .or_else(|| run.strip_suffix(b"="))
        .unwrap_or(run);
    if body.len() % 4 == 1 || body.len() > MAX_RUN {
        return None;
    }
    // Most runs are not text (identifiers, hashes, binary payloads): the first 32
    // characters tell, before the whole run is decoded.
    if body.len() > 32 && !decode_body(&body[..32]).is_some_and(|head| is_text(&head)) {
        return None;
    }
    let plain = decode_body(body)?;
    (plain.len() >= 8 && is_text(&plain)).then_some(plain)
}

/// A view's bytes, and the byte ranges in it that were decoded.
pub type DecodedView = (Vec<u8>, Vec<(u64, u64)>);

/// A compact view of the text's base64 runs that decode to text: for each, the line
/// around it with the run decoded in place (`AWS_SECRET_ACCESS_KEY: <decoded>`), one per
/// line; and the decoded spans in the view. Only these excerpts are scanned again, so the
/// cost follows what was decoded, not the size of the file.
pub fn base64_view(data: &[u8]) -> Option<DecodedView> {
    let mut out: Vec<u8> = Vec::new();
    let mut spans = Vec::new();
    // Runs shorter than MIN_RUN are skipped without reading every byte: a long enough run
    // starting in [i, i + MIN_RUN) must cover byte i + MIN_RUN - 1, so one probe rules
    // out MIN_RUN starts at once (most text is broken up by spaces and punctuation).
    let mut i = 0;
    while i + MIN_RUN <= data.len() && out.len() < MAX_VIEW {
        let probe = i + MIN_RUN - 1;
        if !is_b64(data[probe]) {
            i = probe + 1;
            continue;
        }
        let mut start = probe;
        while start > i && is_b64(data[start - 1]) {
            start -= 1;
        }
        i = probe + 1;
        while i < data.len() && is_b64(data[i]) {
            i += 1;
        }
        if i - start < MIN_RUN {
            continue;
        }
        while i < data.len() && data[i] == b'=' {
            i += 1;
        }
        if let Some(plain) = decode(&data[start..i]) {
            let line_start = memchr::memrchr(b'\n', &data[start.saturating_sub(CONTEXT_BEFORE)..start])
                .map_or(start.saturating_sub(CONTEXT_BEFORE), |p| {
                    start.saturating_sub(CONTEXT_BEFORE) + p + 1
                });
            let after = &data[i..(i + CONTEXT_AFTER).min(data.len())];
            let line_end = memchr::memchr(b'\n', after).map_or(after.len(), |p| p);
            out.extend_from_slice(&data[line_start..start]);
            let at = out.len() as u64;
            out.extend_from_slice(&plain);
            spans.push((at, out.len() as u64));
            out.extend_from_slice(&after[..line_end]);
            out.push(b'\n');
        }
    }
    (!spans.is_empty()).then_some((out, spans))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_in_base64_is_decoded_in_place() {
        let enc = base64::engine::general_purpose::STANDARD.encode("postgresql://app:Zq8Wm3Lr5Tx@db/app");
        let yaml = format!("data:\n  DATABASE_URL: {enc}\n  CHECKSUM: c2hhMjU2OmFiY2RlZmFiY2RlZg\n");
        let (view, spans) = base64_view(yaml.as_bytes()).expect("a view");
        let view = String::from_utf8(view).expect("text");
        assert_eq!(
            view,
            "  DATABASE_URL: postgresql://app:Zq8Wm3Lr5Tx@db/app\n  CHECKSUM: sha256:abcdefabcdef\n"
        );
        assert_eq!(spans.len(), 2);
        // Binary payloads stay as they are.
        let random = base64::engine::general_purpose::STANDARD
            .encode([0u8, 255, 3, 7, 9, 200, 13, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert!(base64_view(format!("k: {random}{random}").as_bytes()).is_none());
    }
}
