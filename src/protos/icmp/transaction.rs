//! ICMP messages as they wait for their reply, and the [`Exchange`] that turns a
//! request/reply pair (or a message alone) into a transaction. The notes and
//! status rules are Packetbeat's.

use super::fields::{IcmpFields, Side};
use crate::event::{Status, Transaction};
use crate::protos::pairing::{self, Exchange, Wire};

/// A reply came while no request of its sequence number was waiting.
pub const NOTE_ORPHAN: &str = "Response was received without an associated request.";
/// The request was not answered within `transaction_timeout`, or the flow ended.
pub const NOTE_NO_RESPONSE: &str = "Request was received without an associated response.";
/// A second request with the same identifier and sequence number came first.
pub const NOTE_DUPLICATE: &str = "Another request with the same Id and Seq was received so this request was closed without receiving a response.";

/// The ICMP settings the transactions need (none of their own besides the ones
/// every protocol has).
#[derive(Clone, Copy, Debug, Default)]
pub struct IcmpExchange;

/// One message: its header and where it was on the wire (`bytes`: what follows
/// the header, as Packetbeat counts).
#[derive(Clone, Copy, Debug)]
pub struct IcmpMsg {
    pub wire: Wire,
    pub v6: bool,
    pub ty: u8,
    pub code: u8,
    pub seq: u16,
    pub error: bool,
    pub role: super::parser::IcmpRole,
}

impl pairing::Message for IcmpMsg {
    fn wire(&self) -> &Wire {
        &self.wire
    }
}

impl IcmpMsg {
    fn side(&self) -> Side {
        Side {
            ty: self.ty,
            code: self.code,
        }
    }
}

impl Exchange for IcmpExchange {
    const PROTOCOL: &'static str = "icmp";
    type Request = IcmpMsg;
    type Response = IcmpMsg;

    fn fill(&self, tx: &mut Transaction, req: Option<IcmpMsg>, resp: Option<IcmpMsg>) {
        use super::parser::IcmpRole;
        // OK unless the request is missing, either side reports an error, or a
        // request that waits for a reply has none.
        let failed = match (&req, &resp) {
            (None, _) => true,
            (Some(q), r) => {
                q.error
                    || r.is_some_and(|r| r.error)
                    || (q.role == IcmpRole::Request && r.is_none())
            }
        };
        tx.status = if failed { Status::Error } else { Status::Ok };
        let v6 = req.as_ref().or(resp.as_ref()).is_some_and(|m| m.v6);
        tx.fields = Some(Box::new(IcmpFields {
            v6,
            request: req.as_ref().map(IcmpMsg::side),
            response: resp.as_ref().map(IcmpMsg::side),
        }));
    }
}
