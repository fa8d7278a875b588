//! Kafka Connect REST API entity types and a typed async client, shared by the worker's REST
//! server and its request forwarding, the operator, and the tests, so that all of them agree on
//! one wire shape. The contents arrive with distributed mode part 2 (issue 5).
