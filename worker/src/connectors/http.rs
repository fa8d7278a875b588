//! HTTP sink: batches of record values POSTed (or PUT) as a JSON array to a URL.
//!
//! A batch is retried with exponential backoff while the server answers 5xx, 408 or 429 or
//! does not answer in time; after `retry.max` attempts the put fails as retriable, so the worker
//! delivers the same records again rather than lose them. A 4xx answer refuses the batch: its
//! records are sent one by one and those still refused go to the errant record reporter (the
//! dead letter queue), or fail the task when there is none. Headers and credentials are plain
//! settings, so config providers (`${file:…}`, the operator's `configFrom`) keep secrets out of
//! the connector's config.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tributary_connect_api::config_def::{at_least, one_of};
use tributary_connect_api::{
    Config, ConfigDef, ConfigKey, ConfigType, ConnectError, ConnectResult, Connector,
    ConnectorContext, Importance, SinkConnector, SinkRecord, SinkTask, SinkTaskContext,
};

use crate::converter::{Converter, JSON_CONVERTER};

pub const SINK_CLASS: &str = "dev.tributary.connect.http.HttpSinkConnector";
pub const SINK_TASK_CLASS: &str = "dev.tributary.connect.http.HttpSinkTask";

/// Settings named `http.header.<Name>` become request headers.
const HEADER_PREFIX: &str = "http.header.";

fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

pub fn sink_def() -> ConfigDef {
    let key = |name: &str, t: ConfigType, i: Importance, doc: &str| ConfigKey::new(name, t, i, doc);
    ConfigDef::new()
        .define(key(
            "http.url",
            ConfigType::String,
            Importance::High,
            "Where batches are sent (http:// or https://).",
        ))
        .define(
            key(
                "http.method",
                ConfigType::String,
                Importance::Medium,
                "POST or PUT.",
            )
            .default_value("POST")
            .validator(one_of(&["POST", "PUT"])),
        )
        .define(
            key(
                "auth.type",
                ConfigType::String,
                Importance::High,
                "none, basic (auth.username, auth.password) or bearer (auth.token).",
            )
            .default_value("none")
            .validator(one_of(&["none", "basic", "bearer"])),
        )
        .define(
            key(
                "auth.username",
                ConfigType::String,
                Importance::Medium,
                "The basic auth user.",
            )
            .default_null(),
        )
        .define(
            key(
                "auth.password",
                ConfigType::Password,
                Importance::Medium,
                "The basic auth password (use a config provider).",
            )
            .default_null(),
        )
        .define(
            key(
                "auth.token",
                ConfigType::Password,
                Importance::Medium,
                "The bearer token (use a config provider).",
            )
            .default_null(),
        )
        .define(
            key(
                "batch.size",
                ConfigType::Int,
                Importance::Medium,
                "Most records in one request.",
            )
            .default_value("100")
            .validator(at_least(1.0)),
        )
        .define(
            key(
                "request.timeout.ms",
                ConfigType::Int,
                Importance::Low,
                "How long one request may take.",
            )
            .default_value("30000")
            .validator(at_least(1.0)),
        )
        .define(
            key(
                "retry.max",
                ConfigType::Int,
                Importance::Medium,
                "Attempts of a batch per put while the server answers 5xx, 408, 429 or not at all.",
            )
            .default_value("5")
            .validator(at_least(1.0)),
        )
        .define(
            key(
                "retry.backoff.ms",
                ConfigType::Int,
                Importance::Low,
                "The first wait between attempts; it doubles each time.",
            )
            .default_value("500")
            .validator(at_least(0.0)),
        )
        .define(
            key(
                "retry.backoff.max.ms",
                ConfigType::Int,
                Importance::Low,
                "The longest wait between attempts.",
            )
            .default_value("10000")
            .validator(at_least(0.0)),
        )
}

#[derive(Debug, Clone)]
struct Settings {
    url: String,
    method: reqwest::Method,
    headers: BTreeMap<String, String>,
    auth: Auth,
    batch_size: usize,
    timeout: Duration,
    retry_max: u32,
    backoff: Duration,
    backoff_max: Duration,
}

#[derive(Clone)]
enum Auth {
    None,
    Basic(String, String),
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "none",
            Auth::Basic(..) => "basic [hidden]",
            Auth::Bearer(_) => "bearer [hidden]",
        })
    }
}

fn settings(config: &Config) -> ConnectResult<Settings> {
    super::check_config(&sink_def(), config)?;
    let get = |k: &str| {
        config
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let int = |k: &str, d: u64| get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
    let url = get("http.url").unwrap_or_default();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConnectError::Config(format!(
            "http.url: {url} is not an http:// or https:// URL"
        )));
    }
    let auth = match get("auth.type").as_deref() {
        Some("basic") => Auth::Basic(
            get("auth.username").ok_or_else(|| {
                ConnectError::Config("auth.type=basic needs auth.username".into())
            })?,
            config.get("auth.password").cloned().unwrap_or_default(),
        ),
        Some("bearer") => Auth::Bearer(
            config
                .get("auth.token")
                .cloned()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| ConnectError::Config("auth.type=bearer needs auth.token".into()))?,
        ),
        _ => Auth::None,
    };
    let mut headers = BTreeMap::new();
    for (k, v) in config {
        if let Some(name) = k.strip_prefix(HEADER_PREFIX) {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(v).is_err()
            {
                return Err(ConnectError::Config(format!(
                    "{k}: not a valid HTTP header name and value"
                )));
            }
            headers.insert(name.to_string(), v.clone());
        }
    }
    Ok(Settings {
        url,
        method: if get("http.method").as_deref() == Some("PUT") {
            reqwest::Method::PUT
        } else {
            reqwest::Method::POST
        },
        headers,
        auth,
        batch_size: int("batch.size", 100) as usize,
        timeout: Duration::from_millis(int("request.timeout.ms", 30_000)),
        retry_max: int("retry.max", 5) as u32,
        backoff: Duration::from_millis(int("retry.backoff.ms", 500)),
        backoff_max: Duration::from_millis(int("retry.backoff.max.ms", 10_000)),
    })
}

#[derive(Debug, Default)]
pub struct HttpSinkConnector {
    config: Config,
}

impl Connector for HttpSinkConnector {
    fn version(&self) -> String {
        version()
    }
    fn config_def(&self) -> ConfigDef {
        sink_def()
    }
    fn start(&mut self, config: &Config, _context: Arc<dyn ConnectorContext>) -> ConnectResult<()> {
        settings(config)?;
        self.config = config.clone();
        Ok(())
    }
    fn task_configs(&self, max_tasks: usize) -> ConnectResult<Vec<Config>> {
        Ok(vec![self.config.clone(); max_tasks.max(1)])
    }
    fn stop(&mut self) -> ConnectResult<()> {
        Ok(())
    }
}

impl SinkConnector for HttpSinkConnector {
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::new(HttpSinkTask::default())
    }
}

/// What one request came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Sent,
    /// 4xx other than 408/429: the server will not take these records as they are.
    Refused(String),
    /// 5xx, 408, 429, a timeout or no connection: worth another attempt.
    Failed(String),
}

/// How an HTTP status is handled.
fn classify(status: u16, body: &str) -> Outcome {
    let said = || {
        format!(
            "HTTP {status}: {}",
            body.chars().take(500).collect::<String>()
        )
    };
    match status {
        200..=299 => Outcome::Sent,
        408 | 429 => Outcome::Failed(said()),
        400..=499 => Outcome::Refused(said()),
        _ => Outcome::Failed(said()),
    }
}

#[derive(Default)]
pub struct HttpSinkTask {
    settings: Option<Settings>,
    runtime: Option<tokio::runtime::Runtime>,
    client: Option<reqwest::Client>,
    context: Option<Arc<dyn SinkTaskContext>>,
    json: Option<Converter>,
}

impl std::fmt::Debug for HttpSinkTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSinkTask").finish_non_exhaustive()
    }
}

impl HttpSinkTask {
    /// A JSON array of the records' values.
    fn body(&self, records: &[&SinkRecord]) -> ConnectResult<Vec<u8>> {
        let json = self
            .json
            .as_ref()
            .ok_or_else(|| ConnectError::fatal("put before start"))?;
        let mut out = vec![b'['];
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let bytes = json
                .from_connect(r.value_schema.as_ref(), r.value.as_ref())
                .map_err(|e| ConnectError::fatal(format!("cannot write the value as JSON: {e}")))?;
            out.extend_from_slice(bytes.as_deref().unwrap_or(b"null"));
        }
        out.push(b']');
        Ok(out)
    }

    fn send_once(&self, body: Vec<u8>) -> ConnectResult<Outcome> {
        let s = self
            .settings
            .as_ref()
            .ok_or_else(|| ConnectError::fatal("not started"))?;
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| ConnectError::fatal("not started"))?;
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| ConnectError::fatal("not started"))?;
        let mut req = client
            .request(s.method.clone(), &s.url)
            .timeout(s.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (k, v) in &s.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        req = match &s.auth {
            Auth::None => req,
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
            Auth::Bearer(t) => req.bearer_auth(t),
        };
        Ok(rt.block_on(async {
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.text().await.unwrap_or_default();
                    classify(status, &text)
                }
                Err(e) => Outcome::Failed(format!("no answer from {}: {e}", s.url)),
            }
        }))
    }

    /// Sends with retries; the last outcome.
    fn send(&self, records: &[&SinkRecord]) -> ConnectResult<Outcome> {
        let s = self
            .settings
            .as_ref()
            .ok_or_else(|| ConnectError::fatal("not started"))?;
        let body = self.body(records)?;
        let mut wait = s.backoff;
        let mut attempt = 1;
        loop {
            match self.send_once(body.clone())? {
                Outcome::Failed(why) if attempt < s.retry_max => {
                    tracing::warn!(attempt, error = %why, retry_in_ms = wait.as_millis() as u64, "HTTP request failed; retrying");
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(s.backoff_max);
                    attempt += 1;
                }
                other => return Ok(other),
            }
        }
    }

    fn report(&self, record: &SinkRecord, message: String) -> ConnectResult<()> {
        super::report_errant(self.context.as_ref(), record, message)
    }
}

impl SinkTask for HttpSinkTask {
    fn version(&self) -> String {
        version()
    }

    fn start(&mut self, context: Arc<dyn SinkTaskContext>) -> ConnectResult<()> {
        self.settings = Some(settings(context.config())?);
        self.runtime = Some(super::task_runtime()?);
        self.client = Some(
            reqwest::Client::builder()
                .build()
                .map_err(|e| ConnectError::fatal(format!("cannot build an HTTP client: {e}")))?,
        );
        let settings = [("schemas.enable".to_string(), "false".to_string())]
            .into_iter()
            .collect();
        self.json = Some(
            Converter::configure(JSON_CONVERTER, &settings)
                .map_err(|e| ConnectError::fatal(e.to_string()))?,
        );
        self.context = Some(context);
        Ok(())
    }

    fn put(&mut self, records: &[SinkRecord]) -> ConnectResult<()> {
        let size = self.settings.as_ref().map_or(100, |s| s.batch_size);
        for chunk in records.chunks(size) {
            let batch: Vec<&SinkRecord> = chunk.iter().collect();
            match self.send(&batch)? {
                Outcome::Sent => {}
                Outcome::Failed(why) => {
                    return Err(ConnectError::retriable(format!(
                        "{why}; the batch is sent again"
                    )));
                }
                Outcome::Refused(why) => {
                    tracing::warn!(error = %why, records = batch.len(), "the server refused a batch; sending its records one by one");
                    for r in chunk {
                        match self.send(&[r])? {
                            Outcome::Sent => {}
                            Outcome::Refused(why) => self.report(r, why)?,
                            Outcome::Failed(why) => {
                                return Err(ConnectError::retriable(format!(
                                    "{why}; the batch is sent again"
                                )));
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn stop(&mut self) -> ConnectResult<()> {
        self.client = None;
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decide_between_retry_refusal_and_success() {
        assert_eq!(classify(204, ""), Outcome::Sent);
        assert!(matches!(classify(503, "busy"), Outcome::Failed(m) if m == "HTTP 503: busy"));
        assert!(matches!(classify(429, ""), Outcome::Failed(_)));
        assert!(matches!(classify(408, ""), Outcome::Failed(_)));
        assert!(
            matches!(classify(422, "bad field"), Outcome::Refused(m) if m.contains("bad field"))
        );
    }

    #[test]
    fn settings_check_the_url_auth_and_headers() {
        let c = |pairs: &[(&str, &str)]| -> Config {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(
            settings(&c(&[("http.url", "ftp://x")]))
                .unwrap_err()
                .to_string()
                .contains("http.url")
        );
        assert!(
            settings(&c(&[("http.url", "http://x"), ("auth.type", "bearer")]))
                .unwrap_err()
                .to_string()
                .contains("auth.token")
        );
        assert!(
            settings(&c(&[
                ("http.url", "http://x"),
                ("http.header.Bad Name", "v")
            ]))
            .unwrap_err()
            .to_string()
            .contains("http.header.Bad Name")
        );
        let s = settings(&c(&[
            ("http.url", "http://x"),
            ("auth.type", "basic"),
            ("auth.username", "u"),
            ("auth.password", "secret"),
            ("http.header.X-Team", "data"),
        ]))
        .unwrap();
        assert_eq!(s.headers.get("X-Team").map(String::as_str), Some("data"));
        assert!(!format!("{s:?}").contains("secret"), "{s:?}");
    }
}
