//! The operator's client for one cluster's Kafka Connect REST API. Workers are reached by their
//! pod DNS names through the headless Service (no kube-proxy in the path, and any worker forwards
//! to the leader), trying the next worker when one does not answer. Every call has the context's
//! timeouts, so a hanging cluster costs its own reconciles a few seconds and nobody else anything.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tributary_connect_client::{ConfigInfos, ConnectorExpansion};

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No worker answered (refused, timed out, TLS or DNS failure).
    #[error("no worker answered: {0}")]
    Unreachable(String),
    /// A worker answered with an error status; `message` is Connect's `message`.
    #[error("HTTP {code}: {message}")]
    Status { code: u16, message: String },
}

impl CallError {
    pub fn code(&self) -> Option<u16> {
        match self {
            CallError::Status { code, .. } => Some(*code),
            CallError::Unreachable(_) => None,
        }
    }
}

/// One cluster's REST API.
#[derive(Clone)]
pub struct ConnectClient {
    http: reqwest::Client,
    /// `scheme://host:port` of every worker, in ordinal order.
    workers: Arc<Vec<String>>,
    user: String,
    password: String,
    /// The worker that answered last: asked first next time.
    preferred: Arc<AtomicUsize>,
}

impl std::fmt::Debug for ConnectClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectClient")
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

fn segment(s: &str) -> String {
    tributary_connect_client::encode_component(s)
}

impl ConnectClient {
    pub fn new(http: reqwest::Client, workers: Vec<String>, user: &str, password: &str) -> Self {
        Self {
            http,
            workers: Arc::new(workers),
            user: user.to_string(),
            password: password.to_string(),
            preferred: Arc::default(),
        }
    }

    /// Whether both clients reach the same workers with the same credentials.
    pub fn same_target(&self, other: &ConnectClient) -> bool {
        self.workers == other.workers && self.password == other.password
    }

    /// Sends one request to the first worker that answers; any HTTP answer counts (a 4xx or
    /// 5xx from one worker would be the same from another: they forward to the leader).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let text = self.call_text(method, path, body).await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// [`Self::call`]'s body as text, for callers that parse it straight into their types (a
    /// 1,000-connector listing as a `Value` tree would cost megabytes per poll).
    async fn call_text(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<String, CallError> {
        if self.workers.is_empty() {
            return Err(CallError::Unreachable("the cluster has no workers".into()));
        }
        let n = self.workers.len();
        let first = self.preferred.load(Ordering::Relaxed) % n;
        let mut last_error = String::new();
        for i in 0..n {
            let w = (first + i) % n;
            let url = format!("{}{path}", self.workers[w]);
            let mut req = self
                .http
                .request(method.clone(), &url)
                .basic_auth(&self.user, Some(&self.password));
            if let Some(b) = body {
                req = req.json(b);
            }
            match req.send().await {
                Ok(r) => {
                    self.preferred.store(w, Ordering::Relaxed);
                    let code = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    if (200..300).contains(&code) {
                        return Ok(text);
                    }
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let message = v["message"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| text.chars().take(500).collect());
                    return Err(CallError::Status { code, message });
                }
                Err(e) => {
                    tracing::debug!(%url, error = %e, "worker did not answer");
                    last_error = format!("{url}: {}", error_chain(&e));
                }
            }
        }
        Err(CallError::Unreachable(last_error))
    }

    /// `GET path`, as JSON.
    pub async fn get(&self, path: &str) -> Result<Value, CallError> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// `PUT /admin/loggers/{name}?scope=cluster`: the level on every worker, also those started
    /// later (kept in the config topic).
    pub async fn set_logger(&self, name: &str, level: &Value) -> Result<(), CallError> {
        let path = format!("/admin/loggers/{}?scope=cluster", segment(name));
        let body = json!({ "level": level });
        self.call(reqwest::Method::PUT, &path, Some(&body))
            .await
            .map(|_| ())
    }

    /// `GET /connectors?expand=status&expand=info`: every connector with its config and state.
    pub async fn list(&self) -> Result<BTreeMap<String, ConnectorExpansion>, CallError> {
        let text = self
            .call_text(
                reqwest::Method::GET,
                "/connectors?expand=status&expand=info",
                None,
            )
            .await?;
        serde_json::from_str(&text).map_err(|e| CallError::Status {
            code: 200,
            message: format!("unexpected GET /connectors body: {e}"),
        })
    }

    /// `POST /connectors` with `initial_state` (KIP-980): a 409 when the name is taken, so a
    /// retried create never replaces anything.
    pub async fn create(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
        initial_state: &str,
    ) -> Result<(), CallError> {
        let body = json!({"name": name, "config": config, "initial_state": initial_state});
        self.call(reqwest::Method::POST, "/connectors", Some(&body))
            .await
            .map(|_| ())
    }

    /// `PUT /connectors/{name}/config`.
    pub async fn put_config(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<(), CallError> {
        let body = serde_json::to_value(config).unwrap_or(Value::Null);
        let path = format!("/connectors/{}/config", segment(name));
        self.call(reqwest::Method::PUT, &path, Some(&body))
            .await
            .map(|_| ())
    }

    /// `PUT /connector-plugins/{class}/config/validate`.
    pub async fn validate(
        &self,
        class: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<ConfigInfos, CallError> {
        let body = serde_json::to_value(config).unwrap_or(Value::Null);
        let path = format!("/connector-plugins/{}/config/validate", segment(class));
        let v = self.call(reqwest::Method::PUT, &path, Some(&body)).await?;
        serde_json::from_value(v).map_err(|e| CallError::Status {
            code: 200,
            message: format!("unexpected validate body: {e}"),
        })
    }

    /// `PUT /connectors/{name}/{pause|resume|stop}`.
    pub async fn transition(&self, name: &str, verb: &str) -> Result<(), CallError> {
        let path = format!("/connectors/{}/{verb}", segment(name));
        self.call(reqwest::Method::PUT, &path, None)
            .await
            .map(|_| ())
    }

    /// `POST /connectors/{name}/restart?includeTasks=…&onlyFailed=…` (KIP-745).
    pub async fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<(), CallError> {
        let path = format!(
            "/connectors/{}/restart?includeTasks={include_tasks}&onlyFailed={only_failed}",
            segment(name)
        );
        self.call(reqwest::Method::POST, &path, None)
            .await
            .map(|_| ())
    }

    /// `POST /connectors/{name}/tasks/{task}/restart`.
    pub async fn restart_task(&self, name: &str, task: u32) -> Result<(), CallError> {
        let path = format!("/connectors/{}/tasks/{task}/restart", segment(name));
        self.call(reqwest::Method::POST, &path, None)
            .await
            .map(|_| ())
    }

    /// `DELETE /connectors/{name}`; a connector already gone is not an error.
    pub async fn delete(&self, name: &str) -> Result<(), CallError> {
        let path = format!("/connectors/{}", segment(name));
        match self.call(reqwest::Method::DELETE, &path, None).await {
            Ok(_) => Ok(()),
            Err(CallError::Status { code: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `PATCH /connectors/{name}/offsets` (KIP-875).
    pub async fn alter_offsets(&self, name: &str, offsets: &Value) -> Result<(), CallError> {
        let path = format!("/connectors/{}/offsets", segment(name));
        let body = json!({ "offsets": offsets });
        self.call(reqwest::Method::PATCH, &path, Some(&body))
            .await
            .map(|_| ())
    }

    /// `DELETE /connectors/{name}/offsets` (KIP-875).
    pub async fn reset_offsets(&self, name: &str) -> Result<(), CallError> {
        let path = format!("/connectors/{}/offsets", segment(name));
        self.call(reqwest::Method::DELETE, &path, None)
            .await
            .map(|_| ())
    }

    /// `GET /connectors/{name}/topics` (KIP-558).
    pub async fn topics(&self, name: &str) -> Result<Vec<String>, CallError> {
        let path = format!("/connectors/{}/topics", segment(name));
        let v = self.call(reqwest::Method::GET, &path, None).await?;
        Ok(v[name]["topics"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// An error with its causes (reqwest's top-level message hides the interesting part).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
