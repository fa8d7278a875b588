//! `<c>-connect`: the workers' ServiceAccount. It has no roles and its token is not mounted:
//! workers read everything they need from files.

use k8s_openapi::api::core::v1::ServiceAccount;

use super::Cluster;

pub fn service_account(c: &Cluster<'_>) -> ServiceAccount {
    ServiceAccount {
        metadata: c.meta(c.workers_name(), "connect-worker", None),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}
