//! One scan worker: load → expand (containers and views, under budgets) → match → ship, for
//! one file or one buffer. The threaded run and `scan_bytes` share it; they differ only in
//! the [`Outlet`] that takes what the worker produces.

use std::io::{BufReader, Read};
use std::sync::Arc;

use super::confirm::{CandidateBatch, ShippedWindow};
use super::load::{open, LoadPolicy, Loaded};
use super::matcher::{Database, ScanError, Scanner};
use super::ship::{scan_reader, ship, Base, MEMBER_CHUNK};
use super::walk::{io_warning, warning, FileJob};
use crate::containers::{sniff, Budget, Format, UnpackStats, Unpacker, Visitor};
use crate::core::{Finding, Provenance, Warning, WarningKind};
use crate::datastore::BlobKey;
use crate::dedup::{BlobEvent, BlobName, Chain, Decision, InputPlace, Tracker};
use crate::policy::ScannerOptions;
use crate::views::views_of;

/// What a worker or a validator tells the reporting end.
pub(crate) enum Event {
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

/// Where a worker's output goes: candidate batches to confirm, and events to report. The
/// threaded run sends both over bounded channels; `scan_bytes` confirms and reports in place.
pub(crate) trait Outlet {
    /// A batch of candidate windows, and the tracked blobs it lies in.
    fn batch(&self, batch: CandidateBatch, chain: Option<Chain>);
    /// Anything else the reporting end counts or reports.
    fn event(&self, event: Event);
}

/// What a worker hands the unpacker: scanning of members, dedup, and warnings.
struct MemberScanner<'a> {
    scanner: &'a mut Scanner,
    /// With a delta plan: a scanner of only the added rules, and each one's index in the
    /// whole rule set.
    delta: Option<&'a mut DeltaScanner>,
    out: &'a dyn Outlet,
    tracker: Option<&'a mut Tracker>,
}

/// Members smaller than this are scanned as part of what holds them, not deduplicated: a
/// lookup and a record cost more than scanning a few kilobytes again.
const DEDUP_MIN_BYTES: usize = 4096;

/// A scanner of the rules added since the previous profile.
pub(crate) struct DeltaScanner {
    pub(crate) scanner: Scanner,
    pub(crate) rule_index: Arc<Vec<u32>>,
}

/// Sends the tracker's pending seeds (findings that stand for a blob scanned with only the
/// added rules).
fn send_seeds(tracker: Option<&mut Tracker>, out: &dyn Outlet) {
    if let Some(t) = tracker {
        for seed in t.take_seeds() {
            out.event(Event::Blob(seed));
        }
    }
}

/// A batch of candidates and the blobs it lies in (with a datastore).
pub(crate) type Batch = (CandidateBatch, Option<Chain>);

/// Sends a blob's windows to the validators, batch by batch, under its provenance; each
/// batch counts as one unit for the blobs the tracker has open.
fn emitter<'a>(
    out: &'a dyn Outlet,
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
        out.batch(batch, chain);
    }
}

impl MemberScanner<'_> {
    /// Scans `reader` as a stream (memory stays at a chunk), shipping as it goes.
    fn stream_with(&mut self, provenance: &Provenance, reader: &mut dyn Read, chunk: usize) -> Result<u64, ScanError> {
        let mut emit = emitter(self.out, provenance, self.tracker.as_deref_mut());
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
                &mut emitter(self.out, provenance, self.tracker.as_deref_mut()),
            ),
            Err(e) => self.warn(provenance, WarningKind::Unreadable, e.to_string()),
        }
    }

    fn stream(&mut self, provenance: &Provenance, reader: &mut dyn Read) -> std::io::Result<u64> {
        if let Some(t) = self.tracker.as_deref_mut() {
            t.saw(provenance.members.len());
        }
        self.stream_with(provenance, reader, MEMBER_CHUNK).map_err(|e| match e {
            ScanError::Read(io) => io,
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
        self.out.event(Event::Warning(Warning { kind, path, message }));
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
        send_seeds(Some(tracker), self.out);
        match decision {
            Decision::Scan => true,
            Decision::Skip(link) => {
                self.out.event(Event::Blob(link));
                false
            }
        }
    }

    fn leave(&mut self, _provenance: &Provenance) {
        if let Some(done) = self.tracker.as_deref_mut().and_then(Tracker::leave) {
            self.out.event(Event::Blob(done));
        }
    }
}

/// One scan worker: its scanner (with its scratch), its reused read buffer, and its dedup
/// tracker (with a datastore).
pub(crate) struct Worker {
    pub(crate) scanner: Scanner,
    pub(crate) delta: Option<DeltaScanner>,
    pub(crate) buf: Vec<u8>,
    pub(crate) load: LoadPolicy,
    pub(crate) archives: Option<Budget>,
    pub(crate) decode_depth: u32,
    pub(crate) tracker: Option<Tracker>,
}

impl Worker {
    /// A worker with its own scratch for `db`, expanding as `options` say.
    pub(crate) fn new(db: &Arc<Database>, options: &ScannerOptions, load: LoadPolicy) -> Result<Worker, ScanError> {
        Ok(Worker {
            scanner: Scanner::new(Arc::clone(db))?,
            delta: None,
            buf: Vec::new(),
            load,
            archives: options.archives,
            decode_depth: options.decode_depth,
            tracker: None,
        })
    }

    /// Scans `data` as the bytes of a file at `path`: exactly what `scan_job` does with a
    /// file of those bytes read into memory (without a datastore).
    pub(crate) fn scan_buffer(&mut self, path: &str, data: &[u8], out: &dyn Outlet) {
        let provenance = Provenance::file(path);
        let mut members = MemberScanner {
            scanner: &mut self.scanner,
            delta: None,
            out,
            tracker: None,
        };
        let stats = expand(&mut members, self.archives, self.decode_depth, data, &provenance);
        report_scanned(out, data.len() as u64, stats);
    }

    pub(crate) fn scan_job(&mut self, job: &FileJob, out: &dyn Outlet) {
        let warn = |w: Warning| {
            out.event(Event::Warning(w));
        };
        let display = crate::stages::walk::display(&job.path);
        if let Some(tracker) = &self.tracker {
            if tracker.unchanged(&display, job.size, job.mtime_ns) {
                out.event(Event::Unchanged { bytes: job.size });
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
            send_seeds(Some(tracker), out);
            // The input goes first: its findings are reported when its blob is complete.
            match decision {
                Decision::Scan => {
                    out.event(Event::Blob(BlobEvent::Input { input, key }));
                    self.scan_loaded(job, loaded, listed_len, &provenance, out);
                    if let Some(done) = tracker_leave(&mut self.tracker) {
                        out.event(Event::Blob(done));
                    }
                }
                Decision::Skip(mut link) => {
                    if let BlobEvent::Link { input: place, .. } = &mut link {
                        *place = Some(input);
                    }
                    out.event(Event::Blob(link));
                    let _ = tracker_leave(&mut self.tracker);
                    out.event(Event::Scanned { bytes: size });
                }
            }
            let twice = self.tracker.as_mut().map_or(0, Tracker::take_scanned_twice);
            if twice > 0 {
                out.event(Event::ScannedTwice(twice));
            }
        } else {
            self.scan_loaded(job, loaded, listed_len, &provenance, out);
        }
    }

    fn scan_loaded(
        &mut self,
        job: &FileJob,
        loaded: Loaded,
        listed_len: u64,
        provenance: &Provenance,
        out: &dyn Outlet,
    ) {
        let warn = |w: Warning| {
            out.event(Event::Warning(w));
        };
        let mut members = MemberScanner {
            scanner: &mut self.scanner,
            delta: self.delta.as_mut(),
            out,
            tracker: self.tracker.as_mut(),
        };
        let mut stats = UnpackStats::default();
        let (archives, decode_depth) = (self.archives, self.decode_depth);
        let mut unpack = |data: &[u8], members: &mut MemberScanner<'_>| {
            stats = expand(members, archives, decode_depth, data, provenance);
        };
        let result: Result<u64, ScanError> = match loaded {
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
                            Err(e) => Err(ScanError::Read(e)),
                        }
                    }
                    (Some(budget), f) if f != Format::Plain => {
                        let mut unpacker = Unpacker::new(budget, self.decode_depth, views_of, listed_len, &mut members);
                        unpacker.top_reader(f, Box::new(BufReader::new(&mut file)), listed_len, provenance);
                        stats = unpacker.stats;
                        Ok(listed_len)
                    }
                    _ => {
                        let outcome = members.stream_with(provenance, &mut BufReader::new(&mut file), self.load.chunk);
                        if let Err(ScanError::Read(e)) = &outcome {
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
            Ok(bytes) => report_scanned(out, bytes, stats),
            Err(e) => {
                if let Some(t) = members.tracker.as_deref_mut() {
                    t.warned();
                }
                warn(warning(WarningKind::Unreadable, &job.path, e.to_string()))
            }
        }
    }
}

/// Expands a blob held in memory: opened if it is a container (under the budget; without
/// one, nothing is opened but views are still decoded), its views decoded, every leaf
/// matched and shipped.
fn expand(
    members: &mut MemberScanner<'_>,
    archives: Option<Budget>,
    decode_depth: u32,
    data: &[u8],
    provenance: &Provenance,
) -> UnpackStats {
    let budget = archives.unwrap_or(Budget {
        max_depth: 0,
        ..Budget::default()
    });
    let mut unpacker = Unpacker::new(budget, decode_depth, views_of, data.len() as u64, members);
    unpacker.blob(data, provenance, 0);
    unpacker.stats
}

/// A file scanned: its bytes, and what unpacking it counted.
fn report_scanned(out: &dyn Outlet, bytes: u64, stats: UnpackStats) {
    out.event(Event::Scanned { bytes });
    if stats.archives > 0 || stats.budget_hits > 0 || stats.corrupt > 0 || stats.members_reused > 0 {
        out.event(Event::Unpacked(stats));
    }
}

fn tracker_leave(tracker: &mut Option<Tracker>) -> Option<BlobEvent> {
    tracker.as_mut().and_then(Tracker::leave)
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
