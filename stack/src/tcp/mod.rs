//! TCP (RFC 9293), split the BSD way: by direction and by time.
//!
//! Building blocks first, each in its own file with its own tests: the send and receive
//! byte rings (`buffer`), out-of-order reassembly with SACK block reporting (`reass`),
//! the sender's SACK scoreboard (`sack`, RFC 6675), RTT estimation and RTO
//! (`rtt`, RFC 6298), congestion control behind a trait (`cc/`: NewReno, CUBIC), initial
//! sequence numbers (`isn`, RFC 6528), SYN cookies (`syncookie`) and the timing wheel
//! (`timer`).

pub mod buffer;
pub mod cc;
pub mod isn;
pub mod reass;
pub mod rtt;
pub mod sack;
pub mod syncookie;
pub mod timer;
