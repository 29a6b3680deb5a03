//! Human-readable output, coloured when writing to a terminal.

use std::io::{self, Write};

use super::prepared;
use crate::core::{Confidence, Finding, Sink, Summary};

/// Writes each finding as a short block of text.
pub struct PrettySink<W: Write> {
    out: W,
    redact: bool,
    color: bool,
}

impl<W: Write> PrettySink<W> {
    /// A sink over `out`; `color` adds ANSI colours.
    pub fn new(out: W, redact: bool, color: bool) -> Self {
        PrettySink { out, redact, color }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

impl<W: Write> Sink for PrettySink<W> {
    fn finding(&mut self, finding: &Finding) -> io::Result<bool> {
        let f = prepared(finding, self.redact);
        let loc = &f.location;
        let mut place = loc.display_path();
        if !loc.decoders.is_empty() {
            place.push_str(&format!(" [{}]", loc.decoders.join(" > ")));
        }
        let conf_color = match f.confidence {
            Confidence::High => "1;31",
            Confidence::Medium => "33",
            Confidence::Low => "2",
        };
        let header = format!(
            "{}:{}:{}",
            self.paint("35", &place),
            self.paint("32", &loc.line.to_string()),
            loc.column
        );
        let rule = self.paint("1", &f.rule.id);
        let conf = self.paint(conf_color, f.confidence.as_str());
        let context = f.context.map(|c| format!(" [{}]", c.as_str())).unwrap_or_default();
        writeln!(self.out, "{header}  {rule} ({conf}){context} {}", f.rule.name)?;
        writeln!(self.out, "    secret: {}", self.paint("1;31", &f.secret))?;
        if f.validation.status.is_proven() || !f.validation.details.is_empty() {
            let details: Vec<String> = f
                .validation
                .details
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect();
            writeln!(
                self.out,
                "    validation: {} {}",
                f.validation.status,
                details.join(" ")
            )?;
        }
        writeln!(self.out, "    {}", f.snippet)?;
        writeln!(self.out)?;
        Ok(true)
    }
    fn finish(&mut self, _summary: &Summary) -> io::Result<()> {
        self.out.flush()
    }
}
