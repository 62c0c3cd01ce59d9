//! A driver for `MLClient`, for tests and for trying a server by hand. Every outcome is one JSON
//! line on stdout; the guide's log lines go to stderr.
//!
//!   rust-bot check URL [--predictions N] [--timeout-ms T]
//!       the bot's start-up (health check, logged as the guide logs it), then N strict predictions
//!   rust-bot predict URL [--predictions N] [--timeout-ms T]
//!       N strict predictions only (for a server whose health is not 200)
//!   rust-bot fallback URL [--timeout-ms T]
//!       one predict_with_fallback call, the way the signal engine makes it
//!   rust-bot repl URL [--timeout-ms T]
//!       one client (one keep-alive connection) driven by stdin lines `health`, `predict`,
//!       `fallback`, `quit`; one JSON line answers each, so a test can step a server through
//!       states (reload, drain) between the bot's calls
//!
//! Exit status: 2 when any answer did not decode into the bot's types (or decoded to values out of
//! the contract's range): a contract break; 1 when the start-up health check failed (the bot
//! would refuse to start); 64 for bad arguments; 0 otherwise. Failed predictions (timeouts, 503s)
//! are printed, not fatal: the bot survives them by design.

use std::process::ExitCode;
use std::time::Instant;

use log::{error, info, Level, LevelFilter, Log, Metadata, Record};
use rust_bot::{MLClient, MLError, Prediction, PredictionRequest};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

/// "INFO  message" on stderr, the guide's log format.
struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }
    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) && record.target().starts_with("rust_bot") {
            eprintln!("{:<5} {}", record.level(), record.args());
        }
    }
    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

struct Args {
    mode: String,
    url: String,
    predictions: usize,
    timeout_ms: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().ok_or("missing mode (check, predict, fallback, repl)")?;
    if !matches!(mode.as_str(), "check" | "predict" | "fallback" | "repl") {
        return Err(format!("unknown mode {:?}", mode));
    }
    let url = it.next().ok_or("missing URL")?;
    let mut args = Args { mode, url, predictions: 3, timeout_ms: 100 };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{} needs a value", flag))?;
        match flag.as_str() {
            "--predictions" => args.predictions = value.parse().map_err(|_| format!("--predictions {:?}", value))?,
            "--timeout-ms" => args.timeout_ms = value.parse().map_err(|_| format!("--timeout-ms {:?}", value))?,
            _ => return Err(format!("unknown flag {:?}", flag)),
        }
    }
    Ok(args)
}

/// A request as the signal engine builds it: every field for most calls, the order-book and
/// candle fields missing (None) for some, and the default symbol for some.
fn market_request(i: usize) -> PredictionRequest {
    let price = 620.0 + (i % 17) as f64 * 0.35;
    let full = i % 3 != 2;
    let some = |v: f64| if full { Some(v) } else { None };
    PredictionRequest {
        price,
        open: some(price - 0.4),
        high: some(price + 0.9),
        low: some(price - 1.1),
        volume: Some(145_230.5 + i as f64),
        bid_volume: some(72_500.0),
        ask_volume: some(68_200.0 + i as f64 * 10.0),
        best_bid: some(price - 0.05),
        best_ask: some(price + 0.05),
        bid_depth_5: some(150_000.0),
        ask_depth_5: some(145_000.0),
        btc_price: Some(43_250.0),
        funding_rate: some(0.0001),
        symbol: if i % 4 == 3 { None } else { Some("WBNBUSDT".to_string()) },
    }
}

/// The contract's ranges, beyond what the types already enforce.
fn contract_violation(p: &Prediction) -> Option<String> {
    if p.direction != "LONG" && p.direction != "SHORT" {
        return Some(format!("direction {:?}", p.direction));
    }
    if !(0.5..=1.0).contains(&p.confidence) {
        return Some(format!("confidence {} outside [0.5, 1]", p.confidence));
    }
    if !(0.0..=1.0).contains(&p.probability_long) {
        return Some(format!("probability_long {} outside [0, 1]", p.probability_long));
    }
    let expected = p.probability_long.max(1.0 - p.probability_long);
    if (p.confidence - expected).abs() > 1e-5 {
        return Some(format!("confidence {} != max(p, 1 - p) = {}", p.confidence, expected));
    }
    if (p.direction == "LONG") != (p.probability_long >= 0.5) {
        return Some(format!("direction {} with probability_long {}", p.direction, p.probability_long));
    }
    if !(p.latency_ms >= 0.0 && p.latency_ms.is_finite()) || p.model_version.is_empty() || p.symbol.is_empty() {
        return Some("latency_ms, model_version or symbol out of range".to_string());
    }
    None
}

fn error_line(op: &str, e: &MLError) -> serde_json::Value {
    let status = match e {
        MLError::Status { status, .. } | MLError::Decode { status, .. } => Some(*status),
        _ => None,
    };
    json!({ "kind": "error", "op": op, "class": e.class(), "status": status, "message": e.to_string() })
}

/// One strict prediction: its line, and whether it decoded and met the contract.
async fn predict_line(client: &MLClient, i: usize) -> (serde_json::Value, bool) {
    let started = Instant::now();
    let result = client.predict(&market_request(i)).await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    match result {
        Ok(p) => match contract_violation(&p) {
            None => (json!({ "kind": "prediction", "elapsed_ms": elapsed_ms, "prediction": p }), true),
            Some(why) => (json!({ "kind": "invalid", "op": "predict", "message": why, "prediction": p }), false),
        },
        Err(e) => {
            let decoded = !matches!(e, MLError::Decode { .. });
            let mut line = error_line("predict", &e);
            line["elapsed_ms"] = json!(elapsed_ms);
            (line, decoded)
        }
    }
}

/// The guide's start-up health check, logged as the bot logs it: its line, whether the bot would
/// start, and whether every answer decoded.
async fn health_line(client: &MLClient) -> (serde_json::Value, bool, bool) {
    match client.health_check().await {
        Ok(health) => {
            info!(
                "ML service healthy - model: {}, uptime: {:.0}s, avg latency: {:.1}ms",
                health.model_version, health.uptime_seconds, health.avg_latency_ms
            );
            (json!({ "kind": "health", "status": 200, "health": health }), true, true)
        }
        Err(e) => {
            error!("ML service health check failed: {}", e);
            let mut line = error_line("health", &e);
            let mut decoded = !matches!(e, MLError::Decode { .. });
            // The bot refuses to start here; but the answer's body must still decode (a 503 says
            // why in `detail` and carries the same fields), so a bot that logs them can.
            if let MLError::Status { .. } = e {
                match client.health_any_status().await {
                    Ok((status, health)) => line["body"] = json!({ "status": status, "health": health }),
                    Err(e) => {
                        decoded &= !matches!(e, MLError::Decode { .. });
                        line["body_error"] = json!(e.to_string());
                    }
                }
            }
            (line, false, decoded)
        }
    }
}

/// predict_with_fallback as the signal engine calls it, timed.
async fn fallback_line(client: &MLClient, i: usize) -> serde_json::Value {
    let started = Instant::now();
    let result = client.predict_with_fallback(market_request(i)).await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    if let Some(p) = &result {
        info!("ML signal: {} (confidence: {:.2}, latency: {:.1}ms)", p.direction, p.confidence, p.latency_ms);
    }
    json!({ "kind": "fallback", "elapsed_ms": elapsed_ms, "prediction": result })
}

/// Reads commands from stdin until `quit` or EOF; returns whether every answer decoded.
async fn repl(client: &MLClient) -> bool {
    let mut all_decoded = true;
    let mut i = 0;
    // Async stdin: while the test steps the server, the runtime stays free to run the pooled
    // connection's task, so a close by the server is seen as it would be in the running bot.
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let out = match line.trim() {
            "health" => {
                let (out, _, decoded) = health_line(client).await;
                all_decoded &= decoded;
                out
            }
            "predict" => {
                let (out, decoded) = predict_line(client, i).await;
                all_decoded &= decoded;
                out
            }
            "fallback" => fallback_line(client, i).await,
            "quit" => break,
            "" => continue,
            other => json!({ "kind": "usage", "message": format!("unknown command {:?}", other) }),
        };
        i += 1;
        println!("{}", out);
    }
    all_decoded
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    log::set_logger(&LOGGER).expect("one logger");
    log::set_max_level(if std::env::var_os("BOT_DEBUG").is_some() { LevelFilter::Debug } else { LevelFilter::Info });
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{}\nusage: rust-bot check|predict|fallback|repl URL [--predictions N] [--timeout-ms T]", e);
            return ExitCode::from(64);
        }
    };
    info!("Initializing ML service client: {}", args.url);
    let client = match MLClient::new(args.url.clone(), args.timeout_ms, true) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{:<5} {}", Level::Error, e);
            return ExitCode::from(64);
        }
    };
    match args.mode.as_str() {
        "check" => {
            let (out, started, decoded) = health_line(&client).await;
            println!("{}", out);
            if !started {
                return ExitCode::from(if decoded { 1 } else { 2 });
            }
            for i in 0..args.predictions {
                let (out, decoded) = predict_line(&client, i).await;
                println!("{}", out);
                if !decoded {
                    return ExitCode::from(2);
                }
            }
        }
        "predict" => {
            let mut all_decoded = true;
            for i in 0..args.predictions {
                let (out, decoded) = predict_line(&client, i).await;
                println!("{}", out);
                all_decoded &= decoded;
            }
            if !all_decoded {
                return ExitCode::from(2);
            }
        }
        "repl" => {
            if !repl(&client).await {
                return ExitCode::from(2);
            }
        }
        _ => println!("{}", fallback_line(&client, 0).await),
    }
    ExitCode::SUCCESS
}
