//! Compiled Python (`.pyc`): the marshal stream parsed into code objects, and a text view
//! that puts each code object's credential-like names next to its string constants
//! (`access_token = "…"`), so keyword-context rules fire on compiled code as on source.
//!
//! CPython 2.7 and 3.x layouts are told apart by the magic number; parsing is bounded
//! (depth, object count) and any error simply ends the view.

/// Marshal type codes (`Python/marshal.c`).
use std::rc::Rc;

use super::{is_credential_name, is_identifier, looks_like_a_value, View};

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

/// A marshalled value, reduced to what the view needs. Strings borrow from the file and
/// containers are shared, so back-references cost nothing to resolve.
#[derive(Clone, Debug)]
enum Obj<'a> {
    Str(&'a [u8]),
    Seq(Rc<[Obj<'a>]>),
    Code(Rc<Code<'a>>),
    Other,
}

#[derive(Debug, Default)]
struct Code<'a> {
    name: &'a [u8],
    consts: Rc<[Obj<'a>]>,
    names: Vec<&'a [u8]>,
    locals: Vec<&'a [u8]>,
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
    refs: Vec<Obj<'a>>,
    objects: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
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

    fn object(&mut self, depth: u32) -> Option<Obj<'a>> {
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
                Obj::Str(self.bytes(n)?)
            }
            ty::SHORT_ASCII | ty::SHORT_ASCII_INTERNED => {
                let n = self.byte()? as usize;
                Obj::Str(self.bytes(n)?)
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
                Obj::Seq(items.into())
            }
            ty::REF => {
                let i = self.u32()? as usize;
                self.refs.get(i)?.clone()
            }
            ty::CODE => Obj::Code(Rc::new(self.code(depth)?)),
            _ => return None,
        };
        if let Some(i) = slot {
            self.refs[i] = obj.clone();
        }
        Some(obj)
    }

    fn code(&mut self, depth: u32) -> Option<Code<'a>> {
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

fn seq(obj: Obj<'_>) -> Rc<[Obj<'_>]> {
    match obj {
        Obj::Seq(items) => items,
        _ => Rc::new([]),
    }
}

fn text(obj: Obj<'_>) -> &[u8] {
    match obj {
        Obj::Str(s) => s,
        _ => b"",
    }
}

fn strings(obj: Obj<'_>) -> Vec<&[u8]> {
    seq(obj)
        .iter()
        .filter_map(|o| match o {
            Obj::Str(s) if !s.is_empty() => Some(*s),
            _ => None,
        })
        .collect()
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

/// Strings shorter than this are not listed: no secret is that short.
const MIN_LISTED: usize = 8;

/// The text view of a `.pyc`, or `None` when it does not parse: each code object's
/// credential-like names next to its string constants (`access_token = "…"`), then every
/// string constant of the file on a line of its own. The view replaces the file's bytes,
/// where a string runs into the next object's type byte (`…t51DOz\x10`) and a rule
/// could not see where it ends.
pub fn view(data: &[u8]) -> Option<View> {
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
    let mut listed = Vec::new();
    let mut walked = Walked::default();
    render(&module, &[], &mut out, &mut listed, &mut walked, 0);
    for value in listed {
        out.push(b'"');
        out.extend_from_slice(value);
        out.extend_from_slice(b"\"\n");
    }
    Some(View {
        decoder: "pyc",
        bytes: out,
        focus: None,
        origin: Vec::new(),
    })
}

/// Every string in a constant, tuples and sets included (defaults, dict keys).
/// Shared objects already walked: back-references make the marshal stream a graph, and a
/// few bytes of references to references would otherwise expand exponentially.
#[derive(Default)]
struct Walked {
    code: Seen<Code<'static>>,
    seqs: Seen<Obj<'static>>,
    /// Bytes of strings listed so far.
    bytes: usize,
}

/// View bytes at most: a module's strings, not a bomb's.
const MAX_VIEW: usize = 4 << 20;

type Seen<T> = std::collections::HashSet<*const T>;

fn each_string<'a>(obj: &Obj<'a>, depth: u32, seqs: &mut Seen<Obj<'static>>, f: &mut dyn FnMut(&'a [u8])) {
    match obj {
        Obj::Str(s) => f(s),
        Obj::Seq(items) if depth < 4 && seqs.insert(items.as_ptr().cast()) => {
            items.iter().for_each(|i| each_string(i, depth + 1, seqs, f))
        }
        _ => {}
    }
}

/// One code object: each credential-like name (names, locals, keyword-argument names,
/// dict keys) next to each secret-shaped constant of its own and of its parent (where a
/// function's defaults live), after the code object's other names for context
/// (`main _fetch_github_file access_token = "…"`); nested code objects follow.
fn render<'a>(
    code: &Code<'a>,
    parent_values: &[&'a [u8]],
    out: &mut Vec<u8>,
    listed: &mut Vec<&'a [u8]>,
    walked: &mut Walked,
    depth: u32,
) {
    let code_ptr: *const Code<'a> = code;
    if depth > MAX_DEPTH || out.len() + walked.bytes > MAX_VIEW || !walked.code.insert(code_ptr.cast()) {
        return;
    }
    let mut idents: Vec<&[u8]> = code.names.iter().chain(&code.locals).copied().collect();
    let mut values: Vec<&'a [u8]> = Vec::new();
    let Walked { seqs, bytes, .. } = walked;
    for c in code.consts.iter() {
        each_string(c, 0, seqs, &mut |s| {
            if s.len() >= MIN_LISTED && *bytes < MAX_VIEW {
                *bytes += s.len();
                listed.push(s);
            }
            // Every string constant long enough to be a secret is a value, even one
            // shaped like a name (a hex token is); messages and docstrings are not.
            if looks_like_a_value(s) {
                values.push(s);
            }
            // A string naming a credential (a dict key, an environment variable's name).
            if is_identifier(s) && is_credential_name(s) {
                idents.push(s);
            }
        });
    }
    let (credential, context): (Vec<&[u8]>, Vec<&[u8]>) = idents.into_iter().partition(|name| is_credential_name(name));
    let mut line_start: Vec<u8> = code.name.to_vec();
    for name in context.iter().take(5) {
        line_start.push(b' ');
        line_start.extend_from_slice(name);
    }
    // At most 256 pairs per code object: module objects list hundreds of names.
    let mut seen = std::collections::HashSet::new();
    for name in credential.iter().filter(|n| seen.insert(**n)).take(16) {
        for value in values.iter().chain(parent_values).filter(|v| *v != name).take(16) {
            out.extend_from_slice(&line_start);
            out.push(b' ');
            out.extend_from_slice(name);
            out.extend_from_slice(b" = \"");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\"\n");
        }
    }
    for c in code.consts.iter() {
        if let Obj::Code(inner) = c {
            render(inner, &values, out, listed, walked, depth + 1);
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
    fn shared_references_are_walked_once() {
        // A hostile DAG: a tuple of 200 references to a tuple of 200 references to one pair
        // of strings. Expanded, it would list the pair 40,000 times (and a deeper one more).
        const WIDTH: u8 = 200;
        let mut dag = b"\xa9".to_vec(); // flagged small tuple: ref index 0
        dag.push(WIDTH);
        dag.extend_from_slice(b"\xa9"); // ref index 1
        dag.push(WIDTH);
        dag.extend_from_slice(b"\xa9\x02z\x0cbottom-left!z\x0dbottom-right!"); // ref index 2
        for index in [2u32, 1] {
            for _ in 1..WIDTH {
                dag.push(b'r');
                dag.extend_from_slice(&index.to_le_bytes());
            }
        }
        let mut data = 3495u16.to_le_bytes().to_vec();
        data.extend_from_slice(b"\r\n");
        data.extend_from_slice(&[0; 12]);
        data.push(b'c');
        data.extend_from_slice(&[0; 20]);
        data.extend_from_slice(b"s\x00\x00\x00\x00"); // bytecode
        data.extend_from_slice(b")\x03z\x08q7Xk2Lp9)\x01z\x05token"); // consts: value, ('token',), the DAG
        data.extend_from_slice(&dag);
        data.extend_from_slice(b")\x01z\x06github"); // names
        data.extend_from_slice(b")\x00s\x00\x00\x00\x00z\x01fz\x08<module>z\x08<module>");
        data.extend_from_slice(&[1, 0, 0, 0]);
        data.extend_from_slice(b"s\x00\x00\x00\x00s\x00\x00\x00\x00");
        let text = String::from_utf8(view(&data).expect("parses").bytes).expect("utf-8");
        assert!(text.starts_with("<module> github token = \"q7Xk2Lp9\"\n"), "{text}");
        // Once paired with the credential name, once listed.
        assert_eq!(text.matches("bottom-left!").count(), 2, "{text}");
        assert!(text.len() < 4096, "{} bytes", text.len());
        assert!(view(&data[..data.len() - 40]).is_none(), "truncated");
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
        let text = String::from_utf8(view(&data).expect("parses").bytes).expect("utf-8");
        assert_eq!(text, "<module> github token = \"q7Xk2Lp9\"\n\"q7Xk2Lp9\"\n");
    }
}
