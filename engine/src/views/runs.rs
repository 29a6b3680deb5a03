//! Runs of base64 (standard or URL-safe) and hex that decode to text, decoded in place: a
//! secret wrapped in a Kubernetes Secret's `data:` is read next to its key,
//! `AWS_SECRET_ACCESS_KEY: <decoded>`. Each view holds, for every such run, the line
//! around it with the run decoded; its focus is the decoded text.

use base64::Engine as _;

use crate::util::decode_hex;

use super::{line_around, ExcerptView, LineCounter, View};

/// Shortest run worth decoding (18 bytes of base64-decoded text, 12 of hex).
const MIN_RUN: usize = 24;
/// Runs longer than this are payloads (images, archives), not wrapped secrets.
const MAX_RUN: usize = 64 * 1024;
/// Context kept around a decoded run: the line before it (at most this much) and after.
const CONTEXT_BEFORE: usize = 256;
const CONTEXT_AFTER: usize = 64;

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_')
}

/// Bit `k` set when `chunk[k]` is in the base64 alphabet: this runs on every byte of every
/// blob, so 16 bytes at a time where the CPU allows.
#[cfg(target_arch = "x86_64")]
fn alphabet_mask(chunk: &[u8; 64]) -> u64 {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of x86_64; the loads read 16 bytes inside `chunk`.
    unsafe {
        // `x - lo` below `n` (unsigned) is a signed compare after flipping the top bit.
        let in_range = |x: __m128i, lo: u8, n: u8| {
            let shifted = _mm_xor_si128(_mm_sub_epi8(x, _mm_set1_epi8(lo as i8)), _mm_set1_epi8(-128));
            _mm_cmplt_epi8(shifted, _mm_set1_epi8((n ^ 0x80) as i8))
        };
        let mut mask = 0u64;
        for k in 0..4 {
            let x = _mm_loadu_si128(chunk.as_ptr().add(16 * k).cast());
            let letter = in_range(_mm_or_si128(x, _mm_set1_epi8(0x20)), b'a', 26);
            let digit = in_range(x, b'0', 10);
            let plus_slash_minus = _mm_or_si128(
                _mm_cmpeq_epi8(x, _mm_set1_epi8(b'+' as i8)),
                _mm_or_si128(
                    _mm_cmpeq_epi8(x, _mm_set1_epi8(b'/' as i8)),
                    _mm_cmpeq_epi8(x, _mm_set1_epi8(b'-' as i8)),
                ),
            );
            let underscore = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'_' as i8));
            let any = _mm_or_si128(_mm_or_si128(letter, digit), _mm_or_si128(plus_slash_minus, underscore));
            mask |= u64::from(_mm_movemask_epi8(any) as u16) << (16 * k);
        }
        mask
    }
}

/// [`alphabet_mask`] with AVX2: each byte's class looked up by its two nibbles, 32 bytes
/// at a time (a third of the instructions).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn alphabet_mask_avx2(chunk: &[u8; 64]) -> u64 {
    use std::arch::x86_64::*;
    // High nibble → classes: 2 `+-/`, 3 digits, 4/6 letters `A-O`/`a-o`, 5/7 `P-Z`/`p-z`
    // (and 5 `_`). Low nibble → the classes it completes. In the alphabet when they meet.
    const HI: [i8; 16] = [0, 0, 1, 2, 4, 8 | 16, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0];
    const LO: [i8; 16] = [
        2 | 8,
        2 | 4 | 8,
        2 | 4 | 8,
        2 | 4 | 8,
        2 | 4 | 8,
        2 | 4 | 8,
        2 | 4 | 8,
        2 | 4 | 8,
        2 | 4 | 8,
        2 | 4 | 8,
        4 | 8,
        1 | 4,
        4,
        1 | 4,
        4,
        1 | 4 | 16,
    ];
    // SAFETY: the loads read 32 bytes inside `chunk` and the tables; AVX2 is enabled.
    unsafe {
        let hi_table = _mm256_loadu_si256([HI, HI].as_ptr().cast());
        let lo_table = _mm256_loadu_si256([LO, LO].as_ptr().cast());
        let nibble = _mm256_set1_epi8(0x0f);
        let mut mask = 0u64;
        for k in 0..2 {
            let x = _mm256_loadu_si256(chunk.as_ptr().add(32 * k).cast());
            let hi = _mm256_shuffle_epi8(hi_table, _mm256_and_si256(_mm256_srli_epi16(x, 4), nibble));
            let lo = _mm256_shuffle_epi8(lo_table, _mm256_and_si256(x, nibble));
            let outside = _mm256_cmpeq_epi8(_mm256_and_si256(hi, lo), _mm256_setzero_si256());
            mask |= u64::from(!(_mm256_movemask_epi8(outside) as u32)) << (32 * k);
        }
        mask
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn alphabet_mask(chunk: &[u8; 64]) -> u64 {
    chunk
        .iter()
        .enumerate()
        .fold(0, |mask, (k, &c)| mask | u64::from(is_b64(c)) << k)
}

/// Bit `k` set when bits `k..k + 24` of `mask` are all set: a run of MIN_RUN starts at `k`.
fn run_starts(mask: u64) -> u64 {
    const _: () = assert!(MIN_RUN == 24);
    let mut r = mask & (mask >> 1);
    r &= r >> 2;
    r &= r >> 4;
    r &= r >> 8;
    r & (r >> 8)
}

/// Bits below `n` (n ≤ 64).
fn below(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// Text a rule can read: UTF-8 without control characters other than tab and line ends.
/// `partial` accepts a character cut at the end (a decoded head).
fn is_text(plain: &[u8], partial: bool) -> bool {
    let controls = plain
        .iter()
        .any(|&b| (b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t')) || b == 0x7f);
    !controls
        && match std::str::from_utf8(plain) {
            Ok(_) => true,
            Err(e) => partial && e.error_len().is_none(),
        }
}

/// Decoded bytes worth scanning as a blob of their own: UTF-16 text (PowerShell's
/// `-EncodedCommand`) or a compressed or archived payload (cloud-init's `gz+b64`).
pub(crate) fn is_payload(plain: &[u8]) -> bool {
    let utf16 = plain.len() >= 16
        && plain
            .chunks_exact(2)
            .take(16)
            .all(|u| u[1] == 0 && u[0] >= 0x09 && u[0] < 0x7f);
    use crate::containers::{sniff, Format};
    utf16
        || match sniff(plain) {
            Format::Plain => false,
            // Two magic bytes are one hash in 65,536 (a lock file holds thousands): a gzip
            // payload also names deflate and sets no reserved flag.
            Format::Gzip => plain.len() >= 18 && plain[2] == 8 && plain[3] & 0xe0 == 0,
            _ => true,
        }
}

fn decode_base64(body: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    STANDARD_NO_PAD
        .decode(body)
        .or_else(|_| URL_SAFE_NO_PAD.decode(body))
        .ok()
}

/// Whether a run may decode to text or a payload, from its characters alone: most runs
/// are identifiers and hashes, and this rejects them without decoding. Each 4-character
/// group of base64 starts with the top 6 bits of a byte, below 32 (`A`-`f`) for ASCII and
/// UTF-16; each hex pair starts with a nibble of 0-7. Payloads are told by their magic.
fn plausible(run: &[u8]) -> bool {
    const MAGIC: [&[u8]; 5] = [b"H4sI", b"UEsD", b"KLUv", b"QlpoO", b"/Td6WFo"];
    let head = &run[..run.len().min(32)];
    if head.iter().all(u8::is_ascii_hexdigit) {
        head.iter().step_by(2).all(|c| (b'0'..=b'7').contains(c))
            || head.starts_with(b"1f8b")
            || head.starts_with(b"504b")
    } else {
        head.iter()
            .step_by(4)
            .all(|&c| c.is_ascii_uppercase() || (b'a'..=b'f').contains(&c))
            || MAGIC.iter().any(|m| head.starts_with(m))
    }
}

/// What a run decodes to.
enum Decoded {
    /// Text, decoded in place in the view.
    Text(Vec<u8>),
    /// Bytes to scan (and open) as a blob of their own.
    Payload(Vec<u8>),
}

/// Decodes a whole run, or `None` when it is not of its encoding.
type Decoder = fn(&[u8]) -> Option<Vec<u8>>;

/// A run's decoded bytes and its decoder, when they are worth scanning.
fn decode(run: &[u8]) -> Option<(Decoded, Which)> {
    if run.len() > MAX_RUN {
        return None;
    }
    let hex = run.iter().all(u8::is_ascii_hexdigit) && run.len() % 2 == 0;
    let (which, decoder): (Which, Decoder) = if hex {
        (Which::Hex, decode_hex)
    } else {
        (Which::Base64, decode_base64)
    };
    let body: &[u8] = if hex {
        run
    } else {
        let body = run
            .strip_suffix(b"==")
            .or_else(|| run.strip_suffix(b"="))
            .unwrap_or(run);
        if body.len() % 4 == 1 {
            return None;
        }
        body
    };
    // Most runs are neither (identifiers, hashes, binary payloads): the first 32
    // characters tell, before the whole run is decoded.
    if body.len() > 32 {
        let head = decoder(&body[..32])?;
        if !is_text(&head, true) && !is_payload(&head) {
            return None;
        }
    }
    let plain = decoder(body)?;
    if plain.len() >= 8 && is_text(&plain, false) {
        Some((Decoded::Text(plain), which))
    } else if is_payload(&plain) {
        Some((Decoded::Payload(plain), which))
    } else {
        None
    }
}

#[derive(Clone, Copy)]
enum Which {
    Base64 = 0,
    Hex = 1,
}

const DECODERS: [&str; 2] = ["base64", "hex"];

/// Finds runs and decodes them into the builders.
struct RunFinder<'a> {
    data: &'a [u8],
    lines: LineCounter<'a>,
    text: [ExcerptView; 2],
    payloads: Vec<View>,
    /// Where the last join of wrapped lines ended: its lines are not joined again.
    failed_join_end: usize,
}

impl RunFinder<'_> {
    /// Decodes the run `data[start..end]` (with the lines that continue it, when it is
    /// wrapped); returns where it ended.
    fn run(&mut self, start: usize, end: usize) -> usize {
        let data = self.data;
        if !plausible(&data[start..end]) {
            return end;
        }
        let mut end = end;
        while data.get(end) == Some(&b'=') && end - start < MAX_RUN {
            end += 1;
        }
        // A join that failed is not tried again from each of its lines.
        let (joined, wrapped_end) = if start < self.failed_join_end {
            (None, end)
        } else {
            self.wrapped(start, end)
        };
        if joined.is_some() {
            self.failed_join_end = wrapped_end;
        }
        // A line that only looked like the next piece (a MIME boundary `--XYZ--`) spoils
        // the join: the run alone is decoded then.
        let (decoded, end) = match joined.as_deref().map(decode) {
            Some(Some(decoded)) => (Some(decoded), wrapped_end),
            _ => (decode(&data[start..end]), end),
        };
        match decoded {
            Some((Decoded::Text(plain), which)) => self.place(start, end, &plain, which),
            Some((Decoded::Payload(plain), which)) => {
                let excerpt = self.lines.excerpt(0, start, end);
                self.payloads.push(View {
                    decoder: DECODERS[which as usize],
                    bytes: plain,
                    focus: None,
                    origin: vec![excerpt],
                });
            }
            None => {}
        }
        end
    }

    /// A run wrapped over lines of equal length (a base64 file at 76 columns, `xxd -p` at
    /// 60): the run joined, and where its last line ends. `None` when it is one line.
    fn wrapped(&self, start: usize, end: usize) -> (Option<Vec<u8>>, usize) {
        let data = self.data;
        let width = end - start;
        let padded = data[end - 1] == b'=';
        if padded
            || !(40..=MAX_RUN).contains(&width)
            || data.get(end) != Some(&b'\n') && data.get(end..end + 2) != Some(b"\r\n")
        {
            return (None, end);
        }
        let mut joined = data[start..end].to_vec();
        let mut line_end = end;
        loop {
            let mut at = line_end;
            while at < data.len() && matches!(data[at], b'\r' | b'\n' | b' ' | b'\t') && at - line_end < 64 {
                at += 1;
            }
            let len = data[at..].iter().take(width + 1).take_while(|&&c| is_b64(c)).count();
            if len == 0 || len > width || joined.len() + len > MAX_RUN {
                break;
            }
            let mut next_end = at + len;
            while data.get(next_end) == Some(&b'=') {
                next_end += 1;
            }
            // A continuation is a whole line: `KEY: value` on the next line is not.
            if !matches!(data.get(next_end), None | Some(b'\n' | b'\r')) {
                break;
            }
            joined.extend_from_slice(&data[at..next_end]);
            line_end = next_end;
            if len < width || next_end > at + len {
                break;
            }
        }
        if line_end == end {
            (None, end)
        } else {
            (Some(joined), line_end)
        }
    }

    /// Writes the line around `data[start..end]` with `plain` in its place.
    fn place(&mut self, start: usize, end: usize, plain: &[u8], which: Which) {
        let data = self.data;
        let (line_start, line_end) = line_around(data, start, end, CONTEXT_BEFORE, CONTEXT_AFTER);
        let out = &mut self.text[which as usize];
        let excerpt = self.lines.excerpt(out.bytes.len(), start, end);
        out.origin.push(excerpt);
        out.bytes.extend_from_slice(&data[line_start..start]);
        let at = out.bytes.len() as u64;
        out.bytes.extend_from_slice(plain);
        out.focus.push((at, out.bytes.len() as u64));
        out.bytes.extend_from_slice(&data[end..line_end]);
        out.bytes.push(b'\n');
    }

    fn full(&self) -> bool {
        self.text.iter().any(|b| b.bytes.len() >= super::MAX_TEXT_VIEW) || self.payloads.len() >= MAX_PAYLOADS
    }
}

/// Decoded payloads per blob at most.
const MAX_PAYLOADS: usize = 64;

#[inline(always)]
fn chunk_mask(data: &[u8], base: usize, mask: &impl Fn(&[u8; 64]) -> u64) -> u64 {
    let end = (base + 64).min(data.len());
    match data[base..end].try_into() {
        Ok(chunk) => mask(chunk),
        Err(_) => {
            let mut tail = [0u8; 64];
            tail[..end - base].copy_from_slice(&data[base..end]);
            mask(&tail)
        }
    }
}

/// The base64 and hex views of `data`: one line per run that decodes to text, and one
/// view per run that decodes to a payload.
pub fn views(data: &[u8]) -> Vec<View> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { views_avx2(data) };
    }
    views_with(data, alphabet_mask)
}

/// [`views`] compiled for AVX2, so the mask is inlined into the loop.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn views_avx2(data: &[u8]) -> Vec<View> {
    // SAFETY: this function only runs where the CPU has AVX2.
    views_with(data, |chunk| unsafe { alphabet_mask_avx2(chunk) })
}

#[inline(always)]
fn views_with(data: &[u8], alphabet: impl Fn(&[u8; 64]) -> u64) -> Vec<View> {
    let mut finder = RunFinder {
        data,
        lines: LineCounter::new(data),
        text: Default::default(),
        payloads: Vec::new(),
        failed_join_end: 0,
    };
    // Runs are found on bit masks of the alphabet, 64 bytes at a time; bytes are only read
    // one by one inside runs long enough to decode.
    let mut open: Option<usize> = None; // start of a run that reaches the current chunk
    let mut resume = 0; // runs before this offset are done
    let mut base = 0;
    while base < data.len() && !finder.full() {
        let mut bits = chunk_mask(data, base, &alphabet);
        if resume > base {
            bits &= !below((resume - base).min(64) as u32);
        }
        if let Some(start) = open {
            let stop = (!bits).trailing_zeros();
            if stop == 64 {
                base += 64;
                continue;
            }
            open = None;
            if base + stop as usize - start >= MIN_RUN {
                resume = finder.run(start, base + stop as usize);
            }
            bits &= !below(stop);
            if resume > base {
                bits &= !below((resume - base).min(64) as u32);
            }
        }
        // The run reaching the chunk's end is decided in a later chunk.
        let tail = bits.leading_ones();
        if tail > 0 {
            open = Some(base + 64 - tail as usize);
            bits &= !(u64::MAX << (64 - tail));
        }
        let mut starts = run_starts(bits);
        while starts != 0 {
            let first = starts.trailing_zeros();
            let stop = first + (!(bits >> first)).trailing_zeros();
            resume = finder.run(base + first as usize, base + stop as usize);
            let done = (resume - base).min(64) as u32;
            starts &= !below(done);
            bits &= !below(done);
            if resume >= base + 64 {
                // A wrapped run went on past this chunk.
                open = None;
            }
        }
        base += 64;
    }
    if let Some(start) = open {
        if data.len() - start >= MIN_RUN && !finder.full() {
            finder.run(start, data.len());
        }
    }
    let RunFinder { text, payloads, .. } = finder;
    let [b64, hex] = text;
    [(b64, Which::Base64), (hex, Which::Hex)]
        .into_iter()
        .filter_map(|(b, which)| b.finish(DECODERS[which as usize]))
        .chain(payloads)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn view_text(data: &[u8], decoder: &str) -> Option<String> {
        views(data)
            .into_iter()
            .find(|v| v.decoder == decoder)
            .map(|v| String::from_utf8(v.bytes).expect("text"))
    }

    #[test]
    fn text_in_base64_is_decoded_in_place() {
        let enc = STANDARD.encode("postgresql://app:Zq8Wm3Lr5Tx@db/app");
        let yaml = format!("data:\n  DATABASE_URL: {enc}\n  CHECKSUM: c2hhMjU2OmFiY2RlZmFiY2RlZg\n");
        let views = views(yaml.as_bytes());
        assert_eq!(views.len(), 1);
        let view = &views[0];
        assert_eq!(
            String::from_utf8_lossy(&view.bytes),
            "  DATABASE_URL: postgresql://app:Zq8Wm3Lr5Tx@db/app\n  CHECKSUM: sha256:abcdefabcdef\n"
        );
        assert_eq!(view.focus.as_ref().map(Vec::len), Some(2));
        // Each line knows the run it came from: line 2, after "  DATABASE_URL: ".
        let first = view.origin[0];
        assert_eq!((first.line, first.column), (2, 17));
        assert_eq!(
            &yaml.as_bytes()[first.blob_start as usize..first.blob_end as usize],
            enc.as_bytes()
        );
        // Binary payloads stay as they are.
        let random = STANDARD.encode([0u8, 255, 3, 7, 9, 200, 13, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert!(view_text(format!("k: {random}{random}").as_bytes(), "base64").is_none());
    }

    #[test]
    fn text_in_hex_is_decoded_and_hashes_are_not() {
        let hex: String = "token=Zq8Wm3Lr5Tx".bytes().map(|b| format!("{b:02x}")).collect();
        let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let text = format!("CONFIG_HEX = \"{hex}\"\nSHA = \"{sha}\"\n");
        assert_eq!(
            view_text(text.as_bytes(), "hex").as_deref(),
            Some("CONFIG_HEX = \"token=Zq8Wm3Lr5Tx\"\n")
        );
        assert!(view_text(text.as_bytes(), "base64").is_none());
    }

    /// The byte-by-byte search the masks stand in front of: every run, decoded.
    fn reference(data: &[u8]) -> Vec<Vec<u8>> {
        let mut found = Vec::new();
        let mut i = 0;
        while i < data.len() {
            if !is_b64(data[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < data.len() && is_b64(data[i]) {
                i += 1;
            }
            if i - start < MIN_RUN {
                continue;
            }
            while i < data.len() && data[i] == b'=' {
                i += 1;
            }
            if let Some((Decoded::Text(plain), _)) = decode(&data[start..i]) {
                found.push(plain);
            }
        }
        found
    }

    #[test]
    fn a_hash_that_starts_like_gzip_is_not_a_payload() {
        let mut hash = vec![0x1f, 0x8b, 0x3c, 0xff];
        hash.extend_from_slice(&[0x5a; 28]);
        assert!(!is_payload(&hash));
        let mut gzip = vec![0x1f, 0x8b, 0x08, 0x00];
        gzip.extend_from_slice(&[0; 28]);
        assert!(is_payload(&gzip));
    }

    #[test]
    fn wrapped_runs_are_joined_and_payloads_kept_whole() {
        let env = "DATABASE_URL=postgresql://app:Zq8Wm3Lr5Tx@db/app\nAPI_TOKEN=q7Xk2Lp9Zq8Wm3Lr5Tx\n".repeat(3);
        let encoded = STANDARD.encode(&env);
        let wrapped: Vec<&str> = encoded
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect();
        let file = format!("{}\n", wrapped.join("\n"));
        assert_eq!(
            view_text(file.as_bytes(), "base64").as_deref(),
            Some(format!("{env}\n").as_str())
        );
        // Base64 of UTF-16 text (PowerShell's -EncodedCommand) is a payload of its own.
        let utf16: Vec<u8> = "$env:TOKEN = 'q7Xk2Lp9Zq8Wm3Lr5Tx'"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let command = format!("powershell -EncodedCommand {}\n", STANDARD.encode(&utf16));
        let views = views(command.as_bytes());
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].bytes, utf16);
        assert!(views[0].focus.is_none());
    }

    #[test]
    fn alphabet_mask_agrees_with_the_alphabet() {
        for first in (0..=255u8).step_by(64) {
            let chunk: [u8; 64] = std::array::from_fn(|k| first.wrapping_add(k as u8));
            let mask = alphabet_mask(&chunk);
            for (k, &c) in chunk.iter().enumerate() {
                assert_eq!(mask >> k & 1 == 1, is_b64(c), "byte {c}");
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                assert_eq!(unsafe { alphabet_mask_avx2(&chunk) }, mask);
            }
        }
    }

    #[test]
    fn masked_search_agrees_with_the_byte_loop() {
        let mut rng = fastrand::Rng::with_seed(9);
        for _ in 0..400 {
            let mut blob: Vec<u8> = (0..rng.usize(0..600))
                .map(|_| b" \n=.-_aZ9+/\0"[rng.usize(0..12)])
                .collect();
            for _ in 0..rng.usize(0..4) {
                let at = rng.usize(0..=blob.len());
                let len = rng.usize(10..90);
                let text: String = (0..len).map(|_| rng.alphanumeric()).collect();
                let enc = if rng.bool() {
                    STANDARD.encode(&text)
                } else {
                    text.bytes().map(|b| format!("{b:02x}")).collect()
                };
                // Spaces around: a run followed by a line end may be joined with the next line.
                blob.splice(at..at, format!(" {enc} ").into_bytes());
            }
            let mut fast: Vec<Vec<u8>> = Vec::new();
            for view in views(&blob) {
                for &(s, e) in view.focus.as_deref().unwrap_or_default() {
                    fast.push(view.bytes[s as usize..e as usize].to_vec());
                }
            }
            let mut slow = reference(&blob);
            fast.sort();
            slow.sort();
            assert_eq!(fast, slow, "{}", String::from_utf8_lossy(&blob));
        }
    }
}
