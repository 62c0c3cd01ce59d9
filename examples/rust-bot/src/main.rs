//! A driver for `MLClient`, for tests and for trying a server by hand. Every outcome is one JSON
//! line on stdout; the guide's log lines go to stderr.
//!
//!   rust-bot check URL [--predictions N] [--timeout-ms T]
//!       the bot's start-up (health check, logged as the guide logs it), then N strict predictions
//!   rust-bot predict URL [--predictions N] [--timeout-ms T]
//!       N strict predictions only (for a server whose health is not 200)
//!   rust-bot fallback URL [--timeout-ms T]
//!       one predict_with_fallback call, the way the signal engine makes it
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
    let mode = it.next().ok_or("missing mode (check, predict, fallback)")?;
    if !matches!(mode.as_str(), "check" | "predict" | "fallback") {
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

/// Strict predictions; returns whether every answer decoded and satisfied the contract.
async fn predictions(client: &MLClient, n: usize) -> bool {
    let mut ok = true;
    for i in 0..n {
        let started = Instant::now();
        let result = client.predict(&market_request(i)).await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        match result {
            Ok(p) => match contract_violation(&p) {
                None => println!("{}", json!({ "kind": "prediction", "elapsed_ms": elapsed_ms, "prediction": p })),
                Some(why) => {
                    ok = false;
                    println!("{}", json!({ "kind": "invalid", "op": "predict", "message": why, "prediction": p }));
                }
            },
            Err(e) => {
                if matches!(e, MLError::Decode { .. }) {
                    ok = false;
                }
                println!("{}", error_line("predict", &e));
            }
        }
    }
    ok
}

/// The guide's start-up: health check, logged as the bot logs it. Returns (started, decoded).
async fn startup(client: &MLClient) -> (bool, bool) {
    match client.health_check().await {
        Ok(health) => {
            info!(
                "ML service healthy - model: {}, uptime: {:.0}s, avg latency: {:.1}ms",
                health.model_version, health.uptime_seconds, health.avg_latency_ms
            );
            println!("{}", json!({ "kind": "health", "status": 200, "health": health }));
            (true, true)
        }
        Err(e) => {
            error!("ML service health check failed: {}", e);
            println!("{}", error_line("health", &e));
            let mut decoded = !matches!(e, MLError::Decode { .. });
            // The bot refuses to start here; but the answer's body must still decode (a 503 says
            // why in `detail` and carries the same fields), so a bot that logs them can.
            if let MLError::Status { .. } = e {
                match client.health_any_status().await {
                    Ok((status, health)) => println!("{}", json!({ "kind": "health", "status": status, "health": health })),
                    Err(e) => {
                        decoded &= !matches!(e, MLError::Decode { .. });
                        println!("{}", error_line("health_body", &e));
                    }
                }
            }
            (false, decoded)
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    log::set_logger(&LOGGER).expect("one logger");
    log::set_max_level(if std::env::var_os("BOT_DEBUG").is_some() { LevelFilter::Debug } else { LevelFilter::Info });
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{}\nusage: rust-bot check|predict|fallback URL [--predictions N] [--timeout-ms T]", e);
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
            let (started, decoded) = startup(&client).await;
            if !started {
                return ExitCode::from(if decoded { 1 } else { 2 });
            }
            if !predictions(&client, args.predictions).await {
                return ExitCode::from(2);
            }
        }
        "predict" => {
            if !predictions(&client, args.predictions).await {
                return ExitCode::from(2);
            }
        }
        _ => {
            let started = Instant::now();
            let result = client.predict_with_fallback(market_request(0)).await;
            let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
            if let Some(p) = &result {
                info!("ML signal: {} (confidence: {:.2}, latency: {:.1}ms)", p.direction, p.confidence, p.latency_ms);
            }
            println!("{}", json!({ "kind": "fallback", "elapsed_ms": elapsed_ms, "prediction": result }));
        }
    }
    ExitCode::SUCCESS
}
