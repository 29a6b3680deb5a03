//! Where findings are written, in which format: shared by `scan` and `report`.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result};
use keysweep::sink::{JsonLinesSink, JsonSink, PrettySink, SarifSink};
use keysweep::{RuleSet, Sink};

use crate::args::{ColorChoice, Format};

/// The sink for `format`, writing to `output` (or standard output).
pub fn sink(
    format: Format,
    output: Option<&Path>,
    redact: bool,
    color: ColorChoice,
    rules: &RuleSet,
) -> Result<Box<dyn Sink>> {
    let (out, to_terminal): (Box<dyn Write>, bool) = match output {
        Some(path) => {
            let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
            (Box::new(std::io::BufWriter::new(f)), false)
        }
        None => {
            let stdout = std::io::stdout();
            let tty = stdout.is_terminal();
            (Box::new(std::io::BufWriter::new(stdout.lock())), tty)
        }
    };
    let color = match color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => to_terminal && std::env::var_os("NO_COLOR").is_none(),
    };
    Ok(match format {
        Format::Pretty => Box::new(PrettySink::new(out, redact, color)),
        Format::Json => Box::new(JsonSink::new(out, redact)),
        Format::Jsonl => Box::new(JsonLinesSink::new(out, redact)),
        Format::Sarif => Box::new(SarifSink::new(out, redact, rules)),
    })
}
