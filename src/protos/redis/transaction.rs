//! Redis requests and replies as they wait for pairing, what a command's method and
//! resource are, and the pairing [`Exchange`] that builds the transaction.

use super::fields::RedisFields;
use super::parser::Message;
use crate::event::{Status, Transaction};
use crate::protos::pairing::{self, Exchange, Wire};
use crate::text::{Replace, lossy};

/// Commands made of a container and a subcommand, named with both words as Packetbeat
/// names its `CLIENT ...`, `CONFIG ...`, `DEBUG ...` and `SCRIPT ...` commands
/// (`CONFIG GET`, `CLIENT LIST`). OBJECT, PUBSUB and SLOWLOG are one-word commands
/// there (`SLOWLOG GET 10`: method SLOWLOG, resource GET), and are here too.
const CONTAINERS: &[&str] = &[
    "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DEBUG", "FUNCTION", "LATENCY", "MEMORY",
    "MODULE", "SCRIPT", "XGROUP", "XINFO",
];

/// Pub/sub commands answered by one confirmation per channel (or pattern).
const SUBSCRIBE_FAMILY: &[&str] = &[
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
];

/// The method, upper-cased: `CONFIG GET` for a container and a word-like subcommand,
/// else the command alone; and the index of the first argument after it.
fn method_of(m: &Message) -> (String, usize) {
    let cmd = m.arg(0).to_ascii_uppercase();
    let cmd = lossy(&cmd, Replace::PerSequence);
    let sub = m.arg(1);
    let wordlike = !sub.is_empty()
        && sub.len() <= 32
        && sub
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
    if wordlike && CONTAINERS.contains(&cmd.as_str()) {
        let mut method = cmd;
        method.push(' ');
        method.push_str(&lossy(&sub.to_ascii_uppercase(), Replace::PerSequence));
        (method, 2)
    } else {
        (cmd, 1)
    }
}

/// The resource, as Packetbeat gives it: the first argument after the method, as
/// sent (`SET key3 me`: key3; `CONFIG GET maxmemory`: maxmemory; `SELECT 1`: 1).
/// A command with no such argument has none (Packetbeat writes an empty string).
fn resource_of(m: &Message, first_arg: usize) -> Option<String> {
    if (first_arg as u64) >= m.nargs {
        return None;
    }
    m.args.get(first_arg).map(|a| a.clone().into_string())
}

/// A complete request waiting for its reply.
#[derive(Debug)]
pub struct Request {
    pub wire: Wire,
    pub method: String,
    pub resource: Option<String>,
    pub query: String,
    /// For a pub/sub (un)subscribe, the confirmations it gets: one per channel
    /// named (0 when it names none: UNSUBSCRIBE of every channel, count unknown).
    pub confirmations: Option<u64>,
}

impl Request {
    /// `None` for an empty command (an empty inline line, `*0`).
    pub fn from_message(m: Message) -> Option<Request> {
        if m.nargs == 0 {
            return None;
        }
        let (method, first_arg) = method_of(&m);
        let resource = resource_of(&m, first_arg);
        let confirmations = SUBSCRIBE_FAMILY
            .contains(&method.as_str())
            .then_some(m.nargs - 1);
        let mut query = m.text.into_string();
        let trimmed = query.trim();
        if trimmed.len() != query.len() {
            query = trimmed.to_string();
        }
        Some(Request {
            wire: Wire {
                ts: m.ts,
                bytes: m.bytes,
                loss: m.loss,
            },
            method,
            resource,
            query,
            confirmations,
        })
    }

    pub fn subscribes(&self) -> bool {
        matches!(
            self.method.as_str(),
            "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE"
        )
    }
}

impl pairing::Message for Request {
    fn wire(&self) -> &Wire {
        &self.wire
    }

    fn mem_size(&self) -> usize {
        std::mem::size_of::<Request>()
            + self.method.capacity()
            + self.query.capacity()
            + self.resource.as_ref().map_or(0, |r| r.capacity())
    }
}

/// The command a pub/sub confirmation answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirms {
    Subscribe,
    PSubscribe,
    SSubscribe,
    Unsubscribe,
    PUnsubscribe,
    SUnsubscribe,
}

impl Confirms {
    pub fn command(self) -> &'static str {
        match self {
            Confirms::Subscribe => "SUBSCRIBE",
            Confirms::PSubscribe => "PSUBSCRIBE",
            Confirms::SSubscribe => "SSUBSCRIBE",
            Confirms::Unsubscribe => "UNSUBSCRIBE",
            Confirms::PUnsubscribe => "PUNSUBSCRIBE",
            Confirms::SUnsubscribe => "SUNSUBSCRIBE",
        }
    }

    pub fn unsubscribes(self) -> bool {
        matches!(
            self,
            Confirms::Unsubscribe | Confirms::PUnsubscribe | Confirms::SUnsubscribe
        )
    }
}

/// How a reply relates to pub/sub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PubSub {
    /// An ordinary reply.
    None,
    /// `[subscribe|unsubscribe|..., channel, count]`: the count of subscriptions left.
    Confirmation { kind: Confirms, count: i64 },
    /// `[message, channel, payload]`, `[pmessage, pattern, channel, payload]`,
    /// `[smessage, channel, payload]`: published data, never a reply.
    Published,
}

/// A complete reply.
#[derive(Debug)]
pub struct Response {
    pub wire: Wire,
    pub text: String,
    pub error: bool,
    /// A RESP3 push frame (`>`).
    pub push: bool,
    pub pubsub: PubSub,
}

impl Response {
    pub fn from_message(m: Message) -> Response {
        let push = m.kind == b'>';
        let pubsub = if push || m.kind == b'*' {
            classify(&m)
        } else {
            PubSub::None
        };
        Response {
            wire: Wire {
                ts: m.ts,
                bytes: m.bytes,
                loss: m.loss,
            },
            error: m.error,
            push,
            pubsub,
            text: m.text.into_string(),
        }
    }
}

fn classify(m: &Message) -> PubSub {
    let kind = m.arg(0).to_ascii_lowercase();
    let confirms = match (kind.as_slice(), m.nargs) {
        (b"message" | b"smessage", 3) | (b"pmessage", 4) => return PubSub::Published,
        (_, n) if n != 3 => return PubSub::None,
        (b"subscribe", _) => Confirms::Subscribe,
        (b"psubscribe", _) => Confirms::PSubscribe,
        (b"ssubscribe", _) => Confirms::SSubscribe,
        (b"unsubscribe", _) => Confirms::Unsubscribe,
        (b"punsubscribe", _) => Confirms::PUnsubscribe,
        (b"sunsubscribe", _) => Confirms::SUnsubscribe,
        _ => return PubSub::None,
    };
    PubSub::Confirmation {
        kind: confirms,
        count: super::parser::parse_int(m.arg(2)).unwrap_or(1),
    }
}

impl pairing::Message for Response {
    fn wire(&self) -> &Wire {
        &self.wire
    }

    fn mem_size(&self) -> usize {
        std::mem::size_of::<Response>() + self.text.capacity()
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct RedisExchange {
    pub send_request: bool,
    pub send_response: bool,
}

impl Exchange for RedisExchange {
    const PROTOCOL: &'static str = "redis";
    type Request = Request;
    type Response = Response;

    fn fill(&self, tx: &mut Transaction, req: Option<Request>, resp: Option<Response>) {
        if let Some(req) = req {
            if self.send_request {
                tx.request = Some(req.query.clone());
            }
            tx.method = Some(req.method);
            tx.resource = req.resource;
            tx.query = Some(req.query);
        }
        if let Some(resp) = resp {
            if self.send_response {
                tx.response = Some(resp.text.clone());
            }
            let fields = if resp.error {
                tx.status = Status::Error;
                RedisFields {
                    return_value: None,
                    error: Some(resp.text),
                }
            } else {
                RedisFields {
                    return_value: Some(resp.text),
                    error: None,
                }
            };
            tx.fields = Some(Box::new(fields));
        }
    }
}
