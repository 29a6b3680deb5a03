//! Where in a project a finding sits: test code, fixtures, examples or documentation.
//! Reported beside the finding, never used to drop it: a live key in `tests/` is still live,
//! but a reviewer triaging a mirror looks at the others first.

/// The kind of place a path is, from its directory names and file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PathContext {
    /// Test suites: `tests/`, `test_*.py`, `*_test.go`, `conftest.py`.
    Test,
    /// Test data: `fixtures/`, `testdata/`, cassettes.
    Fixture,
    /// Examples, samples, demos, tutorials.
    Example,
    /// Documentation: `docs/`, READMEs, `.md`/`.rst` pages.
    Docs,
}

impl PathContext {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PathContext::Test => "test",
            PathContext::Fixture => "fixture",
            PathContext::Example => "example",
            PathContext::Docs => "docs",
        }
    }
}

fn directory_context(dir: &str) -> Option<PathContext> {
    let dir = dir.to_ascii_lowercase();
    Some(match dir.as_str() {
        "fixtures" | "fixture" | "testdata" | "test_data" | "test-data" | "cassettes" | "mocks" | "__snapshots__" => {
            PathContext::Fixture
        }
        // `tests`, `testing`, `test_utils`, and the self-test suites some packages ship
        // (`SelfTest`, gevent's `greentest`).
        d if d.starts_with("test")
            || matches!(
                d,
                "__tests__" | "unittests" | "unit_tests" | "selftest" | "greentest" | "spec" | "specs" | "t"
            ) =>
        {
            PathContext::Test
        }
        "example" | "examples" | "sample" | "samples" | "demo" | "demos" | "tutorial" | "tutorials" | "notebooks" => {
            PathContext::Example
        }
        "doc" | "docs" | "documentation" | "man" => PathContext::Docs,
        _ => return None,
    })
}

fn file_context(name: &str) -> Option<PathContext> {
    let lower = name.to_ascii_lowercase();
    let stem = lower.split('.').next().unwrap_or_default();
    if stem.starts_with("test_")
        || stem.ends_with("_test")
        || stem.ends_with("_tests")
        || stem == "conftest"
        || stem == "tests"
        || stem == "test"
    {
        return Some(PathContext::Test);
    }
    if lower.ends_with(".test.js")
        || lower.ends_with(".spec.js")
        || lower.ends_with(".test.ts")
        || lower.ends_with(".spec.ts")
    {
        return Some(PathContext::Test);
    }
    if stem.starts_with("example") || stem.ends_with("_example") || stem.starts_with("sample") {
        return Some(PathContext::Example);
    }
    // A package's `PKG-INFO` and `METADATA` carry its README as the long description.
    if matches!(
        stem,
        "readme" | "changelog" | "changes" | "history" | "pkg-info" | "metadata"
    ) {
        return Some(PathContext::Docs);
    }
    if [".md", ".rst", ".markdown", ".adoc"]
        .iter()
        .any(|ext| lower.ends_with(ext))
    {
        return Some(PathContext::Docs);
    }
    None
}

/// The context of a file, or of the members inside it: the innermost marked member decides
/// (a test file in a wheel is `test`). The path on disk counts only for plain files, so a
/// mirror kept under `/srv/tests/` does not mark every package in it. In one path, the first
/// marked directory counts before the file name (`docs/examples/x.py` is `docs`).
pub fn context_of(path: &str, members: &[String]) -> Option<PathContext> {
    let parts: Vec<&str> = if members.is_empty() {
        vec![path]
    } else {
        members.iter().map(String::as_str).collect()
    };
    for part in parts.into_iter().rev() {
        let mut segments: Vec<&str> = part.split(['/', '\\']).filter(|s| !s.is_empty()).collect();
        let file = segments.pop();
        if let Some(found) = segments.iter().find_map(|d| directory_context(d)) {
            return Some(found);
        }
        if let Some(found) = file.and_then(file_context) {
            return Some(found);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(parts: &[&str]) -> Option<&'static str> {
        let members: Vec<String> = parts[1..].iter().map(|m| m.to_string()).collect();
        context_of(parts[0], &members).map(PathContext::as_str)
    }

    #[test]
    fn paths_and_members() {
        assert_eq!(of(&["src/acme/settings.py"]), None);
        assert_eq!(
            of(&["dist/acme-1.0.tar.gz", "acme-1.0/tests/test_api.py"]),
            Some("test")
        );
        assert_eq!(of(&["acme-1.0-py3-none-any.whl", "acme/test_client.py"]), Some("test"));
        assert_eq!(of(&["repo/docs/examples/quickstart.py"]), Some("docs"));
        assert_eq!(of(&["pkg.tar.gz", "pkg-1.0/README.md"]), Some("docs"));
        assert_eq!(of(&["pkg.tar.gz", "pkg-1.0/tests/fixtures/cfg.json"]), Some("test"));
        assert_eq!(of(&["pkg.tar.gz", "pkg-1.0/testdata/cfg.json"]), Some("fixture"));
        assert_eq!(
            of(&["/srv/tests/mirror/acme-1.0.tar.gz", "acme-1.0/acme/config.py"]),
            None,
            "members decide"
        );
        assert_eq!(of(&["examples/settings.py"]), Some("example"));
        assert_eq!(
            of(&["pycryptodome.whl", "Crypto/SelfTest/PublicKey/test_import_RSA.py"]),
            Some("test")
        );
        assert_eq!(
            of(&["gevent.tar.gz", "gevent-26.9.0/src/greentest/3.10/keycert.pem"]),
            Some("test")
        );
        assert_eq!(of(&["lib/latest/settings.py"]), None);
        assert_eq!(
            of(&["acme-1.0-py3-none-any.whl", "acme-1.0.dist-info/METADATA"]),
            Some("docs")
        );
        assert_eq!(
            of(&["pycryptodome.whl", "Crypto/SelfTest/PublicKey/test_import_RSA.py"]),
            Some("test")
        );
        assert_eq!(of(&["lib/latest/settings.py"]), None);
        assert_eq!(
            of(&["acme-1.0-py3-none-any.whl", "acme-1.0.dist-info/METADATA"]),
            Some("docs")
        );
    }
}
