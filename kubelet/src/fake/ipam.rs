//! Address bookkeeping for fake nodes: which /24 pod CIDR and InternalIP each
//! node gets, and which pod IP each pod on a node holds. Nothing is routed;
//! the addresses only have to look like a real cluster's and never collide.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

/// Pod CIDRs are consecutive /24s from here (the flannel-style default).
const POD_CIDR_BASE: u32 = u32::from_be_bytes([10, 244, 0, 0]);
/// Node InternalIPs count up from here, one per pod-CIDR index.
const NODE_IP_BASE: u32 = u32::from_be_bytes([10, 0, 0, 2]);
/// Host offsets usable for pods in a /24: .0 is the network, .1 the node's
/// bridge, .255 broadcast.
const FIRST_HOST: u8 = 2;
const LAST_HOST: u8 = 254;

/// One node's /24 pod range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NodeCidr {
    network: u32,
}

impl NodeCidr {
    /// The `index`th /24 after 10.244.0.0.
    pub(crate) fn from_index(index: u32) -> Self {
        Self {
            network: POD_CIDR_BASE.wrapping_add(index.wrapping_mul(256)),
        }
    }

    /// Reads `a.b.c.0/24`; other prefix lengths are not ours.
    pub(crate) fn parse(cidr: &str) -> Option<Self> {
        let (addr, len) = cidr.split_once('/')?;
        if len != "24" {
            return None;
        }
        let addr: Ipv4Addr = addr.parse().ok()?;
        Some(Self {
            network: u32::from(addr) & !0xff,
        })
    }

    /// The index this range has in the fake allocation space, if it is in it.
    pub(crate) fn index(self) -> Option<u32> {
        self.network
            .checked_sub(POD_CIDR_BASE)
            .map(|offset| offset / 256)
    }

    /// The InternalIP the node owning this range reports.
    pub(crate) fn node_ip(self) -> Ipv4Addr {
        Ipv4Addr::from(NODE_IP_BASE.wrapping_add(self.index().unwrap_or(0)))
    }

    fn host(self, offset: u8) -> Ipv4Addr {
        Ipv4Addr::from(self.network | u32::from(offset))
    }

    /// The host offset of `ip` if it lies in this range.
    fn offset_of(self, ip: Ipv4Addr) -> Option<u8> {
        let ip = u32::from(ip);
        (ip & !0xff == self.network).then_some((ip & 0xff) as u8)
    }
}

impl std::fmt::Display for NodeCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/24", Ipv4Addr::from(self.network))
    }
}

/// The lowest `count` indices not in `used`.
pub(crate) fn free_indices(used: &BTreeSet<u32>, count: usize) -> Vec<u32> {
    (0u32..).filter(|i| !used.contains(i)).take(count).collect()
}

/// The pod IPs handed out on one node, keyed by pod uid.
#[derive(Debug)]
pub(crate) struct PodIps {
    cidr: NodeCidr,
    by_uid: HashMap<String, u8>,
    used: BTreeSet<u8>,
    /// Allocation walks round the range so a just-freed IP is not reused at once.
    next: u8,
}

impl PodIps {
    pub(crate) fn new(cidr: NodeCidr) -> Self {
        Self {
            cidr,
            by_uid: HashMap::new(),
            used: BTreeSet::new(),
            next: FIRST_HOST,
        }
    }

    /// Records an IP a pod already reports (after a restart). Returns false if
    /// the IP is outside the range or held by another pod.
    pub(crate) fn adopt(&mut self, uid: &str, ip: &str) -> bool {
        let Some(offset) = ip.parse().ok().and_then(|ip| self.cidr.offset_of(ip)) else {
            return false;
        };
        if let Some(held) = self.by_uid.get(uid) {
            return *held == offset;
        }
        if !self.used.insert(offset) {
            return false;
        }
        self.by_uid.insert(uid.to_string(), offset);
        true
    }

    /// The pod's IP, allocating one if it has none; `None` when the range is full.
    pub(crate) fn allocate(&mut self, uid: &str) -> Option<Ipv4Addr> {
        if let Some(offset) = self.by_uid.get(uid) {
            return Some(self.cidr.host(*offset));
        }
        let span = usize::from(LAST_HOST - FIRST_HOST) + 1;
        let offset = (FIRST_HOST..=LAST_HOST)
            .cycle()
            .skip(usize::from(self.next - FIRST_HOST))
            .take(span)
            .find(|o| !self.used.contains(o))?;
        self.used.insert(offset);
        self.by_uid.insert(uid.to_string(), offset);
        self.next = if offset == LAST_HOST {
            FIRST_HOST
        } else {
            offset + 1
        };
        Some(self.cidr.host(offset))
    }

    pub(crate) fn release(&mut self, uid: &str) {
        if let Some(offset) = self.by_uid.remove(uid) {
            self.used.remove(&offset);
        }
    }

    /// Frees every IP whose pod `live` no longer vouches for (pods removed
    /// without passing through a state this node saw).
    pub(crate) fn retain(&mut self, live: impl Fn(&str) -> bool) {
        let gone: Vec<String> = self.by_uid.keys().filter(|u| !live(u)).cloned().collect();
        for uid in gone {
            self.release(&uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_round_trips() {
        for (index, text, node_ip) in [
            (0, "10.244.0.0/24", "10.0.0.2"),
            (1, "10.244.1.0/24", "10.0.0.3"),
            (256, "10.245.0.0/24", "10.0.1.2"),
        ] {
            let cidr = NodeCidr::from_index(index);
            assert_eq!(cidr.to_string(), text);
            assert_eq!(NodeCidr::parse(text), Some(cidr));
            assert_eq!(cidr.index(), Some(index));
            assert_eq!(cidr.node_ip().to_string(), node_ip);
        }
        assert_eq!(NodeCidr::parse("10.244.0.0/16"), None);
        assert_eq!(NodeCidr::parse("nonsense"), None);
        assert_eq!(NodeCidr::parse("10.0.0.0/24").and_then(|c| c.index()), None);
    }

    #[test]
    fn free_indices_fill_gaps() {
        let used: BTreeSet<u32> = [0, 2, 3].into_iter().collect();
        assert_eq!(free_indices(&used, 3), vec![1, 4, 5]);
    }

    #[test]
    fn pod_ips_are_unique_and_stable() {
        let mut ips = PodIps::new(NodeCidr::from_index(3));
        assert!(ips.adopt("a", "10.244.3.2"));
        assert!(!ips.adopt("b", "10.244.3.2"), "taken by a");
        assert!(!ips.adopt("c", "10.244.4.7"), "outside the range");
        let b = ips.allocate("b");
        assert_eq!(b.map(|i| i.to_string()).as_deref(), Some("10.244.3.3"));
        assert_eq!(ips.allocate("b"), b, "same pod, same IP");
        ips.release("a");
        // .2 was freed but allocation moves on round the range first.
        assert_eq!(
            ips.allocate("d").map(|i| i.to_string()).as_deref(),
            Some("10.244.3.4")
        );
    }

    #[test]
    fn pod_ips_exhaust_and_reclaim() {
        let mut ips = PodIps::new(NodeCidr::from_index(0));
        for i in 0..253 {
            assert!(ips.allocate(&format!("p{i}")).is_some(), "pod {i}");
        }
        assert_eq!(ips.allocate("extra"), None);
        ips.retain(|uid| uid != "p7");
        assert_eq!(
            ips.allocate("extra").map(|i| i.to_string()).as_deref(),
            Some("10.244.0.9")
        );
    }
}
