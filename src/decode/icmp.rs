//! The ICMP header (RFC 792) and ICMPv6 header (RFC 4443): type, code and, for the
//! query messages that pair a request with a reply (echo, timestamp, information,
//! address mask; ICMPv6 echo), the identifier and sequence number that pair them.

/// ICMPv4 types that answer a request: echo, timestamp, information and address
/// mask replies.
const V4_REPLIES: [u8; 4] = [0, 14, 16, 18];
/// ICMPv4 requests that wait for one of those replies.
const V4_REQUESTS: [u8; 4] = [8, 13, 15, 17];
/// ICMPv4 error messages: destination unreachable, source quench, time exceeded,
/// parameter problem.
const V4_ERRORS: [u8; 4] = [3, 4, 11, 12];
/// ICMPv6 error messages: destination unreachable, packet too big, time exceeded,
/// parameter problem.
const V6_ERRORS: [u8; 4] = [1, 2, 3, 4];
const V6_ECHO_REQUEST: u8 = 128;
const V6_ECHO_REPLY: u8 = 129;

/// What a message is to the pairing of requests with replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpRole {
    /// A query that waits for its reply (same identifier and sequence number).
    Request,
    /// The reply to such a query.
    Reply,
    /// A message of its own: errors, router and neighbour discovery, the rest.
    Single,
}

/// The fixed part of an ICMP or ICMPv6 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpHeader {
    pub v6: bool,
    pub ty: u8,
    pub code: u8,
    /// Identifier and sequence number of a request or reply (zero for the others).
    pub id: u16,
    pub seq: u16,
    /// Bytes after the header: 8 bytes of header for ICMPv4, 4 for ICMPv6 (the
    /// identifier and sequence number count as data there), as Packetbeat counts.
    pub body_len: usize,
}

impl IcmpHeader {
    /// The header of the message `data` (`wire_len` bytes long on the wire, of which
    /// `data` may be a snaplen-cut prefix). `None` when it is shorter than a header:
    /// 8 bytes for ICMPv4, 4 for ICMPv6.
    pub fn parse(v6: bool, data: &[u8], wire_len: usize) -> Option<IcmpHeader> {
        let min = if v6 { 4 } else { 8 };
        if data.len() < min {
            return None;
        }
        let (ty, code) = (data[0], data[1]);
        let role = role(v6, ty);
        let (id, seq) = match data.get(4..8) {
            Some(b) if role != IcmpRole::Single => (
                u16::from_be_bytes([b[0], b[1]]),
                u16::from_be_bytes([b[2], b[3]]),
            ),
            _ => (0, 0),
        };
        Some(IcmpHeader {
            v6,
            ty,
            code,
            id,
            seq,
            body_len: wire_len.max(data.len()) - min,
        })
    }

    pub fn role(&self) -> IcmpRole {
        role(self.v6, self.ty)
    }

    /// An error report about another packet.
    pub fn is_error(&self) -> bool {
        if self.v6 {
            V6_ERRORS.contains(&self.ty)
        } else {
            V4_ERRORS.contains(&self.ty)
        }
    }
}

fn role(v6: bool, ty: u8) -> IcmpRole {
    if v6 {
        match ty {
            V6_ECHO_REQUEST => IcmpRole::Request,
            V6_ECHO_REPLY => IcmpRole::Reply,
            _ => IcmpRole::Single,
        }
    } else if V4_REQUESTS.contains(&ty) {
        IcmpRole::Request
    } else if V4_REPLIES.contains(&ty) {
        IcmpRole::Reply
    } else {
        IcmpRole::Single
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_carries_id_and_seq() {
        let req = [8, 0, 0xf7, 0xff, 0x12, 0x34, 0x00, 0x02, 1, 2, 3];
        let h = IcmpHeader::parse(false, &req, req.len()).expect("header");
        assert_eq!((h.ty, h.code, h.id, h.seq), (8, 0, 0x1234, 2));
        assert_eq!(h.role(), IcmpRole::Request);
        assert_eq!(h.body_len, 3);
        let mut rep = req;
        rep[0] = 0;
        let h = IcmpHeader::parse(false, &rep, 64).expect("header");
        assert_eq!(h.role(), IcmpRole::Reply);
        assert_eq!(h.body_len, 56, "the wire length counts, not the snaplen");
    }

    #[test]
    fn errors_and_others_stand_alone_without_an_id() {
        let unreach = [3, 3, 0, 0, 0, 0, 5, 0xdc];
        let h = IcmpHeader::parse(false, &unreach, 8).expect("header");
        assert_eq!(h.role(), IcmpRole::Single);
        assert!(h.is_error());
        assert_eq!((h.id, h.seq), (0, 0));
        let ns = [135, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0x80];
        let h = IcmpHeader::parse(true, &ns, ns.len()).expect("header");
        assert_eq!(h.role(), IcmpRole::Single);
        assert!(!h.is_error());
        assert_eq!(h.body_len, 6);
        let h = IcmpHeader::parse(true, &[129, 0, 0, 0, 0, 7, 0, 9], 8).expect("header");
        assert_eq!((h.role(), h.id, h.seq), (IcmpRole::Reply, 7, 9));
    }

    #[test]
    fn short_headers_are_refused() {
        assert_eq!(IcmpHeader::parse(false, &[8, 0, 0, 0, 0, 0, 0], 7), None);
        assert_eq!(IcmpHeader::parse(true, &[128, 0, 0], 3), None);
        // An ICMPv6 echo cut after its first 4 bytes: no id to pair it by.
        let h = IcmpHeader::parse(true, &[128, 0, 0, 0, 1], 5).expect("header");
        assert_eq!((h.id, h.seq), (0, 0));
    }
}
