//! HTTP/1.x wire format: message framing of one direction (heads, Content-Length,
//! chunked and close-delimited bodies), resynchronisation after garbage or loss, and
//! head parsing into owned values.
//!
//! [`Wire`] is a pull state machine over the engine's buffer: the caller asks for the
//! next [`Step`] at its current offset, applies it and advances. Every unit that must be
//! seen whole (a head, a chunk-size line, a trailer line, a resync candidate line) keeps
//! a scan offset so bytes arriving one at a time are never rescanned.

use memchr::memchr;

/// Largest request or response head (start line and headers).
pub const MAX_HEAD: usize = 48 * 1024;
/// Most header fields in one head.
pub const MAX_HEADERS: usize = 128;
/// Longest chunk-size line (with extensions) or trailer line.
pub const MAX_LINE: usize = 8 * 1024;
/// Longest method token accepted while looking for a request line.
const MAX_METHOD: usize = 24;

/// How the body of a message is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Ends when the sender closes the connection (responses only).
    Close,
}

/// One step of the framing state machine. Byte counts are consumed from the front of
/// the slice passed to [`Wire::step`].
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// Bytes outside any message (blank lines between messages, resync garbage).
    Skip(usize),
    /// A complete head; the caller parses it and calls [`Wire::set_framing`].
    Head(&'a [u8]),
    /// Body payload, consumed whole.
    Body(&'a [u8]),
    /// Chunk framing (size lines, CRLFs, trailers) of the current message.
    Framing(usize),
    /// The current message ended after consuming this many more framing bytes.
    End(usize),
    /// Nothing more can be done with this data; `need` more bytes (0 = unknown).
    Need(usize),
    /// The data is not HTTP. The caller resets the direction.
    Error,
    /// The direction is clearly another protocol (TLS): stop following it.
    NotHttp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for (the rest of) a head; `scan` = bytes of it already searched.
    Head,
    /// A head was returned; waiting for `set_framing`.
    AwaitFraming,
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailer,
    Close,
    /// Looking for the next start line. `at_start`: offset 0 of the next data is a
    /// line start (after a reset the engine has dropped its buffer, so the next data
    /// begins a new packet).
    Resync {
        at_start: bool,
    },
}

/// What a gap did to the message in progress.
#[derive(Debug, PartialEq, Eq)]
pub enum GapEffect {
    /// `lost` bytes counted as body; `complete`: the message ended inside the gap.
    Body { lost: u64, complete: bool },
    /// Framing was lost while the head of the current message is known: the caller
    /// finalises the message as it is. The direction is resynchronising.
    LostMessage,
    /// No message with a complete head was in progress; the direction is
    /// resynchronising.
    Reset,
}

/// Framing state of one direction.
#[derive(Debug)]
pub struct Wire {
    requests: bool,
    state: State,
    /// Resume offset of the pending unit's scan, relative to the data start.
    scan: usize,
    /// No message has been seen yet in this direction.
    first: bool,
}

impl Wire {
    pub fn new(requests: bool) -> Wire {
        Wire {
            requests,
            state: State::Head,
            scan: 0,
            first: true,
        }
    }

    /// True while bytes of a head (or of a resync candidate line) may be pending,
    /// for the head's timestamp.
    pub fn in_head(&self) -> bool {
        matches!(self.state, State::Head | State::Resync { at_start: true })
    }

    /// A message head is complete and its body not yet finished.
    pub fn in_message(&self) -> bool {
        matches!(
            self.state,
            State::AwaitFraming
                | State::Length(_)
                | State::ChunkSize
                | State::ChunkData(_)
                | State::ChunkEnd
                | State::Trailer
                | State::Close
        )
    }

    pub fn is_close_delimited(&self) -> bool {
        self.state == State::Close
    }

    /// Drops any message in progress and looks for the next start line.
    pub fn reset(&mut self) {
        self.state = State::Resync { at_start: true };
        self.scan = 0;
    }

    /// Sets the body framing of the head just returned. `Framing::None` ends the
    /// message at once: the caller finishes it without another step.
    pub fn set_framing(&mut self, f: Framing) {
        self.scan = 0;
        self.first = false;
        self.state = match f {
            Framing::None | Framing::Length(0) => State::Head,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::Close => State::Close,
        };
    }

    /// Whether the framing just set left the message already complete.
    pub fn framing_done(&self) -> bool {
        self.state == State::Head
    }

    /// The close-delimited body ended (FIN) or a message was finalised from outside.
    pub fn finish(&mut self) {
        self.state = State::Head;
        self.scan = 0;
    }

    /// Applies a gap of `len` lost bytes.
    pub fn gap(&mut self, len: u64) -> GapEffect {
        self.scan = 0;
        match self.state {
            State::Length(rem) => {
                let lost = len.min(rem);
                if len < rem {
                    self.state = State::Length(rem - len);
                    GapEffect::Body {
                        lost,
                        complete: false,
                    }
                } else {
                    // The gap covers the rest of the body; anything beyond belongs
                    // to messages whose start is lost.
                    self.state = if len == rem {
                        State::Head
                    } else {
                        State::Resync { at_start: true }
                    };
                    GapEffect::Body {
                        lost,
                        complete: true,
                    }
                }
            }
            State::ChunkData(rem) if len <= rem => {
                self.state = if len == rem {
                    State::ChunkEnd
                } else {
                    State::ChunkData(rem - len)
                };
                GapEffect::Body {
                    lost: len,
                    complete: false,
                }
            }
            State::Close => GapEffect::Body {
                lost: len,
                complete: false,
            },
            State::AwaitFraming
            | State::ChunkSize
            | State::ChunkData(_)
            | State::ChunkEnd
            | State::Trailer => {
                self.reset();
                GapEffect::LostMessage
            }
            State::Head | State::Resync { .. } => {
                self.reset();
                GapEffect::Reset
            }
        }
    }

    /// The next step over `data` (the unconsumed bytes at the caller's offset).
    pub fn step<'a>(&mut self, data: &'a [u8]) -> Step<'a> {
        match self.state {
            State::Head => self.head(data),
            State::AwaitFraming => Step::Need(0),
            State::Length(rem) => {
                if data.is_empty() {
                    return Step::Need(0);
                }
                let n = (rem.min(data.len() as u64)) as usize;
                if n as u64 == rem {
                    self.state = State::Head;
                    self.scan = 0;
                } else {
                    self.state = State::Length(rem - n as u64);
                }
                Step::Body(&data[..n])
            }
            State::ChunkSize => self.chunk_size(data),
            State::ChunkData(rem) => {
                if data.is_empty() {
                    return Step::Need(0);
                }
                let n = (rem.min(data.len() as u64)) as usize;
                self.state = if n as u64 == rem {
                    State::ChunkEnd
                } else {
                    State::ChunkData(rem - n as u64)
                };
                Step::Body(&data[..n])
            }
            State::ChunkEnd => match data {
                [] => Step::Need(2),
                [b'\n', ..] => {
                    self.state = State::ChunkSize;
                    Step::Framing(1)
                }
                [b'\r'] => Step::Need(1),
                [b'\r', b'\n', ..] => {
                    self.state = State::ChunkSize;
                    Step::Framing(2)
                }
                _ => Step::Error,
            },
            State::Trailer => self.trailer(data),
            State::Close => {
                if data.is_empty() {
                    Step::Need(0)
                } else {
                    Step::Body(data)
                }
            }
            State::Resync { at_start } => self.resync(data, at_start),
        }
    }

    fn head<'a>(&mut self, data: &'a [u8]) -> Step<'a> {
        if self.scan == 0 {
            // Blank lines before a message are tolerated (RFC 9112 §2.2).
            let blank = data
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            if blank > 0 {
                return Step::Skip(blank);
            }
            if data.is_empty() {
                return Step::Need(0);
            }
            if self.first && data[0] == 0x16 && data.get(1).is_none_or(|&b| b == 0x03) {
                return Step::NotHttp;
            }
            match start_prefix(data, self.requests) {
                Prefix::No => return Step::Error,
                Prefix::Maybe => return Step::Need(0),
                Prefix::Yes => {}
            }
        }
        match find_head_end(data, self.scan) {
            Ok(end) => {
                self.scan = 0;
                self.state = State::AwaitFraming;
                Step::Head(&data[..end])
            }
            Err(resume) => {
                if resume > MAX_HEAD {
                    return Step::Error;
                }
                self.scan = resume;
                Step::Need(0)
            }
        }
    }

    fn chunk_size<'a>(&mut self, data: &'a [u8]) -> Step<'a> {
        let Some(nl) = memchr(b'\n', &data[self.scan.min(data.len())..]).map(|i| i + self.scan)
        else {
            if data.len() > MAX_LINE {
                return Step::Error;
            }
            self.scan = data.len();
            return Step::Need(0);
        };
        self.scan = 0;
        match parse_chunk_size(&data[..nl]) {
            Some(0) => {
                self.state = State::Trailer;
                Step::Framing(nl + 1)
            }
            Some(n) => {
                self.state = State::ChunkData(n);
                Step::Framing(nl + 1)
            }
            None => Step::Error,
        }
    }

    fn trailer<'a>(&mut self, data: &'a [u8]) -> Step<'a> {
        let Some(nl) = memchr(b'\n', &data[self.scan.min(data.len())..]).map(|i| i + self.scan)
        else {
            if data.len() > MAX_LINE {
                return Step::Error;
            }
            self.scan = data.len();
            return Step::Need(0);
        };
        self.scan = 0;
        let line = &data[..nl];
        if line.is_empty() || line == b"\r" {
            self.state = State::Head;
            Step::End(nl + 1)
        } else {
            Step::Framing(nl + 1)
        }
    }

    fn resync<'a>(&mut self, data: &'a [u8], at_start: bool) -> Step<'a> {
        // `scan` > 0 only while a candidate line at offset 0 is incomplete.
        let mut cand = if at_start {
            Some(0)
        } else {
            memchr(b'\n', data).map(|i| i + 1)
        };
        while let Some(c) = cand {
            let line = &data[c..];
            let from = if c == 0 { self.scan } else { 0 };
            match candidate(line, from, self.requests) {
                Candidate::Yes => {
                    self.state = State::Head;
                    self.scan = 0;
                    return if c == 0 {
                        self.head(data)
                    } else {
                        Step::Skip(c)
                    };
                }
                Candidate::Maybe(scanned) => {
                    self.state = State::Resync { at_start: true };
                    self.scan = scanned;
                    return if c == 0 { Step::Need(0) } else { Step::Skip(c) };
                }
                Candidate::No(line_end) => {
                    self.scan = 0;
                    cand = line_end
                        .map(|e| c + e + 1)
                        .or_else(|| memchr(b'\n', line).map(|i| c + i + 1));
                }
            }
        }
        self.state = State::Resync { at_start: false };
        self.scan = 0;
        if data.is_empty() {
            Step::Need(0)
        } else {
            Step::Skip(data.len())
        }
    }
}

enum Prefix {
    Yes,
    Maybe,
    No,
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `data` can begin a request line (a method token then a space) or a status
/// line (`HTTP/`), looking at a bounded prefix only.
fn start_prefix(data: &[u8], requests: bool) -> Prefix {
    if requests {
        for (i, &b) in data.iter().take(MAX_METHOD + 1).enumerate() {
            if b == b' ' {
                return if i == 0 { Prefix::No } else { Prefix::Yes };
            }
            if !is_token(b) {
                return Prefix::No;
            }
        }
        if data.len() > MAX_METHOD {
            Prefix::No
        } else {
            Prefix::Maybe
        }
    } else {
        let n = data.len().min(5);
        if data[..n] != b"HTTP/"[..n] {
            Prefix::No
        } else if n < 5 {
            Prefix::Maybe
        } else {
            Prefix::Yes
        }
    }
}

enum Candidate {
    Yes,
    /// Incomplete line, still plausible; this much of it was searched for a newline.
    Maybe(usize),
    /// Not a start line; the offset of its newline if known.
    No(Option<usize>),
}

/// Classifies the line at the front of `line` as a resync point. `from` = bytes of it
/// already searched for the newline.
fn candidate(line: &[u8], from: usize, requests: bool) -> Candidate {
    if let Prefix::No = start_prefix(line, requests) {
        return Candidate::No(None);
    }
    let Some(nl) = memchr(b'\n', &line[from.min(line.len())..]).map(|i| i + from) else {
        return if line.len() > MAX_LINE {
            Candidate::No(None)
        } else {
            Candidate::Maybe(line.len())
        };
    };
    let mut l = &line[..nl];
    if let [rest @ .., b'\r'] = l {
        l = rest;
    }
    let ok = if requests {
        plausible_request_line(l)
    } else {
        plausible_status_line(l)
    };
    if ok {
        Candidate::Yes
    } else {
        Candidate::No(Some(nl))
    }
}

fn is_http1_version(v: &[u8]) -> bool {
    v.len() == 8 && v.starts_with(b"HTTP/1.") && v[7].is_ascii_digit()
}

/// `METHOD SP target SP HTTP/1.x`, the method upper-case.
pub fn plausible_request_line(l: &[u8]) -> bool {
    let Some(sp) = memchr(b' ', l) else {
        return false;
    };
    let method = &l[..sp];
    if method.is_empty()
        || method.len() > MAX_METHOD
        || !method
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
    {
        return false;
    }
    let Some(last) = memchr::memrchr(b' ', l) else {
        return false;
    };
    last > sp + 1 && is_http1_version(&l[last + 1..])
}

/// `HTTP/1.x NNN[ phrase]`.
pub fn plausible_status_line(l: &[u8]) -> bool {
    l.len() >= 12
        && is_http1_version(&l[..8])
        && l[8] == b' '
        && l[9..12].iter().all(u8::is_ascii_digit)
        && l.get(12).is_none_or(|&b| b == b' ' || b == b'\t')
}

/// Finds the end of a head (the blank line) in `data`, searching from `from`.
/// `Ok(len)`: the head is `data[..len]`. `Err(resume)`: not found yet; resume there.
pub fn find_head_end(data: &[u8], from: usize) -> Result<usize, usize> {
    let mut pos = from;
    while let Some(i) = memchr(b'\n', &data[pos.min(data.len())..]).map(|i| i + pos) {
        match data.get(i + 1) {
            None => return Err(i),
            Some(b'\n') => return Ok(i + 2),
            Some(b'\r') => match data.get(i + 2) {
                None => return Err(i),
                Some(b'\n') => return Ok(i + 3),
                Some(_) => {}
            },
            Some(_) => {}
        }
        pos = i + 1;
    }
    Err(data.len())
}

/// Parses a chunk-size line (without its `\n`): hex digits, optional whitespace,
/// optional `;extensions`, optional `\r`. `None` when malformed or too large.
pub fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let start = line
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(line.len());
    let mut size: u64 = 0;
    let mut digits = 0;
    let mut rest = &line[start..];
    while let Some((&b, tail)) = rest.split_first() {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => break,
        };
        size = size.checked_mul(16)?.checked_add(d as u64)?;
        digits += 1;
        rest = tail;
    }
    if digits == 0 {
        return None;
    }
    let rest = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .map_or(&[][..], |p| &rest[p..]);
    if rest.is_empty() || rest[0] == b';' {
        Some(size)
    } else {
        None
    }
}

/// One header field of a parsed head, with the byte range of its value in the head.
#[derive(Debug)]
pub struct Field<'a> {
    pub name: &'a str,
    pub value: &'a [u8],
    pub value_at: usize,
}

/// A parsed head, borrowing from the wire bytes.
#[derive(Debug)]
pub struct Head<'a> {
    pub method: &'a str,
    /// Request target, and its byte offset in the head.
    pub target: &'a str,
    pub target_at: usize,
    pub minor: u8,
    pub code: u16,
    pub reason: &'a str,
    pub fields: Vec<Field<'a>>,
}

fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize)
}

fn parser_config() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    c.allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .ignore_invalid_headers_in_requests(true)
        .ignore_invalid_headers_in_responses(true);
    c
}

/// Parses a complete head (as returned by [`Step::Head`]). `None` when malformed.
pub fn parse_head(buf: &[u8], request: bool) -> Option<Head<'_>> {
    // Left uninitialised (httparse writes each header before it is read): an
    // initialised array would cost 4 KiB of stores per head.
    let mut hdrs = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let cfg = parser_config();
    let mut head = Head {
        method: "",
        target: "",
        target_at: 0,
        minor: 1,
        code: 0,
        reason: "",
        fields: Vec::new(),
    };
    let parsed: &[httparse::Header<'_>] = if request {
        let mut req = httparse::Request::new(&mut []);
        match cfg.parse_request_with_uninit_headers(&mut req, buf, &mut hdrs) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return None,
        }
        head.method = req.method?;
        head.target = req.path?;
        head.target_at = offset_in(buf, head.target.as_bytes());
        head.minor = req.version?;
        req.headers
    } else {
        let mut resp = httparse::Response::new(&mut []);
        match cfg.parse_response_with_uninit_headers(&mut resp, buf, &mut hdrs) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return None,
        }
        head.minor = resp.version?;
        head.code = resp.code?;
        head.reason = resp.reason.unwrap_or("");
        resp.headers
    };
    head.fields.reserve(parsed.len());
    for h in parsed {
        head.fields.push(Field {
            name: h.name,
            value: h.value,
            value_at: offset_in(buf, h.value),
        });
    }
    Some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a\r"), Some(26));
        assert_eq!(parse_chunk_size(b"1A;name=val\r"), Some(26));
        assert_eq!(parse_chunk_size(b"0"), Some(0));
        assert_eq!(parse_chunk_size(b"  ff  ;x\r"), Some(255));
        assert_eq!(parse_chunk_size(b"ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_chunk_size(b"10000000000000000"), None);
        assert_eq!(parse_chunk_size(b"\r"), None);
        assert_eq!(parse_chunk_size(b"zz\r"), None);
        assert_eq!(parse_chunk_size(b"12 34\r"), None);
    }

    #[test]
    fn head_end_resumes() {
        let h = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        assert_eq!(find_head_end(h, 0), Ok(27));
        let mut resume = 0;
        for n in 0..27 {
            match find_head_end(&h[..n], resume) {
                Ok(_) => panic!("early end at {n}"),
                Err(r) => {
                    assert!(r >= resume);
                    resume = r;
                }
            }
        }
        assert_eq!(find_head_end(&h[..27], resume), Ok(27));
        assert_eq!(find_head_end(b"GET / HTTP/1.0\n\nx", 0), Ok(16));
    }

    #[test]
    fn start_lines() {
        assert!(plausible_request_line(b"GET /x?y HTTP/1.1"));
        assert!(plausible_request_line(b"M-SEARCH * HTTP/1.1"));
        assert!(!plausible_request_line(b"get / HTTP/1.1"));
        assert!(!plausible_request_line(b"GET HTTP/1.1"));
        assert!(plausible_status_line(b"HTTP/1.1 200 OK"));
        assert!(plausible_status_line(b"HTTP/1.0 404"));
        assert!(!plausible_status_line(b"HTTP/2 200 OK"));
    }

    #[test]
    fn resync_finds_request_after_garbage() {
        let mut w = Wire::new(true);
        w.reset();
        let data = b"\x01\x02garbage\nxx GET\r\nGET /a HTTP/1.1\r\n\r\n";
        let mut off = 0;
        let mut heads = 0;
        for _ in 0..20 {
            match w.step(&data[off..]) {
                Step::Skip(n) => off += n,
                Step::Head(h) => {
                    assert!(h.starts_with(b"GET /a"));
                    off += h.len();
                    heads += 1;
                    w.set_framing(Framing::None);
                }
                Step::Need(_) => break,
                s => panic!("{s:?}"),
            }
        }
        assert_eq!(heads, 1);
        assert_eq!(off, data.len());
    }
}
