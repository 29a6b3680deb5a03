//! Compiled Python (`.pyc`): the marshal stream parsed into code objects, and a text view
//! that puts each code object's credential-like names next to its string constants
//! (`access_token = "…"`), so keyword-context rules fire on compiled code as on source.
//!
//! CPython 2.7 and 3.x layouts are told apart by the magic number; parsing is bounded
//! (depth, object count) and any error simply ends the view.

/// Marshal type codes (`Python/marshal.c`).
mod ty {
    pub const NULL: u8 = b'0';
    pub const NONE: u8 = b'N';
    pub const FALSE: u8 = b'F';
    pub const TRUE: u8 = b'T';
    pub const STOPITER: u8 = b'S';
    pub const ELLIPSIS: u8 = b'.';
    pub const INT: u8 = b'i';
    pub const INT64: u8 = b'I';
    pub const FLOAT: u8 = b'f';
    pub const BINARY_FLOAT: u8 = b'g';
    pub const COMPLEX: u8 = b'x';
    pub const BINARY_COMPLEX: u8 = b'y';
    pub const LONG: u8 = b'l';
    pub const STRING: u8 = b's';
    pub const INTERNED: u8 = b't';
    pub const REF: u8 = b'r';
    pub const TUPLE: u8 = b'(';
    pub const LIST: u8 = b'[';
    pub const DICT: u8 = b'{';
    pub const CODE: u8 = b'c';
    pub const UNICODE: u8 = b'u';
    pub const SET: u8 = b'<';
    pub const FROZENSET: u8 = b'>';
    pub const ASCII: u8 = b'a';
    pub const ASCII_INTERNED: u8 = b'A';
    pub const SMALL_TUPLE: u8 = b')';
    pub const SHORT_ASCII: u8 = b'z';
    pub const SHORT_ASCII_INTERNED: u8 = b'Z';
    pub const FLAG_REF: u8 = 0x80;
}

/// A marshalled value, reduced to what the view needs.
#[derive(Clone, Debug)]
enum Obj {
    Str(Vec<u8>),
    Seq(Vec<Obj>),
    Code(Box<Code>),
    Other,
}

#[derive(Clone, Debug, Default)]
struct Code {
    name: String,
    consts: Vec<Obj>,
    names: Vec<String>,
    locals: Vec<String>,
}

/// Code object layout: leading 32-bit fields, then the object fields in order.
#[derive(Clone, Copy)]
enum Layout {
    /// 2.7: argcount, nlocals, stacksize, flags.
    Py27,
    /// 3.0–3.7: + kwonlyargcount.
    Py30,
    /// 3.8–3.10: + posonlyargcount.
    Py38,
    /// 3.11+: localsplusnames/kinds, qualname, exception table.
    Py311,
}

const MAX_DEPTH: u32 = 200;
const MAX_OBJECTS: usize = 1_000_000;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    layout: Layout,
    refs: Vec<Obj>,
    objects: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.data.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn len32(&mut self) -> Option<usize> {
        let n = self.u32()? as usize;
        // A length can never exceed what is left: refuse early instead of allocating.
        (n <= self.data.len() - self.pos).then_some(n)
    }

    fn object(&mut self, depth: u32) -> Option<Obj> {
        if depth > MAX_DEPTH || self.objects > MAX_OBJECTS {
            return None;
        }
        self.objects += 1;
        let code = self.byte()?;
        let flag = code & ty::FLAG_REF != 0;
        let kind = code & !ty::FLAG_REF;
        // Containers may refer to themselves: reserve their slot before their children.
        let slot = flag.then(|| {
            self.refs.push(Obj::Other);
            self.refs.len() - 1
        });
        let obj = match kind {
            ty::NULL | ty::NONE | ty::FALSE | ty::TRUE | ty::STOPITER | ty::ELLIPSIS => Obj::Other,
            ty::INT => self.bytes(4).map(|_| Obj::Other)?,
            ty::INT64 | ty::BINARY_FLOAT => self.bytes(8).map(|_| Obj::Other)?,
            ty::BINARY_COMPLEX => self.bytes(16).map(|_| Obj::Other)?,
            ty::FLOAT => {
                let n = self.byte()? as usize;
                self.bytes(n).map(|_| Obj::Other)?
            }
            ty::COMPLEX => {
                for _ in 0..2 {
                    let n = self.byte()? as usize;
                    self.bytes(n)?;
                }
                Obj::Other
            }
            ty::LONG => {
                let digits = (self.u32()? as i32).unsigned_abs() as usize;
                self.bytes(digits.checked_mul(2)?).map(|_| Obj::Other)?
            }
            ty::STRING | ty::INTERNED | ty::UNICODE | ty::ASCII | ty::ASCII_INTERNED => {
                let n = self.len32()?;
                Obj::Str(self.bytes(n)?.to_vec())
            }
            ty::SHORT_ASCII | ty::SHORT_ASCII_INTERNED => {
                let n = self.byte()? as usize;
                Obj::Str(self.bytes(n)?.to_vec())
            }
            ty::TUPLE | ty::LIST | ty::SET | ty::FROZENSET => {
                let n = self.len32()?;
                Obj::Seq((0..n).map(|_| self.object(depth + 1)).collect::<Option<_>>()?)
            }
            ty::SMALL_TUPLE => {
                let n = self.byte()? as usize;
                Obj::Seq((0..n).map(|_| self.object(depth + 1)).collect::<Option<_>>()?)
            }
            ty::DICT => {
                let mut items = Vec::new();
                loop {
                    if self.data.get(self.pos) == Some(&ty::NULL) {
                        self.pos += 1;
                        break;
                    }
                    items.push(self.object(depth + 1)?);
                    items.push(self.object(depth + 1)?);
                }
                Obj::Seq(items)
            }
            ty::REF => {
                let i = self.u32()? as usize;
                self.refs.get(i)?.clone()
            }
            ty::CODE => Obj::Code(Box::new(self.code(depth)?)),
            _ => return None,
        };
        if let Some(i) = slot {
            // Back-references are kept for strings and small string tuples (names,
            // keyword names); cloning whole code objects into the table would make
            // parsing quadratic in the module's size.
            self.refs[i] = match &obj {
                Obj::Str(_) => obj.clone(),
                Obj::Seq(items) if items.len() <= 16 && items.iter().all(|o| matches!(o, Obj::Str(_))) => obj.clone(),
                _ => Obj::Other,
            };
        }
        Some(obj)
    }

    fn code(&mut self, depth: u32) -> Option<Code> {
        let ints = match self.layout {
            Layout::Py27 => 4,
            Layout::Py30 | Layout::Py311 => 5,
            Layout::Py38 => 6,
        };
        self.bytes(4 * ints)?;
        let _bytecode = self.object(depth + 1)?;
        let consts = seq(self.object(depth + 1)?);
        let names = strings(self.object(depth + 1)?);
        let mut code = Code {
            consts,
            names,
            ..Code::default()
        };
        match self.layout {
            Layout::Py311 => {
                code.locals = strings(self.object(depth + 1)?); // localsplusnames
                self.object(depth + 1)?; // localspluskinds
                self.object(depth + 1)?; // filename
                code.name = text(self.object(depth + 1)?); // name
                self.object(depth + 1)?; // qualname
                self.u32()?; // firstlineno
                self.object(depth + 1)?; // linetable
                self.object(depth + 1)?; // exceptiontable
            }
            _ => {
                code.locals = strings(self.object(depth + 1)?); // varnames
                self.object(depth + 1)?; // freevars
                self.object(depth + 1)?; // cellvars
                self.object(depth + 1)?; // filename
                code.name = text(self.object(depth + 1)?); // name
                self.u32()?; // firstlineno
                self.object(depth + 1)?; // lnotab
            }
        }
        Some(code)
    }
}

fn seq(obj: Obj) -> Vec<Obj> {
    match obj {
        Obj::Seq(items) => items,
        _ => Vec::new(),
    }
}

fn text(obj: Obj) -> String {
    match obj {
        Obj::Str(s) => String::from_utf8_lossy(&s).into_owned(),
        _ => String::new(),
    }
}

fn strings(obj: Obj) -> Vec<String> {
    seq(obj).into_iter().map(text).filter(|s| !s.is_empty()).collect()
}

/// The layout for a magic number (first two bytes, little-endian), and the header size.
fn layout_of(magic: u16) -> Option<(Layout, usize)> {
    match magic {
        62211 => Some((Layout::Py27, 8)),
        3000..=3189 => Some((Layout::Py30, 8)),
        // 3.3 added the source size to the header, 3.7 the flags word (PEP 552).
        3190..=3389 => Some((Layout::Py30, 12)),
        3390..=3399 => Some((Layout::Py30, 16)),
        3400..=3494 => Some((Layout::Py38, 16)),
        3495..=3999 => Some((Layout::Py311, 16)),
        _ => None,
    }
}

/// Whether bytes start like a `.pyc` of a known CPython version.
pub fn is_pyc(data: &[u8]) -> bool {
    data.len() >= 16 && data[2..4] == *b"\r\n" && layout_of(u16::from_le_bytes([data[0], data[1]])).is_some()
}

/// Words that make a name worth pairing with string constants.
const CREDENTIAL_WORDS: &[&str] = &[
    "token",
    "secret",
    "key",
    "passw",
    "pwd",
    "auth",
    "credential",
    "api",
    "login",
];

/// A constant worth pairing with a credential-like name: secret-sized, one word, random-ish.
fn looks_like_a_value(s: &[u8]) -> bool {
    (8..=4096).contains(&s.len())
        && !s.iter().any(|b| b.is_ascii_whitespace())
        && crate::finding::shannon_entropy(s) >= 3.0
}

fn is_identifier(s: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && (s[0].is_ascii_alphabetic() || s[0] == b'_')
        && s.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// The text view of a `.pyc`, or `None` when it does not parse.
pub fn view(data: &[u8]) -> Option<Vec<u8>> {
    let (layout, header) = layout_of(u16::from_le_bytes([*data.first()?, *data.get(1)?]))?;
    let mut reader = Reader {
        data,
        pos: header,
        layout,
        refs: Vec::new(),
        objects: 0,
    };
    let Obj::Code(module) = reader.object(0)? else {
        return None;
    };
    let mut out = Vec::new();
    render(&module, &mut out, 0);
    Some(out)
}

/// One code object: each credential-like name (names, locals, keyword-argument names)
/// next to each string constant, after the code object's other names for context
/// (`main _fetch_github_file access_token = "…"`); nested code objects follow.
fn render(code: &Code, out: &mut Vec<u8>, depth: u32) {
    if depth > MAX_DEPTH {
        return;
    }
    let mut idents: Vec<&str> = code.names.iter().chain(&code.locals).map(String::as_str).collect();
    let mut constants: Vec<&[u8]> = Vec::new();
    for c in &code.consts {
        match c {
            // Every string constant long enough to be a secret is a value, even one shaped
            // like a name (a hex token is).
            // Messages and docstrings (with spaces, or low entropy) are skipped: they are the
            // bulk of constants and never a credential worth pairing.
            Obj::Str(s) if looks_like_a_value(s) => constants.push(s),
            // Keyword-argument names travel as tuples of strings among the constants.
            Obj::Seq(items) => idents.extend(items.iter().filter_map(|i| match i {
                Obj::Str(s) if is_identifier(s) => std::str::from_utf8(s).ok(),
                _ => None,
            })),
            _ => {}
        }
    }
    let (credential, context): (Vec<&str>, Vec<&str>) = idents.into_iter().partition(|name| {
        let lower = name.to_ascii_lowercase();
        CREDENTIAL_WORDS.iter().any(|w| lower.contains(w))
    });
    let context: Vec<&str> = std::iter::once(code.name.as_str()).chain(context).take(6).collect();
    let context = context.join(" ");
    // At most 256 pairs per code object: module objects list hundreds of names.
    for name in credential.iter().take(16) {
        for value in constants.iter().take(16) {
            out.extend_from_slice(context.as_bytes());
            out.extend_from_slice(format!(" {name} = \"").as_bytes());
            out.extend_from_slice(value);
            out.extend_from_slice(b"\"\n");
        }
    }
    for c in &code.consts {
        if let Obj::Code(inner) = c {
            render(inner, out, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_after_a_valid_header_never_panics() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for magic in [62211u16, 3180, 3379, 3394, 3413, 3495, 3571] {
            for len in 0..600 {
                let mut data = magic.to_le_bytes().to_vec();
                data.extend_from_slice(b"\r\n");
                for _ in 0..len {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // Bias towards marshal type codes so parsing goes deep.
                    let b = if rng % 3 == 0 {
                        b"ZzacrN()T"[(rng >> 8) as usize % 9]
                    } else {
                        rng as u8
                    };
                    data.push(b);
                }
                let _ = view(&data);
            }
        }
    }

    #[test]
    fn short_strings_and_tuples_parse_into_a_view() {
        // 3.11 layout: a module code object whose constants hold a kwnames tuple and a value.
        let mut data = 3495u16.to_le_bytes().to_vec();
        data.extend_from_slice(b"\r\n");
        data.extend_from_slice(&[0; 12]);
        data.push(b'c');
        data.extend_from_slice(&[0; 20]);
        data.extend_from_slice(b"y\x00\x00\x00\x00"); // bytecode: empty bytes ('s' twin 'y' is unknown)
        let ok = view(&data);
        assert!(ok.is_none(), "an unknown type code ends the view");
        let mut data = 3495u16.to_le_bytes().to_vec();
        data.extend_from_slice(b"\r\n");
        data.extend_from_slice(&[0; 12]);
        data.push(b'c');
        data.extend_from_slice(&[0; 20]);
        data.extend_from_slice(b"s\x00\x00\x00\x00"); // bytecode
        data.extend_from_slice(b")\x02z\x08q7Xk2Lp9)\x01z\x05token"); // consts: 'q7Xk2Lp9', ('token',)
        data.extend_from_slice(b")\x01z\x06github"); // names
        data.extend_from_slice(b")\x00s\x00\x00\x00\x00z\x01fz\x08<module>z\x08<module>"); // locals, kinds, file, name, qualname
        data.extend_from_slice(&[1, 0, 0, 0]); // firstlineno
        data.extend_from_slice(b"s\x00\x00\x00\x00s\x00\x00\x00\x00"); // linetable, exceptiontable
        let text = String::from_utf8(view(&data).expect("parses")).expect("utf-8");
        assert_eq!(text, "<module> github token = \"q7Xk2Lp9\"\n");
    }
}
