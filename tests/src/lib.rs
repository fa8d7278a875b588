//! Tributary's test support: the real components the tests run against and the helpers to use
//! them.
//!
//! - [`stack`] starts the components themselves (Apache Kafka in KRaft mode, etcd +
//!   kube-apiserver + kube-controller-manager, PostgreSQL, the Java Kafka Connect worker). The
//!   `devstack` binary is a thin command line over it.
//! - [`testkit`] is what a test uses: attach to a running devstack (or start one), isolated
//!   topics, groups and namespaces, and waits with generous timeouts.
//!
//! Nothing here skips or fakes: a component that is not installed is an error that names the
//! install command.

pub mod argocd;
pub mod env_file;
pub mod installed;
pub mod operator;
pub mod stack;
pub mod testkit;
pub mod worker;

pub use testkit::{Devstack, unique_name, wait_until};
