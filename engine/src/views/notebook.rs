//! Jupyter notebooks read as the code they hold: each code cell's source as Python text,
//! its outputs after it, and a value a cell displayed next to the expression that made it
//! (`cfg['aws_secret_access_key'] = 'xBW…'`): a key printed in an output cell is read
//! with its name. Every other string of the document follows as `"key": "value"`, so the
//! view holds all the notebook's text and replaces its JSON.

use serde_json::Value;

use super::View;

/// Whether bytes look like a notebook: a JSON object with cells and an nbformat.
pub fn is_notebook(data: &[u8]) -> bool {
    let head = &data[..data.len().min(512)];
    let tail = &data[data.len().saturating_sub(512)..];
    data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && memchr::memmem::find(head, b"\"cells\"").is_some()
        && memchr::memmem::find(tail, b"\"nbformat\"").is_some()
}

/// Notebooks larger than this are left to the other views.
const MAX_NOTEBOOK: usize = 64 << 20;

/// The text of a string or a list of strings (how nbformat stores multi-line text).
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

/// The view of a notebook, or `None` when it does not parse.
pub fn view(data: &[u8]) -> Option<View> {
    if data.len() > MAX_NOTEBOOK {
        return None;
    }
    let doc: Value = serde_json::from_slice(data).ok()?;
    let mut out = String::new();
    for cell in doc.get("cells")?.as_array()? {
        let source = text(cell.get("source").unwrap_or(&Value::Null));
        out.push_str(&source);
        if !out.ends_with('\n') {
            out.push('\n');
        }
        let last_line = source.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        for output in cell.get("outputs").and_then(Value::as_array).into_iter().flatten() {
            if let Some(stream) = output.get("text") {
                out.push_str(&text(stream));
                out.push('\n');
            }
            // An error: its value and its traceback, without the terminal colours that would
            // glue a token to the escape code before it.
            for field in ["ename", "evalue"] {
                if let Some(value) = output.get(field).and_then(Value::as_str) {
                    out.push_str(value);
                    out.push('\n');
                }
            }
            for line in output.get("traceback").and_then(Value::as_array).into_iter().flatten() {
                out.push_str(&without_colours(line.as_str().unwrap_or_default()));
                out.push('\n');
            }
            let Some(data) = output.get("data").and_then(Value::as_object) else {
                continue;
            };
            for (mime, value) in data {
                // Images are base64 of binary data: nothing to read.
                if mime.starts_with("image/") {
                    continue;
                }
                let shown = text(value);
                if mime == "text/plain" && output.get("output_type").and_then(Value::as_str) == Some("execute_result") {
                    out.push_str(last_line);
                    out.push_str(" = ");
                }
                out.push_str(&shown);
                out.push('\n');
            }
        }
        strings(cell, &mut out, &["source", "outputs"]);
    }
    strings(&doc, &mut out, &["cells"]);
    Some(View {
        decoder: "notebook",
        bytes: out.into_bytes(),
        focus: None,
        origin: Vec::new(),
    })
}

/// Text without ANSI escape sequences (`\x1b[0;31m`).
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, up to the final byte (`@` to `~`).
            for f in chars.by_ref() {
                if ('@'..='~').contains(&f) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Every string under `value` as a `"key": "value"` line, except under the `skip` keys of
/// the top object (rendered already).
fn strings(value: &Value, out: &mut String, skip: &[&str]) {
    fn walk(key: &str, value: &Value, out: &mut String, depth: u32) {
        if depth > 64 {
            return;
        }
        match value {
            Value::String(s) => {
                out.push_str(&serde_json::json!(key).to_string());
                out.push_str(": ");
                out.push_str(&Value::String(s.clone()).to_string());
                out.push('\n');
            }
            Value::Array(items) => items.iter().for_each(|v| walk(key, v, out, depth + 1)),
            Value::Object(map) => map.iter().for_each(|(k, v)| walk(k, v, out, depth + 1)),
            _ => {}
        }
    }
    if let Value::Object(map) = value {
        for (k, v) in map.iter().filter(|(k, _)| !skip.contains(&k.as_str())) {
            walk(k, v, out, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_code_with_displayed_values_named() {
        let nb = serde_json::json!({
            "cells": [
                {"cell_type": "code", "source": ["import boto3\n", "cfg['aws_secret_access_key']"],
                 "outputs": [{"output_type": "execute_result", "data": {"text/plain": ["'xBW+j+Rb'"], "image/png": "iVBORw0KGgo="}},
                             {"output_type": "error", "ename": "KeyError", "evalue": "'k'",
                              "traceback": ["\u{1b}[0;31mKeyError\u{1b}[0m: token=\u{1b}[1;32mghr_x\u{1b}[0m"]}]},
                {"cell_type": "markdown", "source": "# Notes", "metadata": {"tags": ["api"]}}
            ],
            "metadata": {"kernelspec": {"name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5
        });
        let bytes = serde_json::to_vec_pretty(&nb).expect("json");
        assert!(is_notebook(&bytes));
        let text = String::from_utf8(view(&bytes).expect("parses").bytes).expect("utf-8");
        assert_eq!(
            text,
            "import boto3\ncfg['aws_secret_access_key']\ncfg['aws_secret_access_key'] = 'xBW+j+Rb'\nKeyError\n'k'\nKeyError: token=ghr_x\n\
             \"cell_type\": \"code\"\n# Notes\n\"cell_type\": \"markdown\"\n\"tags\": \"api\"\n\"name\": \"python3\"\n"
        );
        assert!(!is_notebook(b"{\"cells\": 1}"));
    }
}
