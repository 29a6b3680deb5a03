//! Ship: copies each candidate window out of the scanned buffer (so the buffer is released at
//! once), numbers its lines, and hands the windows on in bounded batches; also the streaming
//! scan of a reader too large to hold, cutting windows while the bytes are at hand.

use std::io::Read;

use super::confirm::ShippedWindow;
use super::matcher::{ScanError, Scanner, Window};
use crate::util::read_full;

/// Window bytes per batch sent to the validators: with the bounded batch channel, this caps
/// the memory that candidates of one dense file can hold.
const BATCH_BYTES: usize = 4 << 20;

/// Groups shipped windows into batches of at most `BATCH_BYTES` and hands each to `emit`.
struct Batcher<'a> {
    pending: Vec<ShippedWindow>,
    bytes: usize,
    emit: &'a mut dyn FnMut(Vec<ShippedWindow>),
}

impl Batcher<'_> {
    fn push(&mut self, window: ShippedWindow) {
        self.bytes += window.bytes.len();
        self.pending.push(window);
        if self.bytes >= BATCH_BYTES {
            self.flush();
        }
    }
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            (self.emit)(std::mem::take(&mut self.pending));
            self.bytes = 0;
        }
    }
}

/// Where a buffer sits in its blob: the offset of its first byte, and the line (1-based)
/// and line-start offset at that byte.
#[derive(Clone, Copy, Debug)]
pub struct Base {
    pub offset: u64,
    pub line: u64,
    pub line_start: u64,
}

impl Base {
    /// The start of a blob.
    pub const START: Base = Base {
        offset: 0,
        line: 1,
        line_start: 0,
    };

    /// The position after `bytes`, which follow this one.
    fn advanced(self, bytes: &[u8]) -> Base {
        let line = self.line + memchr::memchr_iter(b'\n', bytes).count() as u64;
        let line_start = memchr::memrchr(b'\n', bytes).map_or(self.line_start, |nl| self.offset + nl as u64 + 1);
        Base {
            offset: self.offset + bytes.len() as u64,
            line,
            line_start,
        }
    }
}

/// Copies each window out of `data` (plus one byte of leading context), numbers its lines,
/// and emits them in bounded batches. `data` starts at `base` in its blob; windows carry
/// blob offsets and must lie inside `data` (one byte before it may be missing).
pub fn ship(data: &[u8], base: Base, mut windows: Vec<Window>, emit: &mut dyn FnMut(Vec<ShippedWindow>)) {
    windows.sort_unstable_by_key(|w| (w.start, w.rule));
    let mut batcher = Batcher {
        pending: Vec::new(),
        bytes: 0,
        emit,
    };
    let mut at = base;
    for w in windows {
        let rel = |off: u64| (off.saturating_sub(base.offset) as usize).min(data.len());
        let (start, end) = (rel(w.start), rel(w.end));
        // Windows arrive sorted by start: count newlines once, incrementally.
        let counted = rel(at.offset);
        if start > counted {
            at = at.advanced(&data[counted..start]);
        }
        let lead = usize::from(start > 0);
        batcher.push(ShippedWindow {
            rule: w.rule,
            start: base.offset + start as u64,
            lead,
            bytes: data[start - lead..end].to_vec(),
            cut_at_end: w.cut_at_end,
            line_at_start: at.line,
            line_start_offset: at.line_start,
        });
    }
    batcher.flush();
}

/// Bytes of a streamed member held back for windows that reach before a chunk.
const STREAM_KEEP: u64 = crate::rules::MAX_WINDOW as u64 + 1;
/// Chunk size of streamed archive members.
pub(crate) const MEMBER_CHUNK: usize = 1 << 20;

/// Scans a reader of unknown length through Hyperscan's streaming mode, cutting windows
/// while the bytes are at hand: memory stays at a chunk plus the context windows need,
/// however long the stream. Returns the bytes read; a read error ends the stream (what was
/// read is scanned) and is returned after shipping.
pub(crate) fn scan_reader(
    scanner: &mut Scanner,
    reader: &mut dyn Read,
    chunk: usize,
    emit: &mut dyn FnMut(Vec<ShippedWindow>),
) -> Result<u64, ScanError> {
    let sizes = scanner.window_sizes();
    let size = |rule: u32| sizes.get(rule as usize).copied().unwrap_or((0, 0));
    let mut held: Vec<u8> = Vec::new();
    let mut base = Base::START;
    let mut pending: Vec<(u32, u64)> = Vec::new();
    let mut read_error = None;
    let total = scanner.scan_chunks(
        |buf| {
            buf.resize(chunk, 0);
            match read_full(reader, buf) {
                Ok(n) => {
                    buf.truncate(n);
                    n == chunk
                }
                Err(e) => {
                    buf.clear();
                    read_error = Some(e);
                    false
                }
            }
        },
        |data, _start, triggers| {
            let last = data.is_empty();
            held.extend_from_slice(data);
            pending.extend_from_slice(triggers);
            let held_end = base.offset + held.len() as u64;
            let ready = if last {
                std::mem::take(&mut pending)
            } else {
                take_ready(&mut pending, held_end, &size)
            };
            if !ready.is_empty() {
                let windows = super::matcher::windows_for(&sizes, &ready, held_end);
                ship(&held, base, windows, emit);
            }
            // Keep what later windows may reach back into; count the lines of what goes.
            let keep_from = pending
                .iter()
                .map(|&(rule, end)| end.saturating_sub(size(rule).0 + 1))
                .chain(std::iter::once(held_end.saturating_sub(STREAM_KEEP)))
                .min()
                .unwrap_or(held_end)
                .max(base.offset);
            let drop = (keep_from - base.offset) as usize;
            if drop > 0 {
                base = base.advanced(&held[..drop]);
                held.drain(..drop);
            }
        },
    )?;
    match read_error {
        Some(e) => Err(ScanError::Read(e)),
        None => Ok(total),
    }
}

/// Removes and returns the triggers whose windows are final: no trigger still to come can
/// merge into them. A rule's triggers whose windows chain into one that is not final wait
/// with it, so the same match is never confirmed in two windows of two batches.
fn take_ready(pending: &mut Vec<(u32, u64)>, held_end: u64, size: &dyn Fn(u32) -> (u64, u64)) -> Vec<(u32, u64)> {
    pending.sort_unstable();
    let mut ready = Vec::new();
    let mut waiting = Vec::new();
    for group in pending.chunk_by(|a, b| a.0 == b.0) {
        let (before, after) = size(group[0].0);
        // Later triggers end past `held_end`: their windows start at `held_end - before` or later.
        let mut cut = group
            .iter()
            .position(|&(_, end)| end + after + before >= held_end)
            .unwrap_or(group.len());
        while cut > 0 && cut < group.len() && group[cut].1.saturating_sub(before) <= group[cut - 1].1 + after {
            cut -= 1;
        }
        ready.extend_from_slice(&group[..cut]);
        waiting.extend_from_slice(&group[cut..]);
    }
    *pending = waiting;
    ready
}
