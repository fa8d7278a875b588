//! The Kafka Connect group protocol as pure code: member metadata and assignment codecs (v0, v1,
//! v2, byte-exact with Apache Kafka Connect) and the eager and incremental cooperative assignors.
//!
//! Pure so that it can be property-tested and fuzzed without a broker. The contents arrive with
//! distributed mode part 1 (issue 4).
