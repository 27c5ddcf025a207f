//! A fast JSON reader for documents, into a flat tape.
//!
//! Documents are parsed into a [`Doc`]: a `Vec` of [`Node`]s in depth-first order, where an
//! object is followed by its key/value pairs and an array by its items, and every container
//! records where it ends. Strings without escapes borrow from the input; decoded strings live in
//! the doc's string buffer. The doc is reused from one document to the next, so steady-state
//! parsing allocates nothing.
//!
//! Parsing is iterative (no recursion), so nesting depth is limited only by
//! [`MAX_DEPTH`]; walking and serializing the tape are iterative too.
//!
//! Documented handling of non-standard input:
//! * integers beyond 64 bits are kept exactly as [`Node::BigInt`] (their digits);
//! * `NaN`, `Infinity` and `-Infinity` (emitted by Python's `json.dumps`) are read as doubles;
//! * raw control characters in strings, lone surrogate escapes, trailing commas, comments and
//!   single quotes are errors that name the line and column.

use std::fmt;

/// The deepest nesting a document may have.
pub const MAX_DEPTH: usize = 100_000;

/// One node of the tape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Node<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer in `i64`.
    Int(i64),
    /// An integer above `i64::MAX` within `u64`.
    UInt(u64),
    /// An integer beyond 64 bits (its literal text).
    BigInt(&'a str),
    /// A number with a fraction or exponent (or NaN / ±Infinity).
    Float(f64),
    /// A string borrowed from the input.
    Str(&'a str),
    /// A decoded string in the doc's buffer: (offset, length).
    Decoded(u32, u32),
    /// An array of `len` items; `end` is the index after its last descendant.
    Array {
        /// Number of items.
        len: u32,
        /// Index after the last descendant.
        end: u32,
    },
    /// An object of `len` key/value pairs (each key a string node followed by its value).
    Object {
        /// Number of entries.
        len: u32,
        /// Index after the last descendant.
        end: u32,
    },
}

/// A parsed document (reusable).
#[derive(Debug, Default)]
pub struct Doc<'a> {
    /// The tape.
    pub nodes: Vec<Node<'a>>,
    /// Decoded strings.
    pub strings: String,
}

/// A JSON syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// What is wrong.
    pub message: String,
    /// 1-based line within the parsed text.
    pub line: usize,
    /// 1-based column (in bytes) within the line.
    pub column: usize,
    /// Byte offset within the parsed text.
    pub offset: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.message, self.line, self.column
        )
    }
}

impl std::error::Error for JsonError {}

impl<'a> Doc<'a> {
    /// An empty doc.
    pub fn new() -> Self {
        Self::default()
    }

    /// Clears the doc for the next document.
    pub fn clear(&mut self) {
        self.nodes.clear();
        self.strings.clear();
    }

    /// The root node (index 0).
    pub fn root(&self) -> NodeRef<'_, 'a> {
        NodeRef { doc: self, idx: 0 }
    }

    /// The node at `idx`.
    pub fn at(&self, idx: usize) -> NodeRef<'_, 'a> {
        NodeRef { doc: self, idx }
    }

    /// The text of a string node.
    pub fn str_of(&self, node: &Node<'a>) -> Option<&str> {
        match *node {
            Node::Str(s) => Some(s),
            Node::Decoded(off, len) => self.strings.get(off as usize..(off + len) as usize),
            _ => None,
        }
    }
}

/// A node of a doc with navigation helpers.
#[derive(Clone, Copy)]
pub struct NodeRef<'d, 'a> {
    doc: &'d Doc<'a>,
    /// Index of the node in the tape.
    pub idx: usize,
}

impl std::fmt::Debug for NodeRef<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeRef({}: {:?})", self.idx, self.node())
    }
}

impl<'d, 'a> NodeRef<'d, 'a> {
    /// The node.
    pub fn node(&self) -> Node<'a> {
        self.doc.nodes[self.idx]
    }

    /// The doc.
    pub fn doc(&self) -> &'d Doc<'a> {
        self.doc
    }

    /// Index after this node and its descendants.
    pub fn end(&self) -> usize {
        match self.node() {
            Node::Array { end, .. } | Node::Object { end, .. } => end as usize,
            _ => self.idx + 1,
        }
    }

    /// The string value, for string nodes.
    pub fn as_str(&self) -> Option<&'d str> {
        match self.doc.nodes[self.idx] {
            Node::Str(s) => Some(s),
            Node::Decoded(off, len) => self.doc.strings.get(off as usize..(off + len) as usize),
            _ => None,
        }
    }

    /// Whether this is an object.
    pub fn is_object(&self) -> bool {
        matches!(self.node(), Node::Object { .. })
    }

    /// Whether this is an array.
    pub fn is_array(&self) -> bool {
        matches!(self.node(), Node::Array { .. })
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self.node(), Node::Null)
    }

    /// The entries of an object, in document order (empty for other nodes).
    pub fn entries(&self) -> Entries<'d, 'a> {
        let remaining = match self.node() {
            Node::Object { len, .. } => len as usize,
            _ => 0,
        };
        Entries {
            doc: self.doc,
            next: self.idx + 1,
            remaining,
        }
    }

    /// The items of an array, in order (empty for other nodes).
    pub fn items(&self) -> Items<'d, 'a> {
        let remaining = match self.node() {
            Node::Array { len, .. } => len as usize,
            _ => 0,
        };
        Items {
            doc: self.doc,
            next: self.idx + 1,
            remaining,
        }
    }

    /// Number of entries or items.
    pub fn len(&self) -> usize {
        match self.node() {
            Node::Array { len, .. } | Node::Object { len, .. } => len as usize,
            _ => 0,
        }
    }

    /// Whether a container is empty (true for scalars).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value under `key` of an object.
    pub fn get(&self, key: &str) -> Option<NodeRef<'d, 'a>> {
        self.entries().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

/// Iterator over object entries.
pub struct Entries<'d, 'a> {
    doc: &'d Doc<'a>,
    next: usize,
    remaining: usize,
}

impl<'d, 'a> Iterator for Entries<'d, 'a> {
    type Item = (&'d str, NodeRef<'d, 'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let key_ref = NodeRef {
            doc: self.doc,
            idx: self.next,
        };
        let key = key_ref.as_str().unwrap_or("");
        let value = NodeRef {
            doc: self.doc,
            idx: self.next + 1,
        };
        self.next = value.end();
        Some((key, value))
    }
}

/// Iterator over array items.
pub struct Items<'d, 'a> {
    doc: &'d Doc<'a>,
    next: usize,
    remaining: usize,
}

impl<'d, 'a> Iterator for Items<'d, 'a> {
    type Item = NodeRef<'d, 'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let item = NodeRef {
            doc: self.doc,
            idx: self.next,
        };
        self.next = item.end();
        Some(item)
    }
}

/// The index of the first byte at or after `from` that ends the plain run of a string: a
/// quote, a backslash or a control character (below 0x20).
#[inline]
fn find_string_special(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SSE2 is part of x86-64: 16 bytes per step
        // SAFETY: every load reads 16 bytes at `i` with `i + 16 <= bytes.len()`
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            let ctrl = _mm_set1_epi8(0x1f);
            while i + 16 <= bytes.len() {
                let v = _mm_loadu_si128(bytes.as_ptr().add(i).cast());
                let is_ctrl = _mm_cmpeq_epi8(_mm_min_epu8(v, ctrl), v);
                let hit = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                    is_ctrl,
                );
                let mask = _mm_movemask_epi8(hit) as u32;
                if mask != 0 {
                    return Some(i + mask.trailing_zeros() as usize);
                }
                i += 16;
            }
        }
    }
    bytes[i..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|o| i + o)
}

/// Parses a sequence of whitespace-separated JSON documents from a string.
pub struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// open containers: (node index, count of children)
    stack: Vec<(usize, u32)>,
}

impl<'a> Parser<'a> {
    /// A parser over `text`.
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            stack: Vec::new(),
        }
    }

    /// Current byte offset.
    pub fn offset(&self) -> usize {
        self.pos
    }

    fn error(&self, message: impl Into<String>) -> JsonError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> JsonError {
        let pos = pos.min(self.bytes.len());
        let before = &self.bytes[..pos];
        let line = memchr::memchr_iter(b'\n', before).count() + 1;
        let line_start = memchr::memrchr(b'\n', before).map_or(0, |p| p + 1);
        JsonError {
            message: message.into(),
            line,
            column: pos - line_start + 1,
            offset: pos,
        }
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            if b == b' ' || b == b'\n' || b == b'\r' || b == b'\t' {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// Parses the next document into `doc` (cleared first). Returns `Ok(false)` at the end of
    /// the input.
    pub fn next_document(&mut self, doc: &mut Doc<'a>) -> Result<bool, JsonError> {
        doc.clear();
        self.skip_ws();
        if self.pos >= self.bytes.len() {
            return Ok(false);
        }
        self.stack.clear();
        let self_delimited = matches!(self.bytes[self.pos], b'"' | b'[' | b'{');
        self.parse_value(doc)?;
        // a number or literal runs into whatever follows it (`3true`): require a separator
        if !self_delimited {
            if let Some(&b) = self.bytes.get(self.pos) {
                if !matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b'"' | b'[' | b'{') {
                    return Err(self.error(format!(
                        "unexpected `{}` after a value: documents must be separated by whitespace",
                        self.text[self.pos..].chars().next().unwrap_or('?')
                    )));
                }
            }
        }
        Ok(true)
    }

    fn parse_value(&mut self, doc: &mut Doc<'a>) -> Result<(), JsonError> {
        // iterative: each loop iteration parses one value, possibly opening a container
        loop {
            self.skip_ws();
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(self.error("unexpected end of JSON input"));
            };
            match b {
                b'{' => {
                    self.pos += 1;
                    if self.stack.len() >= MAX_DEPTH {
                        return Err(
                            self.error(format!("document nested deeper than {MAX_DEPTH} levels"))
                        );
                    }
                    let idx = doc.nodes.len();
                    doc.nodes.push(Node::Object { len: 0, end: 0 });
                    self.stack.push((idx, 0));
                    self.skip_ws();
                    if self.bytes.get(self.pos) == Some(&b'}') {
                        self.pos += 1;
                        self.close(doc);
                    } else {
                        self.parse_key(doc)?;
                        continue;
                    }
                }
                b'[' => {
                    self.pos += 1;
                    if self.stack.len() >= MAX_DEPTH {
                        return Err(
                            self.error(format!("document nested deeper than {MAX_DEPTH} levels"))
                        );
                    }
                    let idx = doc.nodes.len();
                    doc.nodes.push(Node::Array { len: 0, end: 0 });
                    self.stack.push((idx, 0));
                    self.skip_ws();
                    if self.bytes.get(self.pos) == Some(&b']') {
                        self.pos += 1;
                        self.close(doc);
                    } else {
                        continue;
                    }
                }
                b'"' => {
                    let node = self.parse_string(doc)?;
                    doc.nodes.push(node);
                }
                b't' => {
                    self.literal(b"true")?;
                    doc.nodes.push(Node::Bool(true));
                }
                b'f' => {
                    self.literal(b"false")?;
                    doc.nodes.push(Node::Bool(false));
                }
                b'n' => {
                    self.literal(b"null")?;
                    doc.nodes.push(Node::Null);
                }
                b'N' => {
                    self.literal(b"NaN")?;
                    doc.nodes.push(Node::Float(f64::NAN));
                }
                b'I' => {
                    self.literal(b"Infinity")?;
                    doc.nodes.push(Node::Float(f64::INFINITY));
                }
                b'-' | b'0'..=b'9' => {
                    let node = self.parse_number()?;
                    doc.nodes.push(node);
                }
                other => {
                    return Err(self.error(format!(
                        "expected a JSON value, found `{}`",
                        char::from(other).escape_default()
                    )))
                }
            }
            // a value was completed: continue the enclosing container(s)
            loop {
                let Some(&(idx, _)) = self.stack.last() else {
                    return Ok(());
                };
                let is_object = matches!(doc.nodes[idx], Node::Object { .. });
                if let Some(top) = self.stack.last_mut() {
                    top.1 += 1;
                }
                self.skip_ws();
                match self.bytes.get(self.pos) {
                    Some(b',') => {
                        self.pos += 1;
                        if is_object {
                            self.skip_ws();
                            self.parse_key(doc)?;
                        }
                        break; // parse the next value
                    }
                    Some(b'}') if is_object => {
                        self.pos += 1;
                        self.close(doc);
                    }
                    Some(b']') if !is_object => {
                        self.pos += 1;
                        self.close(doc);
                    }
                    Some(&c) => {
                        return Err(self.error(format!(
                            "expected `,` or `{}`, found `{}`",
                            if is_object { '}' } else { ']' },
                            char::from(c).escape_default()
                        )))
                    }
                    None => return Err(self.error("unexpected end of JSON input")),
                }
            }
        }
    }

    /// Closes the innermost container. It is then a completed value of its parent, which the
    /// caller's loop counts.
    fn close(&mut self, doc: &mut Doc<'a>) {
        if let Some((idx, count)) = self.stack.pop() {
            let end = doc.nodes.len() as u32;
            doc.nodes[idx] = match doc.nodes[idx] {
                Node::Object { .. } => Node::Object { len: count, end },
                _ => Node::Array { len: count, end },
            };
        }
    }

    fn parse_key(&mut self, doc: &mut Doc<'a>) -> Result<(), JsonError> {
        self.skip_ws();
        if self.bytes.get(self.pos) != Some(&b'"') {
            return Err(self.error("expected a string key"));
        }
        let key = self.parse_string(doc)?;
        doc.nodes.push(key);
        self.skip_ws();
        if self.bytes.get(self.pos) != Some(&b':') {
            return Err(self.error("expected `:` after an object key"));
        }
        self.pos += 1;
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error("invalid literal (expected true, false, null, NaN or Infinity)"))
        }
    }

    fn parse_number(&mut self) -> Result<Node<'a>, JsonError> {
        let start = self.pos;
        let bytes = self.bytes;
        let mut i = self.pos;
        let negative = bytes[i] == b'-';
        if negative {
            i += 1;
            if bytes.get(i..i + 8) == Some(b"Infinity") {
                self.pos = i + 8;
                return Ok(Node::Float(f64::NEG_INFINITY));
            }
        }
        let int_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == int_start {
            return Err(self.error_at(i, "invalid number"));
        }
        if bytes[int_start] == b'0' && i - int_start > 1 {
            return Err(self.error_at(int_start, "invalid number (leading zero)"));
        }
        let mut is_float = false;
        if i < bytes.len() && bytes[i] == b'.' {
            is_float = true;
            i += 1;
            let frac_start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i == frac_start {
                return Err(self.error_at(i, "invalid number (no digits after `.`)"));
            }
        }
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            is_float = true;
            i += 1;
            if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                i += 1;
            }
            let exp_start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i == exp_start {
                return Err(self.error_at(i, "invalid number (no digits in the exponent)"));
            }
        }
        self.pos = i;
        let text = &self.text[start..i];
        if !is_float {
            let digits = &bytes[int_start..i];
            if digits.len() <= 18 {
                let mut v: i64 = 0;
                for d in digits {
                    v = v * 10 + i64::from(d - b'0');
                }
                return Ok(Node::Int(if negative { -v } else { v }));
            }
            if let Ok(v) = text.parse::<i64>() {
                return Ok(Node::Int(v));
            }
            if !negative {
                if let Ok(v) = text.parse::<u64>() {
                    return Ok(Node::UInt(v));
                }
            }
            return Ok(Node::BigInt(text));
        }
        match text.parse::<f64>() {
            Ok(v) => Ok(Node::Float(v)),
            Err(_) => Err(self.error_at(start, "invalid number")),
        }
    }

    fn parse_string(&mut self, doc: &mut Doc<'a>) -> Result<Node<'a>, JsonError> {
        // at the opening quote
        let start = self.pos + 1;
        let bytes = self.bytes;
        let mut i = start;
        // fast path: no escapes (one scan for the quote, a backslash or a control character)
        match find_string_special(bytes, i) {
            None => return Err(self.error_at(start - 1, "unterminated string")),
            Some(j) => match bytes[j] {
                b'"' => {
                    self.pos = j + 1;
                    return Ok(Node::Str(&self.text[start..j]));
                }
                b'\\' => i = j,
                b'\n' => return Err(self.error_at(j, "raw newline in a string")),
                _ => return Err(self.error_at(j, "raw control character in a string")),
            },
        }
        // slow path: decode escapes into the doc's buffer
        let off = doc.strings.len();
        doc.strings.push_str(&self.text[start..i]);
        loop {
            let Some(&b) = bytes.get(i) else {
                return Err(self.error_at(start - 1, "unterminated string"));
            };
            match b {
                b'"' => {
                    self.pos = i + 1;
                    let len = doc.strings.len() - off;
                    return Ok(Node::Decoded(off as u32, len as u32));
                }
                b'\\' => {
                    let Some(&e) = bytes.get(i + 1) else {
                        return Err(self.error_at(i, "unterminated escape"));
                    };
                    i += 2;
                    match e {
                        b'"' => doc.strings.push('"'),
                        b'\\' => doc.strings.push('\\'),
                        b'/' => doc.strings.push('/'),
                        b'b' => doc.strings.push('\u{8}'),
                        b'f' => doc.strings.push('\u{c}'),
                        b'n' => doc.strings.push('\n'),
                        b'r' => doc.strings.push('\r'),
                        b't' => doc.strings.push('\t'),
                        b'u' => {
                            let hi = self.hex4(i)?;
                            i += 4;
                            let c = if (0xD800..0xDC00).contains(&hi) {
                                if bytes.get(i) == Some(&b'\\') && bytes.get(i + 1) == Some(&b'u') {
                                    let lo = self.hex4(i + 2)?;
                                    if !(0xDC00..0xE000).contains(&lo) {
                                        return Err(self.error_at(
                                            i,
                                            "invalid surrogate pair in a \\u escape",
                                        ));
                                    }
                                    i += 6;
                                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                } else {
                                    return Err(
                                        self.error_at(i - 6, "lone surrogate in a \\u escape")
                                    );
                                }
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(self.error_at(i - 6, "lone surrogate in a \\u escape"));
                            } else {
                                hi
                            };
                            match char::from_u32(c) {
                                Some(ch) => doc.strings.push(ch),
                                None => return Err(self.error_at(i, "invalid \\u escape")),
                            }
                        }
                        other => {
                            return Err(self.error_at(
                                i - 1,
                                format!(
                                    "invalid escape `\\{}`",
                                    char::from(other).escape_default()
                                ),
                            ))
                        }
                    }
                }
                _ => {
                    let run_end =
                        memchr::memchr2(b'"', b'\\', &bytes[i..]).map_or(bytes.len(), |o| i + o);
                    if let Some(bad) = bytes[i..run_end].iter().position(|&b| b < 0x20) {
                        return Err(self.error_at(i + bad, "raw control character in a string"));
                    }
                    doc.strings.push_str(&self.text[i..run_end]);
                    i = run_end;
                }
            }
        }
    }

    fn hex4(&self, at: usize) -> Result<u32, JsonError> {
        let Some(h) = self.bytes.get(at..at + 4) else {
            return Err(self.error_at(at, "truncated \\u escape"));
        };
        let mut v = 0u32;
        for &c in h {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(self.error_at(at, "invalid \\u escape")),
            };
            v = v * 16 + u32::from(d);
        }
        Ok(v)
    }
}

/// Writes the subtree at `node` as compact JSON (document key order, orjson's formatting:
/// shortest round-trip floats, non-ASCII kept, non-finite floats as `null`).
pub fn write_compact(node: NodeRef<'_, '_>, out: &mut String) {
    write_subtree(node, out, false);
}

/// Like [`write_compact`] with the keys of every object sorted (byte order), as dlt's
/// `json.dumps(..., sort_keys=True)` does for hashes.
pub fn write_sorted(node: NodeRef<'_, '_>, out: &mut String) {
    write_subtree(node, out, true);
}

fn write_subtree(node: NodeRef<'_, '_>, out: &mut String, sorted: bool) {
    if sorted {
        write_sorted_iter(node, out);
        return;
    }
    let doc = node.doc();
    // open containers: (children still to write, is_object)
    let mut stack: Vec<(u32, bool)> = Vec::new();
    let mut i = node.idx;
    let mut need_comma = false;
    loop {
        if let Some(&(_, is_object)) = stack.last() {
            if need_comma {
                out.push(',');
            }
            if is_object {
                write_str(doc.at(i).as_str().unwrap_or(""), out);
                out.push(':');
                i += 1;
            }
        }
        match doc.nodes[i] {
            Node::Object { len, .. } => {
                out.push('{');
                i += 1;
                if len > 0 {
                    stack.push((len, true));
                    need_comma = false;
                    continue;
                }
                out.push('}');
            }
            Node::Array { len, .. } => {
                out.push('[');
                i += 1;
                if len > 0 {
                    stack.push((len, false));
                    need_comma = false;
                    continue;
                }
                out.push(']');
            }
            other => {
                write_scalar(&other, doc, out);
                i += 1;
            }
        }
        // a value is complete: close every container it completes
        loop {
            let Some(top) = stack.last_mut() else { return };
            top.0 -= 1;
            if top.0 > 0 {
                need_comma = true;
                break;
            }
            out.push(if top.1 { '}' } else { ']' });
            stack.pop();
        }
    }
}

fn write_sorted_iter(node: NodeRef<'_, '_>, out: &mut String) {
    enum Work<'d, 'a> {
        Value(NodeRef<'d, 'a>),
        Raw(&'static str),
        Key(&'d str),
    }
    let mut work: Vec<Work<'_, '_>> = vec![Work::Value(node)];
    while let Some(w) = work.pop() {
        match w {
            Work::Raw(s) => out.push_str(s),
            Work::Key(k) => {
                write_str(k, out);
                out.push(':');
            }
            Work::Value(v) => match v.node() {
                Node::Object { .. } => {
                    let mut entries: Vec<(&str, NodeRef<'_, '_>)> = v.entries().collect();
                    entries.sort_by(|a, b| a.0.cmp(b.0));
                    out.push('{');
                    work.push(Work::Raw("}"));
                    for (n, (k, val)) in entries.into_iter().enumerate().rev() {
                        work.push(Work::Value(val));
                        work.push(Work::Key(k));
                        if n > 0 {
                            work.push(Work::Raw(","));
                        }
                    }
                }
                Node::Array { .. } => {
                    out.push('[');
                    work.push(Work::Raw("]"));
                    let items: Vec<_> = v.items().collect();
                    for (n, item) in items.into_iter().enumerate().rev() {
                        work.push(Work::Value(item));
                        if n > 0 {
                            work.push(Work::Raw(","));
                        }
                    }
                }
                other => write_scalar(&other, v.doc(), out),
            },
        }
    }
}

/// Writes a scalar node as JSON.
pub fn write_scalar(node: &Node<'_>, doc: &Doc<'_>, out: &mut String) {
    match *node {
        Node::Null => out.push_str("null"),
        Node::Bool(true) => out.push_str("true"),
        Node::Bool(false) => out.push_str("false"),
        Node::Int(v) => out.push_str(itoa::Buffer::new().format(v)),
        Node::UInt(v) => out.push_str(itoa::Buffer::new().format(v)),
        Node::BigInt(t) => out.push_str(t),
        Node::Float(v) => write_f64(v, out),
        Node::Str(_) | Node::Decoded(..) => write_str(doc.str_of(node).unwrap_or(""), out),
        Node::Object { .. } => out.push_str("{}"),
        Node::Array { .. } => out.push_str("[]"),
    }
}

/// Writes a float as orjson does: ryu's shortest round trip with a signed exponent (`1e+20`,
/// `1.5e-7`); non-finite values as `null`.
pub fn write_f64(v: f64, out: &mut String) {
    if !v.is_finite() {
        out.push_str("null");
        return;
    }
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(v);
    match s.find('e') {
        Some(i) if s.as_bytes().get(i + 1).is_some_and(u8::is_ascii_digit) => {
            out.push_str(&s[..=i]);
            out.push('+');
            out.push_str(&s[i + 1..]);
        }
        _ => out.push_str(s),
    }
}

/// Writes a JSON string literal with orjson's escaping (`"`, `\`, control characters).
pub fn write_str(s: &str, out: &mut String) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                out.push_str("\\u00");
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push(char::from(HEX[(b >> 4) as usize]));
                out.push(char::from(HEX[(b & 0xf) as usize]));
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &str) -> Result<Vec<String>, JsonError> {
        let mut p = Parser::new(text);
        let mut doc = Doc::new();
        let mut out = Vec::new();
        while p.next_document(&mut doc)? {
            let mut s = String::new();
            write_compact(doc.root(), &mut s);
            out.push(s);
        }
        Ok(out)
    }

    #[test]
    fn round_trips_documents() {
        let text = "{\"a\": 1, \"b\": [1, 2.5, {\"c\": null}], \"d\": {}, \"e\": []}\n  [true,false]\n\"x\\ny\" 12";
        let docs = parse_all(text).expect("parse");
        assert_eq!(
            docs,
            vec![
                "{\"a\":1,\"b\":[1,2.5,{\"c\":null}],\"d\":{},\"e\":[]}",
                "[true,false]",
                "\"x\\ny\"",
                "12"
            ]
        );
    }

    #[test]
    fn agrees_with_serde_json_on_nesting_and_escapes() {
        let text = r#"{"k\u00fc\"y": [[], [[1]], {"z": {"y": {}}}, "\ud83d\ude00", -0.0, 1e300, 18446744073709551615, -9223372036854775808]}"#;
        let docs = parse_all(text).expect("parse");
        let ours: serde_json::Value = serde_json::from_str(&docs[0]).expect("valid");
        let theirs: serde_json::Value = serde_json::from_str(text).expect("valid");
        assert_eq!(ours, theirs);
    }

    #[test]
    fn floats_print_like_orjson() {
        let mut s = String::new();
        for v in [
            1e20,
            1e15,
            1e-5,
            1.5e-7,
            12345678901234567.0,
            1.5e300,
            -2e-10,
            100.0,
        ] {
            write_f64(v, &mut s);
            s.push(' ');
        }
        // python -c "import orjson; print(orjson.dumps([...]))"
        assert_eq!(
            s,
            "1e+20 1000000000000000.0 0.00001 1.5e-7 1.2345678901234568e+16 1.5e+300 -2e-10 100.0 "
        );
    }

    #[test]
    fn keeps_big_integers_exact() {
        let mut p = Parser::new("123456789012345678901234567890 -99999999999999999999");
        let mut doc = Doc::new();
        assert!(p.next_document(&mut doc).expect("doc"));
        assert_eq!(doc.nodes[0], Node::BigInt("123456789012345678901234567890"));
        assert!(p.next_document(&mut doc).expect("doc"));
        assert_eq!(doc.nodes[0], Node::BigInt("-99999999999999999999"));
    }

    #[test]
    fn sorted_writer_sorts_every_object() {
        let mut p = Parser::new(r#"{"v":"a","id":1,"sub":[{"z":1,"a":2}]}"#);
        let mut doc = Doc::new();
        p.next_document(&mut doc).expect("doc");
        let mut s = String::new();
        write_sorted(doc.root(), &mut s);
        assert_eq!(s, r#"{"id":1,"sub":[{"a":2,"z":1}],"v":"a"}"#);
    }

    #[test]
    fn errors_name_the_position() {
        let err = parse_all("{\"a\": 1}\n{\"b\": }").expect_err("bad");
        assert_eq!((err.line, err.column), (2, 7));
        assert!(err.message.contains("expected a JSON value"), "{err}");
        for bad in [
            "{\"a\" 1}",
            "[1,]",
            "{'a': 1}",
            "\"abc",
            "[1 2]",
            "01",
            "\"\\ud800\"",
            "{\"a\":1,}",
            "tru",
            "3true",
            "1x",
            "nullnull",
        ] {
            assert!(parse_all(bad).is_err(), "{bad} must fail");
        }
    }

    #[test]
    fn string_scan_finds_specials_at_every_offset() {
        for len in 0..70usize {
            let plain: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let ok = format!("\"{plain}\"");
            assert_eq!(parse_all(&ok).expect("plain"), vec![ok.clone()]);
            let esc = format!("\"{plain}\\n{plain}\"");
            assert_eq!(parse_all(&esc).expect("escape").len(), 1);
            let ctrl = format!("\"{plain}\u{1}x\"");
            let err = parse_all(&ctrl).expect_err("control character");
            assert!(err.message.contains("control character"), "{err:?}");
            assert_eq!(err.column, len + 2, "{err:?}");
            let nl = format!("\"{plain}\nx\"");
            let err = parse_all(&nl).expect_err("newline");
            assert!(err.message.contains("newline"), "{err:?}");
            let open = format!("\"{plain}");
            assert!(parse_all(&open).is_err());
        }
    }

    #[test]
    fn deep_nesting_is_iterative() {
        let depth = 50_000;
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let docs = parse_all(&text).expect("deep");
        assert_eq!(docs[0].len(), depth * 2);
        let mut sorted = String::new();
        let mut p = Parser::new(&text);
        let mut doc = Doc::new();
        p.next_document(&mut doc).expect("doc");
        write_sorted(doc.root(), &mut sorted);
        assert_eq!(sorted.len(), depth * 2);
        let too_deep = "[".repeat(MAX_DEPTH + 1);
        let err = parse_all(&too_deep).expect_err("too deep");
        assert!(err.message.contains("nested deeper"), "{err}");
    }
}
