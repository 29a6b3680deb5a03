//! Threads and bounded channels: enumerate → load + scan workers (each with its own
//! Hyperscan scratch) → validators → the caller's sink. Bounded channels give backpressure,
//! so memory is a budget, not luck.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam::channel::{bounded, Receiver, Sender};

use crate::containers::{read_full, sniff, Budget, Format, UnpackStats, Unpacker, Visitor};
use crate::core::Confidence;
use crate::core::Finding;
use crate::core::Provenance;
use crate::core::{Sink, Summary, Warning, WarningKind};
use crate::datastore::writer::{Claims, Record};
use crate::datastore::{BlobKey, Datastore, Lookup, Profile, RunCounters};
use crate::dedup::{BlobEvent, BlobName, Chain, Decision, InputPlace, Ledger, Tracker};
use crate::policy::suppress::Suppressions;
use crate::stages::confirm::{CandidateBatch, ShippedWindow, Validator};
use crate::stages::load::{open, LoadPolicy, Loaded};
use crate::stages::matcher::{Scanner, Window};
use crate::stages::walk::{io_warning, walk, warning, Enumerated, FileJob, Filters};
use crate::{Engine, Error};

/// How a path scan runs.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Scan worker threads (0: one per core).
    pub threads: usize,
    /// Include/exclude globs and size limit.
    pub filters: Filters,
    /// How files are read.
    pub load: LoadPolicy,
    /// Findings below this confidence are counted, not reported.
    pub min_confidence: Confidence,
    /// Open archives and compressed streams, under this budget; `None` scans them raw.
    pub archives: Option<Budget>,
    /// Decoded views (`.pyc` pairs, UTF-16, base64, hex, escapes, percent-encoding) are
    /// chained up to this depth; 0 scans bytes only as they are.
    pub decode_depth: u32,
    /// Findings of one rule reported per file before the rest are only counted (with a
    /// warning): a generated or hostile file must not turn the report into gigabytes.
    pub max_findings_per_file_and_rule: Option<u64>,
    /// Allowlist and baseline; inline `keysweep:allow` comments always apply.
    pub suppressions: Arc<Suppressions>,
    /// Set (from a signal handler, say) to stop: no new file is started, and what was found
    /// is still reported.
    pub cancel: Arc<AtomicBool>,
    /// Walk the inputs a second time, ahead of the scan, only to count files and bytes: the
    /// totals a progress bar needs for its ETA (the scan's own walk waits on the workers).
    pub count_ahead: bool,
    /// Record the scan here, skip inputs unchanged since an earlier run, and scan each
    /// distinct blob once (see [`crate::datastore`]).
    pub datastore: Option<Datastore>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            threads: 0,
            filters: Filters::default(),
            load: LoadPolicy::default(),
            min_confidence: Confidence::Medium,
            archives: Some(Budget::default()),
            decode_depth: crate::views::DEFAULT_DEPTH,
            max_findings_per_file_and_rule: Some(1000),
            suppressions: Arc::default(),
            cancel: Arc::default(),
            count_ahead: false,
            datastore: None,
        }
    }
}

enum Event {
    /// A batch confirmed; with a datastore, every batch reports (its chain waits for it).
    Findings(Vec<Finding>, Option<Chain>),
    Blob(BlobEvent),
    /// Blobs scanned again because their scan elsewhere was in flight or cut short.
    ScannedTwice(u64),
    /// An input unchanged since an earlier run: not read.
    Unchanged {
        bytes: u64,
    },
    Warning(Warning),
    Scanned {
        bytes: u64,
    },
    Unpacked(UnpackStats),
    Filtered,
    OtherShard,
    SymlinkSkipped,
}

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
pub(crate) struct Base {
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
pub(crate) fn ship(data: &[u8], base: Base, mut windows: Vec<Window>, emit: &mut dyn FnMut(Vec<ShippedWindow>)) {
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

fn read_at_most(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Bytes of a streamed member held back for windows that reach before a chunk.
const STREAM_KEEP: u64 = crate::rules::MAX_WINDOW as u64 + 1;
/// Chunk size of streamed archive members.
const MEMBER_CHUNK: usize = 1 << 20;

/// Scans a reader of unknown length through Hyperscan's streaming mode, cutting windows
/// while the bytes are at hand: memory stays at a chunk plus the context windows need,
/// however long the stream. Returns the bytes read; a read error ends the stream (what was
/// read is scanned) and is returned after shipping.
fn scan_reader(
    scanner: &mut Scanner,
    reader: &mut dyn Read,
    chunk: usize,
    emit: &mut dyn FnMut(Vec<ShippedWindow>),
) -> Result<u64, Error> {
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
                let windows = crate::stages::matcher::windows_for(&sizes, &ready, held_end);
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
        Some(e) => Err(Error::Read(e)),
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

/// What a worker hands the unpacker: scanning of members, dedup, and warnings.
struct MemberScanner<'a> {
    scanner: &'a mut Scanner,
    /// With a delta plan: a scanner of only the added rules, and each one's index in the
    /// whole rule set.
    delta: Option<&'a mut DeltaScanner>,
    events: &'a Sender<Event>,
    batches: &'a Sender<Batch>,
    tracker: Option<&'a mut Tracker>,
}

/// Members smaller than this are scanned as part of what holds them, not deduplicated: a
/// lookup and a record cost more than scanning a few kilobytes again.
const DEDUP_MIN_BYTES: usize = 4096;

/// A scanner of the rules added since the previous profile.
struct DeltaScanner {
    scanner: Scanner,
    rule_index: Arc<Vec<u32>>,
}

/// Sends the tracker's pending seeds (findings that stand for a blob scanned with only the
/// added rules).
fn send_seeds(tracker: Option<&mut Tracker>, events: &Sender<Event>) {
    if let Some(t) = tracker {
        for seed in t.take_seeds() {
            let _ = events.send(Event::Blob(seed));
        }
    }
}

/// A batch of candidates and the blobs it lies in (with a datastore).
type Batch = (CandidateBatch, Option<Chain>);

/// Sends a blob's windows to the validators, batch by batch, under its provenance; each
/// batch counts as one unit for the blobs the tracker has open.
fn emitter<'a>(
    batches: &'a Sender<Batch>,
    provenance: &Provenance,
    mut tracker: Option<&'a mut Tracker>,
) -> impl FnMut(Vec<ShippedWindow>) + 'a {
    let provenance = Arc::new(provenance.clone());
    move |windows| {
        let chain = tracker.as_mut().and_then(|t| t.unit());
        let batch = CandidateBatch {
            provenance: Arc::clone(&provenance),
            windows,
        };
        let _ = batches.send((batch, chain));
    }
}

impl MemberScanner<'_> {
    /// Scans `reader` as a stream (memory stays at a chunk), shipping as it goes.
    fn stream_with(&mut self, provenance: &Provenance, reader: &mut dyn Read, chunk: usize) -> Result<u64, Error> {
        let mut emit = emitter(self.batches, provenance, self.tracker.as_deref_mut());
        scan_reader(self.scanner, reader, chunk, &mut emit)
    }
}

impl Visitor for MemberScanner<'_> {
    fn blob(&mut self, provenance: &Provenance, data: &[u8]) {
        if let Some(t) = self.tracker.as_deref_mut() {
            t.saw(provenance.members.len());
        }
        let delta = self.tracker.as_deref().is_some_and(Tracker::scanning_delta);
        let scanned = match (delta, self.delta.as_deref_mut()) {
            (true, Some(d)) => d.scanner.scan(data).map(|mut windows| {
                for w in &mut windows {
                    w.rule = d.rule_index.get(w.rule as usize).copied().unwrap_or(u32::MAX);
                }
                windows
            }),
            _ => self.scanner.scan(data),
        };
        match scanned {
            Ok(windows) if windows.is_empty() => {}
            Ok(windows) => ship(
                data,
                Base::START,
                windows,
                &mut emitter(self.batches, provenance, self.tracker.as_deref_mut()),
            ),
            Err(e) => self.warn(provenance, WarningKind::Unreadable, e.to_string()),
        }
    }

    fn stream(&mut self, provenance: &Provenance, reader: &mut dyn Read) -> std::io::Result<u64> {
        if let Some(t) = self.tracker.as_deref_mut() {
            t.saw(provenance.members.len());
        }
        self.stream_with(provenance, reader, MEMBER_CHUNK).map_err(|e| match e {
            Error::Read(io) => io,
            other => std::io::Error::other(other.to_string()),
        })
    }

    fn warn(&mut self, provenance: &Provenance, kind: WarningKind, message: String) {
        if let Some(t) = self.tracker.as_deref_mut() {
            t.warned();
        }
        let mut path = provenance.path.clone();
        for m in &provenance.members {
            path.push('!');
            path.push_str(m);
        }
        let _ = self.events.send(Event::Warning(Warning { kind, path, message }));
    }

    fn enter(&mut self, provenance: &Provenance, data: &[u8]) -> bool {
        let Some(tracker) = self.tracker.as_deref_mut() else {
            return true;
        };
        // Below this size a member is cheaper to scan than to look up and record: it is
        // scanned as part of what holds it.
        if data.len() < DEDUP_MIN_BYTES {
            tracker.enter_unframed(provenance.members.len());
            return true;
        }
        let key = BlobKey::of(data, &crate::containers::name_salt(provenance, data));
        let (decision, _) = tracker.enter(
            &provenance.path,
            &provenance.members,
            BlobName::Content(key),
            data.len() as u64,
        );
        send_seeds(Some(tracker), self.events);
        match decision {
            Decision::Scan => true,
            Decision::Skip(link) => {
                let _ = self.events.send(Event::Blob(link));
                false
            }
        }
    }

    fn leave(&mut self, _provenance: &Provenance) {
        if let Some(done) = self.tracker.as_deref_mut().and_then(Tracker::leave) {
            let _ = self.events.send(Event::Blob(done));
        }
    }
}

/// One scan worker: its scanner (with its scratch), its reused read buffer, and its dedup
/// tracker (with a datastore).
struct Worker {
    scanner: Scanner,
    delta: Option<DeltaScanner>,
    buf: Vec<u8>,
    load: LoadPolicy,
    archives: Option<Budget>,
    decode_depth: u32,
    tracker: Option<Tracker>,
}

impl Worker {
    fn scan_job(&mut self, job: &FileJob, events: &Sender<Event>, batches: &Sender<Batch>) {
        let warn = |w: Warning| {
            let _ = events.send(Event::Warning(w));
        };
        let display = crate::stages::walk::display(&job.path);
        if let Some(tracker) = &self.tracker {
            if tracker.unchanged(&display, job.size, job.mtime_ns) {
                let _ = events.send(Event::Unchanged { bytes: job.size });
                return;
            }
        }
        let (loaded, listed_len) = match open(&job.path, &self.load, &mut self.buf) {
            Ok(x) => x,
            Err(e) => return warn(io_warning(&job.path, &e)),
        };
        let provenance = Provenance::file(display.clone());
        if let Some(tracker) = self.tracker.as_mut() {
            // The file itself is a blob: by its bytes when they are at hand, else by its place.
            let salted =
                |data: &[u8]| BlobName::Content(BlobKey::of(data, &crate::containers::name_salt(&provenance, data)));
            let (name, size) = match &loaded {
                Loaded::Buffered => (salted(&self.buf), self.buf.len() as u64),
                Loaded::Mapped(map) => (salted(map), map.len() as u64),
                Loaded::Streamed(_) => (BlobName::Place { mtime_ns: job.mtime_ns }, listed_len),
            };
            let (decision, key) = tracker.enter(&display, &[], name, size);
            let input = InputPlace {
                path: display.clone(),
                size: listed_len,
                mtime_ns: job.mtime_ns,
            };
            send_seeds(Some(tracker), events);
            // The input goes first: its findings are reported when its blob is complete.
            match decision {
                Decision::Scan => {
                    let _ = events.send(Event::Blob(BlobEvent::Input { input, key }));
                    self.scan_loaded(job, loaded, listed_len, &provenance, events, batches);
                    if let Some(done) = tracker_leave(&mut self.tracker) {
                        let _ = events.send(Event::Blob(done));
                    }
                }
                Decision::Skip(mut link) => {
                    if let BlobEvent::Link { input: place, .. } = &mut link {
                        *place = Some(input);
                    }
                    let _ = events.send(Event::Blob(link));
                    let _ = tracker_leave(&mut self.tracker);
                    let _ = events.send(Event::Scanned { bytes: size });
                }
            }
            let twice = self.tracker.as_mut().map_or(0, Tracker::take_scanned_twice);
            if twice > 0 {
                let _ = events.send(Event::ScannedTwice(twice));
            }
        } else {
            self.scan_loaded(job, loaded, listed_len, &provenance, events, batches);
        }
    }

    fn scan_loaded(
        &mut self,
        job: &FileJob,
        loaded: Loaded,
        listed_len: u64,
        provenance: &Provenance,
        events: &Sender<Event>,
        batches: &Sender<Batch>,
    ) {
        let warn = |w: Warning| {
            let _ = events.send(Event::Warning(w));
        };
        let mut members = MemberScanner {
            scanner: &mut self.scanner,
            delta: self.delta.as_mut(),
            events,
            batches,
            tracker: self.tracker.as_mut(),
        };
        let mut stats = UnpackStats::default();
        let decode_depth = self.decode_depth;
        // Without archives, the unpacker still decodes views; it opens nothing at depth 0.
        let budget = self.archives.unwrap_or(Budget {
            max_depth: 0,
            ..Budget::default()
        });
        let mut unpack = |data: &[u8], members: &mut MemberScanner<'_>| {
            let mut unpacker = Unpacker::new(budget, decode_depth, data.len() as u64, members);
            unpacker.blob(data, provenance, 0);
            stats = unpacker.stats;
        };
        let result: Result<u64, Error> = match loaded {
            Loaded::Buffered => {
                let len = self.buf.len() as u64;
                if len != listed_len {
                    warn(warning(
                        WarningKind::Changed,
                        &job.path,
                        format!("size changed from {listed_len} to {len} bytes while opening; scanned {len}"),
                    ));
                }
                unpack(&self.buf, &mut members);
                Ok(len)
            }
            Loaded::Mapped(map) => {
                unpack(&map, &mut members);
                Ok(map.len() as u64)
            }
            Loaded::Streamed(mut file) => {
                let mut head = vec![0u8; crate::containers::SNIFF_LEN];
                let n = read_at_most(&file, &mut head, 0).unwrap_or(0);
                let format = sniff(&head[..n]);
                match (self.archives, format) {
                    (Some(_), Format::Zip) if !self.load.mmap => {
                        warn(warning(
                            WarningKind::BudgetExceeded,
                            &job.path,
                            "a zip over the mapping size with --no-mmap: not opened, scanned as raw bytes",
                        ));
                        members.stream_with(provenance, &mut BufReader::new(&mut file), self.load.chunk)
                    }
                    (Some(_), Format::Zip) => {
                        // Zip needs random access: map it, however large.
                        // SAFETY: as in `load::open`, read-only and private to this worker.
                        match unsafe { memmap2::Mmap::map(&file) } {
                            Ok(map) => {
                                unpack(&map, &mut members);
                                Ok(map.len() as u64)
                            }
                            Err(e) => Err(Error::Read(e)),
                        }
                    }
                    (Some(budget), f) if f != Format::Plain => {
                        let mut unpacker = Unpacker::new(budget, self.decode_depth, listed_len, &mut members);
                        unpacker.top_reader(f, Box::new(BufReader::new(&mut file)), listed_len, provenance);
                        stats = unpacker.stats;
                        Ok(listed_len)
                    }
                    _ => {
                        let outcome = members.stream_with(provenance, &mut BufReader::new(&mut file), self.load.chunk);
                        if let Err(Error::Read(e)) = &outcome {
                            warn(warning(
                                WarningKind::Unreadable,
                                &job.path,
                                format!("read failed ({e}); scanned what was read"),
                            ));
                            Ok(listed_len)
                        } else {
                            outcome
                        }
                    }
                }
            }
        };
        match result {
            Ok(bytes) => {
                let _ = events.send(Event::Scanned { bytes });
                if stats.archives > 0 || stats.budget_hits > 0 || stats.corrupt > 0 || stats.members_reused > 0 {
                    let _ = events.send(Event::Unpacked(stats));
                }
            }
            Err(e) => {
                if let Some(t) = members.tracker.as_deref_mut() {
                    t.warned();
                }
                warn(warning(WarningKind::Unreadable, &job.path, e.to_string()))
            }
        }
    }
}

fn tracker_leave(tracker: &mut Option<Tracker>) -> Option<BlobEvent> {
    tracker.as_mut().and_then(Tracker::leave)
}

/// Runs a whole scan of `inputs` into `sink`.
pub(crate) fn run(
    engine: &Engine,
    inputs: &[PathBuf],
    options: &ScanOptions,
    sink: &mut dyn Sink,
) -> Result<Summary, Error> {
    let started = Instant::now();
    let threads = if options.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        options.threads
    };
    let validators = (threads / 2).max(1);
    let stop = &*options.cancel;
    let (job_tx, job_rx) = bounded::<FileJob>(4096);
    let (batch_tx, batch_rx) = bounded::<Batch>(32);
    let (event_tx, event_rx) = bounded::<Event>(4096);

    // With a datastore: this scan's profile and run, the claims its workers share, the
    // writer's channel.
    let claims = Arc::new(Claims::default());
    let (record_tx, record_rx) = bounded::<Record>(4096);
    let store = match &options.datastore {
        Some(store) => {
            let profile = Profile::new(&engine.rules, options);
            let profile_id = store.profile_id(&profile)?;
            let plan = store.delta_plan(&profile, profile_id)?.map(Arc::new);
            let run_id = store.start_run(profile_id)?;
            Some((store, profile_id, run_id, plan))
        }
        None => None,
    };
    // The rules added since the previous profile get a database of their own.
    let delta_db = match store.as_ref().and_then(|s| s.3.as_ref()) {
        Some(plan) if !plan.added.is_empty() => {
            let added = plan
                .added
                .iter()
                .filter_map(|&i| engine.rules.rules().get(i).cloned())
                .collect();
            let rules = crate::rules::RuleSet::from_rules(added)?;
            let index: Vec<u32> = plan.added.iter().map(|&i| i as u32).collect();
            Some((
                Arc::new(crate::stages::matcher::Database::build(&rules, None)?),
                Arc::new(index),
            ))
        }
        _ => None,
    };

    // Scratch is allocated up front so a failure is an error, not a silent thread exit.
    let mut workers = Vec::with_capacity(threads);
    for _ in 0..threads {
        let tracker = match &store {
            Some((store, profile, _, plan)) => Some(Tracker::new(
                Lookup::new(store, *profile, plan.clone())?,
                Arc::clone(&claims),
                delta_db.is_some(),
                options.archives.map_or(0, |b| b.max_depth),
            )),
            None => None,
        };
        let delta = match &delta_db {
            Some((db, index)) => Some(DeltaScanner {
                scanner: Scanner::new(Arc::clone(db))?,
                rule_index: Arc::clone(index),
            }),
            None => None,
        };
        workers.push(Worker {
            scanner: Scanner::new(Arc::clone(&engine.db))?,
            delta,
            buf: Vec::new(),
            load: options.load,
            archives: options.archives,
            decode_depth: options.decode_depth,
            tracker,
        });
    }
    let mut ledger = match &store {
        Some((store, profile, _, plan)) => Some((Lookup::new(store, *profile, plan.clone())?, plan)),
        None => None,
    }
    .map(|(lookup, plan)| {
        let rule_order = plan.as_ref().map(|_| {
            engine
                .rules
                .rules()
                .iter()
                .enumerate()
                .map(|(i, r)| (r.id().to_owned(), i))
                .collect()
        });
        Ledger::new(
            Arc::clone(&claims),
            record_tx.clone(),
            options.max_findings_per_file_and_rule.unwrap_or(u64::MAX),
            rule_order,
            lookup,
        )
    });

    let mut summary = Summary::default();
    let mut sink_error = None;
    let mut store_error = None;
    let listed = Listed::default();
    std::thread::scope(|scope| {
        if options.count_ahead {
            let listed = &listed;
            scope.spawn(move || {
                for input in inputs {
                    walk(input, &options.filters, &mut |item| {
                        if let Enumerated::File(job) = item {
                            listed.files.fetch_add(1, Ordering::Relaxed);
                            listed.bytes.fetch_add(job.size, Ordering::Relaxed);
                        }
                        !stop.load(Ordering::Relaxed)
                    });
                }
                listed.done.store(true, Ordering::Relaxed);
            });
        }
        let writer = store.as_ref().map(|&(store, profile, run, _)| {
            let records = record_rx.clone();
            let claims = &*claims;
            scope.spawn(move || crate::datastore::writer::run(store, profile, run, records, claims))
        });
        drop(record_rx);
        let events = event_tx.clone();
        let stop_ref = stop;
        scope.spawn(move || {
            for input in inputs {
                let mut emit = |item: Enumerated| {
                    if stop_ref.load(Ordering::Relaxed) {
                        return false;
                    }
                    match item {
                        Enumerated::File(job) => job_tx.send(job).is_ok(),
                        Enumerated::Warning(w) => events.send(Event::Warning(w)).is_ok(),
                        Enumerated::Filtered => events.send(Event::Filtered).is_ok(),
                        Enumerated::OtherShard => events.send(Event::OtherShard).is_ok(),
                        Enumerated::SymlinkSkipped => events.send(Event::SymlinkSkipped).is_ok(),
                    }
                };
                walk(input, &options.filters, &mut emit);
                if stop_ref.load(Ordering::Relaxed) {
                    break;
                }
            }
        });
        for mut worker in workers {
            let jobs: Receiver<FileJob> = job_rx.clone();
            let events = event_tx.clone();
            let batches = batch_tx.clone();
            scope.spawn(move || {
                for job in jobs {
                    if stop_ref.load(Ordering::Relaxed) {
                        break;
                    }
                    worker.scan_job(&job, &events, &batches);
                }
            });
        }
        drop(batch_tx);
        for _ in 0..validators {
            let batches = batch_rx.clone();
            let events = event_tx.clone();
            let validator = Validator::new(Arc::clone(&engine.rules));
            scope.spawn(move || {
                for (batch, chain) in batches {
                    let findings = validator.confirm(&batch);
                    // A batch inside tracked blobs reports even when empty: they wait for it.
                    if (!findings.is_empty() || chain.is_some())
                        && events.send(Event::Findings(findings, chain)).is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(batch_rx);
        drop(event_tx);
        drop(job_rx);

        let mut reporter = Reporter {
            min: options.min_confidence,
            suppressions: &options.suppressions,
            cap: options.max_findings_per_file_and_rule.unwrap_or(u64::MAX),
            summary: &mut summary,
            per_place: HashMap::new(),
            ledger: ledger.as_mut(),
        };
        let mut stopped = false;
        let mut last_progress = Instant::now();
        if let Err(e) = sink.begin() {
            sink_error = Some(e);
            stopped = true;
        }
        for event in &event_rx {
            if stopped {
                // Drain so producers finish; the sink has said it wants nothing more.
                stop.store(true, Ordering::Relaxed);
                continue;
            }
            let reduced = reporter.reduce(event, sink);
            if last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                reporter.summary.elapsed = started.elapsed();
                if options.count_ahead {
                    let s = &mut *reporter.summary;
                    s.files_listed = listed.files.load(Ordering::Relaxed);
                    s.bytes_listed = listed.bytes.load(Ordering::Relaxed);
                    s.listing_done = listed.done.load(Ordering::Relaxed);
                }
                sink.progress(reporter.summary);
            }
            match reduced {
                Ok(true) => {}
                Ok(false) => stopped = true,
                Err(e) => {
                    sink_error = Some(e);
                    stopped = true;
                }
            }
        }
        if !stopped {
            if let Err(e) = reporter.finish_ledger(sink, stop.load(Ordering::Relaxed)) {
                sink_error = Some(e);
            }
        }
        let interrupted = stop.load(Ordering::Relaxed);
        if let Some(ledger) = &reporter.ledger {
            let s = &*reporter.summary;
            let counters = RunCounters {
                files_scanned: s.files_scanned,
                files_unchanged: s.files_unchanged,
                blobs_scanned: ledger.counters.blobs_scanned,
                blobs_delta_scanned: ledger.counters.blobs_delta_scanned,
                blobs_scanned_twice: s.blobs_scanned_twice,
                blobs_reused: ledger.counters.blobs_reused,
                bytes_reused: ledger.counters.bytes_reused,
                bytes_scanned: s.bytes_scanned,
                findings: s.findings,
            };
            let _ = record_tx.send(Record::Finish { counters, interrupted });
        }
        drop(reporter);
        drop(ledger);
        drop(record_tx);
        if let Some(writer) = writer {
            match writer.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => store_error = Some(e),
                Err(_) => store_error = store.as_ref().map(|s| s.0.writer_stopped()),
            }
        }
    });
    summary.elapsed = started.elapsed();
    summary.interrupted = stop.load(Ordering::Relaxed) && sink_error.is_none();
    if let Some(e) = sink_error {
        return Err(Error::Sink(e));
    }
    // The report is whole even when the datastore failed: what was found is not lost.
    sink.finish(&summary).map_err(Error::Sink)?;
    if let Some(e) = store_error {
        return Err(e.into());
    }
    Ok(summary)
}

/// What the counting walk has listed so far.
#[derive(Default)]
struct Listed {
    files: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
    done: AtomicBool,
}

/// How often the sink hears the counters while a scan runs.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The reporting end of the pipeline: confidence filter, per-file cap, counters, and (with a
/// datastore) the dedup ledger.
struct Reporter<'a> {
    min: Confidence,
    suppressions: &'a Suppressions,
    cap: u64,
    summary: &'a mut Summary,
    per_place: HashMap<(String, String), u64>,
    ledger: Option<&'a mut Ledger>,
}

impl Reporter<'_> {
    /// Findings of one place (a batch, or a linked blob) through the filters to the sink.
    fn report(&mut self, findings: &[Finding], sink: &mut dyn Sink) -> std::io::Result<bool> {
        let summary = &mut *self.summary;
        for f in findings {
            if f.confidence < self.min {
                summary.findings_below_threshold += 1;
                continue;
            }
            if let Some(reason) = self.suppressions.reason(f) {
                *summary.findings_suppressed.entry(reason.as_str()).or_default() += 1;
                continue;
            }
            let count = self
                .per_place
                .entry((f.location.display_path(), f.rule.id.clone()))
                .or_default();
            *count += 1;
            if *count > self.cap {
                summary.findings_over_cap += 1;
                if *count == self.cap + 1 {
                    let w = Warning {
                        kind: WarningKind::FindingsCapped,
                        path: f.location.display_path(),
                        message: format!(
                            "more than {} findings of {}: the rest are counted, not reported",
                            self.cap, f.rule.id
                        ),
                    };
                    *summary.warnings.entry(w.kind.as_str()).or_default() += 1;
                    sink.warning(&w)?;
                }
                continue;
            }
            summary.findings += 1;
            *summary.findings_per_rule.entry(f.rule.id.clone()).or_default() += 1;
            if !sink.finding(f)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Blobs that never finished (the run was stopped) are counted with a warning.
    fn finish_ledger(&mut self, sink: &mut dyn Sink, interrupted: bool) -> std::io::Result<()> {
        let Some(ledger) = self.ledger.as_deref_mut() else {
            return Ok(());
        };
        let unfinished = ledger.finish();
        ledger.counters.copy_to(self.summary);
        let counters = ledger.counters;
        let mut problems = Vec::new();
        if unfinished > 0 && !interrupted {
            problems.push(format!(
                "{unfinished} blob(s) did not finish scanning: not recorded in the datastore"
            ));
        }
        if counters.unreadable > 0 {
            problems.push(format!(
                "{} blob(s) committed in this run could not be read back for a place linked to them: \
                 their findings there are in the datastore, not in this output",
                counters.unreadable
            ));
        }
        if counters.dropped > 0 {
            self.summary.findings_over_cap += counters.dropped;
            problems.push(format!(
                "{} finding(s) past the per-file memory guard were dropped (a file not reused; rescan it alone)",
                counters.dropped
            ));
        }
        for message in problems {
            let w = Warning {
                kind: WarningKind::Unreadable,
                path: String::new(),
                message,
            };
            *self.summary.warnings.entry(w.kind.as_str()).or_default() += 1;
            sink.warning(&w)?;
        }
        Ok(())
    }

    fn reduce(&mut self, event: Event, sink: &mut dyn Sink) -> std::io::Result<bool> {
        match event {
            Event::Findings(findings, chain) => {
                // With a datastore, a file's findings are reported once its blob is complete:
                // what the scan prints is what the datastore holds.
                if let (Some(chain), Some(ledger)) = (&chain, self.ledger.as_deref_mut()) {
                    ledger.confirmed(&findings, chain);
                    let complete = ledger.take_linked();
                    return self.report(&complete, sink);
                }
                return self.report(&findings, sink);
            }
            Event::Blob(event) => {
                let mut linked = Vec::new();
                if let Some(ledger) = self.ledger.as_deref_mut() {
                    ledger.event(event);
                    linked = ledger.take_linked();
                    ledger.counters.copy_to(self.summary);
                }
                return self.report(&linked, sink);
            }
            _ => {}
        }
        let summary = &mut *self.summary;
        match event {
            Event::Findings(..) | Event::Blob(_) => {}
            Event::Unchanged { bytes } => {
                summary.files_unchanged += 1;
                summary.bytes_unchanged += bytes;
            }
            Event::ScannedTwice(n) => summary.blobs_scanned_twice += n,
            Event::Warning(w) => {
                *summary.warnings.entry(w.kind.as_str()).or_default() += 1;
                sink.warning(&w)?;
            }
            Event::Scanned { bytes } => {
                summary.files_scanned += 1;
                summary.bytes_scanned += bytes;
            }
            Event::Unpacked(stats) => {
                summary.archives_opened += stats.archives;
                summary.members_scanned += stats.members;
                summary.bytes_unpacked += stats.bytes_unpacked;
                summary.budget_hits += stats.budget_hits;
                summary.corrupt_inputs += stats.corrupt;
                summary.members_reused += stats.members_reused;
            }
            Event::Filtered => summary.files_filtered += 1,
            Event::OtherShard => summary.files_other_shard += 1,
            Event::SymlinkSkipped => summary.symlinks_skipped += 1,
        }
        Ok(true)
    }
}
