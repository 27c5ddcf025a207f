//! Naming conventions (spec a): how source identifiers (dict keys, resource names, paths) become
//! table and column names, exactly as dlt 1.31 does it.
//!
//! Five conventions exist ([`NamingKind`]): `snake_case` (default), `sql_cs_v1`, `sql_ci_v1`,
//! `duck_case` and `direct`. Every function here is a hand-written character loop (no regexes)
//! that reproduces the regular expressions dlt uses, including their Python/Unicode details:
//!
//! * lengths and shortening count Unicode code points, as Python's `len` does;
//! * stripping uses Python's `str.isspace` (Unicode whitespace plus `\x1c`..`\x1f`);
//! * `\d` in dlt's regexes is Unicode-aware, so decimal digits of any script (category `Nd` of
//!   Unicode 14, the database of Python 3.11) survive `snake_case` and `sql_*` and count as a
//!   leading digit.

use sha3::digest::{ExtendableOutput, Update, XofReader};
use sha3::Shake128;

/// Error of [`Naming::normalize_identifier`]: the identifier is empty or whitespace only.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot normalize the empty identifier `{0}`")]
pub struct NamingError(pub String);

/// A naming convention of dlt (`schema.naming`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NamingKind {
    /// `snake_case` (default): case-insensitive, lower-case snake case, reduced ASCII alphabet.
    SnakeCase,
    /// `sql_cs_v1`: case-sensitive, SQL-safe ASCII identifiers preserving the source casing.
    SqlCsV1,
    /// `sql_ci_v1`: `sql_cs_v1`, then lower-cased (case-insensitive).
    SqlCiV1,
    /// `duck_case`: case-sensitive, keeps unicode; only newlines and `"` are replaced.
    DuckCase,
    /// `direct`: case-sensitive, minimal changes, `▶` as the path separator.
    Direct,
}

/// Where dlt's own naming modules live; references may be given as full module paths.
const NAMING_NAMESPACE: &str = "dlt.common.normalizers.naming.";
/// The legacy (pre-1.0) namespace; dlt maps its `snake_case` to the current one.
const LEGACY_NAMESPACE: &str = "dlt.common.normalizers.names.";

impl NamingKind {
    /// Resolves a naming reference as dlt's `naming_from_reference` does for its built-in
    /// conventions: a short name (`"snake_case"`), a module path
    /// (`"dlt.common.normalizers.naming.snake_case"`, also the legacy
    /// `"dlt.common.normalizers.names.snake_case"`) or a class path
    /// (`"dlt.common.normalizers.naming.snake_case.NamingConvention"`).
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        let short = if let Some(rest) = name.strip_prefix(NAMING_NAMESPACE) {
            rest.strip_suffix(".NamingConvention").unwrap_or(rest)
        } else if let Some(rest) = name.strip_prefix(LEGACY_NAMESPACE) {
            // dlt only rewrites the legacy snake_case module
            let rest = rest.strip_suffix(".NamingConvention").unwrap_or(rest);
            if rest != "snake_case" {
                return None;
            }
            rest
        } else {
            // short name, possibly with the class attribute appended
            name.strip_suffix(".NamingConvention").unwrap_or(name)
        };
        match short {
            "snake_case" => Some(Self::SnakeCase),
            "sql_cs_v1" => Some(Self::SqlCsV1),
            "sql_ci_v1" => Some(Self::SqlCiV1),
            "duck_case" => Some(Self::DuckCase),
            "direct" => Some(Self::Direct),
            _ => None,
        }
    }

    /// The convention's short name as dlt stores it in the schema (`"snake_case"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::SnakeCase => "snake_case",
            Self::SqlCsV1 => "sql_cs_v1",
            Self::SqlCiV1 => "sql_ci_v1",
            Self::DuckCase => "duck_case",
            Self::Direct => "direct",
        }
    }
}

/// A naming convention with an optional maximum identifier length (set from the destination's
/// capabilities; identifiers longer than it are shortened with a hash tag, spec a.3).
#[derive(Debug, Clone)]
pub struct Naming {
    /// Which convention.
    pub kind: NamingKind,
    /// Maximum identifier length in code points; `None` (or `Some(0)`) = unlimited.
    pub max_length: Option<usize>,
}

impl Default for Naming {
    fn default() -> Self {
        Self::snake_case()
    }
}

/// Length of the shortening tag (4 bytes of SHAKE-128 in unpadded base64).
const TAG_LEN: usize = 6;
/// Bytes of SHAKE-128 in a tag: `floor(3 * log2(1 / 0.001) / 8) + 1`.
const TAG_BYTES: usize = 4;
/// The standard base64 alphabet after dlt's `/`→`a`, `+`→`b` and lower-casing.
const TAG_ALPHABET: &[u8; 64] = b"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456789ba";

impl Naming {
    /// A convention with an optional maximum identifier length.
    pub fn new(kind: NamingKind, max_length: Option<usize>) -> Self {
        Self { kind, max_length }
    }

    /// dlt's default: `snake_case` without a maximum length.
    pub fn snake_case() -> Self {
        Self::new(NamingKind::SnakeCase, None)
    }

    /// Separator of path components (nested tables, flattened columns): `"__"`, or `"▶"` for
    /// `direct`.
    pub fn path_separator(&self) -> &'static str {
        match self.kind {
            NamingKind::Direct => "▶",
            _ => "__",
        }
    }

    /// Whether the convention produces case-sensitive identifiers.
    pub fn is_case_sensitive(&self) -> bool {
        match self.kind {
            NamingKind::SnakeCase | NamingKind::SqlCiV1 => false,
            NamingKind::SqlCsV1 | NamingKind::DuckCase | NamingKind::Direct => true,
        }
    }

    /// The effective maximum length (`Some(0)` means unlimited, as in dlt).
    fn limit(&self) -> Option<usize> {
        self.max_length.filter(|&l| l > 0)
    }

    /// Normalizes (and shortens) one identifier. Errors if it is empty or whitespace only.
    ///
    /// Note that `sql_cs_v1`/`sql_ci_v1` can legitimately return an empty string (for input
    /// made only of 2+ underscores, as dlt does).
    pub fn normalize_identifier(&self, s: &str) -> Result<String, NamingError> {
        let ident = py_strip(s);
        if ident.is_empty() {
            return Err(NamingError(s.to_owned()));
        }
        let normalized = match self.kind {
            NamingKind::SnakeCase => snake_case_core(ident),
            NamingKind::SqlCsV1 | NamingKind::SqlCiV1 => sql_cs_core(ident),
            NamingKind::DuckCase => duck_case_core(ident),
            NamingKind::Direct => direct_core(ident),
        };
        let mut out = self.shorten(normalized, ident);
        if self.kind == NamingKind::SqlCiV1 {
            // only ASCII letters, `_`, Unicode decimal digits (caseless) and the tag remain
            out.make_ascii_lowercase();
        }
        Ok(out)
    }

    /// Normalizes a dataset, table or schema name; identical to
    /// [`normalize_identifier`](Self::normalize_identifier) for all conventions here.
    pub fn normalize_table_identifier(&self, s: &str) -> Result<String, NamingError> {
        self.normalize_identifier(s)
    }

    /// Normalizes a path: splits on the separator, drops empty/whitespace components,
    /// normalizes each, joins them and shortens the whole (tag source = `s` as given).
    /// `"a__b"` stays `"a__b"`, `"__leading"` → `"leading"`, `"__"` → `""`.
    pub fn normalize_path(&self, s: &str) -> String {
        let sep = self.path_separator();
        let mut out = String::with_capacity(s.len() + 2);
        for part in s.split(sep) {
            // components that strip to nothing are dropped, so normalization cannot fail
            if let Ok(norm) = self.normalize_identifier(part) {
                if py_strip(&norm).is_empty() {
                    // dlt's make_path drops empty components (sql_cs_v1 `__` → ``)
                    continue;
                }
                if !out.is_empty() {
                    out.push_str(sep);
                }
                out.push_str(&norm);
            }
        }
        self.shorten(out, s)
    }

    /// Joins already-normalized fragments with the separator (skipping empty/whitespace ones)
    /// and shortens the result, with the joined string as tag source. No fragments → `""`.
    pub fn shorten_fragments(&self, fragments: &[&str]) -> String {
        let sep = self.path_separator();
        let mut out = String::with_capacity(fragments.iter().map(|f| f.len() + 2).sum());
        for f in fragments {
            if py_strip(f).is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push_str(sep);
            }
            out.push_str(f);
        }
        match self.limit() {
            Some(max) if exceeds(&out, max) => Self::shorten_identifier(&out, &out, max),
            _ => out,
        }
    }

    /// Shortens `normalized` to exactly `max_length` code points if it is longer: the head and
    /// tail of the name around a 6 character tag computed from `tag_source` (spec a.3). A
    /// `max_length` of 0 means no limit. (dlt asserts for limits below the tag length; here the
    /// tag itself is cut.)
    pub fn shorten_identifier(normalized: &str, tag_source: &str, max_length: usize) -> String {
        if max_length == 0 || !exceeds(normalized, max_length) {
            return normalized.to_owned();
        }
        let tag = Self::compute_tag(tag_source);
        if max_length < TAG_LEN {
            return tag[..max_length].to_owned();
        }
        let remaining = max_length - TAG_LEN;
        let head = remaining / 2 + remaining % 2;
        let tail = remaining / 2;
        let n_chars = normalized.chars().count();
        let head_end = byte_offset_of_char(normalized, head);
        let tail_start = byte_offset_of_char(normalized, n_chars - tail);
        let mut out = String::with_capacity(head_end + TAG_LEN + normalized.len() - tail_start);
        out.push_str(&normalized[..head_end]);
        out.push_str(&tag);
        out.push_str(&normalized[tail_start..]);
        out
    }

    /// The shortening tag of an identifier: `b64(shake128(id, 4))` without padding, `/`→`a`,
    /// `+`→`b`, lower-cased (6 characters).
    pub fn compute_tag(identifier: &str) -> String {
        let mut hasher = Shake128::default();
        hasher.update(identifier.as_bytes());
        let mut reader = hasher.finalize_xof();
        let mut b = [0u8; TAG_BYTES];
        reader.read(&mut b);
        let bits = u32::from_be_bytes(b);
        let mut out = String::with_capacity(TAG_LEN);
        // 6 sextets: the first five from the top 30 bits, the last holds 2 bits and 4 zeros
        for i in 0..5 {
            let idx = (bits >> (26 - 6 * i)) & 0x3f;
            out.push(char::from(TAG_ALPHABET[idx as usize]));
        }
        out.push(char::from(TAG_ALPHABET[((bits & 0x3) << 4) as usize]));
        out
    }

    /// Shortens an owned normalized name with this naming's limit (if any).
    fn shorten(&self, normalized: String, tag_source: &str) -> String {
        match self.limit() {
            Some(max) if exceeds(&normalized, max) => {
                Self::shorten_identifier(&normalized, tag_source, max)
            }
            _ => normalized,
        }
    }
}

/// Whether `s` has more than `max` code points (cheap byte-length check first).
fn exceeds(s: &str, max: usize) -> bool {
    s.len() > max && (s.is_ascii() || s.chars().count() > max)
}

/// Byte offset of the `n`-th code point of `s` (`s.len()` if past the end).
fn byte_offset_of_char(s: &str, n: usize) -> usize {
    if s.is_ascii() {
        return n.min(s.len());
    }
    s.char_indices().nth(n).map_or(s.len(), |(i, _)| i)
}

/// Python's `str.isspace`: Unicode `White_Space` plus the separators `\x1c`..`\x1f`.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Python's `str.strip()` without arguments.
fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// First code points of the runs of ten Unicode decimal digits (category `Nd`) outside ASCII,
/// Unicode 14.0 (Python 3.11's database). Every run is `start..=start+9`, except the
/// mathematical digits (`0x1D7CE..=0x1D7FF`, five runs back to back).
const ND_RUN_STARTS: [u32; 61] = [
    0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
    0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50,
    0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// Python's `\d` in a `str` regex: a Unicode decimal digit.
fn is_unicode_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    let cp = c as u32;
    if (0x1D7CE..=0x1D7FF).contains(&cp) {
        return true;
    }
    // the last run starting at or below cp
    let idx = ND_RUN_STARTS.partition_point(|&start| start <= cp);
    idx > 0 && cp - ND_RUN_STARTS[idx - 1] < 10
}

/// Whether a char survives `[^a-zA-Z\d_]+` (ASCII alphanumerics, `_`, Unicode digits).
fn is_sql_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || (!c.is_ascii() && is_unicode_digit(c))
}

/// Pushes `c` (ASCII or not) onto a byte buffer as UTF-8.
fn push_char(buf: &mut Vec<u8>, c: char) {
    if c.is_ascii() {
        buf.push(c as u8);
    } else {
        let mut tmp = [0u8; 4];
        buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
    }
}

/// Converts a byte buffer that is valid UTF-8 by construction (ASCII bytes are only ever
/// inserted at character boundaries) into a `String`.
fn into_string(buf: Vec<u8>) -> String {
    String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Replaces every maximal run of characters outside `[A-Za-z0-9_]` and Unicode digits by one
/// `_`, after mapping characters with `map` (used for snake_case's reduced alphabet).
fn replace_non_alnum_runs(ident: &str, map: impl Fn(char) -> char) -> Vec<u8> {
    let mut out = Vec::with_capacity(ident.len() + 2);
    let mut in_run = false;
    for c in ident.chars() {
        let c = map(c);
        if is_sql_alnum(c) {
            push_char(&mut out, c);
            in_run = false;
        } else if !in_run {
            out.push(b'_');
            in_run = true;
        }
    }
    out
}

/// Whether the (valid UTF-8) byte string starts with a Unicode decimal digit (`^\d`).
fn starts_with_digit(b: &[u8]) -> bool {
    let Some(&first) = b.first() else {
        return false;
    };
    if first.is_ascii() {
        return first.is_ascii_digit();
    }
    let len = match first {
        0xF0.. => 4,
        0xE0.. => 3,
        _ => 2,
    };
    std::str::from_utf8(&b[..len.min(b.len())])
        .ok()
        .and_then(|s| s.chars().next())
        .is_some_and(is_unicode_digit)
}

/// Appends `src` to `out` collapsing every run of 2+ `_` into one (`__+` → `_`).
fn push_collapsing_underscores(out: &mut Vec<u8>, src: &[u8]) {
    for &b in src {
        if b == b'_' && out.last() == Some(&b'_') {
            continue;
        }
        out.push(b);
    }
}

/// snake_case normalization of a stripped, non-empty identifier (without shortening).
fn snake_case_core(ident: &str) -> String {
    // 1. reduced alphabet, then runs of other characters → `_`
    let a = replace_non_alnum_runs(ident, |c| match c {
        '+' | '*' => 'x',
        '-' => '_',
        '@' => 'a',
        '|' => 'l',
        c => c,
    });

    // 2. `([^_])([A-Z][a-z]+)` → `\1_\2` (left to right, non-overlapping). Working on bytes
    //    is exact: a multi-byte char can only match `[^_]` with its last byte.
    let n = a.len();
    let mut b = Vec::with_capacity(n + n / 2 + 2);
    let mut i = 0;
    while i < n {
        if a[i] != b'_'
            && i + 2 < n
            && a[i + 1].is_ascii_uppercase()
            && a[i + 2].is_ascii_lowercase()
        {
            b.push(a[i]);
            b.push(b'_');
            b.push(a[i + 1]);
            let mut j = i + 2;
            while j < n && a[j].is_ascii_lowercase() {
                b.push(a[j]);
                j += 1;
            }
            i = j;
        } else {
            b.push(a[i]);
            i += 1;
        }
    }

    // 3. `([a-z0-9])([A-Z])` → `\1_\2`, then lower-case (only ASCII letters have case here)
    let n = b.len();
    let mut c = a; // reuse the first buffer
    c.clear();
    c.reserve(n + n / 2 + 1);
    let mut i = 0;
    while i < n {
        let x = b[i];
        if (x.is_ascii_lowercase() || x.is_ascii_digit())
            && i + 1 < n
            && b[i + 1].is_ascii_uppercase()
        {
            c.push(x);
            c.push(b'_');
            c.push(b[i + 1].to_ascii_lowercase());
            i += 2;
        } else {
            c.push(x.to_ascii_lowercase());
            i += 1;
        }
    }

    // 4. leading digit → prefix `_`; 5. trailing `_` → `x` each; 6. collapse `__+`
    let mut out = b; // reuse the second buffer
    out.clear();
    if starts_with_digit(&c) {
        out.push(b'_');
    }
    let body_len = c.len() - c.iter().rev().take_while(|&&x| x == b'_').count();
    push_collapsing_underscores(&mut out, &c[..body_len]);
    out.extend(std::iter::repeat_n(b'x', c.len() - body_len));
    into_string(out)
}

/// sql_cs_v1 normalization of a stripped, non-empty identifier (without shortening).
fn sql_cs_core(ident: &str) -> String {
    let a = replace_non_alnum_runs(ident, |c| c);
    let mut out = Vec::with_capacity(a.len() + 1);
    if starts_with_digit(&a) {
        out.push(b'_');
    }
    let mut body: &[u8] = &a;
    // trailing underscores are removed, unless the whole name is `_`
    if !(out.is_empty() && body == b"_") {
        let t = body.iter().rev().take_while(|&&x| x == b'_').count();
        body = &body[..body.len() - t];
    }
    push_collapsing_underscores(&mut out, body);
    into_string(out)
}

/// duck_case normalization: `\n`, `\r`, `"` → `_`, then collapse `__+`.
fn duck_case_core(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len());
    for c in ident.chars() {
        let c = match c {
            '\n' | '\r' | '"' => '_',
            c => c,
        };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    out
}

/// direct normalization: `\n`, `\r`, `'`, `"`, `▶` → `_`.
fn direct_core(ident: &str) -> String {
    ident
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\'' | '"' | '▶' => '_',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn golden_path() -> std::path::PathBuf {
        match std::env::var("GOLDEN_DIR") {
            Ok(dir) => std::path::Path::new(&dir).join("../naming_cases.json"),
            Err(_) => std::path::PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/golden/naming_cases.json"
            )),
        }
    }

    #[test]
    fn golden_naming_cases() {
        let path = golden_path();
        let text = std::fs::read_to_string(&path).expect("read naming_cases.json");
        let golden: Value = serde_json::from_str(&text).expect("parse naming_cases.json");
        let mut failures = Vec::new();
        let mut checked = 0usize;

        let cases = golden["cases"].as_array().expect("cases");
        for case in cases {
            let conv = case["convention"].as_str().expect("convention");
            let kind = NamingKind::parse(conv).expect("known convention");
            assert_eq!(kind.name(), conv);
            let max_length = case["max_length"].as_u64().map(|v| v as usize);
            let naming = Naming::new(kind, max_length);
            let input = case["input"].as_str().expect("input");
            let want_ident = case["normalize_identifier"].as_str();
            let got_ident = naming.normalize_identifier(input).ok();
            if got_ident.as_deref() != want_ident {
                failures.push(format!(
                    "{conv}/{max_length:?} normalize_identifier({input:?}) = {got_ident:?}, want {want_ident:?}"
                ));
            }
            let want_path = case["normalize_path"].as_str().expect("normalize_path");
            let got_path = naming.normalize_path(input);
            if got_path != want_path {
                failures.push(format!(
                    "{conv}/{max_length:?} normalize_path({input:?}) = {got_path:?}, want {want_path:?}"
                ));
            }
            checked += 1;
        }

        for ex in golden["compute_tag_examples"].as_array().expect("tags") {
            let id = ex["identifier"].as_str().expect("identifier");
            let want = ex["tag"].as_str().expect("tag");
            let got = Naming::compute_tag(id);
            if got != want {
                failures.push(format!("compute_tag({id:?}) = {got:?}, want {want:?}"));
            }
            checked += 1;
        }

        for ex in golden["shorten_fragments_examples"]
            .as_array()
            .expect("fragments")
        {
            let frags: Vec<&str> = ex["fragments"]
                .as_array()
                .expect("fragments")
                .iter()
                .map(|v| v.as_str().expect("fragment"))
                .collect();
            let want = ex["shorten_fragments"].as_str().expect("shorten_fragments");
            // the golden examples use snake_case with a 63 character limit
            let naming = Naming::new(NamingKind::SnakeCase, Some(63));
            let got = naming.shorten_fragments(&frags);
            if got != want {
                failures.push(format!(
                    "shorten_fragments({frags:?}) = {got:?}, want {want:?}"
                ));
            }
            checked += 1;
        }

        for f in &failures {
            eprintln!("MISMATCH {f}");
        }
        eprintln!(
            "naming golden: {checked} cases checked, {} mismatches",
            failures.len()
        );
        assert!(failures.is_empty(), "{} naming mismatches", failures.len());
        assert!(checked >= 540);
    }

    /// Optional differential check against cases dumped from real dlt:
    /// `NAMING_DIFF_FILE=/path.json` with `[{convention, max_length, input, id, path}]`.
    #[test]
    fn differential_file() {
        let Ok(path) = std::env::var("NAMING_DIFF_FILE") else {
            return;
        };
        let text = std::fs::read_to_string(path).expect("read diff file");
        let cases: Value = serde_json::from_str(&text).expect("parse diff file");
        let mut failures = 0usize;
        let cases = cases.as_array().expect("array");
        for case in cases {
            let kind = NamingKind::parse(case["convention"].as_str().expect("conv")).expect("kind");
            let naming = Naming::new(kind, case["max_length"].as_u64().map(|v| v as usize));
            let input = case["input"].as_str().expect("input");
            let got_id = naming.normalize_identifier(input).ok();
            let got_path = naming.normalize_path(input);
            let want_id = case["id"].as_str();
            let want_path = case["path"].as_str().expect("path");
            if got_id.as_deref() != want_id || got_path != want_path {
                failures += 1;
                eprintln!(
                    "DIFF {kind:?}/{:?} {input:?}: id {got_id:?} want {want_id:?}; path {got_path:?} want {want_path:?}",
                    naming.max_length
                );
            }
        }
        eprintln!("differential: {} cases, {failures} failures", cases.len());
        assert_eq!(failures, 0);
    }

    fn snake(s: &str) -> String {
        Naming::snake_case()
            .normalize_identifier(s)
            .expect("normalize")
    }

    #[test]
    fn camel_case_breaking() {
        assert_eq!(snake("HTTPResponseCode"), "http_response_code");
        assert_eq!(snake("getHTTPResponse"), "get_http_response");
        assert_eq!(snake("ABCdefGHI"), "ab_cdef_ghi");
        assert_eq!(snake("SomeID2Name"), "some_id2_name");
        assert_eq!(snake("ABcDe"), "a_bc_de");
        assert_eq!(snake("xAbCdEf"), "x_ab_cd_ef");
        assert_eq!(snake("AAbb"), "a_abb");
        assert_eq!(snake("_Abc"), "_abc");
    }

    #[test]
    fn trailing_underscores_and_collapsing() {
        assert_eq!(snake("trailing_"), "trailingx");
        assert_eq!(snake("trailing__"), "trailingxx");
        assert_eq!(snake("Hello World!"), "hello_worldx");
        assert_eq!(snake("_"), "x");
        assert_eq!(snake("a___b"), "a_b");
        assert_eq!(snake("a-$b"), "a_b");
        assert_eq!(snake("  padded\t"), "padded");
        let sql = Naming::new(NamingKind::SqlCsV1, None);
        assert_eq!(sql.normalize_identifier("_").expect("ok"), "_");
        assert_eq!(sql.normalize_identifier("__").expect("ok"), "");
        assert_eq!(sql.normalize_identifier("1_").expect("ok"), "_1");
    }

    #[test]
    fn unicode() {
        assert_eq!(snake("ünïcödé"), "_n_c_dx");
        assert_eq!(snake("emoji😀"), "emojix");
        // Unicode decimal digits survive and count as leading digits (Python's `\d`)
        assert_eq!(snake("٣abc"), "_٣abc");
        assert_eq!(snake("a٣B"), "a٣b");
        assert_eq!(snake("ａｂｃ１２"), "_１２");
        // Python's strip also removes \x1c-\x1f and \x85
        assert_eq!(snake("\x1cab\x1c"), "ab");
        assert_eq!(snake("a\u{85}"), "a");
        let duck = Naming::new(NamingKind::DuckCase, None);
        assert_eq!(
            duck.normalize_identifier("Grüße \"x\"").expect("ok"),
            "Grüße _x_"
        );
        // shortening counts code points
        let duck5 = Naming::new(NamingKind::DuckCase, Some(8));
        let out = duck5.normalize_identifier("üüüüüüüüüü").expect("ok");
        assert_eq!(out.chars().count(), 8);
        assert!(out.starts_with('ü') && out.ends_with('ü'));
    }

    #[test]
    fn empty_identifiers_error() {
        let n = Naming::snake_case();
        assert!(n.normalize_identifier("").is_err());
        assert!(n.normalize_identifier(" \t\n").is_err());
        for kind in [
            NamingKind::SqlCsV1,
            NamingKind::DuckCase,
            NamingKind::Direct,
        ] {
            assert!(Naming::new(kind, None).normalize_identifier("  ").is_err());
        }
    }

    #[test]
    fn path_rules() {
        let n = Naming::snake_case();
        assert_eq!(n.normalize_path("a__b"), "a__b");
        assert_eq!(n.normalize_path("trailing__"), "trailing");
        assert_eq!(n.normalize_path("__leading"), "leading");
        assert_eq!(n.normalize_path("__"), "");
        assert_eq!(n.normalize_path("   "), "");
        assert_eq!(
            n.normalize_path("Parent__ChildItems"),
            "parent__child_items"
        );
        assert_eq!(n.normalize_path("a__ __b"), "a__b");
        let d = Naming::new(NamingKind::Direct, None);
        assert_eq!(d.path_separator(), "▶");
        assert_eq!(d.normalize_path("Direct Table▶Kids"), "Direct Table▶Kids");
        assert_eq!(
            d.shorten_fragments(&["Nested", "Inner Key"]),
            "Nested▶Inner Key"
        );
        assert_eq!(n.shorten_fragments(&[]), "");
        assert_eq!(n.shorten_fragments(&["a", " ", "b"]), "a__b");
    }

    #[test]
    fn parse_names() {
        for kind in [
            NamingKind::SnakeCase,
            NamingKind::SqlCsV1,
            NamingKind::SqlCiV1,
            NamingKind::DuckCase,
            NamingKind::Direct,
        ] {
            assert_eq!(NamingKind::parse(kind.name()), Some(kind));
            let module = format!("dlt.common.normalizers.naming.{}", kind.name());
            assert_eq!(NamingKind::parse(&module), Some(kind));
            assert_eq!(
                NamingKind::parse(&format!("{module}.NamingConvention")),
                Some(kind)
            );
        }
        assert_eq!(
            NamingKind::parse("dlt.common.normalizers.names.snake_case"),
            Some(NamingKind::SnakeCase)
        );
        assert_eq!(NamingKind::parse("camel_case"), None);
    }

    #[test]
    fn shortening() {
        let long = "a_very_long_resource_name_that_goes_on_and_on_and_on_for_ever_and_ever";
        assert_eq!(Naming::compute_tag(long), "kbrhng");
        assert_eq!(
            Naming::shorten_identifier(long, long, 63),
            "a_very_long_resource_name_thakbrhng_on_and_on_for_ever_and_ever"
        );
        assert_eq!(Naming::shorten_identifier("short", "short", 63), "short");
        assert_eq!(Naming::shorten_identifier(long, long, 0), long);
        let n = Naming::new(NamingKind::SnakeCase, Some(63));
        assert_eq!(n.normalize_identifier(long).expect("ok").len(), 63);
    }
}
