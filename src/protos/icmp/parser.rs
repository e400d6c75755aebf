//! The wire side of ICMP: a message's header ([`IcmpHeader`], decoded by the L4
//! layer, which also keys the flows by it) and its human-readable name, in the
//! words Packetbeat uses (`EchoRequest`, `DestinationUnreachable(Port)`,
//! `TimeExceeded(Code: 7)`, `42(0)` for a type it has no name for).

pub use crate::decode::{IcmpHeader, IcmpRole};

/// The header of message `data`, `None` when it is shorter than one.
pub fn parse(v6: bool, data: &[u8]) -> Option<IcmpHeader> {
    IcmpHeader::parse(v6, data, data.len())
}

/// An ICMP type's name and the names of its codes (`None`: the type has no codes).
type Names = (&'static str, Option<&'static [(u8, &'static str)]>);

const V4_UNREACHABLE: &[(u8, &str)] = &[
    (0, "Net"),
    (1, "Host"),
    (2, "Protocol"),
    (3, "Port"),
    (4, "FragmentationNeeded"),
    (5, "SourceRoutingFailed"),
    (6, "NetUnknown"),
    (7, "HostUnknown"),
    (8, "SourceIsolated"),
    (9, "NetAdminProhibited"),
    (10, "HostAdminProhibited"),
    (11, "NetTOS"),
    (12, "HostTOS"),
    (13, "CommAdminProhibited"),
    (14, "HostPrecedence"),
    (15, "PrecedenceCutoff"),
];
const V4_TIME_EXCEEDED: &[(u8, &str)] =
    &[(0, "TTLExceeded"), (1, "FragmentReassemblyTimeExceeded")];
const V4_PARAMETER: &[(u8, &str)] = &[
    (0, "PointerIndicatesError"),
    (1, "MissingOption"),
    (2, "BadLength"),
];
const V4_REDIRECT: &[(u8, &str)] = &[(0, "Net"), (1, "Host"), (2, "TOS+Net"), (3, "TOS+Host")];

fn v4_names(ty: u8) -> Option<Names> {
    Some(match ty {
        0 => ("EchoReply", None),
        3 => ("DestinationUnreachable", Some(V4_UNREACHABLE)),
        4 => ("SourceQuench", None),
        5 => ("Redirect", Some(V4_REDIRECT)),
        8 => ("EchoRequest", None),
        9 => ("RouterAdvertisement", None),
        10 => ("RouterSolicitation", None),
        11 => ("TimeExceeded", Some(V4_TIME_EXCEEDED)),
        12 => ("ParameterProblem", Some(V4_PARAMETER)),
        13 => ("TimestampRequest", None),
        14 => ("TimestampReply", None),
        15 => ("InfoRequest", None),
        16 => ("InfoReply", None),
        17 => ("AddressMaskRequest", None),
        18 => ("AddressMaskReply", None),
        _ => return None,
    })
}

const V6_UNREACHABLE: &[(u8, &str)] = &[
    (0, "NoRouteToDst"),
    (1, "AdminProhibited"),
    (2, "BeyondScopeOfSrc"),
    (3, "AddressUnreachable"),
    (4, "PortUnreachable"),
    (5, "SrcAddressFailedPolicy"),
    (6, "RejectRouteToDst"),
];
const V6_TIME_EXCEEDED: &[(u8, &str)] = &[
    (0, "HopLimitExceeded"),
    (1, "FragmentReassemblyTimeExceeded"),
];
const V6_PARAMETER: &[(u8, &str)] = &[
    (0, "ErroneousHeaderField"),
    (1, "UnrecognizedNextHeader"),
    (2, "UnrecognizedIPv6Option"),
];

fn v6_names(ty: u8) -> Option<Names> {
    Some(match ty {
        1 => ("DestinationUnreachable", Some(V6_UNREACHABLE)),
        2 => ("PacketTooBig", None),
        3 => ("TimeExceeded", Some(V6_TIME_EXCEEDED)),
        4 => ("ParameterProblem", Some(V6_PARAMETER)),
        128 => ("EchoRequest", None),
        129 => ("EchoReply", None),
        133 => ("RouterSolicitation", None),
        134 => ("RouterAdvertisement", None),
        135 => ("NeighborSolicitation", None),
        136 => ("NeighborAdvertisement", None),
        137 => ("Redirect", None),
        _ => return None,
    })
}

/// `icmp.request.message` / `icmp.response.message` of a message of type `ty` and
/// code `code`.
pub fn message(v6: bool, ty: u8, code: u8) -> String {
    let names = if v6 { v6_names(ty) } else { v4_names(ty) };
    let Some((name, codes)) = names else {
        return format!("{ty}({code})");
    };
    match codes {
        None if code == 0 => name.to_string(),
        None => format!("{name}(Code: {code})"),
        Some(codes) => match codes.iter().find(|(c, _)| *c == code) {
            Some((_, c)) => format!("{name}({c})"),
            None => format!("{name}(Code: {code})"),
        },
    }
}
