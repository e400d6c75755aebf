//! A small RESP2 client over a blocking `TcpStream`: exactly the commands the Redis
//! output and the topology store send (RPUSH, PUBLISH, AUTH, SELECT, PING, HSET,
//! PEXPIRE, MULTI/EXEC, SCAN, HGET). Commands are encoded straight from the caller's
//! byte slices into one reusable buffer; replies come from a server that may be
//! hostile or broken, so every length is checked against a byte budget before
//! anything is allocated.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Longest status or error line, and nesting depth of arrays, accepted in a reply.
const MAX_LINE: usize = 64 * 1024;
const MAX_DEPTH: usize = 4;
/// Bytes reserved ahead of the data for one bulk string or array at most.
const PREALLOC: usize = 64 * 1024;

/// One reply from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as an error when the server answered with one.
    pub fn into_result(self) -> Result<Reply, ServerError> {
        match self {
            Reply::Error(e) => Err(ServerError(e)),
            r => Ok(r),
        }
    }
}

/// An error reply (`-ERR ...`): the command was refused and had no effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError(pub String);

impl ServerError {
    /// The error code (`ERR`, `WRONGTYPE`, `OOM`, `LOADING`, ...).
    pub fn code(&self) -> &str {
        self.0.split(' ').next().unwrap_or("")
    }

    /// Errors that say "not now" rather than "never": worth retrying later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.code(),
            "LOADING" | "BUSY" | "OOM" | "MASTERDOWN" | "TRYAGAIN" | "READONLY" | "CLUSTERDOWN"
        )
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server error: {}", self.0)
    }
}

/// Appends one command (`*N\r\n$len\r\narg\r\n...`) to `out`.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    encode_header(out, args.len());
    for a in args {
        encode_bulk(out, a);
    }
}

/// The array header of a command with `n` arguments.
pub fn encode_header(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// One argument of a command.
pub fn encode_bulk(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(itoa::Buffer::new().format(arg.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

/// Splits `host`, `host:port`, `[v6]:port` or `redis://host:port` into an address
/// string that `ToSocketAddrs` resolves.
pub fn parse_host(host: &str, default_port: u16) -> Result<String, String> {
    let h = host.trim();
    let h = match h.split_once("://") {
        Some(("redis", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "{host:?}: scheme {scheme}:// is not supported (use host:port or redis://host:port)"
            ));
        }
        None => h,
    };
    let h = h.trim_end_matches('/');
    if h.is_empty() || h.contains('@') || h.contains('/') {
        return Err(format!("{host:?}: expected host, host:port or [ipv6]:port"));
    }
    if let Some(rest) = h.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{host:?}: unclosed ["))?;
        let port = match after {
            "" => default_port,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("{host:?}: bad port"))?,
        };
        return Ok(format!("[{ip}]:{port}"));
    }
    if h.matches(':').count() > 1 {
        // A bare IPv6 address.
        return Ok(format!("[{h}]:{default_port}"));
    }
    match h.split_once(':') {
        Some((name, port)) => {
            let port: u16 = port
                .parse()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("{host:?}: bad port"))?;
            Ok(format!("{name}:{port}"))
        }
        None => Ok(format!("{h}:{default_port}")),
    }
}

/// A connection to one server.
pub struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    max_reply: usize,
    pub peer: SocketAddr,
}

impl Conn {
    /// Connects to `addr` (`host:port`), then authenticates and selects `db`.
    pub fn open(
        addr: &str,
        timeout: Duration,
        password: Option<&str>,
        db: u32,
        max_reply: usize,
    ) -> io::Result<Conn> {
        let timeout = timeout.max(Duration::from_millis(1));
        let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address"));
        for sa in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&sa, timeout) {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    s.set_read_timeout(Some(timeout))?;
                    s.set_write_timeout(Some(timeout))?;
                    let reader = BufReader::with_capacity(16 * 1024, s.try_clone()?);
                    let mut c = Conn {
                        writer: s,
                        reader,
                        max_reply,
                        peer: sa,
                    };
                    c.handshake(password, db)?;
                    return Ok(c);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn handshake(&mut self, password: Option<&str>, db: u32) -> io::Result<()> {
        let mut buf = Vec::new();
        let db_s = db.to_string();
        let mut n = 0;
        if let Some(p) = password {
            encode_command(&mut buf, &[b"AUTH", p.as_bytes()]);
            n += 1;
        }
        encode_command(&mut buf, &[b"SELECT", db_s.as_bytes()]);
        n += 1;
        self.send(&buf)?;
        for _ in 0..n {
            if let Reply::Error(e) = self.read_reply()? {
                // Wrong password, unknown database: retrying will not help, but the
                // operator may fix the server, so it stays a connection failure.
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("handshake refused: {e}"),
                ));
            }
        }
        Ok(())
    }

    /// Writes already encoded commands.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        let mut buf = Vec::new();
        encode_command(&mut buf, args);
        self.send(&buf)?;
        self.read_reply()
    }

    /// Reads one reply, refusing anything larger than the byte budget.
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let mut budget = self.max_reply;
        read_reply(&mut self.reader, &mut budget, 0)
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn take_budget(budget: &mut usize, n: usize) -> io::Result<()> {
    if n > *budget {
        return Err(bad(
            "reply larger than output.redis.max_reply_bytes; connection dropped",
        ));
    }
    *budget -= n;
    Ok(())
}

/// Reads a `\r\n`-terminated line (without the terminator).
fn read_line<R: BufRead>(r: &mut R, budget: &mut usize) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let limit = MAX_LINE.min(*budget) as u64 + 2;
    r.by_ref().take(limit).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by the server",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(bad("reply line too long or not terminated"));
    }
    line.truncate(line.len() - 2);
    take_budget(budget, line.len() + 2)?;
    Ok(line)
}

fn parse_int(b: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("malformed integer in reply"))
}

/// Reads one RESP2 reply from `r`.
pub fn read_reply<R: BufRead>(r: &mut R, budget: &mut usize, depth: usize) -> io::Result<Reply> {
    let line = read_line(r, budget)?;
    let (&kind, rest) = line.split_first().ok_or_else(|| bad("empty reply line"))?;
    match kind {
        b'+' => Ok(Reply::Status(String::from_utf8_lossy(rest).into_owned())),
        b'-' => Ok(Reply::Error(String::from_utf8_lossy(rest).into_owned())),
        b':' => Ok(Reply::Int(parse_int(rest)?)),
        b'$' => {
            let n = parse_int(rest)?;
            if n < 0 {
                return Ok(Reply::Bulk(None));
            }
            let n = usize::try_from(n).map_err(|_| bad("bulk length"))?;
            take_budget(budget, n.saturating_add(2))?;
            // Memory grows with the bytes that actually arrive, not with the length
            // the server announced (the budget may be configured very large).
            let want = n.saturating_add(2);
            let mut v = Vec::with_capacity(want.min(PREALLOC));
            r.by_ref()
                .take(u64::try_from(want).unwrap_or(u64::MAX))
                .read_to_end(&mut v)?;
            if v.len() != want {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in the middle of a reply",
                ));
            }
            if !v.ends_with(b"\r\n") {
                return Err(bad("bulk string not terminated"));
            }
            v.truncate(n);
            Ok(Reply::Bulk(Some(v)))
        }
        b'*' => {
            let n = parse_int(rest)?;
            if n < 0 {
                return Ok(Reply::Array(None));
            }
            if depth >= MAX_DEPTH {
                return Err(bad("reply nested too deeply"));
            }
            // Every element takes at least 3 bytes ("+\r\n"), so the budget bounds
            // the count before anything is reserved.
            let n = usize::try_from(n).map_err(|_| bad("array length"))?;
            if n.saturating_mul(3) > *budget {
                return Err(bad(
                    "reply larger than output.redis.max_reply_bytes; connection dropped",
                ));
            }
            // A reply element is larger in memory than its 3 bytes on the wire:
            // reserve little up front and grow with the elements actually read.
            let mut items = Vec::with_capacity(n.min(PREALLOC / 32));
            for _ in 0..n {
                items.push(read_reply(r, budget, depth + 1)?);
            }
            Ok(Reply::Array(Some(items)))
        }
        _ => Err(bad(format!(
            "unexpected reply type {:?}",
            String::from_utf8_lossy(&line[..line.len().min(32)])
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8], budget: usize) -> io::Result<Reply> {
        let mut b = budget;
        read_reply(&mut io::Cursor::new(bytes), &mut b, 0)
    }

    #[test]
    fn encodes_commands() {
        let mut v = Vec::new();
        encode_command(&mut v, &[b"RPUSH", b"k", b"{\"a\":1}"]);
        assert_eq!(v, b"*3\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$7\r\n{\"a\":1}\r\n");
    }

    #[test]
    fn parses_every_reply_type() {
        assert_eq!(parse(b"+OK\r\n", 100).unwrap(), Reply::Status("OK".into()));
        assert_eq!(
            parse(b"-WRONGTYPE x\r\n", 100).unwrap(),
            Reply::Error("WRONGTYPE x".into())
        );
        assert_eq!(parse(b":42\r\n", 100).unwrap(), Reply::Int(42));
        assert_eq!(parse(b"$-1\r\n", 100).unwrap(), Reply::Bulk(None));
        assert_eq!(
            parse(b"$3\r\na\r\n\r\n", 100).unwrap(),
            Reply::Bulk(Some(b"a\r\n".to_vec()))
        );
        assert_eq!(
            parse(b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n", 100).unwrap(),
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"0".to_vec())),
                Reply::Array(Some(vec![Reply::Bulk(Some(b"k".to_vec()))]))
            ]))
        );
    }

    #[test]
    fn hostile_replies_are_bounded() {
        // A huge announced bulk or array is refused before allocation.
        assert!(parse(b"$999999999999\r\n", 1024).is_err());
        assert!(parse(b"*999999999999\r\n", 1024).is_err());
        assert!(parse(b"$-5x\r\n", 1024).is_err());
        assert!(parse(b"?\r\n", 1024).is_err());
        assert!(parse(b"$3\r\nabcde", 1024).is_err());
        assert!(parse(b"+OK", 1024).is_err());
        assert!(parse(b"", 1024).is_err());
        assert!(parse(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", 1024).is_err());
        let long = [b"+".as_slice(), &[b'a'; 2000], b"\r\n"].concat();
        assert!(parse(&long, 1024).is_err());
        // Pseudo-random bytes never panic.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut buf = Vec::new();
            for _ in 0..(x % 40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(b"+-:$*\r\n0123-9abc"[(x % 16) as usize]);
            }
            let _ = parse(&buf, 4096);
        }
    }

    #[test]
    fn announced_lengths_reserve_nothing_up_front() {
        // Nothing is reserved for an announced length before its bytes arrive,
        // however large the configured budget (these would need terabytes).
        assert!(parse(b"$1000000000000\r\nab", usize::MAX).is_err());
        assert!(parse(b"*1000000000000\r\n:1\r\n", usize::MAX).is_err());
        assert!(parse(b"*3\r\n*1000000000000\r\n", usize::MAX).is_err());
        // Lengths that do arrive in full still parse.
        let big = [b"$100000\r\n".as_slice(), &[b'x'; 100_000], b"\r\n"].concat();
        assert_eq!(
            parse(&big, usize::MAX).unwrap(),
            Reply::Bulk(Some(vec![b'x'; 100_000]))
        );
    }

    #[test]
    fn host_forms() {
        assert_eq!(parse_host("r", 6379).unwrap(), "r:6379");
        assert_eq!(parse_host("r:7000", 6379).unwrap(), "r:7000");
        assert_eq!(
            parse_host("redis://127.0.0.1:7001/", 6379).unwrap(),
            "127.0.0.1:7001"
        );
        assert_eq!(parse_host("[::1]:7002", 6379).unwrap(), "[::1]:7002");
        assert_eq!(parse_host("::1", 6379).unwrap(), "[::1]:6379");
        assert!(parse_host("rediss://x", 6379).is_err());
        assert!(parse_host("r:0", 6379).is_err());
        assert!(parse_host("r:x", 6379).is_err());
        assert!(parse_host("", 6379).is_err());
    }

    #[test]
    fn transient_errors() {
        assert!(ServerError("LOADING Redis is loading".into()).is_transient());
        assert!(!ServerError("WRONGTYPE Operation".into()).is_transient());
    }
}
