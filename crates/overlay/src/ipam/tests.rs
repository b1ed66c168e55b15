//! IPAM: network parsing, the reserved addresses, lowest-free assignment, exhaustion, and (as a
//! property) that no two peers ever hold one address.

use std::{collections::HashSet, net::Ipv4Addr};

use proptest::prelude::*;

use super::*;

#[test]
fn networks_parse_and_refuse_what_cannot_work() {
    let net: Ipv4Net = DEFAULT_NETWORK.parse().unwrap();
    assert_eq!(net.to_string(), "100.64.0.0/10");
    assert!(net.contains(Ipv4Addr::new(100, 127, 255, 255)));
    assert!(!net.contains(Ipv4Addr::new(100, 128, 0, 0)));
    assert_eq!(
        "100.64.0.1/10".parse::<Ipv4Net>(),
        Err(IpamError::HostBits("100.64.0.1/10".into()))
    );
    assert_eq!("10.0.0.0/31".parse::<Ipv4Net>(), Err(IpamError::Prefix(31)));
    assert_eq!("10.0.0.0/4".parse::<Ipv4Net>(), Err(IpamError::Prefix(4)));
    assert!(matches!("10.0.0.0".parse::<Ipv4Net>(), Err(IpamError::Syntax(_))));
    assert!(matches!("fd00::/64".parse::<Ipv4Net>(), Err(IpamError::Syntax(_))));
    assert_eq!(
        IpamError::Exhausted(net).to_string(),
        "every address of the overlay network 100.64.0.0/10 is in use"
    );
}

#[test]
fn the_server_has_the_first_host_and_peers_get_the_lowest_free_address() {
    let mut ipam = Ipam::new(DEFAULT_NETWORK.parse().unwrap());
    assert_eq!(ipam.server_address(), Ipv4Addr::new(100, 64, 0, 1));
    assert_eq!(ipam.assign(), Ok(Ipv4Addr::new(100, 64, 0, 2)));
    assert_eq!(ipam.assign(), Ok(Ipv4Addr::new(100, 64, 0, 3)));
    assert_eq!(ipam.assign(), Ok(Ipv4Addr::new(100, 64, 0, 4)));
    assert!(ipam.release(Ipv4Addr::new(100, 64, 0, 3)));
    assert!(!ipam.release(Ipv4Addr::new(100, 64, 0, 3)));
    assert_eq!(ipam.assign(), Ok(Ipv4Addr::new(100, 64, 0, 3)), "a freed address is reused first");
    assert_eq!(ipam.assign(), Ok(Ipv4Addr::new(100, 64, 0, 5)));
    assert_eq!(ipam.len(), 4);
}

#[test]
fn reserve_refuses_duplicates_and_addresses_no_peer_may_hold() {
    let mut ipam = Ipam::new("10.9.0.0/29".parse().unwrap());
    assert_eq!(ipam.reserve(Ipv4Addr::new(10, 9, 0, 4)), Ok(()));
    assert_eq!(
        ipam.reserve(Ipv4Addr::new(10, 9, 0, 4)),
        Err(IpamError::Taken(Ipv4Addr::new(10, 9, 0, 4)))
    );
    for reserved in [0, 1, 7] {
        // network, server, broadcast
        assert!(matches!(
            ipam.reserve(Ipv4Addr::new(10, 9, 0, reserved)),
            Err(IpamError::OutOfRange { .. })
        ));
    }
    assert!(matches!(ipam.reserve(Ipv4Addr::new(10, 9, 1, 2)), Err(IpamError::OutOfRange { .. })));
    // A /29 has six hosts: the server and five peers.
    let assigned: Vec<_> = std::iter::from_fn(|| ipam.assign().ok()).collect();
    assert_eq!(assigned, [2, 3, 5, 6].map(|h| Ipv4Addr::new(10, 9, 0, h)));
    assert_eq!(ipam.assign(), Err(IpamError::Exhausted("10.9.0.0/29".parse().unwrap())));
}

proptest! {
    /// Whatever the order of assignments and releases, no address is held twice, every held
    /// address is a peer address of the network, and assignment only fails when all are held.
    #[test]
    fn no_two_peers_ever_share_an_address(ops in proptest::collection::vec(any::<(bool, u8)>(), 0..200)) {
        let net: Ipv4Net = "10.20.0.0/26".parse().unwrap();
        let mut ipam = Ipam::new(net);
        let mut held: Vec<Ipv4Addr> = Vec::new();
        for (assign, pick) in ops {
            if assign || held.is_empty() {
                match ipam.assign() {
                    Ok(address) => {
                        prop_assert!(!held.contains(&address));
                        prop_assert!(net.contains(address));
                        prop_assert_ne!(address, ipam.server_address());
                        prop_assert_ne!(address, net.address());
                        prop_assert_ne!(address, Ipv4Addr::new(10, 20, 0, 63));
                        held.push(address);
                    }
                    Err(IpamError::Exhausted(_)) => prop_assert_eq!(held.len(), 61),
                    Err(other) => prop_assert!(false, "unexpected {other}"),
                }
            } else {
                let address = held.swap_remove(usize::from(pick) % held.len());
                prop_assert!(ipam.release(address));
            }
            prop_assert_eq!(ipam.len(), held.len());
            prop_assert_eq!(held.iter().collect::<HashSet<_>>().len(), held.len());
        }
    }
}
