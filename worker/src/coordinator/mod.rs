//! Membership in a Connect worker group: Kafka's classic group protocol with protocol type
//! `connect` (connect-compat.md §4.1). [`machine`] is the protocol logic without I/O; the I/O
//! loop that drives it over the network arrives with the rest of distributed mode.

pub mod machine;

#[cfg(test)]
mod machine_tests;
