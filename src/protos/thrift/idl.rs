//! Thrift IDL files, read for names only: for every function of every service, the
//! names of its arguments and declared exceptions by field id, whether it is oneway,
//! and the service it belongs to. Includes are followed (relative to the including
//! file, then as given); typedefs, enums, structs, unions, exceptions, consts,
//! namespaces and annotations are parsed and otherwise ignored. Comments: `//`, `#`
//! and `/* */`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Most files followed through includes.
const MAX_FILES: usize = 256;
/// Largest IDL file read.
const MAX_FILE_BYTES: u64 = 16 << 20;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Function {
    pub service: String,
    pub oneway: bool,
    /// Argument names by field id.
    pub params: HashMap<i16, String>,
    /// Exception names by field id (the reply struct's ids).
    pub exceptions: HashMap<i16, String>,
}

/// Functions of every service, by name (the first definition of a name wins).
#[derive(Clone, Debug, Default)]
pub struct Idl {
    pub functions: HashMap<String, Function>,
}

impl Idl {
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.get(name).or_else(|| {
            // Multiplexed calls are sent as `Service:function`.
            let (_, f) = name.split_once(':')?;
            self.functions.get(f)
        })
    }

    /// Loads `files` and everything they include.
    pub fn load(files: &[String]) -> Result<Idl, String> {
        let mut idl = Idl::default();
        let mut seen: Vec<PathBuf> = Vec::new();
        for f in files {
            idl.load_file(Path::new(f), &mut seen)?;
        }
        Ok(idl)
    }

    fn load_file(&mut self, path: &Path, seen: &mut Vec<PathBuf>) -> Result<(), String> {
        let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if seen.contains(&canon) {
            return Ok(());
        }
        if seen.len() >= MAX_FILES {
            return Err(format!(
                "{}: more than {MAX_FILES} IDL files included",
                path.display()
            ));
        }
        seen.push(canon);
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(format!(
                "{}: larger than {MAX_FILE_BYTES} bytes",
                path.display()
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let parsed = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        for inc in &parsed.includes {
            let rel = path.parent().map(|d| d.join(inc));
            let target = match rel {
                Some(p) if p.exists() => p,
                _ => PathBuf::from(inc),
            };
            self.load_file(&target, seen)?;
        }
        for (name, f) in parsed.functions {
            self.functions.entry(name).or_insert(f);
        }
        Ok(())
    }
}

/// What one file declares.
#[derive(Debug, Default)]
pub struct Parsed {
    pub includes: Vec<String>,
    pub functions: Vec<(String, Function)>,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Punct(char),
}

fn tokenize(text: &str) -> Result<Vec<(Tok, usize)>, String> {
    let b = text.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let start = line;
                i += 2;
                loop {
                    if i + 1 >= b.len() {
                        return Err(format!("line {start}: unterminated comment"));
                    }
                    if b[i] == b'*' && b[i + 1] == b'/' {
                        i += 2;
                        break;
                    }
                    if b[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
            b'"' | b'\'' => {
                let q = c;
                let start = i + 1;
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    if i < b.len() && b[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                if i >= b.len() {
                    return Err(format!("line {line}: unterminated string"));
                }
                toks.push((Tok::Str(text[start..i].to_string()), line));
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.')
                {
                    i += 1;
                }
                toks.push((Tok::Ident(text[start..i].to_string()), line));
            }
            c if c.is_ascii_digit()
                || ((c == b'-' || c == b'+') && i + 1 < b.len() && b[i + 1].is_ascii_digit()) =>
            {
                let start = i;
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'.'
                        || ((b[i] == b'-' || b[i] == b'+') && matches!(b[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
                toks.push((Tok::Num(text[start..i].to_string()), line));
            }
            b'{' | b'}' | b'(' | b')' | b'<' | b'>' | b',' | b';' | b':' | b'=' | b'[' | b']'
            | b'*' => {
                toks.push((Tok::Punct(c as char), line));
                i += 1;
            }
            _ => {
                // Keep going past anything else (non-ASCII in identifiers of
                // annotations, stray characters): names are all we need.
                let ch = text[i..].chars().next().map_or(1, char::len_utf8);
                i += ch;
            }
        }
    }
    Ok(toks)
}

struct P {
    toks: Vec<(Tok, usize)>,
    i: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.0)
    }

    fn line(&self) -> usize {
        self.toks
            .get(self.i)
            .or_else(|| self.toks.last())
            .map_or(0, |t| t.1)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.i).map(|t| t.0.clone());
        self.i += 1;
        t
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("line {}: {what}", self.line()))
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Punct(c))
    }

    fn eat(&mut self, c: char) -> bool {
        if self.is_punct(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            self.err(&format!("expected '{c}'"))
        }
    }

    fn ident(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Ident(s)) => Ok(s),
            _ => {
                self.i -= 1;
                self.err("expected a name")
            }
        }
    }

    fn eat_separator(&mut self) {
        if !self.eat(',') {
            self.eat(';');
        }
    }

    /// Skips a balanced `open ... close` group starting at the current token.
    fn skip_group(&mut self, open: char, close: char) -> Result<(), String> {
        self.expect(open)?;
        let mut depth = 1usize;
        while depth > 0 {
            match self.next() {
                Some(Tok::Punct(c)) if c == open => depth += 1,
                Some(Tok::Punct(c)) if c == close => depth -= 1,
                Some(_) => {}
                None => return self.err(&format!("unbalanced '{open}'")),
            }
        }
        Ok(())
    }

    /// Skips `( annotations )` if present.
    fn annotations(&mut self) -> Result<(), String> {
        if self.is_punct('(') {
            self.skip_group('(', ')')?;
        }
        Ok(())
    }

    /// A field type: base, named, or container (`list<T>`, `set<T>`, `map<K,V>`),
    /// with optional annotations.
    fn field_type(&mut self, depth: usize) -> Result<(), String> {
        if depth > 32 {
            return self.err("types nested too deeply");
        }
        let name = self.ident()?;
        if matches!(name.as_str(), "list" | "set" | "map") {
            self.expect('<')?;
            self.field_type(depth + 1)?;
            if name == "map" {
                self.expect(',')?;
                self.field_type(depth + 1)?;
            }
            self.expect('>')?;
            if name == "set" || name == "list" {
                // Old `cpp_type "..."` after containers.
                if self.peek() == Some(&Tok::Ident("cpp_type".into())) {
                    self.i += 1;
                    self.next();
                }
            }
        }
        self.annotations()
    }

    /// A constant value (after `=`): skipped.
    fn const_value(&mut self) -> Result<(), String> {
        if self.is_punct('[') {
            self.skip_group('[', ']')
        } else if self.is_punct('{') {
            self.skip_group('{', '}')
        } else {
            match self.next() {
                Some(Tok::Ident(_) | Tok::Str(_) | Tok::Num(_)) => Ok(()),
                _ => {
                    self.i -= 1;
                    self.err("expected a value")
                }
            }
        }
    }

    /// A field list up to `close`: names by id (fields without an id get the
    /// implicit negative ids Thrift gives them).
    fn fields(&mut self, close: char) -> Result<HashMap<i16, String>, String> {
        let mut out = HashMap::new();
        let mut implicit: i16 = -1;
        while !self.eat(close) {
            if self.peek().is_none() {
                return self.err(&format!("expected '{close}'"));
            }
            let mut id = None;
            if let Some(Tok::Num(s)) = self.peek() {
                let Some(v) = parse_id(s) else {
                    return self.err("bad field id");
                };
                self.i += 1;
                self.expect(':')?;
                id = Some(v);
            }
            if let Some(Tok::Ident(k)) = self.peek()
                && matches!(k.as_str(), "required" | "optional")
            {
                self.i += 1;
            }
            self.field_type(0)?;
            let name = self.ident()?;
            if self.eat('=') {
                self.const_value()?;
            }
            self.annotations()?;
            self.eat_separator();
            let id = id.unwrap_or_else(|| {
                let v = implicit;
                implicit = implicit.saturating_sub(1);
                v
            });
            out.entry(id).or_insert(name);
        }
        Ok(out)
    }
}

/// Parses one file's text.
pub fn parse(text: &str) -> Result<Parsed, String> {
    let toks = tokenize(text)?;
    let mut p = P { toks, i: 0 };
    let mut out = Parsed::default();
    parse_doc(&mut p, &mut out)?;
    Ok(out)
}

/// A field id: decimal or `0x` hex, within i16.
fn parse_id(s: &str) -> Option<i16> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(h) => i64::from_str_radix(h, 16).ok()?,
        None => digits.parse::<i64>().ok()?,
    };
    i16::try_from(if neg { -v } else { v }).ok()
}

fn parse_doc(p: &mut P, out: &mut Parsed) -> Result<(), String> {
    while let Some(t) = p.next() {
        let Tok::Ident(kw) = t else {
            if t == Tok::Punct(';') || t == Tok::Punct(',') {
                continue;
            }
            p.i -= 1;
            return p.err("expected a declaration");
        };
        match kw.as_str() {
            "include" | "cpp_include" => match p.next() {
                Some(Tok::Str(s)) => {
                    if kw == "include" {
                        out.includes.push(s);
                    }
                }
                _ => return p.err("expected a file name after include"),
            },
            "namespace" => {
                // namespace <scope> <name> [annotations]
                p.ident().or_else(|_| {
                    if p.eat('*') {
                        Ok(String::new())
                    } else {
                        p.err("expected a namespace scope")
                    }
                })?;
                p.ident()?;
                p.annotations()?;
            }
            "cpp_namespace" | "php_namespace" | "py_module" | "perl_package" | "ruby_namespace"
            | "smalltalk_category" | "smalltalk_prefix" | "java_package" | "cocoa_prefix"
            | "xsd_namespace" | "csharp_namespace" | "delphi_namespace" => {
                p.next();
            }
            "typedef" => {
                p.field_type(0)?;
                p.ident()?;
                p.annotations()?;
            }
            "const" => {
                p.field_type(0)?;
                p.ident()?;
                p.expect('=')?;
                p.const_value()?;
            }
            "enum" | "senum" => {
                p.ident()?;
                p.skip_group('{', '}')?;
                p.annotations()?;
            }
            "struct" | "union" | "exception" => {
                p.ident()?;
                if let Some(Tok::Ident(x)) = p.peek()
                    && x == "xsd_all"
                {
                    p.i += 1;
                }
                p.skip_group('{', '}')?;
                p.annotations()?;
            }
            "service" => {
                let name = p.ident()?;
                if let Some(Tok::Ident(x)) = p.peek()
                    && x == "extends"
                {
                    p.i += 1;
                    p.ident()?;
                }
                p.expect('{')?;
                while !p.eat('}') {
                    if p.peek().is_none() {
                        return p.err("unterminated service");
                    }
                    let (fname, f) = function(p, &name)?;
                    out.functions.push((fname, f));
                }
                p.annotations()?;
            }
            _ => return p.err(&format!("unexpected '{kw}'")),
        }
        p.eat_separator();
    }
    Ok(())
}

fn function(p: &mut P, service: &str) -> Result<(String, Function), String> {
    let mut oneway = false;
    if let Some(Tok::Ident(x)) = p.peek()
        && x == "oneway"
    {
        oneway = true;
        p.i += 1;
    }
    if let Some(Tok::Ident(x)) = p.peek()
        && x == "void"
    {
        p.i += 1;
    } else {
        p.field_type(0)?;
    }
    let name = p.ident()?;
    p.expect('(')?;
    let params = p.fields(')')?;
    let mut exceptions = HashMap::new();
    if let Some(Tok::Ident(x)) = p.peek()
        && x == "throws"
    {
        p.i += 1;
        p.expect('(')?;
        exceptions = p.fields(')')?;
    }
    p.annotations()?;
    p.eat_separator();
    Ok((
        name,
        Function {
            service: service.to_string(),
            oneway,
            params,
            exceptions,
        },
    ))
}
