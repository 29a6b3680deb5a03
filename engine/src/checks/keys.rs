//! Private keys parsed far enough to say what they are: algorithm, size, encrypted or not.
//! PKCS#1, SEC1, PKCS#8 and DSA DER bodies (RFC 8017, RFC 5915, RFC 5958), OpenSSH's
//! `openssh-key-v1` container (PROTOCOL.key) and OpenPGP secret-key packets (RFC 4880, RFC 9580).
//! Nothing is decrypted; only the public parts and the headers are read.

/// What a key body revealed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyFacts {
    /// `rsa`, `ec`, `dsa`, `ed25519`, `x25519`, `ed448`, `elgamal`, … or the header's words.
    pub algorithm: String,
    /// Key size in bits (the modulus, the prime or the curve), when known.
    pub bits: Option<u32>,
    /// The curve's name, for elliptic keys.
    pub curve: Option<&'static str>,
    /// `pkcs1`, `sec1`, `pkcs8`, `dsa`, `openssh`, `openpgp`.
    pub format: &'static str,
    /// The private part is encrypted with a passphrase.
    pub encrypted: bool,
}

/// One DER element: its tag, its content, and what follows it.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;

/// The elements of a SEQUENCE.
fn sequence(input: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let (tag, mut body, _) = der(input)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut items = Vec::new();
    while !body.is_empty() {
        let (tag, content, rest) = der(body)?;
        items.push((tag, content));
        body = rest;
    }
    Some(items)
}

/// Bits in a big-endian unsigned integer (leading zero bytes ignored).
fn bit_length(int: &[u8]) -> u32 {
    let int = &int[int.iter().position(|&b| b != 0).unwrap_or(int.len())..];
    match int.first() {
        Some(&b) => (int.len() as u32 - 1) * 8 + (8 - b.leading_zeros()),
        None => 0,
    }
}

/// Named curves by the DER bytes of their object identifier.
fn curve_of(oid: &[u8]) -> Option<(&'static str, u32)> {
    Some(match oid {
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] => ("P-256", 256),
        [0x2b, 0x81, 0x04, 0x00, 0x22] => ("P-384", 384),
        [0x2b, 0x81, 0x04, 0x00, 0x23] => ("P-521", 521),
        [0x2b, 0x81, 0x04, 0x00, 0x0a] => ("secp256k1", 256),
        // OpenPGP spells its curves with the same OIDs plus these (RFC 9580 §9.2).
        [0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01] => ("Ed25519", 256),
        [0x2b, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01] => ("Curve25519", 255),
        [0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07] => ("brainpoolP256r1", 256),
        [0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b] => ("brainpoolP384r1", 384),
        [0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d] => ("brainpoolP512r1", 512),
        _ => return None,
    })
}

fn elliptic(curve: Option<(&'static str, u32)>, format: &'static str) -> KeyFacts {
    KeyFacts {
        algorithm: "ec".into(),
        bits: curve.map(|c| c.1),
        curve: curve.map(|c| c.0),
        format,
        encrypted: false,
    }
}

/// `RSAPrivateKey ::= SEQUENCE { version, modulus, publicExponent, … }` (RFC 8017 A.1.2).
fn pkcs1(body: &[u8]) -> Option<KeyFacts> {
    let items = sequence(body)?;
    match items.as_slice() {
        [(INTEGER, _), (INTEGER, modulus), (INTEGER, _), ..] if items.len() >= 9 => Some(KeyFacts {
            algorithm: "rsa".into(),
            bits: Some(bit_length(modulus)),
            format: "pkcs1",
            ..KeyFacts::default()
        }),
        _ => None,
    }
}

/// `ECPrivateKey ::= SEQUENCE { version 1, privateKey, [0] parameters OPTIONAL, … }` (RFC 5915).
fn sec1(body: &[u8]) -> Option<KeyFacts> {
    let items = sequence(body)?;
    let [(INTEGER, [1]), (OCTET_STRING, private), rest @ ..] = items.as_slice() else {
        return None;
    };
    let curve = rest
        .iter()
        .find(|(tag, _)| *tag == 0xa0)
        .and_then(|(_, params)| der(params))
        .and_then(|(tag, oid, _)| (tag == OID).then(|| curve_of(oid)).flatten());
    let mut facts = elliptic(curve, "sec1");
    facts.bits = facts.bits.or(Some(private.len() as u32 * 8));
    Some(facts)
}

/// OpenSSL's DSA layout: `SEQUENCE { 0, p, q, g, y, x }`.
fn dsa(body: &[u8]) -> Option<KeyFacts> {
    let items = sequence(body)?;
    match items.as_slice() {
        [(INTEGER, [0]), (INTEGER, p), (INTEGER, _), (INTEGER, _), (INTEGER, _), (INTEGER, _)] => Some(KeyFacts {
            algorithm: "dsa".into(),
            bits: Some(bit_length(p)),
            format: "dsa",
            ..KeyFacts::default()
        }),
        _ => None,
    }
}

/// `OneAsymmetricKey ::= SEQUENCE { version, AlgorithmIdentifier, OCTET STRING key, … }` (RFC 5958).
fn pkcs8(body: &[u8]) -> Option<KeyFacts> {
    let items = sequence(body)?;
    let [(INTEGER, _), (SEQUENCE, algorithm), (OCTET_STRING, key), ..] = items.as_slice() else {
        return None;
    };
    let (tag, oid, params) = der(algorithm)?;
    if tag != OID {
        return None;
    }
    let named = |algorithm: &str, bits: u32| KeyFacts {
        algorithm: algorithm.into(),
        bits: Some(bits),
        format: "pkcs8",
        ..KeyFacts::default()
    };
    let mut facts = match oid {
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]
        | [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a] => pkcs1(key)?,
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01] => {
            let curve = der(params).and_then(|(tag, oid, _)| (tag == OID).then(|| curve_of(oid)).flatten());
            let mut facts = elliptic(curve, "pkcs8");
            if facts.bits.is_none() {
                facts.bits = sec1(key).and_then(|k| k.bits);
            }
            facts
        }
        [0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01] => {
            let p = sequence(params).and_then(|ps| ps.first().map(|(_, p)| bit_length(p)));
            KeyFacts {
                algorithm: "dsa".into(),
                bits: p,
                ..KeyFacts::default()
            }
        }
        [0x2b, 0x65, 0x70] => named("ed25519", 256),
        [0x2b, 0x65, 0x71] => named("ed448", 456),
        [0x2b, 0x65, 0x6e] => named("x25519", 255),
        [0x2b, 0x65, 0x6f] => named("x448", 448),
        _ => KeyFacts {
            algorithm: "unknown".into(),
            ..KeyFacts::default()
        },
    };
    facts.format = "pkcs8";
    Some(facts)
}

/// A PEM body (DER) by its block label.
pub fn parse_der(label: &str, der_bytes: &[u8]) -> Option<KeyFacts> {
    match label {
        "RSA PRIVATE KEY" => pkcs1(der_bytes),
        "EC PRIVATE KEY" => sec1(der_bytes),
        "DSA PRIVATE KEY" => dsa(der_bytes),
        "PRIVATE KEY" => pkcs8(der_bytes),
        "ENCRYPTED PRIVATE KEY" => sequence(der_bytes).map(|_| KeyFacts {
            algorithm: "unknown".into(),
            format: "pkcs8",
            encrypted: true,
            ..KeyFacts::default()
        }),
        "OPENSSH PRIVATE KEY" => openssh(der_bytes),
        "PGP PRIVATE KEY BLOCK" => openpgp(der_bytes),
        _ => None,
    }
}

/// SSH wire-format reader (RFC 4251 §5): `uint32` and length-prefixed `string`.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        if self.0.len() < len {
            return None;
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(s)
    }
}

/// `openssh-key-v1\0`, cipher, kdf, kdf options, key count, then the first public key blob.
fn openssh(body: &[u8]) -> Option<KeyFacts> {
    let mut wire = Wire(body.strip_prefix(b"openssh-key-v1\0")?);
    let cipher = wire.string()?;
    wire.string()?; // kdf name
    wire.string()?; // kdf options
    if wire.u32()? == 0 {
        return None;
    }
    let mut public = Wire(wire.string()?);
    let key_type = public.string()?;
    let (algorithm, bits, curve): (&str, Option<u32>, Option<&'static str>) = match key_type {
        b"ssh-rsa" => {
            public.string()?; // e
            ("rsa", Some(bit_length(public.string()?)), None)
        }
        b"ssh-dss" => ("dsa", Some(bit_length(public.string()?)), None),
        b"ssh-ed25519" | b"sk-ssh-ed25519@openssh.com" => ("ed25519", Some(256), None),
        b"ecdsa-sha2-nistp256" | b"sk-ecdsa-sha2-nistp256@openssh.com" => ("ec", Some(256), Some("P-256")),
        b"ecdsa-sha2-nistp384" => ("ec", Some(384), Some("P-384")),
        b"ecdsa-sha2-nistp521" => ("ec", Some(521), Some("P-521")),
        _ => ("unknown", None, None),
    };
    Some(KeyFacts {
        algorithm: algorithm.into(),
        bits,
        curve,
        format: "openssh",
        encrypted: cipher != b"none",
    })
}

/// The first packet of an OpenPGP transferable secret key: a Secret-Key packet (tag 5).
fn openpgp(body: &[u8]) -> Option<KeyFacts> {
    let (&header, rest) = body.split_first()?;
    if header & 0x80 == 0 {
        return None;
    }
    let (tag, packet) = if header & 0x40 != 0 {
        // New format: one-, two- or five-octet lengths (RFC 9580 §4.2.1).
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = match first {
            0..=191 => (usize::from(first), rest),
            192..=223 => {
                let (&second, rest) = rest.split_first()?;
                (((usize::from(first) - 192) << 8) + usize::from(second) + 192, rest)
            }
            255 => {
                let (len, rest) = rest.split_first_chunk::<4>()?;
                (u32::from_be_bytes(*len) as usize, rest)
            }
            _ => (rest.len(), rest), // partial body: take what there is
        };
        (header & 0x3f, rest.get(..len.min(rest.len()))?)
    } else {
        let len_bytes = [1, 2, 4, 0][usize::from(header & 3)];
        let len = rest
            .get(..len_bytes)?
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let rest = &rest[len_bytes..];
        (
            (header >> 2) & 0x0f,
            if len_bytes == 0 {
                rest
            } else {
                rest.get(..len.min(rest.len()))?
            },
        )
    };
    if tag != 5 {
        return None;
    }
    let (&version, rest) = packet.split_first()?;
    // v4: created (4), algorithm (1); v5 and v6 add a 4-octet key material length.
    if !(4..=6).contains(&version) {
        return None;
    }
    let rest = rest.get(4..)?;
    let (&algorithm, mut fields) = rest.split_first()?;
    if version != 4 {
        fields = fields.get(4..)?;
    }
    // An MPI: a two-octet bit count, then the bytes (RFC 9580 §3.2).
    let mpi = |fields: &mut &[u8]| -> Option<u32> {
        let (count, rest) = fields.split_first_chunk::<2>()?;
        let bits = u32::from(u16::from_be_bytes(*count));
        *fields = rest.get((bits as usize).div_ceil(8)..)?;
        Some(bits)
    };
    let oid = |fields: &mut &[u8]| -> Option<&'static str> {
        let (&len, rest) = fields.split_first()?;
        let oid = rest.get(..usize::from(len))?;
        *fields = &rest[usize::from(len)..];
        Some(curve_of(oid).map_or("unknown", |c| c.0))
    };
    let mut curve = None;
    let (name, bits) = match algorithm {
        1..=3 => {
            let n = mpi(&mut fields)?;
            mpi(&mut fields)?;
            ("rsa", Some(n))
        }
        16 | 20 => {
            let p = mpi(&mut fields)?;
            mpi(&mut fields)?;
            mpi(&mut fields)?;
            ("elgamal", Some(p))
        }
        17 => {
            let p = mpi(&mut fields)?;
            for _ in 0..3 {
                mpi(&mut fields)?;
            }
            ("dsa", Some(p))
        }
        18 | 19 | 22 => {
            curve = Some(oid(&mut fields)?);
            mpi(&mut fields)?;
            if algorithm == 18 {
                let (&len, rest) = fields.split_first()?;
                fields = rest.get(usize::from(len)..)?;
            }
            let bits = curve.and_then(|c| (c != "unknown").then_some(c)).and_then(|c| match c {
                "Ed25519" => Some(256),
                "Curve25519" => Some(255),
                "P-256" | "secp256k1" | "brainpoolP256r1" => Some(256),
                "P-384" | "brainpoolP384r1" => Some(384),
                "P-521" => Some(521),
                "brainpoolP512r1" => Some(512),
                _ => None,
            });
            (
                if algorithm == 18 {
                    "ecdh"
                } else if algorithm == 22 {
                    "eddsa"
                } else {
                    "ecdsa"
                },
                bits,
            )
        }
        25 => ("x25519", Some(255)),
        27 => ("ed25519", Some(256)),
        26 | 28 => (if algorithm == 26 { "x448" } else { "ed448" }, Some(448)),
        _ => return None,
    };
    // After the public fields: the string-to-key usage octet; 0 means stored in the clear.
    let usage = fields.first().copied();
    Some(KeyFacts {
        algorithm: name.into(),
        bits,
        curve: curve.filter(|c| *c != "unknown"),
        format: "openpgp",
        encrypted: usage.is_some_and(|u| u != 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_and_bits() {
        assert_eq!(der(&[0x02, 0x01, 0x05, 0xff]), Some((0x02, &[0x05][..], &[0xff][..])));
        assert_eq!(der(&[0x04, 0x82, 0x00, 0x01, 0x07]), Some((0x04, &[0x07][..], &[][..])));
        assert_eq!(der(&[0x04, 0x05, 0x01]), None, "content shorter than its length");
        assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_length(&[0x01]), 1);
    }

    #[test]
    fn openssh_container_names_the_key() {
        let string = |s: &[u8]| [&(s.len() as u32).to_be_bytes()[..], s].concat();
        let public = [string(b"ssh-ed25519"), string(&[7; 32])].concat();
        let body = [
            &b"openssh-key-v1\0"[..],
            &string(b"aes256-ctr"),
            &string(b"bcrypt"),
            &string(&[0; 24]),
            &1u32.to_be_bytes(),
            &string(&public),
        ]
        .concat();
        let facts = openssh(&body).expect("parses");
        assert_eq!(
            (facts.algorithm.as_str(), facts.bits, facts.encrypted),
            ("ed25519", Some(256), true)
        );
        assert_eq!(openssh(&body[..body.len() - 3]), None, "truncated public key");
    }
}
