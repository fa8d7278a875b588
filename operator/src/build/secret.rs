//! `<c>-connect-rest`: the REST API's basic-auth credentials. The operator generates the
//! password once and keeps it; workers and the operator read it, nobody else needs it.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::Cluster;

/// The user the operator (and the workers, between themselves) authenticate as.
pub const REST_USER: &str = "tributary-operator";

pub fn rest_secret(c: &Cluster<'_>, password: &str) -> Secret {
    Secret {
        metadata: c.meta(c.rest_secret_name(), "connect-rest-auth", None),
        type_: Some("kubernetes.io/basic-auth".into()),
        data: Some(BTreeMap::from([
            (
                "username".to_string(),
                ByteString(REST_USER.as_bytes().to_vec()),
            ),
            (
                "password".to_string(),
                ByteString(password.as_bytes().to_vec()),
            ),
        ])),
        ..Secret::default()
    }
}
