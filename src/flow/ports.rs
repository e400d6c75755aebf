//! Port → protocol: which enabled protocol a TCP or UDP port belongs to (one map per
//! transport), and the protocol of ICMP messages, which have no ports. Built once
//! from the enabled protocols and shared (cheaply cloned) by the readers, which keep
//! only the packets of a tracked port, and by every worker's flow table, which picks
//! the parser of a new connection with the same lookup; live capture builds its
//! kernel filter from the same ports.

use std::sync::Arc;

use crate::event::Transport;
use crate::protos::ProtocolFactory;

/// Protocols that fit in a slot (0 means "no protocol").
const MAX_PROTOCOLS: usize = u8::MAX as usize - 1;

/// The enabled protocols and the port each one claims.
#[derive(Clone)]
pub struct PortMap {
    protos: Arc<[Arc<dyn ProtocolFactory>]>,
    /// TCP port → index into `protos` + 1 (0 = no protocol).
    slots: Arc<[u8; 65536]>,
    /// The same for UDP ports.
    udp_slots: Arc<[u8; 65536]>,
    /// The protocol of ICMP and ICMPv6 messages (index + 1, 0 = none).
    icmp: u8,
}

impl PortMap {
    /// Ports of the protocols among `protos`, by the transport each runs on; a port
    /// claimed twice on one transport goes to the first protocol that claims it.
    pub fn new(protos: Vec<Arc<dyn ProtocolFactory>>) -> PortMap {
        let mut tcp = Arc::new([0u8; 65536]);
        let mut udp = Arc::new([0u8; 65536]);
        let mut icmp = 0;
        {
            let (tcp, udp) = (Arc::make_mut(&mut tcp), Arc::make_mut(&mut udp));
            for (i, p) in protos.iter().enumerate().take(MAX_PROTOCOLS) {
                for t in p.transports() {
                    let slots = match t {
                        Transport::Tcp => &mut *tcp,
                        Transport::Udp => &mut *udp,
                        Transport::Icmp | Transport::Icmpv6 => {
                            if icmp == 0 {
                                icmp = (i + 1) as u8;
                            }
                            continue;
                        }
                    };
                    for &port in p.ports() {
                        if slots[port as usize] == 0 {
                            slots[port as usize] = (i + 1) as u8;
                        }
                    }
                }
            }
        }
        PortMap {
            protos: protos.into(),
            slots: tcp,
            udp_slots: udp,
            icmp,
        }
    }

    fn protocol_in<'a>(
        &'a self,
        slots: &[u8; 65536],
        port: u16,
    ) -> Option<&'a Arc<dyn ProtocolFactory>> {
        match slots[port as usize] {
            0 => None,
            i => self.protos.get(i as usize - 1),
        }
    }

    fn ports_in(slots: &[u8; 65536]) -> Vec<u16> {
        (0..=u16::MAX).filter(|&p| slots[p as usize] != 0).collect()
    }

    /// The TCP protocol on `port`, if any.
    #[inline]
    pub fn get(&self, port: u16) -> Option<&Arc<dyn ProtocolFactory>> {
        self.protocol_in(&self.slots, port)
    }

    /// The UDP protocol on `port`, if any.
    #[inline]
    pub fn get_udp(&self, port: u16) -> Option<&Arc<dyn ProtocolFactory>> {
        self.protocol_in(&self.udp_slots, port)
    }

    /// True when either port belongs to an enabled TCP protocol.
    #[inline]
    pub fn wants(&self, sport: u16, dport: u16) -> bool {
        self.slots[sport as usize] != 0 || self.slots[dport as usize] != 0
    }

    /// True when either port belongs to an enabled UDP protocol.
    #[inline]
    pub fn wants_udp(&self, sport: u16, dport: u16) -> bool {
        self.udp_slots[sport as usize] != 0 || self.udp_slots[dport as usize] != 0
    }

    /// The protocol of ICMP messages, if one is enabled.
    #[inline]
    pub fn get_icmp(&self) -> Option<&Arc<dyn ProtocolFactory>> {
        match self.icmp {
            0 => None,
            i => self.protos.get(i as usize - 1),
        }
    }

    /// True when a protocol follows ICMP messages.
    #[inline]
    pub fn wants_icmp(&self) -> bool {
        self.icmp != 0
    }

    /// Every tracked TCP port, ascending (for the capture filter).
    pub fn ports(&self) -> Vec<u16> {
        Self::ports_in(&self.slots)
    }

    /// Every tracked UDP port, ascending (for the capture filter).
    pub fn udp_ports(&self) -> Vec<u16> {
        Self::ports_in(&self.udp_slots)
    }

    /// Every enabled protocol, in configuration order.
    pub fn protocols(&self) -> &[Arc<dyn ProtocolFactory>] {
        &self.protos
    }
}

impl From<Vec<Arc<dyn ProtocolFactory>>> for PortMap {
    fn from(protos: Vec<Arc<dyn ProtocolFactory>>) -> PortMap {
        PortMap::new(protos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn ports_map_to_their_protocol_and_the_first_claim_wins() {
        let mut cfg = Config::default();
        cfg.protocols.redis.common.ports = vec![6379, 80];
        let m = PortMap::new(crate::protos::enabled(&cfg));
        assert_eq!(m.get(80).map(|f| f.name()), Some("http"));
        assert_eq!(m.get(6379).map(|f| f.name()), Some("redis"));
        assert!(m.get(1).is_none());
        assert!(m.wants(1, 6379) && m.wants(6379, 1));
        assert!(!m.wants(1, 2));
        let ports = m.ports();
        assert!(ports.windows(2).all(|w| w[0] < w[1]));
        assert!(ports.contains(&80) && ports.contains(&6379) && !ports.contains(&1));
        assert_eq!(m.protocols().len(), crate::protos::enabled(&cfg).len());
    }
}
