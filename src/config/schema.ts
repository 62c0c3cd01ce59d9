/**
 * Every setting the server reads, defined once: its JSON key (as users write it), type, bounds,
 * default, environment variable, CLI flag and a one-line description. The ajv schema, the
 * camelCase `Config` mapping, `--help` and the README settings table are all generated from
 * `kSettings`, so they cannot drift apart (STYLE B6).
 */

export const kLogLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof kLogLevels[number]
export const kWorkerTransports = ['shared-memory', 'message'] as const
export type WorkerTransport = typeof kWorkerTransports[number]
export const kLogFormats = ['auto', 'json', 'pretty'] as const
export type LogFormat = typeof kLogFormats[number]

/** Settings as users write them in JSON config files (snake_case, the contract's spelling). */
export interface RawSettings {
  host: string
  port: number
  model_path: string
  require_model: boolean
  workers: number
  worker_transport: WorkerTransport
  worker_spin_us: number
  max_batch_size: number
  max_queue_delay_us: number
  max_queue_size: number
  deadline_ms: number
  max_body_bytes: number
  max_batch_requests: number
  ws_max_in_flight: number
  ws_max_backpressure_bytes: number
  ws_idle_timeout_s: number
  bar_ms: number
  max_gap_bars: number
  max_symbols: number
  state_file: string | null
  state_save_interval_s: number
  default_symbol: string
  max_clock_skew_ms: number
  warmup_runs: number
  shutdown_timeout_ms: number
  shutdown_grace_ms: number
  log_level: LogLevel
  log_format: LogFormat
  log_file: string | null
  admin_token: string | null
  watch_models: boolean
  shadow_model_path: string | null
  metrics_window_s: number
  capture_dir: string | null
  capture_max_bytes: number
  capture_max_age_s: number
  capture_file_s: number
  evaluation_window: number
  evaluation_threshold: number
  drift_window: number
}

export type SettingKey = keyof RawSettings

/** The resolved, validated, deep-frozen configuration handed to constructors. */
export interface Config {
  readonly host: string
  readonly port: number
  /** Absolute: resolved against the process cwd when the config is built. */
  readonly modelPath: string
  readonly requireModel: boolean
  /** Effective count: 0 in the settings is resolved to the core-based default when loading. */
  readonly workers: number
  readonly workerTransport: WorkerTransport
  readonly workerSpinUs: number
  readonly maxBatchSize: number
  readonly maxQueueDelayUs: number
  readonly maxQueueSize: number
  readonly deadlineMs: number
  readonly maxBodyBytes: number
  readonly maxBatchRequests: number
  readonly wsMaxInFlight: number
  readonly wsMaxBackpressureBytes: number
  readonly wsIdleTimeoutS: number
  readonly barMs: number
  readonly maxGapBars: number
  readonly maxSymbols: number
  /** Absolute when set, like modelPath. */
  readonly stateFile: string | null
  readonly stateSaveIntervalS: number
  readonly defaultSymbol: string
  readonly maxClockSkewMs: number
  readonly warmupRuns: number
  readonly shutdownTimeoutMs: number
  readonly shutdownGraceMs: number
  readonly logLevel: LogLevel
  /** As configured: `auto` is resolved against stdout when the logger is built (src/log/logger.ts). */
  readonly logFormat: LogFormat
  readonly logFile: string | null
  /** Enables the /admin routes (model reload, shadow) for requests bearing this token; null: off. */
  readonly adminToken: string | null
  readonly watchModels: boolean
  /** Absolute when set, like modelPath. */
  readonly shadowModelPath: string | null
  /** Recent window of the /metrics distributions, seconds. */
  readonly metricsWindowS: number
  /** Absolute when set, like modelPath. */
  readonly captureDir: string | null
  readonly captureMaxBytes: number
  readonly captureMaxAgeS: number
  readonly captureFileS: number
  readonly evaluationWindow: number
  readonly evaluationThreshold: number
  readonly driftWindow: number
}

type CamelCase<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<CamelCase<T>>}` : S
type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
// Compile-time guard: `Config` is hand-written for readability, and must stay the camelCase image
// of `RawSettings`, key for key and type for type.
const kConfigMatchesRawSettings: Equal<Config, { readonly [K in SettingKey as CamelCase<K>]: RawSettings[K] }> = true
void kConfigMatchesRawSettings

export type SettingKind = 'string' | 'integer' | 'number' | 'boolean' | 'enum' | 'nullable-string'

export interface SettingSpec<K extends SettingKey = SettingKey> {
  readonly kind: SettingKind
  readonly default: RawSettings[K]
  readonly env: string
  /** Long flag without the leading dashes. */
  readonly flag: string
  readonly description: string
  readonly min?: number
  readonly max?: number
  readonly pattern?: string
  readonly values?: readonly string[]
  /**
   * A credential: its value is never printed (start-up log line, config error messages) and pino
   * redacts it wherever it appears under its name (src/log/logger.ts).
   */
  readonly secret?: true
}

type SettingsTable = { readonly [K in SettingKey]: SettingSpec<K> }

// Insertion order is the order of `--help` and the README table.
export const kSettings: SettingsTable = {
  host: {
    kind: 'string', default: '0.0.0.0', env: 'HOST', flag: 'host',
    description: 'Address to bind.',
  },
  port: {
    kind: 'integer', min: 0, max: 65535, default: 8000, env: 'PORT', flag: 'port',
    description: 'Port to listen on; 0 picks a free (ephemeral) port.',
  },
  model_path: {
    kind: 'string', default: 'models/xgboost_phase1_v2_calibrated.onnx', env: 'MODEL_PATH', flag: 'model-path',
    description: 'ONNX model file (its .json beside it), or a model set file ending in .set.json (docs/model-sets.md); relative to the working directory.',
  },
  require_model: {
    kind: 'boolean', default: true, env: 'REQUIRE_MODEL', flag: 'require-model',
    description: 'Refuse to start without a loadable model; when false, predictions answer 503 "Model not loaded".',
  },
  workers: {
    kind: 'integer', min: 0, max: 64, default: 0, env: 'WORKERS', flag: 'workers',
    description: 'Inference worker threads; 0 (default) means one per core less the one the event loop needs, at least 1 (measured best on 2 cores: bench/results/*-workers.json).',
  },
  worker_transport: {
    kind: 'enum', values: kWorkerTransports, default: 'shared-memory', env: 'WORKER_TRANSPORT', flag: 'worker-transport',
    description: 'How batches reach workers: a shared-memory slot per worker woken with Atomics, or one Piscina message per batch (the slower baseline).',
  },
  worker_spin_us: {
    kind: 'integer', min: 0, max: 10_000, default: 0, env: 'WORKER_SPIN_US', flag: 'worker-spin-us',
    description: 'After a batch, a worker polls for the next one this long before sleeping (µs): no wake-up on the hot path, at the cost of a busy core. For machines with a core per worker beyond the event loop\'s.',
  },
  max_batch_size: {
    kind: 'integer', min: 1, max: 4096, default: 64, env: 'MAX_BATCH_SIZE', flag: 'max-batch-size',
    description: 'Most rows in one inference batch.',
  },
  max_queue_delay_us: {
    kind: 'integer', min: 0, max: 1_000_000, default: 0, env: 'MAX_QUEUE_DELAY_US', flag: 'max-queue-delay-us',
    description: 'Longest a request waits for a batch to fill while a worker is idle (µs).',
  },
  max_queue_size: {
    kind: 'integer', min: 1, max: 1_000_000, default: 4096, env: 'MAX_QUEUE_SIZE', flag: 'max-queue-size',
    description: 'Pending requests beyond this are shed with 503.',
  },
  deadline_ms: {
    kind: 'integer', min: 1, max: 60_000, default: 1000, env: 'DEADLINE_MS', flag: 'deadline-ms',
    description: 'Default per-request deadline (ms).',
  },
  max_body_bytes: {
    kind: 'integer', min: 256, max: 16_777_216, default: 1_048_576, env: 'MAX_BODY_BYTES', flag: 'max-body-bytes',
    description: 'Largest accepted request body or WebSocket message (bytes).',
  },
  max_batch_requests: {
    kind: 'integer', min: 1, max: 10_000, default: 1000, env: 'MAX_BATCH_REQUESTS', flag: 'max-batch-requests',
    description: 'Longest list accepted by /predict/batch.',
  },
  ws_max_in_flight: {
    kind: 'integer', min: 1, max: 65_536, default: 1024, env: 'WS_MAX_IN_FLIGHT', flag: 'ws-max-in-flight',
    description: 'Requests in flight on one WebSocket; more are answered OVERLOADED.',
  },
  ws_max_backpressure_bytes: {
    kind: 'integer', min: 65_536, max: 1_073_741_824, default: 4_194_304, env: 'WS_MAX_BACKPRESSURE_BYTES', flag: 'ws-max-backpressure-bytes',
    description: 'Unsent bytes buffered for a client that stops reading; past a quarter new requests get OVERLOADED, past all of it the socket is closed.',
  },
  ws_idle_timeout_s: {
    kind: 'integer', min: 8, max: 960, default: 60, env: 'WS_IDLE_TIMEOUT_S', flag: 'ws-idle-timeout-s',
    description: 'A WebSocket silent this long (pings are sent automatically) is closed as dead (s).',
  },
  bar_ms: {
    kind: 'integer', min: 1000, max: 86_400_000, default: 60_000, env: 'BAR_MS', flag: 'bar-ms',
    description: 'Bar length for the incremental features (ms).',
  },
  max_gap_bars: {
    kind: 'integer', min: 1, max: 10_000, default: 5, env: 'MAX_GAP_BARS', flag: 'max-gap-bars',
    description: 'A jump of more bars than this resets a symbol\'s history.',
  },
  max_symbols: {
    kind: 'integer', min: 1, max: 1_000_000, default: 10_000, env: 'MAX_SYMBOLS', flag: 'max-symbols',
    description: 'Symbols kept in the feature store; the least recently used is evicted.',
  },
  state_file: {
    kind: 'nullable-string', default: null, env: 'STATE_FILE', flag: 'state-file',
    description: 'Save every symbol\'s feature history here (at shutdown after the drain, and periodically) and restore it at start, so a restart keeps the 60-bar windows; null (or empty STATE_FILE) keeps state in memory only. Give each server its own file on a volume that outlives the container.',
  },
  state_save_interval_s: {
    kind: 'integer', min: 0, max: 86_400, default: 60, env: 'STATE_SAVE_INTERVAL_S', flag: 'state-save-interval-s',
    description: 'Seconds between saves of state_file while serving, so a crash loses at most this much history; 0 saves only at shutdown.',
  },
  default_symbol: {
    kind: 'string', pattern: '^[A-Za-z0-9_-]{1,32}$', default: 'WBNBUSDT', env: 'DEFAULT_SYMBOL', flag: 'default-symbol',
    description: 'Symbol used when a request names none.',
  },
  max_clock_skew_ms: {
    kind: 'integer', min: 0, max: 60_000, default: 2_000, env: 'MAX_CLOCK_SKEW_MS', flag: 'max-clock-skew-ms',
    description: 'How far ahead of the server\'s clock a timestamp_ms may be (ms); it is also how early one request can open a symbol\'s next bar, so at most a tenth of bar_ms.',
  },
  warmup_runs: {
    kind: 'integer', min: 0, max: 10_000, default: 20, env: 'WARMUP_RUNS', flag: 'warmup-runs',
    description: 'Probe inferences per worker before the server reports ready.',
  },
  shutdown_timeout_ms: {
    kind: 'integer', min: 0, max: 600_000, default: 10_000, env: 'SHUTDOWN_TIMEOUT_MS', flag: 'shutdown-timeout-ms',
    description: 'Longest graceful drain on SIGTERM before in-flight work is abandoned (ms).',
  },
  shutdown_grace_ms: {
    kind: 'integer', min: 0, max: 600_000, default: 0, env: 'SHUTDOWN_GRACE_MS', flag: 'shutdown-grace-ms',
    description: 'On SIGTERM, /health/ready turns 503 at once but requests are still served this long, so load balancers stop routing first (ms).',
  },
  log_level: {
    kind: 'enum', values: kLogLevels, default: 'info', env: 'LOG_LEVEL', flag: 'log-level',
    description: 'Least severe log level written.',
  },
  log_format: {
    kind: 'enum', values: kLogFormats, default: 'auto', env: 'LOG_FORMAT', flag: 'log-format',
    description: 'Log lines on stdout: one JSON object each (json), or coloured human-readable text (pretty); auto picks pretty when stdout is a terminal, json otherwise. The log_file is always JSON.',
  },
  log_file: {
    kind: 'nullable-string', default: null, env: 'LOG_FILE', flag: 'log-file',
    description: 'Also write logs to this file; null (or empty LOG_FILE) for stdout only.',
  },
  admin_token: {
    kind: 'nullable-string', default: null, env: 'ADMIN_TOKEN', flag: 'admin-token', secret: true,
    description: 'Bearer token for POST /admin/reload and /admin/shadow; null keeps the admin routes off (404). Never printed: logs show "[redacted]".',
  },
  watch_models: {
    kind: 'boolean', default: false, env: 'WATCH_MODELS', flag: 'watch-models',
    description: 'Reload the model when its file or metadata in the models folder changes (write, then rename into place).',
  },
  shadow_model_path: {
    kind: 'nullable-string', default: null, env: 'SHADOW_MODEL_PATH', flag: 'shadow-model-path',
    description: 'A candidate model scored on live traffic beside the serving one, answers unchanged; agreement is reported.',
  },
  metrics_window_s: {
    kind: 'integer', min: 10, max: 3600, default: 60, env: 'METRICS_WINDOW_S', flag: 'metrics-window-s',
    description: 'Recent window of the /metrics latency, queue-wait, inference, batch-size and event-loop percentiles, and of the Prometheus summary quantiles; it moves in steps of a sixth of it (s).',
  },
  capture_dir: {
    kind: 'nullable-string', default: null, env: 'CAPTURE_DIR', flag: 'capture-dir',
    description: 'Append every symbol\'s closed bar (candle, order book, BTC, funding, the feature row, each model\'s probability) to gzip CSV files in this folder, readable by npm run replay -- --capture-dir; null (or empty CAPTURE_DIR) captures nothing. Give each server its own folder (docs/monitoring.md).',
  },
  capture_max_bytes: {
    kind: 'integer', min: 65_536, max: 1_099_511_627_776, default: 1_073_741_824, env: 'CAPTURE_MAX_BYTES', flag: 'capture-max-bytes',
    description: 'Capture files kept, in bytes at most; the oldest file is deleted first, and a file is closed for a new one past a quarter of this.',
  },
  capture_max_age_s: {
    kind: 'integer', min: 1, max: 31_536_000, default: 604_800, env: 'CAPTURE_MAX_AGE_S', flag: 'capture-max-age-s',
    description: 'A capture file last written longer ago than this is deleted (s).',
  },
  capture_file_s: {
    kind: 'integer', min: 1, max: 604_800, default: 3600, env: 'CAPTURE_FILE_S', flag: 'capture-file-s',
    description: 'A capture file is closed for a new one after this long (s).',
  },
  evaluation_window: {
    kind: 'integer', min: 10, max: 1_000_000, default: 1000, env: 'EVALUATION_WINDOW', flag: 'evaluation-window',
    description: 'Realized outcomes: the recent window, in labelled bars per model version, beside the since-start figures.',
  },
  evaluation_threshold: {
    kind: 'number', min: 0.5, max: 1, default: 0.55, env: 'EVALUATION_THRESHOLD', flag: 'evaluation-threshold',
    description: 'Realized outcomes: the bot\'s confidence_threshold; hit rate and coverage are also reported for predictions whose confidence max(p, 1-p) reaches it.',
  },
  drift_window: {
    kind: 'integer', min: 10, max: 1_000_000, default: 1000, env: 'DRIFT_WINDOW', flag: 'drift-window',
    description: 'Feature drift: PSI and NaN shares over the feature rows of this many last closed bars (all symbols).',
  },
}

export const kSettingKeys = Object.freeze(Object.keys(kSettings) as SettingKey[])

/** The camelCase `Config` property for each snake_case key: the one place the mapping is defined. */
export const kConfigProps: Readonly<Record<SettingKey, keyof Config>> = Object.freeze(
  Object.fromEntries(kSettingKeys.map((key) => [key, snakeToCamel(key)])) as Record<SettingKey, keyof Config>,
)

/** Settings whose values are credentials (`secret: true`), snake_case. */
export const kSecretSettingKeys = Object.freeze(kSettingKeys.filter((key) => (kSettings[key] as SettingSpec).secret === true))

/** What a secret setting's value is replaced with wherever settings are printed. */
export const kRedacted = '[redacted]'

/**
 * The configuration as users write it (snake_case keys, the settings' own names), with every
 * secret replaced by `[redacted]` (null stays null: "not set" is not a secret). For the start-up
 * log line and anything else that shows settings.
 */
export function printableSettings (config: Config): Record<SettingKey, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of kSettingKeys) {
    const value = config[kConfigProps[key]]
    out[key] = (kSettings[key] as SettingSpec).secret === true && value !== null ? kRedacted : value
  }
  return out as Record<SettingKey, unknown>
}

/** Not a setting: names the JSON file whose settings sit between config/default.json and env. */
export const kConfigFileFlag = 'config'
export const kConfigFileEnv = 'CONFIG_FILE'

function snakeToCamel (key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())
}

export function schemaDefaults (): RawSettings {
  const out: Record<string, unknown> = {}
  for (const key of kSettingKeys) out[key] = kSettings[key].default
  return out as unknown as RawSettings
}

/**
 * The JSON Schema of a settings object. `complete: true` describes the final object (every key
 * required, schema defaults filled in by ajv's useDefaults); `false` describes one layer (a file,
 * env, flags), where every key is optional and no defaults are applied.
 */
export function settingsJsonSchema (complete: boolean): Record<string, unknown> {
  const properties: Record<string, unknown> = {}
  for (const key of kSettingKeys) {
    const spec: SettingSpec = kSettings[key]
    const prop: Record<string, unknown> = propertySchema(spec)
    if (complete) prop.default = spec.default
    properties[key] = prop
  }
  return {
    type: 'object',
    properties,
    additionalProperties: false,
    ...(complete ? { required: [...kSettingKeys] } : {}),
  }
}

function propertySchema (spec: SettingSpec): Record<string, unknown> {
  switch (spec.kind) {
    case 'integer': return { type: 'integer', minimum: spec.min, maximum: spec.max }
    case 'number': return { type: 'number', minimum: spec.min, maximum: spec.max }
    case 'boolean': return { type: 'boolean' }
    case 'enum': return { type: 'string', enum: [...(spec.values ?? [])] }
    case 'nullable-string': return { type: ['string', 'null'], minLength: 1 }
    case 'string': return spec.pattern !== undefined
      ? { type: 'string', pattern: spec.pattern }
      : { type: 'string', minLength: 1 }
  }
}

/** What a value of this setting must be, phrased to follow "must be". */
export function describeType (spec: SettingSpec): string {
  switch (spec.kind) {
    case 'integer': return `an integer from ${spec.min} to ${spec.max}`
    case 'number': return `a number from ${spec.min} to ${spec.max}`
    case 'boolean': return 'true or false'
    case 'enum': return `one of ${(spec.values ?? []).join(', ')}`
    case 'nullable-string': return 'a non-empty string or null'
    case 'string': return spec.pattern !== undefined ? `a string matching ${spec.pattern}` : 'a non-empty string'
  }
}

function cell (text: string): string {
  return text.replace(/\|/g, '\\|')
}

/** The README settings table, generated from `kSettings` (a test keeps the README in sync). */
export function renderSettingsTable (): string {
  const lines = [
    '| setting | env | flag | default | description |',
    '|---|---|---|---|---|',
  ]
  for (const key of kSettingKeys) {
    const spec: SettingSpec = kSettings[key]
    lines.push(`| \`${key}\` | \`${spec.env}\` | \`--${spec.flag}\` | \`${JSON.stringify(spec.default)}\` | ` +
      `${cell(spec.description)} Must be ${cell(describeType(spec))}. |`)
  }
  return lines.join('\n') + '\n'
}

/** `--help` text, generated from `kSettings`. */
export function renderHelp (): string {
  const rows: Array<[string, string]> = [
    [`--${kConfigFileFlag} <file>`, `JSON settings file (env ${kConfigFileEnv}); keys as in config/default.json.`],
    ['-h, --help', 'Print this help and exit.'],
  ]
  for (const key of kSettingKeys) {
    const spec: SettingSpec = kSettings[key]
    const arg = spec.kind === 'integer' ? '<int>' : spec.kind === 'number' ? '<num>' : spec.kind === 'boolean' ? '<bool>' : spec.kind === 'enum' ? '<value>' : '<string>'
    rows.push([`--${spec.flag} ${arg}`,
      `${spec.description} Must be ${describeType(spec)}. Env ${spec.env}, default ${JSON.stringify(spec.default)}.`])
  }
  const width = Math.max(...rows.map(([left]) => left.length)) + 2
  return [
    'Usage: node dist/src/cli/serve.js [--config <file>] [--<setting> <value> ...]',
    '',
    'Each setting is read from, later winning: built-in defaults < config/default.json',
    '< the --config file < environment variables < flags. Booleans accept true/false/1/0.',
    'Invalid settings stop start-up with a list of every problem.',
    '',
    'Options:',
    ...rows.map(([left, right]) => `  ${left.padEnd(width)}${right}`),
    '',
  ].join('\n')
}
