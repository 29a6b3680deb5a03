//! Package-index upload tokens: `pypi-` and the base64url of a version 2 binary macaroon
//! (libmacaroons' format: version byte 2, then packets `field type, length, data` as
//! varints, each section closed by a 0). The index writes its caveats as JSON: the legacy
//! `{"version": 1, "permissions": "user" | {"projects": [...]}}`, or `[tag, fields…]` with
//! tag 0 expiry, 1 project names, 2 project ids, 3 user, 4 trusted publisher.

use serde_json::{json, Value};

/// What a token's macaroon says.
#[derive(Clone, Debug, PartialEq)]
pub struct Macaroon {
    /// Where the macaroon is meant to be used.
    pub location: String,
    /// The token's identifier (the index's database id for it).
    pub identifier: String,
    /// First-party caveats, as written.
    pub caveats: Vec<String>,
}

impl Macaroon {
    /// `user` (acts for the whole account), `project` (restricted to named projects),
    /// `trusted-publisher`, or `unknown`.
    pub fn scope(&self) -> &'static str {
        let mut scope = "user";
        for caveat in &self.caveats {
            match serde_json::from_str::<Value>(caveat) {
                Ok(Value::Array(parts)) => match parts.first().and_then(Value::as_u64) {
                    Some(1 | 2) => return "project",
                    Some(4) => return "trusted-publisher",
                    Some(0 | 3) => {}
                    _ => scope = "unknown",
                },
                Ok(Value::Object(legacy)) => match legacy.get("permissions") {
                    Some(Value::String(s)) if s == "user" => {}
                    Some(Value::Object(p)) if p.contains_key("projects") => return "project",
                    _ => scope = "unknown",
                },
                _ => scope = "unknown",
            }
        }
        scope
    }

    /// Project names named by the caveats.
    pub fn projects(&self) -> Vec<String> {
        let mut names = Vec::new();
        for caveat in &self.caveats {
            let list = match serde_json::from_str::<Value>(caveat) {
                Ok(Value::Array(parts)) if parts.first().and_then(Value::as_u64) == Some(1) => parts.get(1).cloned(),
                Ok(Value::Object(legacy)) => legacy.get("permissions").and_then(|p| p.get("projects")).cloned(),
                _ => None,
            };
            if let Some(Value::Array(list)) = list {
                names.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
            }
        }
        names
    }

    /// The expiry (Unix seconds) an expiry caveat sets.
    pub fn expires(&self) -> Option<u64> {
        self.caveats
            .iter()
            .find_map(|caveat| match serde_json::from_str::<Value>(caveat) {
                Ok(Value::Array(parts)) if parts.first().and_then(Value::as_u64) == Some(0) => parts.get(1)?.as_u64(),
                _ => None,
            })
    }

    /// The details a finding reports.
    pub fn details(&self) -> Vec<(&'static str, Value)> {
        let mut details = vec![
            ("location", json!(self.location)),
            ("identifier", json!(self.identifier)),
            ("scope", json!(self.scope())),
            ("caveats", json!(self.caveats)),
        ];
        let projects = self.projects();
        if !projects.is_empty() {
            details.push(("projects", json!(projects)));
        }
        if let Some(expires) = self.expires() {
            details.push(("expires", json!(expires)));
        }
        details
    }
}

fn varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// One packet: (field type, data); field type 0 closes a section and has no data.
fn packet<'a>(input: &mut &'a [u8]) -> Option<(u64, &'a [u8])> {
    let field = varint(input)?;
    if field == 0 {
        return Some((0, &[]));
    }
    let len = usize::try_from(varint(input)?).ok()?;
    if input.len() < len {
        return None;
    }
    let (data, rest) = input.split_at(len);
    *input = rest;
    Some((field, data))
}

const LOCATION: u64 = 1;
const IDENTIFIER: u64 = 2;
const VERIFICATION_ID: u64 = 4;
const SIGNATURE: u64 = 6;

/// Parses the binary macaroon; `None` when it is not one.
pub fn parse(binary: &[u8]) -> Option<Macaroon> {
    let mut input = binary.strip_prefix(&[2])?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut location = String::new();
    let mut identifier = None;
    loop {
        match packet(&mut input)? {
            (0, _) => break,
            (LOCATION, data) => location = text(data),
            (IDENTIFIER, data) => identifier = Some(text(data)),
            _ => return None,
        }
    }
    let identifier = identifier?;
    let mut caveats = Vec::new();
    loop {
        // A caveat section, or the 0 that ends the caveats.
        let (field, data) = packet(&mut input)?;
        if field == 0 {
            break;
        }
        let mut caveat = None;
        let mut current = (field, data);
        loop {
            match current {
                (0, _) => break,
                (IDENTIFIER, data) => caveat = Some(text(data)),
                (LOCATION | VERIFICATION_ID, _) => {}
                _ => return None,
            }
            current = packet(&mut input)?;
        }
        // A third-party caveat without an identifier is malformed, but the token may still
        // be one: keep what parsed.
        caveats.extend(caveat);
        if caveats.len() > 64 {
            return None;
        }
    }
    match packet(&mut input)? {
        (SIGNATURE, signature) if signature.len() == 32 => Some(Macaroon {
            location,
            identifier,
            caveats,
        }),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A binary macaroon as the index writes it (signature bytes arbitrary).
    pub(crate) fn serialize(location: &str, identifier: &str, caveats: &[&str]) -> Vec<u8> {
        let mut out = vec![2];
        let field = |out: &mut Vec<u8>, kind: u8, data: &[u8]| {
            out.push(kind);
            let mut len = data.len();
            while len >= 0x80 {
                out.push((len as u8 & 0x7f) | 0x80);
                len >>= 7;
            }
            out.push(len as u8);
            out.extend_from_slice(data);
        };
        field(&mut out, 1, location.as_bytes());
        field(&mut out, 2, identifier.as_bytes());
        out.push(0);
        for caveat in caveats {
            field(&mut out, 2, caveat.as_bytes());
            out.push(0);
        }
        out.push(0);
        field(&mut out, 6, &[0x5a; 32]);
        out
    }

    #[test]
    fn scopes_from_current_and_legacy_caveats() {
        let id = "6c4bd0b5-2a7e-4e84-9c55-3f1d1b0e8d6a";
        let user = parse(&serialize(
            "index.test",
            id,
            &[r#"{"version": 1, "permissions": "user"}"#],
        ))
        .expect("parses");
        assert_eq!((user.identifier.as_str(), user.scope()), (id, "user"));
        let project = parse(&serialize(
            "index.test",
            id,
            &[r#"[0,1900000000,1700000000]"#, r#"[1,["sampleproject"]]"#],
        ))
        .expect("parses");
        assert_eq!(project.scope(), "project");
        assert_eq!(project.projects(), ["sampleproject"]);
        assert_eq!(project.expires(), Some(1_900_000_000));
    }

    #[test]
    fn rejects_what_is_not_a_macaroon() {
        let good = serialize("index.test", "id", &[]);
        assert!(parse(&good).is_some());
        assert!(parse(&good[..good.len() - 1]).is_none(), "short signature");
        assert!(parse(b"\x02random bytes that are not packets").is_none());
        assert!(parse(&good[1..]).is_none(), "no version byte");
    }
}
