//! What a connector plugin author sees: the Connect data model (schemas, values, structs, logical
//! types), source and sink records, the connector and task traits with their contexts, and
//! `ConfigDef`.
//!
//! Kept free of I/O and of the runtime so that plugins depend on a small, stable surface. The
//! contents arrive with the worker core (issue 3); see `../shared/DESIGN.md` §4.
