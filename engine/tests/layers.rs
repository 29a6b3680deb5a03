//! Keeps the engine's layering honest: every `crate::` path in `engine/src` must name a module
//! of a lower layer (or the file's own module), so no import runs upward and no circle can
//! form; nothing inside the crate goes through `lib.rs`. Inside `stages/`, a stage imports
//! only the stages before it in the order data flows. See docs/ARCHITECTURE.md.

use std::collections::BTreeMap;
use std::path::Path;

/// Top-level modules from the bottom layer up; a module may import only those before it.
/// Modules on one line share a layer and may not import each other.
const LAYERS: &[&[&str]] = &[
    &["util"],
    &["core"],
    &["rules"],
    &["containers", "checks"],
    &["views", "policy"],
    &["datastore"],
    &["dedup"],
    &["stages"],
    &["error"],
    &["runtime", "sink"],
    &["api"],
];

/// The stages in the order data flows; each may import only those before it.
const STAGES: &[&str] = &["walk", "load", "matcher", "confirm", "ship", "worker", "report"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The module paths a source file names after `crate::`, with their line numbers.
fn crate_paths(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for (at, _) in code.match_indices("crate::") {
            if code[..at].ends_with("pub(") {
                continue;
            }
            let rest = &code[at + "crate::".len()..];
            let path: Vec<String> = rest
                .split("::")
                .map(|p| {
                    p.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|p| !p.is_empty())
                .collect();
            if !path.is_empty() {
                out.push((n + 1, path));
            }
        }
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read engine/src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_import_runs_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    assert!(files.len() > 40, "engine/src not found whole: {files:?}");
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let parts: Vec<String> = relative
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
            .collect();
        let own = parts[0].as_str();
        if own == "lib" {
            continue; // the facade: it re-exports, and nothing imports it
        }
        let own_layer = layer_of(own).unwrap_or_else(|| panic!("{own}: a module missing from LAYERS"));
        let text = std::fs::read_to_string(file).expect("read");
        // A stage's own name, for `stages/<name>.rs` (`mod.rs` declares them).
        let own_stage = (own == "stages" && parts.len() == 2 && parts[1] != "mod").then(|| parts[1].clone());
        for (line, path) in crate_paths(&text) {
            let at = format!("{}:{line}: crate::{}", relative.display(), path.join("::"));
            let target = path[0].as_str();
            if target == own {
                if let (Some(me), Some(stage)) = (&own_stage, path.get(1)) {
                    let rank = |s: &str| STAGES.iter().position(|x| *x == s);
                    match (rank(me), rank(stage)) {
                        (Some(a), Some(b)) if b < a || stage == me => {}
                        _ => wrong.entry(at).or_default().push("a later stage".into()),
                    }
                }
                continue;
            }
            match layer_of(target) {
                Some(layer) if layer < own_layer => {}
                Some(_) => wrong
                    .entry(at)
                    .or_default()
                    .push(format!("{target} is not below {own}")),
                None => wrong.entry(at).or_default().push(format!(
                    "{target} is not a module: the crate root's re-exports are for callers"
                )),
            }
        }
        if let Some(me) = &own_stage {
            for line in text.lines().filter(|l| l.trim_start().starts_with("use super::")) {
                let stage: String = line
                    .trim_start()
                    .trim_start_matches("use super::")
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let rank = |s: &str| STAGES.iter().position(|x| *x == s);
                if !matches!((rank(me), rank(&stage)), (Some(a), Some(b)) if b < a) && !stage.is_empty() {
                    wrong
                        .entry(format!("{}: {line}", relative.display()))
                        .or_default()
                        .push("a later stage".into());
                }
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layering:\n{wrong:#?}");
}

#[test]
fn the_checker_sees_an_upward_import() {
    let text = "use crate::runtime::RunOptions;\nuse crate::Finding; // and a comment crate::api\n";
    let paths = crate_paths(text);
    assert_eq!(paths.len(), 2);
    assert_eq!(paths[0], (1, vec!["runtime".to_owned(), "RunOptions".to_owned()]));
    assert_eq!(paths[1].1, vec!["Finding".to_owned()]);
    assert!(layer_of("runtime") > layer_of("core"));
    assert!(layer_of("Finding").is_none());
}
