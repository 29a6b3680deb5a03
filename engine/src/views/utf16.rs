//! UTF-16 strings in binaries (Windows executables, resources, some `.so` data): runs of
//! printable ASCII stored as 16-bit little-endian code units, as text, one run per line.
//! Both byte alignments are read, so big-endian text (one byte later) is found too. A
//! string that names a credential, stored just before a secret-shaped one (a .NET string
//! heap, a resource table), is written next to it: `GitHubToken = "…"`.

/// Shortest run worth keeping: shorter ones are noise in machine code.
const MIN_CHARS: usize = 8;

fn printable(b: u8) -> bool {
    (0x20..0x7f).contains(&b) || b == b'\t'
}

use super::{is_credential_name, is_identifier, looks_like_a_value, LineCounter, View};

/// Text collected per blob at most (a resource file full of strings stays bounded).
const MAX_VIEW: usize = 4 << 20;

/// A name and its value are this close at most (a length prefix, a terminator, padding).
const PAIR_GAP: usize = 8;

/// Bit `k` set when `chunk[k]` is printable ASCII (and bit 64 + k when it is 0): 16 bytes
/// at a time where the CPU allows.
#[cfg(target_arch = "x86_64")]
fn masks(chunk: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of x86_64; the loads read 16 bytes inside `chunk`.
    unsafe {
        let (mut printable, mut zero) = (0u64, 0u64);
        for k in 0..4 {
            let x = _mm_loadu_si128(chunk.as_ptr().add(16 * k).cast());
            // `x - 0x20` below 0x5f (unsigned), as a signed compare after flipping the top bit.
            let shifted = _mm_xor_si128(_mm_sub_epi8(x, _mm_set1_epi8(0x20)), _mm_set1_epi8(-128));
            let text = _mm_or_si128(
                _mm_cmplt_epi8(shifted, _mm_set1_epi8((0x5f ^ 0x80) as u8 as i8)),
                _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\t' as i8)),
            );
            printable |= u64::from(_mm_movemask_epi8(text) as u16) << (16 * k);
            zero |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_setzero_si128())) as u16) << (16 * k);
        }
        (printable, zero)
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn masks(chunk: &[u8; 64]) -> (u64, u64) {
    chunk.iter().enumerate().fold((0, 0), |(p, z), (k, &c)| {
        (p | u64::from(printable(c)) << k, z | u64::from(c == 0) << k)
    })
}

/// Whether four printable code units in a row may start in the 64 bytes at `base`: bit `k`
/// of the pairs says byte `k` is printable and byte `k + 1` is 0.
fn may_hold_run(data: &[u8], base: usize) -> (bool, bool) {
    let Some(chunk) = data.get(base..base + 64).and_then(|c| <&[u8; 64]>::try_from(c).ok()) else {
        return (true, true); // the tail is read byte by byte
    };
    let (printable, zero) = masks(chunk);
    // Bytes past the chunk are taken for zeros: a chunk is never ruled out wrongly.
    let pairs = printable & (zero >> 1 | 1 << 63);
    let runs = pairs & (pairs >> 2);
    let quads = printable & (zero >> 1 | 1 << 63) & (zero >> 2 | 0b11 << 62) & (zero >> 3 | 0b111 << 61);
    let wide = quads & (quads >> 4);
    (runs & (runs >> 4) != 0, wide & (wide >> 8) != 0)
}

/// UTF-32LE runs (`L"…"` strings on Linux, where `wchar_t` is 32 bits) starting in
/// `from..to`: a printable byte and three zeros, again and again.
fn utf32_runs(data: &[u8], from: usize, to: usize, resume: &mut usize, runs: &mut Vec<(usize, usize, Vec<u8>)>) {
    let unit = |at: usize| {
        data.get(at..at + 4)
            .is_some_and(|u| printable(u[0]) && u[1..] == [0, 0, 0])
    };
    for at in from.max(*resume)..to {
        if at < *resume || !unit(at) {
            continue;
        }
        let mut start = at;
        while start >= 4 && unit(start - 4) {
            start -= 4;
        }
        let mut end = at;
        while unit(end) {
            end += 4;
        }
        *resume = end;
        if (end - start) / 4 >= MIN_CHARS {
            runs.push((start, end, data[start..end].iter().step_by(4).copied().collect()));
        }
    }
}

/// The UTF-16LE runs of `data` as lines of text, or `None` when there are none.
///
/// Every run of at least 8 characters (16 bytes) holds four printable units in a row inside
/// one 64-byte chunk, and covers an aligned 8-byte word whose four code units are all
/// printable ASCII. Chunks are tested with vector masks (almost all of machine code fails),
/// the words of a chunk that passes (and of its neighbours) 8 bytes at a time, and only a
/// word that passes is expanded byte by byte.
pub fn views(data: &[u8]) -> Vec<View> {
    const HIGH_EVEN: u64 = 0xff00_ff00_ff00_ff00; // LE units starting at an even offset
    const HIGH_ODD: u64 = 0x00ff_00ff_00ff_00ff; // LE units starting at an odd offset
                                                 // Runs as (start, end, text), found word by word at both alignments.
    let mut runs: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let mut wide_runs = Vec::new();
    let mut collected = 0;
    let mut wide_resume = 0;
    let mut run = Vec::new();
    // Next offset, per alignment, from which a new run may start (runs are emitted once).
    let mut resume = [0usize; 2];
    let mut word_at = 0usize;
    let mut base = 0usize;
    while base < data.len() {
        let (narrow, wide) = may_hold_run(data, base);
        if wide {
            utf32_runs(
                data,
                base.saturating_sub(16),
                (base + 64).min(data.len()),
                &mut wide_resume,
                &mut wide_runs,
            );
        }
        if !narrow {
            base += 64;
            continue;
        }
        // Words from the chunk before (a run may end in this one) to the chunk after.
        word_at = word_at.max(base.saturating_sub(64));
        let words_end = (base + 128).min(data.len());
        base += 64;
        while word_at + 8 <= words_end {
            let w = u64::from_le_bytes(data[word_at..word_at + 8].try_into().unwrap_or([1; 8]));
            for (align, zero_mask) in [(0usize, HIGH_EVEN), (1usize, HIGH_ODD)] {
                if w & zero_mask != 0 {
                    continue;
                }
                // The four low bytes sit at word_at + align + 2k (for odd: + 1 + 2k, the last
                // one in the next word, checked by the expansion).
                let first = word_at + align;
                if first < resume[align] || !data.get(first).copied().is_some_and(printable) {
                    continue;
                }
                // Expand backwards and forwards over whole code units.
                let mut start = first;
                while start >= 2 && data[start - 1] == 0 && printable(data[start - 2]) {
                    start -= 2;
                }
                let mut end = start;
                run.clear();
                while end + 1 < data.len() && data[end + 1] == 0 && printable(data[end]) {
                    run.push(data[end]);
                    end += 2;
                }
                resume[align] = end.max(first + 1);
                if run.len() >= MIN_CHARS && collected < MAX_VIEW {
                    collected += run.len();
                    runs.push((start, end, std::mem::take(&mut run)));
                }
            }
            word_at += 8;
        }
    }
    [(runs, "utf16"), (wide_runs, "utf32")]
        .into_iter()
        .filter_map(|(runs, decoder)| render(data, runs, decoder))
        .collect()
}

/// Runs as lines, a credential name stored just before a value paired with it.
fn render(data: &[u8], mut runs: Vec<(usize, usize, Vec<u8>)>, decoder: &'static str) -> Option<View> {
    if runs.is_empty() {
        return None;
    }
    runs.sort_unstable_by_key(|r| r.0);
    let mut out = Vec::new();
    let mut origin = Vec::new();
    let mut lines = LineCounter::new(data);
    for (i, (start, end, text)) in runs.iter().enumerate() {
        origin.push(lines.excerpt(out.len(), *start, *end));
        let name = i.checked_sub(1).map(|p| &runs[p]).filter(|(_, name_end, name)| {
            start - name_end.min(start) <= PAIR_GAP && is_identifier(name) && is_credential_name(name)
        });
        match name {
            Some((_, _, name)) if looks_like_a_value(text) => {
                out.extend_from_slice(name);
                out.extend_from_slice(b" = \"");
                out.extend_from_slice(text);
                out.extend_from_slice(b"\"\n");
            }
            _ => {
                out.extend_from_slice(text);
                out.push(b'\n');
            }
        }
    }
    Some(View {
        decoder,
        bytes: out,
        focus: None,
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(data: &[u8]) -> Option<View> {
        views(data).into_iter().find(|v| v.decoder == "utf16")
    }

    fn utf16le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn runs_at_either_alignment_become_lines() {
        let mut blob = vec![0x90, 0x00, 0xff];
        blob.extend(utf16le("token=ghp_abcdefgh"));
        blob.extend([0x00, 0x13, 0x37]);
        blob.extend(utf16le("short"));
        let found = view(&blob).expect("a run");
        assert_eq!(String::from_utf8_lossy(&found.bytes), "token=ghp_abcdefgh\n");
        assert_eq!((found.origin[0].blob_start, found.origin[0].blob_end), (3, 39));
        // A name stored just before a value (a .NET string heap: a length byte between).
        let mut heap = vec![0x19];
        heap.extend(utf16le("GitHubToken"));
        heap.extend([0x00, 0x51]);
        heap.extend(utf16le("428785ed04944d1ef1c39de3dd08198a0416a359"));
        heap.push(0x01);
        let found = view(&heap).expect("runs");
        assert_eq!(
            String::from_utf8_lossy(&found.bytes),
            "GitHubToken\nGitHubToken = \"428785ed04944d1ef1c39de3dd08198a0416a359\"\n"
        );
        assert!(view(b"plain ascii text, no zeros").is_none());
        // UTF-32 (`L"…"` on Linux), after 64 bytes of machine code.
        let mut blob = vec![0x90u8; 64];
        blob.extend("token=ghp_abcdefgh".chars().flat_map(|c| (c as u32).to_le_bytes()));
        blob.extend([0xff; 9]);
        let wide = views(&blob)
            .into_iter()
            .find(|v| v.decoder == "utf32")
            .expect("a UTF-32 run");
        assert_eq!(String::from_utf8_lossy(&wide.bytes), "token=ghp_abcdefgh\n");
        assert_eq!((wide.origin[0].blob_start, wide.origin[0].blob_end), (64, 136));
    }

    /// The obvious byte-pair loop, both alignments: the reference for the word-at-a-time scan.
    fn naive(data: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for start in 0..2 {
            let mut run = Vec::new();
            let mut i = start;
            while i + 1 < data.len() {
                if data[i + 1] == 0 && printable(data[i]) {
                    run.push(data[i]);
                } else {
                    if run.len() >= MIN_CHARS {
                        lines.push(String::from_utf8(run.clone()).expect("ascii"));
                    }
                    run.clear();
                }
                i += 2;
            }
            if run.len() >= MIN_CHARS {
                lines.push(String::from_utf8(run).expect("ascii"));
            }
        }
        lines.sort();
        lines
    }

    #[test]
    fn word_scan_agrees_with_the_byte_loop() {
        let mut rng = fastrand::Rng::with_seed(5);
        for _ in 0..300 {
            let mut blob: Vec<u8> = (0..rng.usize(0..3000))
                .map(|_| if rng.bool() { 0 } else { rng.u8(..) })
                .collect();
            for _ in 0..rng.usize(0..6) {
                let at = rng.usize(0..=blob.len());
                let len = rng.usize(1..40);
                let text: String = (0..len).map(|_| rng.alphanumeric()).collect();
                let units = utf16le(&text);
                blob.splice(at..at, units);
            }
            let mut fast: Vec<String> = view(&blob)
                .map(|v| {
                    String::from_utf8(v.bytes)
                        .expect("ascii")
                        .lines()
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            fast.sort();
            assert_eq!(fast, naive(&blob), "{blob:?}");
        }
    }
}
