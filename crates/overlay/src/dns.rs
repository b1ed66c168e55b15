//! The overlay's DNS zone: the server answers, at its overlay address, for its own domain only —
//! `ai.<domain>` (and the bare domain) is the server's overlay address. It is authoritative and
//! not a resolver: names outside the domain are refused, so it cannot be used to reach or probe
//! anything else. Packet parsing and building is simple-dns's; only the zone logic is here.

use std::net::Ipv4Addr;

use simple_dns::{
    rdata::RData, Name, Packet, PacketFlag, ResourceRecord, CLASS, OPCODE, QTYPE, RCODE, TYPE,
};

/// The DNS port.
pub const DNS_PORT: u16 = 53;

/// How long resolvers may cache an answer.
const TTL_SECS: u32 = 60;

/// The names the overlay answers for.
#[derive(Debug, Clone)]
pub struct DnsZone {
    /// Lower-cased, without a trailing dot.
    domain: String,
    ai_name: String,
    address: Ipv4Addr,
}

impl DnsZone {
    pub fn new(domain: &str, address: Ipv4Addr) -> Self {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        Self { ai_name: format!("ai.{domain}"), domain, address }
    }

    /// The AI endpoint's name, `ai.<domain>`.
    pub fn ai_name(&self) -> &str {
        &self.ai_name
    }

    /// The reply to one query datagram; `None` for datagrams that get no reply at all
    /// (unparseable, or a response rather than a query).
    pub fn answer(&self, query: &[u8]) -> Option<Vec<u8>> {
        let query = Packet::parse(query).ok()?;
        if query.has_flags(PacketFlag::RESPONSE) {
            return None;
        }
        let mut reply = Packet::new_reply(query.id());
        if query.has_flags(PacketFlag::RECURSION_DESIRED) {
            reply.set_flags(PacketFlag::RECURSION_DESIRED);
        }
        let rcode = if query.opcode() != OPCODE::StandardQuery {
            RCODE::NotImplemented
        } else if query.questions.len() != 1 {
            RCODE::FormatError
        } else {
            let question = &query.questions[0];
            reply.questions.push(question.clone());
            let name = question.qname.to_string().trim_end_matches('.').to_ascii_lowercase();
            let in_zone = name == self.domain || name.ends_with(&format!(".{}", self.domain));
            if !in_zone {
                RCODE::Refused
            } else if name == self.ai_name || name == self.domain {
                reply.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
                if matches!(question.qtype, QTYPE::TYPE(TYPE::A) | QTYPE::ANY) {
                    reply.answers.push(ResourceRecord::new(
                        question.qname.clone(),
                        CLASS::IN,
                        TTL_SECS,
                        RData::A(self.address.into()),
                    ));
                }
                // Other types (AAAA, …): the name exists with no such record (NODATA).
                RCODE::NoError
            } else {
                reply.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
                RCODE::NameError
            }
        };
        *reply.rcode_mut() = rcode;
        reply.build_bytes_vec().ok()
    }
}

/// A query for `name` of type `qtype`, as a resolver sends it (for tests and the client).
pub fn query(id: u16, name: &str, qtype: TYPE) -> Option<Vec<u8>> {
    let mut packet = Packet::new_query(id);
    packet.set_flags(PacketFlag::RECURSION_DESIRED);
    packet.questions.push(simple_dns::Question::new(
        Name::new(name).ok()?,
        QTYPE::TYPE(qtype),
        simple_dns::QCLASS::CLASS(CLASS::IN),
        false,
    ));
    packet.build_bytes_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);

    fn ask(zone: &DnsZone, name: &str, qtype: TYPE) -> (RCODE, Vec<Ipv4Addr>, bool) {
        let reply = zone.answer(&query(7, name, qtype).unwrap()).expect("a reply");
        let reply = Packet::parse(&reply).unwrap();
        assert_eq!(reply.id(), 7);
        assert!(reply.has_flags(PacketFlag::RESPONSE));
        let addresses = reply
            .answers
            .iter()
            .filter_map(|rr| match &rr.rdata {
                RData::A(a) => Some(Ipv4Addr::from(a.address)),
                _ => None,
            })
            .collect();
        (reply.rcode(), addresses, reply.has_flags(PacketFlag::AUTHORITATIVE_ANSWER))
    }

    #[test]
    fn the_ai_name_resolves_to_the_server_case_insensitively() {
        let zone = DnsZone::new("agentnet.internal", SERVER);
        assert_eq!(zone.ai_name(), "ai.agentnet.internal");
        assert_eq!(
            ask(&zone, "ai.agentnet.internal", TYPE::A),
            (RCODE::NoError, vec![SERVER], true)
        );
        assert_eq!(
            ask(&zone, "AI.Agentnet.Internal", TYPE::A),
            (RCODE::NoError, vec![SERVER], true)
        );
        assert_eq!(ask(&zone, "agentnet.internal", TYPE::A), (RCODE::NoError, vec![SERVER], true));
    }

    #[test]
    fn other_types_get_no_data_and_unknown_names_nxdomain() {
        let zone = DnsZone::new("agentnet.internal.", SERVER);
        assert_eq!(ask(&zone, "ai.agentnet.internal", TYPE::AAAA), (RCODE::NoError, vec![], true));
        assert_eq!(ask(&zone, "db.agentnet.internal", TYPE::A), (RCODE::NameError, vec![], true));
    }

    #[test]
    fn names_outside_the_zone_are_refused() {
        let zone = DnsZone::new("agentnet.internal", SERVER);
        assert_eq!(ask(&zone, "example.com", TYPE::A), (RCODE::Refused, vec![], false));
        assert_eq!(ask(&zone, "xagentnet.internal", TYPE::A), (RCODE::Refused, vec![], false));
    }

    #[test]
    fn garbage_and_responses_get_no_reply() {
        let zone = DnsZone::new("agentnet.internal", SERVER);
        assert!(zone.answer(b"").is_none());
        assert!(zone.answer(&[0xff; 7]).is_none());
        let reply = zone.answer(&query(1, "ai.agentnet.internal", TYPE::A).unwrap()).unwrap();
        assert!(
            zone.answer(&reply).is_none(),
            "a response must not be answered (reflection loops)"
        );
    }
}
