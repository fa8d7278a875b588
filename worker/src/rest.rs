//! The Kafka Connect REST API on `listeners` (8083), and Tributary's health listener (8084:
//! `/health`, `/ready`, `/metrics`). Paths, status codes and bodies follow `connect-compat.md` §5;
//! errors always have the `{"error_code","message"}` shape, including malformed JSON and unknown
//! paths, so clients never see a plain-text body.
//!
//! Requests a distributed herder cannot handle here (writes go to the leader, task restarts to
//! the owner) come back as [`HerderError::Elsewhere`]; the forwarding layer re-issues them with
//! Java's `forward=` rules and returns the reply as received.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use tributary_connect_client::{CreateConnectorRequest, ErrorMessage, ServerInfo};

use crate::herder::forward::{self, Route};
use crate::herder::{Herder, HerderError, HerderResult, TargetState};
use crate::metrics::Metrics;
use crate::signing::{ALGORITHM_HEADER, SIGNATURE_HEADER};

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct Api {
    pub herder: Arc<dyn Herder>,
    pub metrics: Arc<Metrics>,
    /// For forwarded requests; made on first use (a TLS-capable client loads the system's CA
    /// certificates, megabytes a standalone worker, which never forwards, does not need).
    client: Arc<std::sync::OnceLock<reqwest::Client>>,
    /// HTTP basic authentication of the REST listener, when configured.
    pub auth: Option<BasicAuth>,
    /// How to reach other workers' https listeners (truststore, keystore).
    pub tls: crate::rest_tls::ClientTls,
    /// Distributed workers: the preStop hook's way to stop the work and leave the group.
    pub leave: Option<Arc<Leave>>,
}

/// A request, through `POST /leave` on the health listener, to stop every connector and task,
/// commit their offsets and leave the group now, before the pod's SIGTERM: Kubernetes' preStop
/// hook waits for it, so the group moves the work while the grace period still runs and the
/// SIGTERM that follows finds nothing left to stop.
#[derive(Debug)]
pub struct Leave {
    requested: tokio::sync::Notify,
    done: tokio::sync::watch::Sender<bool>,
}

impl Default for Leave {
    fn default() -> Self {
        Self {
            requested: tokio::sync::Notify::new(),
            done: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl Leave {
    /// Asks the worker to leave (kept until the worker looks, if it is not looking yet).
    pub fn request(&self) {
        self.requested.notify_one();
    }

    /// Resolves once someone asked.
    pub async fn requested(&self) {
        self.requested.notified().await;
    }

    /// The work is stopped and the group left.
    pub fn finish(&self) {
        self.done.send_replace(true);
    }

    async fn wait_done(&self) {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }
}

impl Api {
    fn forwarding_client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| client(None, &self.tls))
    }

    pub fn new(herder: Arc<dyn Herder>, metrics: Arc<Metrics>, auth: Option<BasicAuth>) -> Self {
        Self {
            herder,
            metrics,
            client: Arc::default(),
            auth,
            tls: crate::rest_tls::ClientTls::default(),
            leave: None,
        }
    }
}

/// An HTTP client as workers use it between themselves (`User-Agent: kafka-connect`, Java's 90 s
/// request timeout), sending `auth`'s credentials on every request when given.
pub fn client(auth: Option<&BasicAuth>, tls: &crate::rest_tls::ClientTls) -> reqwest::Client {
    let mut headers = axum::http::HeaderMap::new();
    if let Some(a) = auth
        && let Ok(mut v) = HeaderValue::from_str(&a.expected)
    {
        v.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, v);
    }
    let mut b = reqwest::Client::builder()
        .user_agent("kafka-connect")
        .timeout(std::time::Duration::from_secs(90))
        .default_headers(headers);
    for c in &tls.roots {
        b = b.add_root_certificate(c.clone());
    }
    if let Some(identity) = &tls.identity {
        b = b.identity(identity.clone());
    }
    b.build().unwrap_or_default()
}

/// `tributary.rest.basic.auth.username` and `.password` (typically a config-provider placeholder
/// such as `${file:/mnt/secrets/rest.properties:password}`): every REST request but the signed
/// internal ones must carry them, as with Java's `BasicAuthSecurityRestExtension`.
#[derive(Clone)]
pub struct BasicAuth {
    /// The whole expected `Authorization` value.
    expected: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BasicAuth([hidden])")
    }
}

impl BasicAuth {
    /// From the resolved worker settings; `None` when no username is set.
    pub fn from_worker_props(
        props: &BTreeMap<String, String>,
    ) -> Result<Option<BasicAuth>, String> {
        let user = props
            .get("tributary.rest.basic.auth.username")
            .map(|u| u.trim())
            .filter(|u| !u.is_empty());
        let Some(user) = user else {
            return Ok(None);
        };
        let password = props
            .get("tributary.rest.basic.auth.password")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                "tributary.rest.basic.auth.username is set but tributary.rest.basic.auth.password is not; set both (the password through a config provider, e.g. ${file:/path:password})".to_string()
            })?;
        if user.contains(':') {
            return Err("tributary.rest.basic.auth.username may not contain ':'".into());
        }
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Ok(Some(BasicAuth {
            expected: format!("Basic {token}"),
        }))
    }

    fn admits(&self, header: Option<&HeaderValue>) -> bool {
        let given = header.map(HeaderValue::as_bytes).unwrap_or_default();
        given.len() == self.expected.len() && openssl::memcmp::eq(given, self.expected.as_bytes())
    }
}

/// Refuses requests without the configured credentials (401, Connect's error body). Signed
/// internal requests are let through: their signature is their credential.
async fn authenticate(State(api): State<Api>, request: Request, next: Next) -> Response {
    let Some(auth) = &api.auth else {
        return next.run(request).await;
    };
    let internal = request.method() == axum::http::Method::POST
        && request.uri().path().ends_with("/tasks")
        && request.headers().contains_key(SIGNATURE_HEADER);
    if internal || auth.admits(request.headers().get(header::AUTHORIZATION)) {
        return next.run(request).await;
    }
    let mut r = error(
        401,
        "Credentials are required: send the Authorization header (HTTP basic authentication)",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"connect\""),
    );
    r
}

/// Marks a reply that must be re-issued at another worker (the URL, when known).
#[derive(Debug, Clone)]
struct ForwardTo(Option<String>);

fn error(status: u16, message: impl Into<String>) -> Response {
    let body = ErrorMessage {
        error_code: status,
        message: message.into(),
    };
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(body),
    )
        .into_response()
}

impl IntoResponse for HerderError {
    fn into_response(self) -> Response {
        match self {
            HerderError::Elsewhere { url } => {
                let mut r = error(409, forward::NO_LEADER);
                r.extensions_mut().insert(ForwardTo(url));
                r
            }
            e => error(e.status(), e.to_string()),
        }
    }
}

/// Re-issues requests the herder sent elsewhere (see the module doc). The body is buffered so it
/// can be sent on; only `Authorization` is copied, as Java does.
async fn forwarding(State(api): State<Api>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return error(400, "The request body could not be read");
    };
    let response = next
        .run(Request::from_parts(
            parts.clone(),
            Body::from(bytes.clone()),
        ))
        .await;
    let Some(ForwardTo(url)) = response.extensions().get::<ForwardTo>().cloned() else {
        return response;
    };
    let query: Vec<(String, String)> = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let hop = query
        .iter()
        .rev()
        .find(|(k, _)| k == "forward")
        .map(|(_, v)| v.eq_ignore_ascii_case("true"));
    let target = match forward::route(false, url.as_deref(), hop, parts.uri.path(), &query) {
        Route::Forward(target) => target,
        Route::Conflict(message) => return error(409, message),
        Route::Local => return response,
    };
    tracing::debug!(method = %parts.method, %target, "forwarding a REST request");
    let mut out = api
        .forwarding_client()
        .request(parts.method.clone(), &target)
        .header(header::CONTENT_TYPE, "application/json")
        .body(bytes);
    if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
        out = out.header(header::AUTHORIZATION, auth);
    }
    match out.send().await {
        Ok(reply) => {
            let status = reply.status();
            let headers = reply.headers().clone();
            let body = reply.bytes().await.unwrap_or_default();
            let mut r = (status, body).into_response();
            for h in [header::CONTENT_TYPE, header::LOCATION] {
                if let Some(v) = headers.get(&h) {
                    r.headers_mut().insert(h, v.clone());
                }
            }
            r
        }
        // The target went away mid-rebalance: a retryable conflict, not a server error.
        Err(e) => {
            tracing::info!(%target, error = %e, "forwarding failed");
            error(409, forward::CONFLICT)
        }
    }
}

/// Runs a blocking herder call off the async runtime.
async fn call<T: Send + 'static>(
    api: &Api,
    f: impl FnOnce(&dyn Herder) -> HerderResult<T> + Send + 'static,
) -> HerderResult<T> {
    let herder = api.herder.clone();
    tokio::task::spawn_blocking(move || f(herder.as_ref()))
        .await
        .map_err(|e| HerderError::Internal(format!("request failed: {e}")))?
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> HerderResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| HerderError::BadRequest(format!("Cannot deserialize the request body: {e}")))
}

/// Values of `key` in a raw query string (`expand=status&expand=info`).
fn query_values(query: &Option<String>, key: &str) -> Vec<String> {
    query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| v.to_string())
        })
        .collect()
}

fn query_flag(query: &Option<String>, key: &str, default: bool) -> bool {
    query_values(query, key)
        .last()
        .map_or(default, |v| v.eq_ignore_ascii_case("true"))
}

fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    (status, Json(body)).into_response()
}

async fn server_info(State(api): State<Api>) -> Response {
    json(
        StatusCode::OK,
        &ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit: option_env!("TRIBUTARY_COMMIT")
                .unwrap_or("unknown")
                .to_string(),
            kafka_cluster_id: api.herder.kafka_cluster_id(),
        },
    )
}

async fn health(State(api): State<Api>) -> Response {
    if let Some(busy) = api.herder.stalled() {
        return json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({
                "status": "unhealthy",
                "message": format!("Worker was unable to handle this request and may be unable to handle other requests: its herder thread has been busy for {} s", busy.as_secs()),
            }),
        );
    }
    if api.herder.ready() {
        json(
            StatusCode::OK,
            &serde_json::json!({"status":"healthy","message":"Worker has completed startup and is ready to handle requests."}),
        )
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"status":"starting","message":"Worker is still starting up."}),
        )
    }
}

async fn list_connectors(State(api): State<Api>, RawQuery(q): RawQuery) -> Response {
    let expand = query_values(&q, "expand");
    let status = expand.iter().any(|e| e == "status");
    let info = expand.iter().any(|e| e == "info");
    let result = call(&api, move |h| {
        let names = h.connector_names()?;
        if !status && !info {
            return Ok(serde_json::to_value(names).unwrap_or_default());
        }
        let mut out = serde_json::Map::new();
        for n in names {
            let mut e = serde_json::Map::new();
            if status && let Ok(s) = h.status(&n) {
                e.insert("status".into(), serde_json::to_value(s).unwrap_or_default());
            }
            if info && let Ok(i) = h.info(&n) {
                e.insert("info".into(), serde_json::to_value(i).unwrap_or_default());
            }
            out.insert(n, serde_json::Value::Object(e));
        }
        Ok(serde_json::Value::Object(out))
    })
    .await;
    match result {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}

async fn create_connector(State(api): State<Api>, body: Bytes) -> Response {
    let result = async {
        let req: CreateConnectorRequest = parse(&body)?;
        let initial = req
            .initial_state
            .as_deref()
            .map(TargetState::parse_initial)
            .transpose()?;
        let name = req.name.trim().to_string();
        call(&api, move |h| {
            h.put_connector(&name, req.config, false, initial)
        })
        .await
    }
    .await;
    match result {
        Ok((info, _)) => {
            let mut r = json(StatusCode::CREATED, &info);
            if let Ok(loc) = HeaderValue::from_str(&format!("/connectors/{}", info.name)) {
                r.headers_mut().insert(header::LOCATION, loc);
            }
            r
        }
        Err(e) => e.into_response(),
    }
}

async fn get_connector(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match call(&api, move |h| h.info(&name)).await {
        Ok(i) => json(StatusCode::OK, &i),
        Err(e) => e.into_response(),
    }
}

async fn delete_connector(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match call(&api, move |h| h.delete(&name)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn get_config(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match call(&api, move |h| h.config(&name)).await {
        Ok(c) => json(StatusCode::OK, &c),
        Err(e) => e.into_response(),
    }
}

async fn put_config(State(api): State<Api>, Path(name): Path<String>, body: Bytes) -> Response {
    let result = async {
        let config: BTreeMap<String, String> = parse(&body)?;
        call(&api, move |h| h.put_connector(&name, config, true, None)).await
    }
    .await;
    match result {
        Ok((info, true)) => {
            let mut r = json(StatusCode::CREATED, &info);
            if let Ok(loc) = HeaderValue::from_str(&format!("/connectors/{}", info.name)) {
                r.headers_mut().insert(header::LOCATION, loc);
            }
            r
        }
        Ok((info, false)) => json(StatusCode::OK, &info),
        Err(e) => e.into_response(),
    }
}

async fn patch_config(State(api): State<Api>, Path(name): Path<String>, body: Bytes) -> Response {
    let result = async {
        let patch: BTreeMap<String, Option<String>> = parse(&body)?;
        call(&api, move |h| h.patch_connector(&name, patch)).await
    }
    .await;
    match result {
        Ok(info) => json(StatusCode::OK, &info),
        Err(e) => e.into_response(),
    }
}

async fn status(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match call(&api, move |h| h.status(&name)).await {
        Ok(s) => json(StatusCode::OK, &s),
        Err(e) => e.into_response(),
    }
}

async fn tasks(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match call(&api, move |h| h.tasks(&name)).await {
        Ok(t) => json(StatusCode::OK, &t),
        Err(e) => e.into_response(),
    }
}

async fn task_status(
    State(api): State<Api>,
    Path((name, task)): Path<(String, String)>,
) -> Response {
    let Ok(task) = task.parse::<u32>() else {
        return error(404, format!("Task {name}-{task} not found"));
    };
    match call(&api, move |h| h.task_status(&name, task)).await {
        Ok(s) => json(StatusCode::OK, &s),
        Err(e) => e.into_response(),
    }
}

async fn restart_task(
    State(api): State<Api>,
    Path((name, task)): Path<(String, String)>,
) -> Response {
    let Ok(task) = task.parse::<u32>() else {
        return error(404, format!("Task {name}-{task} not found"));
    };
    match call(&api, move |h| h.restart_task(&name, task)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn restart(
    State(api): State<Api>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let include_tasks = query_flag(&q, "includeTasks", false);
    let only_failed = query_flag(&q, "onlyFailed", false);
    match call(&api, move |h| h.restart(&name, include_tasks, only_failed)).await {
        Ok(_) if !include_tasks && !only_failed => StatusCode::NO_CONTENT.into_response(),
        Ok(s) => json(StatusCode::ACCEPTED, &s),
        Err(e) => e.into_response(),
    }
}

async fn target(api: Api, name: String, target: TargetState, ok: StatusCode) -> Response {
    match call(&api, move |h| h.set_target(&name, target)).await {
        Ok(()) => ok.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn pause(State(api): State<Api>, Path(name): Path<String>) -> Response {
    target(api, name, TargetState::Paused, StatusCode::ACCEPTED).await
}

async fn resume(State(api): State<Api>, Path(name): Path<String>) -> Response {
    target(api, name, TargetState::Started, StatusCode::ACCEPTED).await
}

async fn stop(State(api): State<Api>, Path(name): Path<String>) -> Response {
    target(api, name, TargetState::Stopped, StatusCode::NO_CONTENT).await
}

async fn offsets(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match call(&api, move |h| h.offsets(&name)).await {
        Ok(o) => json(StatusCode::OK, &o),
        Err(e) => e.into_response(),
    }
}

/// `GET /connectors/{c}/topics`: `{"c": {"topics": [...]}}`.
async fn topics(State(api): State<Api>, Path(name): Path<String>) -> Response {
    let key = name.clone();
    match call(&api, move |h| h.topics(&name)).await {
        Ok(t) => json(StatusCode::OK, &serde_json::json!({ key: { "topics": t } })),
        Err(e) => e.into_response(),
    }
}

async fn reset_topics(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match call(&api, move |h| h.reset_topics(&name)).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn alter_offsets(State(api): State<Api>, Path(name): Path<String>, body: Bytes) -> Response {
    let result = async {
        let offsets: tributary_connect_client::ConnectorOffsets = parse(&body)?;
        call(&api, move |h| h.modify_offsets(&name, Some(offsets))).await
    }
    .await;
    match result {
        Ok(message) => json(StatusCode::OK, &serde_json::json!({ "message": message })),
        Err(e) => e.into_response(),
    }
}

async fn reset_offsets(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match call(&api, move |h| h.modify_offsets(&name, None)).await {
        Ok(message) => json(StatusCode::OK, &serde_json::json!({ "message": message })),
        Err(e) => e.into_response(),
    }
}

async fn plugins(State(api): State<Api>, RawQuery(q): RawQuery) -> Response {
    let only = query_flag(&q, "connectorsOnly", true);
    json(StatusCode::OK, &api.herder.catalog().plugins(only))
}

async fn plugin_config(State(api): State<Api>, Path(plugin): Path<String>) -> Response {
    match call(&api, move |h| h.catalog().plugin_config(&plugin)).await {
        Ok(c) => json(StatusCode::OK, &c),
        Err(e) => e.into_response(),
    }
}

async fn validate(State(api): State<Api>, Path(plugin): Path<String>, body: Bytes) -> Response {
    let result = async {
        let config: BTreeMap<String, String> = parse(&body)?;
        call(&api, move |h| h.catalog().validate(&plugin, &config)).await
    }
    .await;
    match result {
        Ok(c) => json(StatusCode::OK, &c),
        Err(e) => e.into_response(),
    }
}

/// `POST /connectors/{c}/tasks` (internal, signed).
async fn internal_tasks(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (signature, algorithm) = (header(SIGNATURE_HEADER), header(ALGORITHM_HEADER));
    let result = call(&api, move |h| {
        h.internal_task_configs(&name, signature.as_deref(), algorithm.as_deref(), &body)
    })
    .await;
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

fn logger_json(l: &crate::logging::LoggerLevel) -> serde_json::Value {
    serde_json::json!({"level": l.level, "last_modified": l.last_modified})
}

/// `GET /admin/loggers` (KIP-495).
async fn loggers() -> Response {
    let all: serde_json::Map<String, serde_json::Value> = crate::logging::all()
        .iter()
        .map(|(k, v)| (k.clone(), logger_json(v)))
        .collect();
    json(StatusCode::OK, &all)
}

async fn logger(Path(name): Path<String>) -> Response {
    match crate::logging::all().get(&name) {
        Some(l) => json(StatusCode::OK, &logger_json(l)),
        None => error(404, format!("Logger {name} not found.")),
    }
}

/// `PUT /admin/loggers/{name}?scope=worker|cluster` with `{"level": …}`.
async fn set_logger(
    State(api): State<Api>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let level = match parse::<serde_json::Value>(&body) {
        Ok(v) => v.get("level").and_then(|l| l.as_str()).map(str::to_string),
        Err(e) => return e.into_response(),
    };
    let Some(level) = level else {
        return error(
            400,
            "The request body must contain a \"level\" string field",
        );
    };
    if crate::logging::tracing_level(&level).is_none() {
        return error(404, format!("Invalid log level '{level}'"));
    }
    let cluster = query_values(&q, "scope")
        .last()
        .is_some_and(|s| s.eq_ignore_ascii_case("cluster"));
    if cluster {
        return match call(&api, move |h| h.put_cluster_logger(&name, &level)).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => e.into_response(),
        };
    }
    match crate::logging::set(&name, Some(&level), crate::herder::distributed::now_ms()) {
        Ok(affected) => json(StatusCode::OK, &affected),
        Err(e) => error(400, e),
    }
}

/// `GET /openapi.json`: the API described in OpenAPI 3 (kept in `worker/assets/openapi.json`).
async fn openapi() -> Response {
    let mut doc: serde_json::Value =
        serde_json::from_str(include_str!("../assets/openapi.json")).unwrap_or_default();
    doc["info"]["version"] = serde_json::Value::String(env!("CARGO_PKG_VERSION").into());
    json(StatusCode::OK, &doc)
}

async fn not_found() -> Response {
    error(404, "HTTP 404 Not Found")
}

async fn method_not_allowed() -> Response {
    error(405, "HTTP 405 Method Not Allowed")
}

/// The Connect REST API.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/", get(server_info))
        .route("/health", get(health))
        .route("/openapi.json", get(openapi))
        .route("/admin/loggers", get(loggers))
        .route("/admin/loggers/{name}", get(logger).put(set_logger))
        .route("/connectors", get(list_connectors).post(create_connector))
        .route(
            "/connectors/{name}",
            get(get_connector).delete(delete_connector),
        )
        .route(
            "/connectors/{name}/config",
            get(get_config).put(put_config).patch(patch_config),
        )
        .route("/connectors/{name}/status", get(status))
        .route("/connectors/{name}/tasks", get(tasks).post(internal_tasks))
        .route("/connectors/{name}/tasks/{task}/status", get(task_status))
        .route(
            "/connectors/{name}/tasks/{task}/restart",
            post(restart_task),
        )
        .route("/connectors/{name}/restart", post(restart))
        .route("/connectors/{name}/pause", put(pause))
        .route("/connectors/{name}/resume", put(resume))
        .route("/connectors/{name}/stop", put(stop))
        .route(
            "/connectors/{name}/offsets",
            get(offsets).patch(alter_offsets).delete(reset_offsets),
        )
        .route("/connectors/{name}/topics", get(topics))
        .route("/connectors/{name}/topics/reset", put(reset_topics))
        .route("/connector-plugins", get(plugins))
        .route("/connector-plugins/{plugin}/config", get(plugin_config))
        .route("/connector-plugins/{plugin}/config/validate", put(validate))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(api.clone(), forwarding))
        .layer(middleware::from_fn_with_state(api.clone(), authenticate))
        .with_state(api)
}

async fn ready(State(api): State<Api>) -> Response {
    if api.herder.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

/// OpenMetrics to scrapers that ask for it (Prometheus does), the Prometheus text format to the
/// rest (promtool, curl, older agents), which read OpenMetrics counters wrongly.
async fn metrics(State(api): State<Api>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|a| a.to_str().ok());
    let (content_type, body) =
        tributary_connect_client::exposition::negotiate(accept, api.metrics.render());
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// `POST /leave`: see [`Leave`]. Only from inside the pod (loopback): the health listener is
/// reachable by whoever scrapes metrics, and they must not be able to stop a worker.
async fn leave(
    State(api): State<Api>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
) -> Response {
    if !peer.ip().is_loopback() {
        return error(
            403,
            "POST /leave is only accepted from the worker's own host (127.0.0.1)",
        );
    }
    let Some(l) = api.leave.clone() else {
        return error(
            404,
            "only a distributed worker leaves a group; stop a standalone worker with SIGTERM",
        );
    };
    l.request();
    l.wait_done().await;
    json(
        StatusCode::OK,
        &serde_json::json!({"status": "left", "message": "every connector and task stopped and the group left; waiting for SIGTERM"}),
    )
}

/// Tributary's health listener: probes, Prometheus, and the preStop hook's `/leave`.
pub fn health_router(api: Api) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/leave", post(leave))
        .fallback(not_found)
        .with_state(api)
}

/// Starts the REST API on `listener` and, unless `health_listener` is empty, the health
/// listener; returns the REST server's task (it ends only on failure).
pub async fn serve(
    api: Api,
    listener: &str,
    health_listener: &str,
    tls: Option<Arc<openssl::ssl::SslAcceptor>>,
) -> crate::error::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    use crate::error::Error;
    let addr = bind_address(listener).map_err(Error::Config)?;
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("listeners={listener}: cannot listen: {e}")))?;
    tracing::info!(address = %addr, https = tls.is_some(), "REST API listening");
    let app = router(api.clone());
    let rest_task = match tls {
        Some(acceptor) => {
            let tls = crate::rest_tls::TlsListener { tcp: l, acceptor };
            tokio::spawn(async move { axum::serve(tls, app).await })
        }
        None => tokio::spawn(async move { axum::serve(l, app).await }),
    };
    if !health_listener.trim().is_empty() {
        let addr = bind_address(health_listener).map_err(Error::Config)?;
        let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            Error::Config(format!(
                "tributary.health.listener={health_listener}: cannot listen: {e}"
            ))
        })?;
        tracing::info!(address = %addr, "health listener (/health, /ready, /metrics)");
        let health =
            health_router(api).into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(l, health).await });
    }
    Ok(rest_task)
}

/// `http://host:port` (Java's listener syntax, empty host = all interfaces) → a bind address.
pub fn bind_address(listener: &str) -> Result<std::net::SocketAddr, String> {
    let trimmed = listener.trim();
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("listener {listener}: expected http://host:port or https://host:port")
        })?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("listener {listener}: expected http://host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("listener {listener}: {port} is not a port"))?;
    let ip: std::net::IpAddr = match host {
        "localhost" => std::net::IpAddr::from([127, 0, 0, 1]),
        h => h
            .parse()
            .map_err(|_| format!("listener {listener}: {h} is not an IP address"))?,
    };
    Ok(std::net::SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_parse_like_java() {
        assert_eq!(
            bind_address("http://:8083").map(|a| a.to_string()),
            Ok("0.0.0.0:8083".into())
        );
        assert_eq!(
            bind_address("http://127.0.0.1:9000").map(|a| a.to_string()),
            Ok("127.0.0.1:9000".into())
        );
        assert_eq!(
            bind_address("https://:8443").map(|a| a.to_string()),
            Ok("0.0.0.0:8443".into())
        );
        assert!(bind_address("ftp://:21").is_err());
    }

    #[test]
    fn the_openapi_document_lists_every_route() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../assets/openapi.json")).unwrap_or_default();
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        for p in [
            "/connectors",
            "/connectors/{connector}/offsets",
            "/connectors/{connector}/restart",
            "/connector-plugins/{plugin}/config/validate",
        ] {
            assert!(paths.contains_key(p), "{p} missing from openapi.json");
        }
    }

    #[test]
    fn repeated_query_values() {
        let q = Some("expand=status&expand=info&x=1".to_string());
        assert_eq!(query_values(&q, "expand"), vec!["status", "info"]);
        assert!(query_flag(
            &Some("includeTasks=true".into()),
            "includeTasks",
            false
        ));
    }
}
