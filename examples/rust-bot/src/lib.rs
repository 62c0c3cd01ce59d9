//! The trading bot's side of the prediction service: the `MLClient` of the integration guide
//! (`MLClient::new(base_url, timeout_ms, enabled)`, `health_check`, `predict_with_fallback`) and
//! the wire types, decoded strictly: every field the bot reads is a plain `f64`/`String`/`bool`, so
//! a `null` or a missing field is a decode error here, exactly as it is in the bot. Unknown fields
//! are accepted (no `deny_unknown_fields`): the server adds operator fields (workers,
//! queue_depth...) and may add more.
//!
//! Copy this file into the bot as `ml_client.rs`; it needs reqwest, tokio (time), serde and
//! serde_json, and logs through the `log` facade (tracing picks that up with tracing-log).

use std::fmt;
use std::time::{Duration, Instant};

use log::{debug, warn};
use serde::{Deserialize, Serialize};

/// One market snapshot, with the service's field names. `None` is sent as `null`, which the
/// service treats as a missing value (NaN for the model), never as 0.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PredictionRequest {
    pub price: f64,
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub volume: Option<f64>,
    pub bid_volume: Option<f64>,
    pub ask_volume: Option<f64>,
    pub best_bid: Option<f64>,
    pub best_ask: Option<f64>,
    pub bid_depth_5: Option<f64>,
    pub ask_depth_5: Option<f64>,
    pub btc_price: Option<f64>,
    pub funding_rate: Option<f64>,
    pub symbol: Option<String>,
}

/// `POST /predict` 200. `direction` is "LONG" or "SHORT"; `confidence` = max(p, 1 - p).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prediction {
    pub direction: String,
    pub confidence: f64,
    pub probability_long: f64,
    pub model_version: String,
    pub symbol: String,
    pub latency_ms: f64,
}

/// `GET /health`: the fields the bot logs at start-up (plus status/model_loaded).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub model_loaded: bool,
    pub model_version: String,
    pub uptime_seconds: f64,
    pub avg_latency_ms: f64,
}

/// FastAPI's error body: `detail` is a message, or a list of validation issues (422).
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub detail: Detail,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Detail {
    Message(String),
    Issues(Vec<Issue>),
}

#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    pub loc: Vec<serde_json::Value>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::Message(m) => f.write_str(m),
            Detail::Issues(issues) => {
                for (i, issue) in issues.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    let loc: Vec<String> = issue
                        .loc
                        .iter()
                        .map(|l| match l {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect();
                    write!(f, "{}: {}", loc.join("."), issue.msg)?;
                }
                Ok(())
            }
        }
    }
}

/// Why a call failed. The Display texts are the guide's log lines ("timeout after 100ms",
/// "connection refused", "ML service returned 503: Model not loaded").
#[derive(Debug)]
pub enum MLError {
    /// The client is configured with `enabled = false`.
    Disabled,
    /// No complete answer within the timeout (connect, send, headers and body together).
    Timeout(Duration),
    /// Nothing listens, or the connection could not be made.
    Connect(String),
    /// The connection broke or another transport error.
    Request(String),
    /// A non-2xx answer; `detail` is FastAPI's `detail` when the body had one.
    Status { status: u16, detail: String },
    /// A 2xx answer that is not the expected JSON shape: a contract break, never expected.
    Decode { status: u16, error: String, body: String },
    /// The client could not be built (bad base URL...).
    Config(String),
}

impl MLError {
    /// A stable one-word class, for logs and tests.
    pub fn class(&self) -> &'static str {
        match self {
            MLError::Disabled => "disabled",
            MLError::Timeout(_) => "timeout",
            MLError::Connect(_) => "connect",
            MLError::Request(_) => "request",
            MLError::Status { .. } => "status",
            MLError::Decode { .. } => "decode",
            MLError::Config(_) => "config",
        }
    }
}

impl fmt::Display for MLError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MLError::Disabled => f.write_str("ML service disabled"),
            MLError::Timeout(t) => write!(f, "timeout after {}ms", t.as_millis()),
            MLError::Connect(e) => write!(f, "{}", e),
            MLError::Request(e) => write!(f, "request failed: {}", e),
            MLError::Status { status, detail } => write!(f, "ML service returned {}: {}", status, detail),
            MLError::Decode { status, error, body } => {
                write!(f, "undecodable answer (HTTP {}): {}: {}", status, error, body)
            }
            MLError::Config(e) => write!(f, "bad ML client configuration: {}", e),
        }
    }
}

impl std::error::Error for MLError {}

/// The health check runs once at start-up, before trading: it gets at least this long, so a
/// server busy warming up is not reported dead by the 100 ms prediction budget.
const MIN_HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

pub struct MLClient {
    http: reqwest::Client,
    predict_url: String,
    health_url: String,
    timeout: Duration,
    enabled: bool,
}

impl MLClient {
    /// `base_url` such as "http://localhost:8000"; `timeout_ms` bounds each prediction from
    /// connect to the last body byte; `enabled = false` makes every call fail at once with
    /// `MLError::Disabled` (and `predict_with_fallback` return `None`) without network traffic.
    pub fn new(base_url: String, timeout_ms: u64, enabled: bool) -> Result<Self, MLError> {
        let timeout = Duration::from_millis(timeout_ms);
        let base = base_url.trim_end_matches('/');
        let parsed = reqwest::Url::parse(base).map_err(|e| MLError::Config(format!("base_url {:?}: {}", base_url, e)))?;
        if parsed.scheme() != "http" {
            return Err(MLError::Config(format!("base_url {:?}: only http:// is built in (see README)", base_url)));
        }
        let http = reqwest::Client::builder()
            // Keep-alive: one pooled connection per concurrent caller, reused across predictions
            // (a TCP handshake per call would double a loopback round trip). Idle connections are
            // dropped after 4 s, before the server's own idle close (uWebSockets: ~10 s), so a
            // request is never written onto a socket the server is closing.
            .pool_idle_timeout(Duration::from_secs(4))
            .pool_max_idle_per_host(8)
            // Small JSON bodies: without TCP_NODELAY, Nagle + delayed ACK can add ~40 ms.
            .tcp_nodelay(true)
            .connect_timeout(timeout.max(Duration::from_millis(1)))
            // The service is colocated; an HTTP(S)_PROXY meant for the exchange APIs must not
            // route (and slow down) these calls.
            .no_proxy()
            .build()
            .map_err(|e| MLError::Config(e.to_string()))?;
        Ok(Self {
            http,
            predict_url: format!("{}/predict", base),
            health_url: format!("{}/health", base),
            timeout,
            enabled,
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// `GET /health`; Ok only for a 200 that decodes. A 503 (no model) is
    /// `MLError::Status { status: 503, detail: "Model not loaded" }`.
    pub async fn health_check(&self) -> Result<Health, MLError> {
        let (status, body) = self.get_health().await?;
        if !(200..300).contains(&status) {
            return Err(status_error(status, &body));
        }
        decode(status, &body)
    }

    /// `GET /health` decoded as `Health` whatever the status: the 503 of a server without a model
    /// carries the same fields (and `detail`), for a bot that wants to log them.
    pub async fn health_any_status(&self) -> Result<(u16, Health), MLError> {
        let (status, body) = self.get_health().await?;
        decode(status, &body).map(|h| (status, h))
    }

    async fn get_health(&self) -> Result<(u16, Vec<u8>), MLError> {
        if !self.enabled {
            return Err(MLError::Disabled);
        }
        let budget = self.timeout.max(MIN_HEALTH_TIMEOUT);
        self.exchange(self.http.get(&self.health_url), budget).await
    }

    /// `POST /predict` within the timeout.
    pub async fn predict(&self, request: &PredictionRequest) -> Result<Prediction, MLError> {
        if !self.enabled {
            return Err(MLError::Disabled);
        }
        let body = serde_json::to_vec(request).map_err(|e| MLError::Config(format!("request not serializable: {}", e)))?;
        let started = Instant::now();
        let builder = self
            .http
            .post(&self.predict_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let (status, bytes) = self.exchange(builder, self.timeout).await?;
        if !(200..300).contains(&status) {
            return Err(status_error(status, &bytes));
        }
        let prediction: Prediction = decode(status, &bytes)?;
        debug!(
            "ML prediction: {} (confidence: {:.2}, server {:.2}ms, round trip {:.2}ms)",
            prediction.direction,
            prediction.confidence,
            prediction.latency_ms,
            started.elapsed().as_secs_f64() * 1e3
        );
        Ok(prediction)
    }

    /// The guide's call: a prediction, or `None` (logged as a warning) on any failure, so the bot
    /// carries on with its other signals. Never takes much longer than the timeout.
    pub async fn predict_with_fallback(&self, request: PredictionRequest) -> Option<Prediction> {
        match self.predict(&request).await {
            Ok(p) => Some(p),
            Err(e) => {
                warn!("ML prediction failed (fallback mode): {}", e);
                None
            }
        }
    }

    /// Sends and reads the whole body under one deadline: reqwest's own timeouts cover the
    /// response head, and a server that sends headers then stalls must not hold the bot either.
    async fn exchange(&self, builder: reqwest::RequestBuilder, budget: Duration) -> Result<(u16, Vec<u8>), MLError> {
        let work = async {
            let response = builder.send().await.map_err(transport_error)?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await.map_err(transport_error)?;
            Ok::<_, MLError>((status, bytes.to_vec()))
        };
        match tokio::time::timeout(budget, work).await {
            Ok(result) => result,
            Err(_) => Err(MLError::Timeout(budget)),
        }
    }
}

fn transport_error(e: reqwest::Error) -> MLError {
    if e.is_timeout() {
        // reqwest's connect_timeout: reported like the overall deadline.
        return MLError::Request(format!("timeout: {}", root_cause(&e)));
    }
    if e.is_connect() {
        let cause = root_cause(&e);
        if cause.contains("refused") {
            return MLError::Connect("connection refused".to_string());
        }
        return MLError::Connect(format!("connection failed: {}", cause));
    }
    MLError::Request(root_cause(&e))
}

/// reqwest's Display is "error sending request for url (...)"; the innermost source says why.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn decode<T: serde::de::DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, MLError> {
    serde_json::from_slice(body).map_err(|e| MLError::Decode {
        status,
        error: e.to_string(),
        body: excerpt(body),
    })
}

/// A non-2xx answer: FastAPI's `detail` when the body has one, else the body itself.
fn status_error(status: u16, body: &[u8]) -> MLError {
    let detail = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => b.detail.to_string(),
        Err(_) => excerpt(body),
    };
    MLError::Status { status, detail }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.chars().count() > 300 {
        let cut: String = text.chars().take(300).collect();
        format!("{}...", cut)
    } else {
        text.into_owned()
    }
}
