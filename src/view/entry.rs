//! A view's entries ([`Entry`]) and what the core needs to know of their address payloads
//! ([`EntryPayload`], [`AddressList`]).

/// What the core needs to know of an entry's address payload `A`: whether it carries a signed
/// record, and that record's sequence number.
///
/// Seqs are compared only between payloads of the same identifier (their units are the
/// signer's: one implementation counts seconds, another nanoseconds). Two rules of the merge
/// use them, and neither changes who is in the view:
/// - a received entry for an identifier already in the view is still not taken, but when its
///   payload [supersedes](Self::supersedes) the held one (it carries a record, the held one
///   none or one with a lower seq), the held entry's payload becomes the received one, its age
///   unchanged ([`MergeOutcome::updated`](field@crate::view::MergeOutcome::updated));
/// - a record with a lower seq never replaces a held one, also when one merge replaces an
///   entry and then takes the same identifier back from later in the received entries.
///
/// Payloads without records (`()`, plain address lists) never compare: the paper's rules run
/// unchanged for them.
pub trait EntryPayload: Clone {
    /// The sequence number of the signed record this payload carries, or `None` (the default)
    /// if it carries none.
    fn record_seq(&self) -> Option<u64> {
        None
    }

    /// Whether `self`, received, should replace `held`, the payload in the view for the same
    /// identifier: `self` carries a record, and `held` none or one with a lower seq.
    fn supersedes(&self, held: &Self) -> bool {
        match (self.record_seq(), held.record_seq()) {
            (Some(received), Some(held)) => received > held,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// No addresses at all (the simulator's payload): never a record.
impl EntryPayload for () {}

/// Plain address lists: never a record.
impl<T: Clone> EntryPayload for Vec<T> {}

/// Address payloads that learn single addresses out of band ([`PartialView::add_address`](crate::view::PartialView::add_address)).
pub trait AddressList: EntryPayload {
    /// One address.
    type Address;

    /// A payload holding just `address`.
    fn from_address(address: Self::Address) -> Self;

    /// Adds `address` unless the payload already has it or holds `max` addresses (or takes no
    /// addresses from outside, as a payload fixed by a signature); returns whether it did.
    fn add_address(&mut self, address: Self::Address, max: usize) -> bool;
}

impl<T: Clone + PartialEq> AddressList for Vec<T> {
    type Address = T;

    fn from_address(address: T) -> Self {
        vec![address]
    }

    fn add_address(&mut self, address: T, max: usize) -> bool {
        if self.len() < max && !self.contains(&address) {
            self.push(address);
            true
        } else {
            false
        }
    }
}

/// One entry of a partial view: a neighbour, how to reach it, and how old the entry is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry<I, A = ()> {
    pub(super) id: I,
    pub(super) addresses: A,
    pub(super) age: u32,
}

impl<I, A> Entry<I, A> {
    /// Creates an entry.
    pub fn new(id: I, addresses: A, age: u32) -> Self {
        Self { id, addresses, age }
    }

    /// The neighbour's identifier: its peer id ([`PeerId`](libp2p_identity::PeerId) in the
    /// [`Behaviour`](crate::Behaviour), a node number in the simulator).
    pub fn peer_id(&self) -> &I {
        &self.id
    }

    /// How to reach the neighbour.
    pub fn addresses(&self) -> &A {
        &self.addresses
    }

    /// The entry's age in shuffle rounds of the node that holds it.
    pub fn age(&self) -> u32 {
        self.age
    }

    /// Splits the entry into identifier, addresses and age.
    pub fn into_parts(self) -> (I, A, u32) {
        (self.id, self.addresses, self.age)
    }
}
