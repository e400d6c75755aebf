//! Maps the accepted layouts onto the canonical (Packetbeat 1.x) tree, and applies
//! `-E key=value` overrides.
//!
//! Accepted besides the canonical layout:
//! - the `packetbeat.`-prefixed layout (`packetbeat.interfaces`, `packetbeat.protocols`,
//!   `packetbeat.ignore_outgoing`, `packetbeat.flows`),
//! - protocols as a list (`- type: http`), at the top level or under `packetbeat.`,
//! - `agent:` as the old name of `shipper:`, and top-level `name`/`tags` (Beats 5+),
//! - dotted keys anywhere (`protocols.http.ports: [80]` as one key).

use super::convert::Ctx;
use super::error::ConfigError;
use super::tree::{self, Key, Node, Pos, Value};

/// Rewrites a parsed (file or override) tree into the canonical layout.
pub fn normalize(root: Node, ctx: &Ctx) -> Result<Node, ConfigError> {
    let root = tree::expand_dotted(root);
    let pos = root.pos;
    let entries = match root.value {
        Value::Null => Vec::new(),
        Value::Map(entries) => entries,
        _ => {
            return Err(ctx.err(
                root.pos,
                "",
                format!(
                    "expected a mapping of settings at the top level, found {}",
                    root.describe()
                ),
            ));
        }
    };
    let mut out = Node::empty_map(pos);
    for (key, value) in entries {
        match key.name.as_str() {
            "packetbeat" => lift_prefixed(&mut out, key, value, ctx)?,
            "agent" => put(&mut out, &["shipper"], value, key.pos),
            "name" | "tags" => {
                let name = key.name.clone();
                put(&mut out, &["shipper", &name], value, key.pos)
            }
            "protocols" => {
                let protocols = protocols_to_map(value, "protocols", ctx)?;
                put(&mut out, &["protocols"], protocols, key.pos)
            }
            _ => tree::merge(&mut out, Node::new(Value::Map(vec![(key, value)]), pos)),
        }
    }
    Ok(out)
}

fn put(out: &mut Node, path: &[&str], value: Node, key_pos: Pos) {
    tree::merge(out, tree::nest(path, value, key_pos));
}

/// `packetbeat.interfaces`, `packetbeat.protocols` and `packetbeat.ignore_outgoing`
/// move to their canonical places; anything else stays under `packetbeat` (and is
/// reported later as unsupported or unknown, with its full path).
fn lift_prefixed(out: &mut Node, key: Key, value: Node, ctx: &Ctx) -> Result<(), ConfigError> {
    let entries = match value.value {
        Value::Null => return Ok(()),
        Value::Map(entries) => entries,
        _ => {
            return Err(ctx.err(
                value.pos,
                "packetbeat",
                format!("expected a mapping, found {}", value.describe()),
            ));
        }
    };
    for (k, v) in entries {
        match k.name.as_str() {
            "interfaces" => put(out, &["interfaces"], v, k.pos),
            "protocols" => {
                let protocols = protocols_to_map(v, "packetbeat.protocols", ctx)?;
                put(out, &["protocols"], protocols, k.pos)
            }
            "ignore_outgoing" => put(out, &["shipper", "ignore_outgoing"], v, k.pos),
            "flows" => put(out, &["flows"], v, k.pos),
            _ => {
                let name = k.name.clone();
                put(out, &[key.name.as_str(), &name], v, k.pos)
            }
        }
    }
    Ok(())
}

/// The list style (`- type: http` ...) becomes a mapping keyed by protocol name.
fn protocols_to_map(node: Node, path: &str, ctx: &Ctx) -> Result<Node, ConfigError> {
    let pos = node.pos;
    match node.value {
        Value::Null => Ok(Node::empty_map(pos)),
        Value::Map(_) => Ok(node),
        Value::Seq(items) => {
            let mut entries: Vec<(Key, Node)> = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                let item_path = format!("{path}.{i}");
                let item_pos = item.pos;
                let Value::Map(fields) = item.value else {
                    return Err(ctx.err(
                        item_pos,
                        &item_path,
                        format!(
                            "expected a protocol mapping with a `type`, found {}",
                            item.describe()
                        ),
                    ));
                };
                let mut type_name = None;
                let mut rest = Vec::new();
                for (k, v) in fields {
                    if k.name == "type" {
                        match &v.value {
                            Value::Str(s) if !s.is_empty() => type_name = Some((s.clone(), k.pos)),
                            _ => {
                                return Err(ctx.err(
                                    v.pos,
                                    &format!("{item_path}.type"),
                                    format!("expected a protocol name, found {}", v.describe()),
                                ));
                            }
                        }
                    } else {
                        rest.push((k, v));
                    }
                }
                let Some((name, name_pos)) = type_name else {
                    return Err(ctx.err(item_pos, &item_path, "protocol entry has no `type`"));
                };
                if entries.iter().any(|(k, _)| k.name == name) {
                    return Err(ctx.err(
                        name_pos,
                        &format!("{path}.{name}"),
                        format!("protocol {name} is listed twice"),
                    ));
                }
                entries.push((
                    Key {
                        name,
                        pos: name_pos,
                    },
                    Node::new(Value::Map(rest), item_pos),
                ));
            }
            Ok(Node::new(Value::Map(entries), pos))
        }
        _ => Err(ctx.err(
            pos,
            path,
            format!(
                "expected a mapping of protocols or a list of protocols, found {}",
                node.describe()
            ),
        )),
    }
}

/// Applies one `-E key=value` argument (already registered in `ctx` as source
/// `src`) to the canonical tree.
pub fn apply_override(
    base: &mut Node,
    arg: &str,
    src: usize,
    ctx: &Ctx,
) -> Result<(), ConfigError> {
    let at = Pos {
        src,
        line: 0,
        col: 0,
    };
    let Some((key, value)) = arg.split_once('=') else {
        return Err(ctx.err(at, "", "expected key=value"));
    };
    let key = key.trim();
    let parts: Vec<&str> = key.split('.').collect();
    if key.is_empty() || parts.iter().any(|p| p.is_empty()) || parts.len() > tree::MAX_DEPTH {
        return Err(ctx.err(at, key, "expected a dotted setting name before '='"));
    }
    let mut value = tree::parse(value, src).map_err(|e| {
        ctx.err(
            at,
            key,
            format!("cannot parse the value as YAML: {}", e.message),
        )
    })?;
    value.set_src(src);
    let node = tree::nest(&parts, value, at);
    let node = normalize(node, ctx)?;
    tree::merge(base, node);
    Ok(())
}

/// Whether the canonical tree has a `protocols` section.
pub fn has_section(root: &Node, name: &str) -> bool {
    match &root.value {
        Value::Map(entries) => entries.iter().any(|(k, _)| k.name == name),
        _ => false,
    }
}
