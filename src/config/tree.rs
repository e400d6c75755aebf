//! A generic YAML tree that remembers where every node came from.
//!
//! The file (and each `-E` value) is parsed into [`Node`]s first; layout mapping,
//! overrides and typed conversion then work on this tree so every warning and
//! error can name a source, a line, a column and a key path.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Largest configuration text accepted (files and `-E` values alike).
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// Deepest nesting accepted; deeper trees are rejected before conversion.
pub const MAX_DEPTH: usize = 64;

/// Where a node came from: `src` indexes the loader's source-name table
/// (0 = the configuration file, n = the n-th `-E` argument).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub src: usize,
    pub line: u64,
    pub col: u64,
}

#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Clone, Debug)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

impl Node {
    pub fn new(value: Value, pos: Pos) -> Node {
        Node { value, pos }
    }

    pub fn empty_map(pos: Pos) -> Node {
        Node::new(Value::Map(Vec::new()), pos)
    }

    /// A short description of the node's type and value for error messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "null".into(),
            Value::Bool(b) => format!("boolean {b}"),
            Value::Int(i) => format!("integer {i}"),
            Value::Float(f) => format!("number {f}"),
            Value::Str(s) => {
                let mut shown: String = s.chars().take(40).collect();
                if shown.len() < s.len() {
                    shown.push_str("...");
                }
                format!("string {shown:?}")
            }
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// Sets the source index of this node and all its children.
    pub fn set_src(&mut self, src: usize) {
        self.pos.src = src;
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.set_src(src)),
            Value::Map(entries) => {
                for (k, v) in entries {
                    k.pos.src = src;
                    v.set_src(src);
                }
            }
            _ => {}
        }
    }

    fn depth(&self) -> usize {
        match &self.value {
            Value::Seq(items) => 1 + items.iter().map(Node::depth).max().unwrap_or(0),
            Value::Map(entries) => 1 + entries.iter().map(|(_, v)| v.depth()).max().unwrap_or(0),
            _ => 0,
        }
    }
}

/// The parts of a YAML parse failure.
#[derive(Debug)]
pub struct ParseFailure {
    pub line: u64,
    pub col: u64,
    pub message: String,
}

/// Parses YAML text into a tree. An empty document is an empty mapping.
pub fn parse(text: &str, src: usize) -> Result<Node, ParseFailure> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(ParseFailure {
            line: 0,
            col: 0,
            message: format!(
                "configuration is {} bytes, larger than the {} byte limit",
                text.len(),
                MAX_INPUT_BYTES
            ),
        });
    }
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    // Comments are not needed; not emitting them also lifts the limit on
    // consecutive comment lines (reference configs have long comment blocks).
    options.emit_comments = false;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = 200_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_depth = MAX_DEPTH;
    options.budget = Some(budget);
    let parsed: Option<Spanned<Value>> = serde_saphyr::from_str_with_options(text, options)
        .map_err(|e| {
            let (line, col) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            let message = clean_message(&e.without_snippet().to_string());
            ParseFailure { line, col, message }
        })?;
    let mut node = match parsed {
        Some(s) => spanned_to_node(s),
        None => Node::new(Value::Null, Pos::default()),
    };
    if node.depth() > MAX_DEPTH {
        return Err(ParseFailure {
            line: node.pos.line,
            col: node.pos.col,
            message: format!("configuration nested deeper than {MAX_DEPTH} levels"),
        });
    }
    node.set_src(src);
    Ok(node)
}

/// The first line of a parser message, without its trailing position (the
/// caller prints `file:line:column` itself) or library configuration hints.
fn clean_message(raw: &str) -> String {
    let mut msg = raw
        .lines()
        .next()
        .unwrap_or("invalid YAML")
        .trim()
        .to_string();
    if let Some(i) = msg.rfind(" at line ") {
        let tail = &msg[i + " at line ".len()..];
        if tail
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == ' ' || c.is_ascii_lowercase())
        {
            msg.truncate(i);
        }
    }
    if let Some(i) = msg.find(", set DuplicateKeyPolicy") {
        msg.truncate(i);
    }
    if msg.is_empty() {
        msg = "invalid YAML".into();
    }
    msg
}

fn spanned_to_node(s: Spanned<Value>) -> Node {
    Node::new(
        s.value,
        Pos {
            src: 0,
            line: s.referenced.line(),
            col: s.referenced.column(),
        },
    )
}

/// Map keys are read as spanned scalars and rendered as text.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<KeyText, E> {
                Ok(KeyText(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText(String::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(Value::Int(v.into()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
                Ok(i128::try_from(v)
                    .map(Value::Int)
                    .unwrap_or(Value::Float(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Str(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
                Ok(Value::Str(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Value, D2::Error> {
                Value::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Value>>()? {
                    items.push(spanned_to_node(item));
                }
                Ok(Value::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = map.next_key::<Spanned<KeyText>>()? {
                    let v: Spanned<Value> = map.next_value()?;
                    let key = Key {
                        name: k.value.0,
                        pos: Pos {
                            src: 0,
                            line: k.referenced.line(),
                            col: k.referenced.column(),
                        },
                    };
                    entries.push((key, spanned_to_node(v)));
                }
                Ok(Value::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// Deep-merges `over` into `base`: mappings merge key by key, anything else
/// replaces. A mapping merged into a list merges into the listed element when
/// its keys are indices (`interfaces.0.device`), or into the only element of a
/// one-element list; otherwise it replaces the list.
pub fn merge(base: &mut Node, over: Node) {
    match (&mut base.value, over.value) {
        (Value::Map(b), Value::Map(o)) => {
            for (k, v) in o {
                match b.iter_mut().find(|(bk, _)| bk.name == k.name) {
                    Some((_, bv)) => merge(bv, v),
                    None => b.push((k, v)),
                }
            }
        }
        (Value::Seq(items), Value::Map(o)) => {
            let all_indices = !o.is_empty()
                && o.iter()
                    .all(|(k, _)| k.name.parse::<usize>().is_ok_and(|i| i <= items.len()));
            if all_indices {
                for (k, v) in o {
                    let i = k.name.parse::<usize>().unwrap_or(0);
                    if i < items.len() {
                        merge(&mut items[i], v);
                    } else {
                        items.push(v);
                    }
                }
            } else if items.len() == 1 {
                merge(&mut items[0], Node::new(Value::Map(o), over.pos));
            } else {
                *base = Node::new(Value::Map(o), over.pos);
            }
        }
        (Value::Null, Value::Map(o)) => {
            // A section written with no body (`shipper:`) is an empty mapping.
            base.value = Value::Map(o);
        }
        (_, v) => *base = Node::new(v, over.pos),
    }
}

/// Splits dotted keys into nested mappings at every level, as Beats does:
/// `a.b: 1` becomes `a: {b: 1}`, merged with any sibling `a:` mapping.
pub fn expand_dotted(node: Node) -> Node {
    let pos = node.pos;
    match node.value {
        Value::Map(entries) => {
            let mut out = Node::empty_map(pos);
            for (k, v) in entries {
                let v = expand_dotted(v);
                let parts: Vec<&str> = k.name.split('.').collect();
                let wrapped = if parts.len() > 1
                    && parts.len() <= MAX_DEPTH
                    && parts.iter().all(|p| !p.is_empty())
                {
                    nest(&parts, v, k.pos)
                } else {
                    Node::new(Value::Map(vec![(k, v)]), pos)
                };
                merge(&mut out, wrapped);
            }
            out
        }
        Value::Seq(items) => Node::new(
            Value::Seq(items.into_iter().map(expand_dotted).collect()),
            pos,
        ),
        v => Node::new(v, pos),
    }
}

/// Builds `{p0: {p1: ... {pn: value}}}`.
pub fn nest(parts: &[&str], value: Node, key_pos: Pos) -> Node {
    let mut node = value;
    for part in parts.iter().rev() {
        node = Node::new(
            Value::Map(vec![(
                Key {
                    name: (*part).to_string(),
                    pos: key_pos,
                },
                node,
            )]),
            key_pos,
        );
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_positions() {
        let n = parse("a:\n  b: [1, two]\n  c: true\n", 0).expect("parse");
        let Value::Map(top) = &n.value else {
            panic!("not a map")
        };
        assert_eq!(top[0].0.name, "a");
        let Value::Map(inner) = &top[0].1.value else {
            panic!("not a map")
        };
        assert_eq!(inner[0].0.pos.line, 2);
        assert_eq!(inner[0].0.pos.col, 3);
        let Value::Seq(items) = &inner[0].1.value else {
            panic!("not a seq")
        };
        assert!(matches!(items[0].value, Value::Int(1)));
        assert!(matches!(&items[1].value, Value::Str(s) if s == "two"));
        assert_eq!(items[1].pos.line, 2);
        assert_eq!(items[1].pos.col, 10);
        assert!(matches!(inner[1].1.value, Value::Bool(true)));
    }

    #[test]
    fn parser_messages_are_trimmed() {
        let e = parse("a: 1\na: 2\n", 0).expect_err("duplicate");
        assert_eq!(e.message, "duplicate mapping key: a");
        assert_eq!((e.line, e.col), (2, 1));
        let e = parse("a: [1, 2\n", 0).expect_err("unclosed");
        assert_eq!(e.message, "unclosed bracket '['");
    }

    #[test]
    fn empty_document_is_null() {
        assert!(parse("", 0).expect("parse").is_null());
        assert!(parse("# only a comment\n", 0).expect("parse").is_null());
    }

    #[test]
    fn yes_is_a_string() {
        let n = parse("a: yes\n", 0).expect("parse");
        let Value::Map(top) = &n.value else {
            panic!("not a map")
        };
        assert!(matches!(&top[0].1.value, Value::Str(s) if s == "yes"));
    }

    #[test]
    fn bad_yaml_has_location() {
        let e = parse("a: [1, 2\nb: c\n", 0).expect_err("must fail");
        assert!(e.line > 0, "{e:?}");
    }

    #[test]
    fn dotted_keys_nest_and_merge() {
        let n = expand_dotted(parse("a.b: 1\na:\n  c: 2\n", 0).expect("parse"));
        let Value::Map(top) = &n.value else {
            panic!("not a map")
        };
        assert_eq!(top.len(), 1);
        let Value::Map(inner) = &top[0].1.value else {
            panic!("not a map")
        };
        assert_eq!(inner.len(), 2);
    }

    #[test]
    fn oversized_input_rejected() {
        let big = "a: 1\n".repeat(MAX_INPUT_BYTES / 4);
        assert!(parse(&big, 0).is_err());
    }

    #[test]
    fn deep_nesting_rejected_without_panic() {
        let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
        assert!(parse(&deep, 0).is_err());
    }
}
