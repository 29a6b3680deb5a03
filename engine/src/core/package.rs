//! Release file names → {name, version, kind}, per the wheel and sdist file-name
//! specifications, with project names normalised (lowercase, runs of `-_.` → `-`).
//!
//! Only the name is read here; formats are always sniffed from the bytes.

use serde::Serialize;

/// What kind of release file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageKind {
    /// A built distribution (`.whl`).
    Wheel,
    /// A source distribution (`.tar.gz`, `.zip`, …).
    Sdist,
    /// A legacy egg (`.egg`).
    Egg,
}

/// The release a file belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Package {
    /// Normalised project name.
    pub name: String,
    /// Version as written in the file name.
    pub version: String,
    /// The file name itself.
    pub filename: String,
    /// Wheel, sdist or egg.
    pub kind: PackageKind,
}

/// Source distribution suffixes, longest first so `.tar.gz` wins over `.gz`.
const SDIST_SUFFIXES: &[&str] = &[
    ".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".tgz", ".tbz", ".txz", ".tar", ".zip",
];

/// Normalises a project name: lowercase, every run of `-`, `_` and `.` becomes one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator {
                out.push('-');
            }
            in_separator = true;
        } else {
            out.extend(c.to_lowercase());
            in_separator = false;
        }
    }
    out
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
}

fn valid_version(version: &str) -> bool {
    version.starts_with(|c: char| c.is_ascii_digit() || c == 'v')
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '!'))
}

/// Parses a release file name, or `None` when it is not one.
pub fn parse_filename(filename: &str) -> Option<Package> {
    let lower = filename.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix(".whl").map(|_| &filename[..filename.len() - 4]) {
        return parse_wheel(stem, filename);
    }
    if lower.ends_with(".egg") {
        return parse_egg(&filename[..filename.len() - 4], filename);
    }
    let suffix = SDIST_SUFFIXES.iter().find(|s| lower.ends_with(*s))?;
    parse_sdist(&filename[..filename.len() - suffix.len()], filename)
}

/// `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`; names use `_` for `-`.
fn parse_wheel(stem: &str, filename: &str) -> Option<Package> {
    let parts: Vec<&str> = stem.split('-').collect();
    if !(parts.len() == 5 || parts.len() == 6) || !valid_name(parts[0]) || !valid_version(parts[1]) {
        return None;
    }
    if parts.len() == 6 && !parts[2].starts_with(|c: char| c.is_ascii_digit()) {
        return None; // a build tag starts with a digit
    }
    Some(Package {
        name: normalize_name(parts[0]),
        version: parts[1].to_owned(),
        filename: filename.to_owned(),
        kind: PackageKind::Wheel,
    })
}

/// `{name}-{version}(-py{X.Y}(-{platform})?)?.egg`.
fn parse_egg(stem: &str, filename: &str) -> Option<Package> {
    let mut parts = stem.split('-');
    let name = parts.next()?;
    let version = parts.next()?;
    if !valid_name(name) || !valid_version(version) {
        return None;
    }
    Some(Package {
        name: normalize_name(name),
        version: version.to_owned(),
        filename: filename.to_owned(),
        kind: PackageKind::Egg,
    })
}

/// `{name}-{version}` plus a suffix. Legacy names may themselves contain `-`: the version
/// starts after the last `-` that is followed by a digit.
fn parse_sdist(stem: &str, filename: &str) -> Option<Package> {
    let split = stem
        .char_indices()
        .filter(|&(i, c)| c == '-' && stem[i + 1..].starts_with(|d: char| d.is_ascii_digit()))
        .map(|(i, _)| i)
        .next_back()?;
    let (name, version) = (&stem[..split], &stem[split + 1..]);
    if !valid_name(name) || !valid_version(version) {
        return None;
    }
    Some(Package {
        name: normalize_name(name),
        version: version.to_owned(),
        filename: filename.to_owned(),
        kind: PackageKind::Sdist,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(f: &str) -> Option<(String, String, PackageKind)> {
        parse_filename(f).map(|p| (p.name, p.version, p.kind))
    }

    #[test]
    fn wheels() {
        assert_eq!(
            parsed("Foo_Bar-1.0.2-py3-none-any.whl"),
            Some(("foo-bar".into(), "1.0.2".into(), PackageKind::Wheel))
        );
        assert_eq!(
            parsed("numpy-2.1.0-1-cp311-cp311-manylinux_2_17_x86_64.whl"),
            Some(("numpy".into(), "2.1.0".into(), PackageKind::Wheel))
        );
        assert_eq!(parsed("not-a-wheel.whl"), None);
        assert_eq!(parsed("numpy-2.1.0-x-cp311-cp311-linux.whl"), None);
    }

    #[test]
    fn sdists_including_legacy_names_with_dashes() {
        assert_eq!(
            parsed("requests-2.32.3.tar.gz"),
            Some(("requests".into(), "2.32.3".into(), PackageKind::Sdist))
        );
        assert_eq!(
            parsed("zope.interface-6.0.zip"),
            Some(("zope-interface".into(), "6.0".into(), PackageKind::Sdist))
        );
        assert_eq!(
            parsed("python-dateutil-2.9.0.post0.tar.gz"),
            Some(("python-dateutil".into(), "2.9.0.post0".into(), PackageKind::Sdist))
        );
        assert_eq!(parsed("README.tar.gz"), None);
    }

    #[test]
    fn eggs() {
        assert_eq!(
            parsed("setuptools-0.6c11-py2.7.egg"),
            Some(("setuptools".into(), "0.6c11".into(), PackageKind::Egg))
        );
    }

    #[test]
    fn names_normalise() {
        assert_eq!(normalize_name("Django_REST..framework"), "django-rest-framework");
    }
}
