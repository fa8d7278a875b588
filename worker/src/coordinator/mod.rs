//! Membership in a Connect worker group: Kafka's classic group protocol with protocol type
//! `connect` (connect-compat.md §4.1). [`machine`] is the protocol logic without I/O;
//! [`connection`] talks to brokers (TLS, SASL); [`driver`] runs the machine over connections.

pub mod connection;
pub mod driver;
pub mod machine;
pub mod member;
mod scram;

#[cfg(test)]
mod machine_tests;
