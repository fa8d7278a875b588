//! Distributed mode (`tributary-worker distributed`), being built: so far the translation of the
//! worker config into its parts — the three internal topics and the group settings. The herder
//! that runs work on top of them comes next.

pub mod setup;
