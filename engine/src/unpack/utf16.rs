//! UTF-16 strings in binaries (Windows executables, resources, some `.so` data): runs of
//! printable ASCII stored as 16-bit little-endian code units, as text, one run per line.
//! Both byte alignments are read, so big-endian text (one byte later) is found too.

/// Shortest run worth keeping: shorter ones are noise in machine code.
const MIN_CHARS: usize = 8;

fn printable(b: u8) -> bool {
    (0x20..0x7f).contains(&b) || b == b'\t'
}

/// Whether a blob looks binary (a NUL in its first 8 KiB): only those get a UTF-16 view.
pub fn is_binary(data: &[u8]) -> bool {
    memchr::memchr(0, &data[..data.len().min(8192)]).is_some()
}

/// The UTF-16LE runs of `data` as lines of text, or `None` when there are none.
///
/// Every run of at least 8 characters (16 bytes) covers an aligned 8-byte word whose four
/// code units are all printable ASCII: words are tested 8 bytes at a time (one mask test
/// rejects almost all of machine code), and only a hit is expanded byte by byte.
pub fn view(data: &[u8]) -> Option<Vec<u8>> {
    const HIGH_EVEN: u64 = 0xff00_ff00_ff00_ff00; // LE units starting at an even offset
    const HIGH_ODD: u64 = 0x00ff_00ff_00ff_00ff; // LE units starting at an odd offset
    let mut out = Vec::new();
    let mut run = Vec::new();
    // Next offset, per alignment, from which a new run may start (runs are emitted once).
    let mut resume = [0usize; 2];
    let mut word_at = 0usize;
    while word_at + 8 <= data.len() {
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
            flush(&mut run, &mut out);
        }
        word_at += 8;
    }
    (!out.is_empty()).then_some(out)
}

fn flush(run: &mut Vec<u8>, out: &mut Vec<u8>) {
    if run.len() >= MIN_CHARS {
        out.extend_from_slice(run);
        out.push(b'\n');
    }
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn runs_at_either_alignment_become_lines() {
        let mut blob = vec![0x90, 0x00, 0xff];
        blob.extend(utf16le("token=ghp_abcdefgh"));
        blob.extend([0x00, 0x13, 0x37]);
        blob.extend(utf16le("short"));
        let text = String::from_utf8(view(&blob).expect("a run")).expect("ascii");
        assert_eq!(text, "token=ghp_abcdefgh\n");
        assert!(is_binary(&blob));
        assert!(view(b"plain ascii text, no zeros").is_none());
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
            let mut blob: Vec<u8> = (0..rng.usize(0..400))
                .map(|_| if rng.bool() { 0 } else { rng.u8(..) })
                .collect();
            for _ in 0..rng.usize(0..4) {
                let at = rng.usize(0..=blob.len());
                let len = rng.usize(1..20);
                let text: String = (0..len).map(|_| rng.alphanumeric()).collect();
                let units = utf16le(&text);
                blob.splice(at..at, units);
            }
            let mut fast: Vec<String> = view(&blob)
                .map(|v| {
                    String::from_utf8(v)
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
