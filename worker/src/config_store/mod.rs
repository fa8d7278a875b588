//! The config topic (connect-compat.md §1): its records ([`record`]) and the cluster
//! configuration rebuilt from them ([`snapshot`]). Pure; reading and writing the topic is the
//! `kafka_log`'s job (distributed mode).

pub mod record;
pub mod snapshot;
pub mod store;

#[cfg(test)]
mod tests;
