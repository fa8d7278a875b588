//! Smoke tests: each proves one real component of the devstack works the way later tests rely
//! on. They run against the shared devstack (`TRIBUTARY_DEVSTACK_ENV`, as `make test` sets it) or
//! start one; the 3-node Kafka test always starts its own, since it kills a node.

mod java_connect;
mod kafka;
mod kube;
mod postgres;
