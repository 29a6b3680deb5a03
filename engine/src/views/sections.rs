//! Nested configuration flattened: under an INI or TOML section (`[cohere]`,
//! `[tool.app.mistral]`), a Terraform block (`provider "cloudflare" {`) or a YAML mapping
//! (`datadog:`), a credential-named key (`api_key = …`) is written with its labels in front:
//! `cohere.api_key = …`. A rule that knows a provider by its name next to the key then
//! sees both on one line. A Dockerfile's `ENV NAME value` (the form without `=`) is written
//! `NAME=value`, the way every other file assigns it.

use super::{is_credential_name, ExcerptView, LineCounter, View};

/// Larger blobs are data or code, not configuration.
const MAX_BLOB: usize = 256 << 10;
/// Labels kept per line (outermost dropped first).
const MAX_LABELS: usize = 4;
/// Open blocks and mappings followed at most: hostile nesting is not configuration.
const MAX_OPEN: usize = 64;

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// `[section]`, `[[array.of.tables]]`, `["quoted"]`: the label inside.
fn section_label(line: &[u8]) -> Option<&[u8]> {
    let inner = line.strip_prefix(b"[")?.strip_suffix(b"]")?;
    let inner = inner
        .strip_prefix(b"[")
        .and_then(|i| i.strip_suffix(b"]"))
        .unwrap_or(inner);
    let inner = inner.trim_ascii();
    let inner = inner
        .strip_prefix(b"\"")
        .and_then(|i| i.strip_suffix(b"\""))
        .unwrap_or(inner);
    (!inner.is_empty() && inner.iter().all(|&b| is_label_byte(b) || b == b' ')).then_some(inner)
}

/// `provider "cloudflare" {` or `resource "kind" "name" {`: the last quoted label.
fn block_label(line: &[u8]) -> Option<&[u8]> {
    let head = line.strip_suffix(b"{")?.trim_ascii_end();
    let head = head.strip_suffix(b"\"")?;
    let open = memchr::memrchr(b'"', head)?;
    let label = &head[open + 1..];
    let keyword = head[..open].trim_ascii();
    (!label.is_empty()
        && label.iter().all(|&b| is_label_byte(b))
        && keyword
            .split(|&b| b == b' ')
            .next()
            .is_some_and(|w| !w.is_empty() && w.iter().all(|&b| is_label_byte(b))))
    .then_some(label)
}

/// `datadog:` alone on its line (a YAML mapping opening).
fn mapping_label(line: &[u8]) -> Option<&[u8]> {
    let key = line.strip_suffix(b":")?;
    let key = key.strip_prefix(b"- ").unwrap_or(key);
    let quote = |b: &u8| *b == b'"' || *b == b'\'';
    let key = key
        .strip_prefix(b"\"")
        .or_else(|| key.strip_prefix(b"'"))
        .unwrap_or(key);
    let key = match key.last() {
        Some(b) if quote(b) => &key[..key.len() - 1],
        _ => key,
    };
    (!key.is_empty() && key.iter().all(|&b| is_label_byte(b))).then_some(key)
}

/// `api_key = value`, `api_key: value`, `"api_key": value`: the key and where the value starts.
fn assignment(line: &[u8]) -> Option<(&[u8], usize)> {
    let quoted = matches!(line.first(), Some(b'"' | b'\''));
    let start = usize::from(quoted);
    let len = line[start..].iter().take_while(|&&b| is_label_byte(b)).count();
    let key = &line[start..start + len];
    let mut at = start + len + usize::from(quoted && line.get(start + len) == line.first());
    while line.get(at) == Some(&b' ') || line.get(at) == Some(&b'\t') {
        at += 1;
    }
    if !matches!(line.get(at), Some(b'=' | b':')) || key.is_empty() {
        return None;
    }
    at += 1;
    while matches!(line.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    (at < line.len()).then_some((key, at))
}

/// `ENV NAME value`: the name and where the value starts.
fn docker_env(line: &[u8]) -> Option<(&[u8], usize)> {
    let rest = line.strip_prefix(b"ENV ")?;
    let name_len = rest
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'_')
        .count();
    let after = &rest[name_len..];
    let gap = after.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    (name_len > 0 && gap > 0 && gap < after.len()).then(|| (&rest[..name_len], 4 + name_len + gap))
}

/// The flattened view of `data`, or `None` when no credential-named key sits under a label.
pub fn view(data: &[u8]) -> Option<View> {
    if data.len() > MAX_BLOB {
        return None;
    }
    let mut out = ExcerptView::default();
    let mut lines = LineCounter::new(data);
    let mut section: Option<&[u8]> = None;
    // Open blocks and mappings: (indentation, label, closed by a `}` line).
    let mut open: Vec<(usize, &[u8], bool)> = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |p| start + p);
        let raw = &data[start..end];
        let indent = raw.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        let line = raw[indent..].trim_ascii_end();
        let line_start = start + indent;
        start = end + 1;
        if line.is_empty() || line.starts_with(b"#") || line.starts_with(b";") || line.starts_with(b"//") {
            continue;
        }
        // YAML mappings close when a line is indented no deeper than they are.
        open.retain(|&(depth, _, braced)| braced || depth < indent);
        if let Some(label) = section_label(line) {
            section = Some(label);
            open.clear();
            continue;
        }
        if line == b"}" || line == b"};" {
            if let Some(last) = open.iter().rposition(|o| o.2) {
                open.truncate(last);
            }
            continue;
        }
        if let Some(label) = block_label(line) {
            if open.len() < MAX_OPEN {
                open.push((indent, label, true));
            }
            continue;
        }
        if let Some(label) = mapping_label(line) {
            if open.len() < MAX_OPEN {
                open.push((indent, label, false));
            }
            continue;
        }
        if let Some((name, value_at)) = docker_env(line) {
            if is_credential_name(name) && out.bytes.len() < super::MAX_TEXT_VIEW {
                let view_line = out.bytes.len();
                out.bytes.extend_from_slice(name);
                // The `=` is what this view adds.
                out.focus
                    .push(((view_line + name.len()) as u64, (view_line + name.len() + 1) as u64));
                out.bytes.push(b'=');
                let value_start = line_start + value_at;
                out.origin
                    .push(lines.excerpt(out.bytes.len(), value_start, line_start + line.len()));
                out.bytes.extend_from_slice(&line[value_at..]);
                out.bytes.push(b'\n');
            }
            continue;
        }
        let Some((key, value_at)) = assignment(line) else {
            continue;
        };
        if !is_credential_name(key) || (section.is_none() && open.is_empty()) {
            continue;
        }
        if out.bytes.len() >= super::MAX_TEXT_VIEW {
            break;
        }
        let mut labels: Vec<&[u8]> = open.iter().rev().map(|o| o.1).chain(section).take(MAX_LABELS).collect();
        labels.reverse();
        let view_line = out.bytes.len();
        for label in &labels {
            out.bytes.extend_from_slice(label);
            out.bytes.push(b'.');
        }
        // The labels are what this view adds: a match must reach into them (the `.` after
        // them is not counted, so a rule matching `api_key = …` alone is not reported again).
        out.focus.push((view_line as u64, (out.bytes.len() - 1) as u64));
        let value_start = line_start + value_at;
        let value_end = line_start + line.len();
        out.origin
            .push(lines.excerpt(out.bytes.len() + value_at, value_start, value_end));
        out.bytes.extend_from_slice(line);
        out.bytes.push(b'\n');
    }
    out.finish("sections")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(data: &str) -> String {
        view(data.as_bytes())
            .map(|v| String::from_utf8(v.bytes).expect("utf-8"))
            .unwrap_or_default()
    }

    #[test]
    fn sections_blocks_and_mappings_label_their_keys() {
        assert_eq!(
            text("[DEFAULT]\nlevel = 1\n\n[cohere]\napi_key = abc123\n"),
            "cohere.api_key = abc123\n"
        );
        assert_eq!(
            text("[tool.app.mistral]\napi_key = \"x\"\n"),
            "tool.app.mistral.api_key = \"x\"\n"
        );
        assert_eq!(
            text("provider \"cloudflare\" {\n  email = \"a@b\"\n  api_key = \"k1\"\n}\napi_key = \"k2\"\n"),
            "cloudflare.api_key = \"k1\"\n"
        );
        assert_eq!(
            text("datadog:\n  site: eu\n  api_key: k1\nother:\n  token: k2\nroot_token: k3\n"),
            "datadog.api_key: k1\nother.token: k2\n"
        );
        assert_eq!(text("api_key = \"top level, no label\"\n"), "");
    }

    #[test]
    fn dockerfile_env_without_equals_is_assigned() {
        let data = "FROM python:3.12\nENV DATADOG_APP_KEY fbe3c185\nENV MODE=prod\n";
        assert_eq!(text(data), "DATADOG_APP_KEY=fbe3c185\n");
    }

    #[test]
    fn excerpts_point_at_the_value() {
        let data = b"[cohere]\napi_key = MCiS1rbS\n";
        let v = view(data).expect("view");
        let e = &v.origin[0];
        assert_eq!(&data[e.blob_start as usize..e.blob_end as usize], b"MCiS1rbS");
        assert_eq!((e.line, e.column), (2, 11));
        assert_eq!(v.focus, Some(vec![(0, 6)]));
    }
}
