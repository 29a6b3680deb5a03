//! JSON (one array) and JSON Lines (one finding per line): the stable machine formats.

use std::io::{self, Write};

use super::prepared;
use crate::core::{Finding, Sink, Summary};

/// Writes one finding per line.
pub struct JsonLinesSink<W: Write> {
    out: W,
    redact: bool,
}

impl<W: Write> JsonLinesSink<W> {
    /// A sink over `out`.
    pub fn new(out: W, redact: bool) -> Self {
        JsonLinesSink { out, redact }
    }
}

impl<W: Write> Sink for JsonLinesSink<W> {
    fn finding(&mut self, finding: &Finding) -> io::Result<bool> {
        serde_json::to_writer(&mut self.out, &*prepared(finding, self.redact))?;
        self.out.write_all(b"\n")?;
        Ok(true)
    }
    fn finish(&mut self, _summary: &Summary) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes one JSON array of findings, streamed element by element.
pub struct JsonSink<W: Write> {
    out: W,
    redact: bool,
    first: bool,
}

impl<W: Write> JsonSink<W> {
    /// A sink over `out`.
    pub fn new(out: W, redact: bool) -> Self {
        JsonSink {
            out,
            redact,
            first: true,
        }
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn begin(&mut self) -> io::Result<()> {
        self.out.write_all(b"[")
    }
    fn finding(&mut self, finding: &Finding) -> io::Result<bool> {
        self.out.write_all(if self.first { b"\n" } else { b",\n" })?;
        self.first = false;
        serde_json::to_writer(&mut self.out, &*prepared(finding, self.redact))?;
        Ok(true)
    }
    fn finish(&mut self, _summary: &Summary) -> io::Result<()> {
        self.out.write_all(b"\n]\n")?;
        self.out.flush()
    }
}
