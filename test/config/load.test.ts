import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'

import { configFromSettings, defaultWorkerCount, isHelpRequested, loadConfig, type LoadConfigOptions } from '../../src/config/load.js'
import { kSettingKeys, kSettings, renderHelp, renderSettingsTable, type Config } from '../../src/config/schema.js'

/** Runs `fn`, which must throw a ConfigError, and returns its problem list. */
function problemsOf (fn: () => unknown): readonly string[] {
  try {
    fn()
  } catch (err) {
    const e = err as { code?: string, problems?: readonly string[] }
    if (e.code !== 'ERR_CONFIG_INVALID' || e.problems === undefined) throw err
    return e.problems
  }
  throw new Error('expected a ConfigError, got a config')
}

/** loadConfig with no ambient env or argv unless the case gives them. */
function load (options: LoadConfigOptions = {}): Config {
  return loadConfig({ argv: [], env: {}, ...options })
}

const kExpectedDefaults: Config = {
  host: '0.0.0.0',
  port: 8000,
  modelPath: resolve('models/xgboost_phase1_v2_calibrated.onnx'),
  requireModel: true,
  workers: defaultWorkerCount(),
  workerTransport: 'shared-memory',
  maxBatchSize: 64,
  maxQueueDelayUs: 0,
  workerSpinUs: 0,
  maxQueueSize: 4096,
  deadlineMs: 1000,
  maxBodyBytes: 1_048_576,
  maxBatchRequests: 1000,
  wsMaxInFlight: 1024,
  wsMaxBackpressureBytes: 4_194_304,
  wsIdleTimeoutS: 60,
  barMs: 60_000,
  maxGapBars: 5,
  maxSymbols: 10_000,
  stateFile: null,
  stateSaveIntervalS: 60,
  defaultSymbol: 'WBNBUSDT',
  maxClockSkewMs: 2_000,
  warmupRuns: 20,
  shutdownTimeoutMs: 10_000,
  shutdownGraceMs: 0,
  logLevel: 'info',
  logFormat: 'auto',
  logFile: null,
  adminToken: null,
  watchModels: false,
  shadowModelPath: null,
  metricsWindowS: 60,
  captureDir: null,
  captureMaxBytes: 1_073_741_824,
  captureMaxAgeS: 604_800,
  captureFileS: 3600,
  evaluationWindow: 1000,
  evaluationThreshold: 0.55,
  driftWindow: 1000,
}

t.test('defaults load from the shipped config/default.json', async (t) => {
  t.strictSame(load(), kExpectedDefaults)
  t.strictSame(configFromSettings({}), kExpectedDefaults)
})

t.test('model_path is resolved against the process cwd', async (t) => {
  t.equal(load({ env: { MODEL_PATH: 'm/a.onnx' } }).modelPath, resolve(process.cwd(), 'm/a.onnx'))
  t.equal(load({ env: { MODEL_PATH: '/abs/b.onnx' } }).modelPath, '/abs/b.onnx')
})

t.test('state_file is resolved against the process cwd; empty STATE_FILE means off; the interval is bounded', async (t) => {
  t.equal(load({ env: { STATE_FILE: 'state/features.bin' } }).stateFile, resolve(process.cwd(), 'state/features.bin'))
  t.equal(load({ argv: ['--state-file', '/var/lib/ml/state.bin'] }).stateFile, '/var/lib/ml/state.bin')
  t.equal(load({ env: { STATE_FILE: '' } }).stateFile, null)
  t.equal(load({ env: { STATE_SAVE_INTERVAL_S: '0' } }).stateSaveIntervalS, 0)
  t.strictSame(problemsOf(() => load({ env: { STATE_SAVE_INTERVAL_S: '86401' } })),
    ['STATE_SAVE_INTERVAL_S (env) must be an integer <= 86400, got "86401"'])
  t.strictSame(problemsOf(() => load({ overrides: { state_file: '' } })),
    ['state_file (overrides) must be a non-empty string or null, got ""'])
})

t.test('precedence: defaults file < --config file < env < flags < overrides', async (t) => {
  const dir = t.testdir({
    'defaults.json': JSON.stringify({ workers: 2, port: 1 }),
    'app.json': JSON.stringify({ workers: 3 }),
    'other.json': JSON.stringify({ workers: 9 }),
  })
  const defaultsFile = join(dir, 'defaults.json')
  const appFile = join(dir, 'app.json')
  const cases: Array<{ name: string, options: LoadConfigOptions, workers: number }> = [
    { name: 'schema default', options: { defaultsFile: join(dir, 'other.json') }, workers: 9 },
    { name: 'defaults file', options: { defaultsFile }, workers: 2 },
    { name: '--config file', options: { defaultsFile, argv: ['--config', appFile] }, workers: 3 },
    { name: 'CONFIG_FILE env', options: { defaultsFile, env: { CONFIG_FILE: appFile } }, workers: 3 },
    { name: '--config beats CONFIG_FILE', options: { defaultsFile, argv: [`--config=${appFile}`], env: { CONFIG_FILE: join(dir, 'other.json') } }, workers: 3 },
    { name: 'env beats file', options: { defaultsFile, argv: ['--config', appFile], env: { WORKERS: '5' } }, workers: 5 },
    { name: 'flag beats env', options: { defaultsFile, argv: ['--config', appFile, '--workers', '6'], env: { WORKERS: '5' } }, workers: 6 },
    { name: 'last flag wins', options: { defaultsFile, argv: ['--workers', '6', '--workers=8'] }, workers: 8 },
    { name: 'overrides beat flags', options: { defaultsFile, argv: ['--workers', '6'], env: { WORKERS: '5' }, overrides: { workers: 7 } }, workers: 7 },
    { name: 'empty env var is unset', options: { defaultsFile, env: { WORKERS: '' } }, workers: 2 },
  ]
  for (const c of cases) {
    t.equal(load(c.options).workers, c.workers, c.name)
  }
  // Layers merge key by key: the defaults file's port survives a --config file that omits it.
  t.equal(load({ defaultsFile, argv: ['--config', appFile] }).port, 1)
  // A settings file that omits a key leaves the schema default in place.
  t.equal(load({ defaultsFile }).maxBatchSize, 64)
})

t.test('env and flag strings are parsed by the setting\'s type', async (t) => {
  const cases: Array<{ options: LoadConfigOptions, check: (c: Config) => unknown, want: unknown }> = [
    { options: { env: { REQUIRE_MODEL: 'false' } }, check: (c) => c.requireModel, want: false },
    { options: { env: { REQUIRE_MODEL: '0' } }, check: (c) => c.requireModel, want: false },
    { options: { env: { REQUIRE_MODEL: 'FALSE' } }, check: (c) => c.requireModel, want: false },
    { options: { env: { REQUIRE_MODEL: '1' }, overrides: { require_model: false } }, check: (c) => c.requireModel, want: false },
    { options: { argv: ['--require-model', '0'] }, check: (c) => c.requireModel, want: false },
    { options: { argv: ['--require-model=true'], env: { REQUIRE_MODEL: 'false' } }, check: (c) => c.requireModel, want: true },
    { options: { env: { LOG_FILE: '' } }, check: (c) => c.logFile, want: null },
    { options: { env: { LOG_FILE: 'logs/server.log' } }, check: (c) => c.logFile, want: 'logs/server.log' },
    { options: { env: { LOG_FILE: 'a.log' }, argv: ['--log-file='] }, check: (c) => c.logFile, want: null },
    { options: { env: { PORT: '0' } }, check: (c) => c.port, want: 0 },
    { options: { argv: ['--port', '65535'] }, check: (c) => c.port, want: 65535 },
    { options: { env: { LOG_LEVEL: 'silent' } }, check: (c) => c.logLevel, want: 'silent' },
    { options: { argv: ['--default-symbol', 'btc-usdt_2'] }, check: (c) => c.defaultSymbol, want: 'btc-usdt_2' },
    { options: { argv: ['--host', '127.0.0.1'] }, check: (c) => c.host, want: '127.0.0.1' },
    { options: { env: { HOST: '' } }, check: (c) => c.host, want: '0.0.0.0' },
    { options: { argv: ['--max-queue-delay-us', '500', '--max-batch-size', '128'] }, check: (c) => [c.maxQueueDelayUs, c.maxBatchSize], want: [500, 128] },
  ]
  for (const c of cases) {
    t.strictSame(c.check(load(c.options)), c.want, JSON.stringify(c.options))
  }
})

t.test('each kind of bad value, from each source, with the exact message', async (t) => {
  const dir = t.testdir({})
  let n = 0
  // Each file case writes its own file, named in the expected message in place of FILE.
  const viaFile = (body: Record<string, unknown>): { options: LoadConfigOptions, label: string } => {
    const path = join(dir, `case-${n++}.json`)
    writeFileSync(path, JSON.stringify(body))
    return { options: { argv: ['--config', path] }, label: path }
  }

  const cases: Array<{ name: string, options: LoadConfigOptions | (() => { options: LoadConfigOptions, label: string }), want: string | string[] }> = [
    // env
    { name: 'env not an integer', options: { env: { WORKERS: 'abc' } }, want: 'WORKERS (env) must be an integer >= 0, got "abc"' },
    { name: 'env fraction', options: { env: { WORKERS: '1.5' } }, want: 'WORKERS (env) must be an integer >= 0, got "1.5"' },
    { name: 'env exponent', options: { env: { MAX_BODY_BYTES: '1e6' } }, want: 'MAX_BODY_BYTES (env) must be an integer >= 256, got "1e6"' },
    { name: 'env padded', options: { env: { PORT: ' 80' } }, want: 'PORT (env) must be an integer >= 0, got " 80"' },
    { name: 'env below minimum', options: { env: { WORKERS: '-1' } }, want: 'WORKERS (env) must be an integer >= 0, got "-1"' },
    { name: 'env above maximum', options: { env: { WORKERS: '65' } }, want: 'WORKERS (env) must be an integer <= 64, got "65"' },
    { name: 'env negative', options: { env: { PORT: '-1' } }, want: 'PORT (env) must be an integer >= 0, got "-1"' },
    { name: 'env bad boolean', options: { env: { REQUIRE_MODEL: 'yes' } }, want: 'REQUIRE_MODEL (env) must be true, false, 1 or 0, got "yes"' },
    { name: 'env bad enum', options: { env: { LOG_LEVEL: 'loud' } }, want: 'LOG_LEVEL (env) must be one of fatal, error, warn, info, debug, trace, silent, got "loud"' },
    { name: 'env bad pattern', options: { env: { DEFAULT_SYMBOL: 'BTC USDT' } }, want: 'DEFAULT_SYMBOL (env) must be a string matching ^[A-Za-z0-9_-]{1,32}$, got "BTC USDT"' },
    { name: 'env pattern too long', options: { env: { DEFAULT_SYMBOL: 'A'.repeat(33) } }, want: `DEFAULT_SYMBOL (env) must be a string matching ^[A-Za-z0-9_-]{1,32}$, got "${'A'.repeat(33)}"` },
    // flags
    { name: 'flag not an integer', options: { argv: ['--workers', 'abc'] }, want: '--workers (flag) must be an integer >= 0, got "abc"' },
    { name: 'flag above maximum', options: { argv: ['--workers=100'] }, want: '--workers (flag) must be an integer <= 64, got "100"' },
    { name: 'flag below minimum', options: { argv: ['--bar-ms', '999'] }, want: '--bar-ms (flag) must be an integer >= 1000, got "999"' },
    { name: 'flag bad boolean', options: { argv: ['--require-model', 'maybe'] }, want: '--require-model (flag) must be true, false, 1 or 0, got "maybe"' },
    { name: 'flag bad enum', options: { argv: ['--log-level=INFO'] }, want: '--log-level (flag) must be one of fatal, error, warn, info, debug, trace, silent, got "INFO"' },
    { name: 'flag empty string', options: { argv: ['--host='] }, want: '--host (flag) must be a non-empty string, got ""' },
    { name: 'flag missing value', options: { argv: ['--port'] }, want: '--port (flag) needs a value' },
    { name: 'flag value is a flag', options: { argv: ['--port', '--help'] }, want: '--port (flag) needs a value, got the flag "--help"' },
    { name: 'unknown flag', options: { argv: ['--wrokers', '3'] }, want: '--wrokers (flag) is not a known flag (did you mean --workers?)' },
    { name: 'misspelt flag', options: { argv: ['--log-levle', 'debug'] }, want: '--log-levle (flag) is not a known flag (did you mean --log-level?)' },
    { name: 'misspelt --config', options: { argv: ['--confg', 'x.json'] }, want: '--confg (flag) is not a known flag (did you mean --config?)' },
    { name: 'flag bad log_format', options: { argv: ['--log-format', 'text'] }, want: '--log-format (flag) must be one of auto, json, pretty, got "text"' },
    // A secret's value is never echoed, even when it is rejected.
    { name: 'secret flag value looks like a flag', options: { argv: ['--admin-token', '-s3cr3t-t0ken'] }, want: '--admin-token (flag) needs a value, got the flag [redacted]' },
    { name: 'unknown short flag', options: { argv: ['-w'] }, want: '-w (flag) is not a known flag; see --help' },
    { name: 'positional argument', options: { argv: ['serve'] }, want: 'unexpected argument "serve" (flags are written --name value)' },
    // With `=value` the next word is not the flag's, so it is reported too.
    { name: 'unknown flag with inline value', options: { argv: ['--wrokers=3', 'serve'] }, want: ['--wrokers (flag) is not a known flag (did you mean --workers?)', 'unexpected argument "serve" (flags are written --name value)'] },
    { name: '--config without a value', options: { argv: ['--config='] }, want: '--config (flag) needs a value' },
    // config file
    { name: 'file string for integer', options: () => viaFile({ workers: '4' }), want: 'workers (FILE) must be an integer >= 0, got "4"' },
    { name: 'file fraction', options: () => viaFile({ workers: 1.5 }), want: 'workers (FILE) must be an integer >= 0, got 1.5' },
    { name: 'file null for integer', options: () => viaFile({ port: null }), want: 'port (FILE) must be an integer >= 0, got null' },
    { name: 'file below minimum', options: () => viaFile({ max_body_bytes: 100 }), want: 'max_body_bytes (FILE) must be an integer >= 256, got 100' },
    { name: 'file above maximum', options: () => viaFile({ max_queue_delay_us: 1_000_001, deadline_ms: 60_000 }), want: 'max_queue_delay_us (FILE) must be an integer <= 1000000, got 1000001' },
    { name: 'file string for boolean', options: () => viaFile({ require_model: 'true' }), want: 'require_model (FILE) must be true or false, got "true"' },
    { name: 'file number for enum', options: () => viaFile({ log_level: 3 }), want: 'log_level (FILE) must be one of fatal, error, warn, info, debug, trace, silent, got 3' },
    { name: 'file empty log_file', options: () => viaFile({ log_file: '' }), want: 'log_file (FILE) must be a non-empty string or null, got ""' },
    { name: 'file number for string', options: () => viaFile({ model_path: 5 }), want: 'model_path (FILE) must be a non-empty string, got 5' },
    { name: 'file unknown key', options: () => viaFile({ wrokers: 3 }), want: 'wrokers (FILE) is not a known setting (did you mean "workers"?)' },
    { name: 'file camelCase key', options: () => viaFile({ maxBatchSize: 3 }), want: 'maxBatchSize (FILE) is not a known setting (did you mean "max_batch_size"?)' },
    { name: 'file __proto__ key', options: () => viaFile(JSON.parse('{"__proto__": {"workers": 1}}') as Record<string, unknown>), want: '__proto__ (FILE) is not a known setting' },
    { name: 'file misspelt key', options: () => viaFile({ wokers: 2 }), want: 'wokers (FILE) is not a known setting (did you mean "workers"?)' },
    { name: 'file secret of the wrong type', options: () => viaFile({ admin_token: 12345678 }), want: 'admin_token (FILE) must be a non-empty string or null, got [redacted]' },
    { name: 'file nested object', options: () => viaFile({ ml_service: { enabled: true } }), want: 'ml_service (FILE) is not a known setting' },
    // overrides
    { name: 'overrides above maximum', options: { overrides: { max_batch_size: 9000 } }, want: 'max_batch_size (overrides) must be an integer <= 4096, got 9000' },
    { name: 'overrides Infinity', options: { overrides: { port: Infinity } }, want: 'port (overrides) must be an integer >= 0, got null' },
    { name: 'overrides unknown key', options: { overrides: { nope: 1 } as never }, want: 'nope (overrides) is not a known setting' },
  ]
  for (const c of cases) {
    const made = typeof c.options === 'function' ? c.options() : { options: c.options, label: '' }
    const want = (Array.isArray(c.want) ? c.want : [c.want]).map((w) => w.replace('FILE', made.label))
    t.strictSame(problemsOf(() => load(made.options)), want, c.name)
  }
})

t.test('config files that cannot be used', async (t) => {
  const dir = t.testdir({
    'broken.json': '{"workers": ',
    'array.json': '[1, 2]',
    'defaults.json': '{"workers": "many"}',
  })
  const missing = join(dir, 'missing.json')
  t.strictSame(problemsOf(() => load({ argv: ['--config', missing] })),
    [`${missing} (named by --config) cannot be read: ${missing}: ENOENT`])
  t.strictSame(problemsOf(() => load({ env: { CONFIG_FILE: missing } })),
    [`${missing} (named by CONFIG_FILE) cannot be read: ${missing}: ENOENT`])
  t.strictSame(problemsOf(() => load({ defaultsFile: missing })),
    [`${missing} cannot be read: ${missing}: ENOENT`])
  t.strictSame(problemsOf(() => load({ argv: ['--config', dir] })),
    [`${dir} (named by --config) cannot be read: ${dir}: EISDIR`])

  const broken = problemsOf(() => load({ argv: ['--config', join(dir, 'broken.json')] }))
  t.equal(broken.length, 1)
  t.match(broken[0], new RegExp(`^${join(dir, 'broken.json')}: not valid JSON: `))
  t.strictSame(problemsOf(() => load({ argv: ['--config', join(dir, 'array.json')] })),
    [`${join(dir, 'array.json')}: must hold a JSON object of settings, got [1,2]`])
  // The defaults file is checked like any other layer, and named as given.
  t.strictSame(problemsOf(() => load({ defaultsFile: join(dir, 'defaults.json') })),
    [`workers (${join(dir, 'defaults.json')}) must be an integer >= 0, got "many"`])
})

t.test('a relative --config path is resolved against the cwd and reported as written', async (t) => {
  t.strictSame(problemsOf(() => load({ argv: ['--config', 'no/such.json'] })),
    [`no/such.json (named by --config) cannot be read: ${resolve('no/such.json')}: ENOENT`])
})

t.test('every problem is reported at once, in precedence order', async (t) => {
  const dir = t.testdir({ 'app.json': JSON.stringify({ workers: -2, unknown_key: 1, log_level: 'loud' }) })
  const app = join(dir, 'app.json')
  const problems = problemsOf(() => load({
    argv: ['--config', app, '--port', 'http', '--bogus', '--max-symbols=0'],
    env: { WORKERS: 'abc', REQUIRE_MODEL: 'maybe', MAX_BATCH_SIZE: '5000' },
    overrides: { bar_ms: 1 },
  }))
  t.strictSame(problems, [
    `unknown_key (${app}) is not a known setting`,
    `workers (${app}) must be an integer >= 0, got -2`,
    `log_level (${app}) must be one of fatal, error, warn, info, debug, trace, silent, got "loud"`,
    'REQUIRE_MODEL (env) must be true, false, 1 or 0, got "maybe"',
    'WORKERS (env) must be an integer >= 0, got "abc"',
    'MAX_BATCH_SIZE (env) must be an integer <= 4096, got "5000"',
    '--port (flag) must be an integer >= 0, got "http"',
    '--bogus (flag) is not a known flag; see --help',
    '--max-symbols (flag) must be an integer >= 1, got "0"',
    'bar_ms (overrides) must be an integer >= 1000, got 1',
  ])
})

t.test('the ConfigError lists every problem in its message', async (t) => {
  t.throws(() => load({ env: { WORKERS: 'abc', PORT: 'x' } }), {
    name: 'ConfigError',
    code: 'ERR_CONFIG_INVALID',
    message: 'Invalid configuration:\n  - PORT (env) must be an integer >= 0, got "x"\n  - WORKERS (env) must be an integer >= 0, got "abc"',
  })
})

t.test('cross-field rules', async (t) => {
  const deadline = (d: string, q: string): string => 'deadline_ms and max_queue_delay_us must not conflict: ' +
    `deadline_ms * 1000 must exceed max_queue_delay_us, got ${d} and ${q}`
  const queue = (s: string, b: string): string => 'max_queue_size and max_batch_size must not conflict: ' +
    `max_queue_size must be >= max_batch_size, got ${s} and ${b}`
  const cases: Array<{ name: string, options: LoadConfigOptions, want: string[] }> = [
    { name: 'deadline just above the delay', options: { env: { DEADLINE_MS: '1', MAX_QUEUE_DELAY_US: '999' } }, want: [] },
    { name: 'deadline equal to the delay', options: { env: { DEADLINE_MS: '1', MAX_QUEUE_DELAY_US: '1000' } }, want: [deadline('DEADLINE_MS (env) = 1', 'MAX_QUEUE_DELAY_US (env) = 1000')] },
    { name: 'delay from env, deadline from the shipped file', options: { env: { MAX_QUEUE_DELAY_US: '1000000' } }, want: [deadline('deadline_ms (config/default.json) = 1000', 'MAX_QUEUE_DELAY_US (env) = 1000000')] },
    { name: 'flag and overrides', options: { argv: ['--deadline-ms', '2'], overrides: { max_queue_delay_us: 5000 } }, want: [deadline('--deadline-ms (flag) = 2', 'max_queue_delay_us (overrides) = 5000')] },
    { name: 'queue equal to batch', options: { env: { MAX_QUEUE_SIZE: '64' } }, want: [] },
    { name: 'queue smaller than batch', options: { env: { MAX_QUEUE_SIZE: '63' } }, want: [queue('MAX_QUEUE_SIZE (env) = 63', 'max_batch_size (config/default.json) = 64')] },
    { name: 'both rules at once', options: { argv: ['--max-batch-size', '100', '--max-queue-size', '10', '--deadline-ms', '1', '--max-queue-delay-us', '2000'] }, want: [deadline('--deadline-ms (flag) = 1', '--max-queue-delay-us (flag) = 2000'), queue('--max-queue-size (flag) = 10', '--max-batch-size (flag) = 100')] },
    { name: 'skew a tenth of the bar', options: { env: { MAX_CLOCK_SKEW_MS: '6000' } }, want: [] },
    { name: 'skew over a tenth of the bar', options: { env: { MAX_CLOCK_SKEW_MS: '6001' } }, want: ['max_clock_skew_ms and bar_ms must not conflict: max_clock_skew_ms must be at most a tenth of bar_ms, got MAX_CLOCK_SKEW_MS (env) = 6001 and bar_ms (config/default.json) = 60000'] },
    // A bad value is reported once, not again as a conflict with a value it did not set.
    { name: 'rule skipped when one side is invalid', options: { env: { MAX_QUEUE_SIZE: '0', MAX_BATCH_SIZE: '9' } }, want: ['MAX_QUEUE_SIZE (env) must be an integer >= 1, got "0"'] },
    { name: 'rule skipped when one side is unreadable', options: { env: { DEADLINE_MS: 'soon', MAX_QUEUE_DELAY_US: '1000000' } }, want: ['DEADLINE_MS (env) must be an integer >= 1, got "soon"'] },
    { name: 'rule skipped when one side is unreadable in a lower layer', options: { argv: ['--max-queue-size', '1'], env: { MAX_QUEUE_SIZE: 'x' } }, want: ['MAX_QUEUE_SIZE (env) must be an integer >= 1, got "x"'] },
  ]
  for (const c of cases) {
    if (c.want.length === 0) t.doesNotThrow(() => load(c.options), c.name)
    else t.strictSame(problemsOf(() => load(c.options)), c.want, c.name)
  }
  t.strictSame(problemsOf(() => configFromSettings({ max_queue_size: 2, max_batch_size: 4 })),
    [queue('max_queue_size (settings) = 2', 'max_batch_size (settings) = 4')])
})

t.test('the result is deep-frozen', async (t) => {
  for (const config of [load(), configFromSettings({ log_file: 'x.log' })]) {
    t.ok(Object.isFrozen(config))
    t.throws(() => { (config as { port: number }).port = 1 }, TypeError)
    t.throws(() => { (config as unknown as Record<string, unknown>).extra = 1 }, TypeError)
  }
})

t.test('configFromSettings reads no env, flags or files', async (t) => {
  const saved = process.env.WORKERS
  process.env.WORKERS = 'abc'
  t.teardown(() => {
    if (saved === undefined) delete process.env.WORKERS
    else process.env.WORKERS = saved
  })
  const config = configFromSettings({ port: 0, workers: 1, require_model: false })
  t.strictSame(config, { ...kExpectedDefaults, port: 0, workers: 1, requireModel: false })
  t.strictSame(problemsOf(() => configFromSettings({ workers: 99, log_level: 'loud' as never })), [
    'workers (settings) must be an integer <= 64, got 99',
    'log_level (settings) must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
  ])
})

t.test('loadConfig reads process.env and process.argv by default', async (t) => {
  const saved = { env: process.env.MAX_SYMBOLS, argv: process.argv }
  process.env.MAX_SYMBOLS = '7'
  process.argv = [process.argv[0]!, 'serve.js', '--max-gap-bars', '9']
  t.teardown(() => {
    process.argv = saved.argv
    if (saved.env === undefined) delete process.env.MAX_SYMBOLS
    else process.env.MAX_SYMBOLS = saved.env
  })
  const config = loadConfig()
  t.equal(config.maxSymbols, 7)
  t.equal(config.maxGapBars, 9)
})

t.test('--help is the caller\'s to handle', async (t) => {
  const cases: Array<[readonly string[], boolean]> = [
    [['--help'], true],
    [['-h'], true],
    [['--port', '1', '--help'], true],
    [[], false],
    [['--port', '1'], false],
    [['--', '--help'], false],
    [['--helper'], false],
  ]
  for (const [argv, want] of cases) t.equal(isHelpRequested(argv), want, argv.join(' '))
  // loadConfig tolerates the flag rather than calling it unknown.
  t.equal(load({ argv: ['--help', '--workers', '2'] }).workers, 2)
})

t.test('help text and settings table come from the schema', async (t) => {
  const help = renderHelp()
  const table = renderSettingsTable().trimEnd().split('\n')
  t.equal(table[0], '| setting | env | flag | default | description |')
  t.equal(table.length, kSettingKeys.length + 2)
  t.match(help, /--config <file>/)
  for (const key of kSettingKeys) {
    const spec = kSettings[key]
    t.match(help, `--${spec.flag} `, `help names --${spec.flag}`)
    t.match(help, `Env ${spec.env},`, `help names ${spec.env}`)
    t.ok(table.some((row) => row.startsWith(`| \`${key}\` | \`${spec.env}\` | \`--${spec.flag}\` | \`${JSON.stringify(spec.default)}\` |`)), `table row for ${key}`)
  }
  t.ok(table.every((row) => row.split(/(?<!\\)\|/).length === 7), 'no unescaped | inside a cell')
})

t.test('evaluation_threshold is a number: env, flag and range', async (t) => {
  t.equal(loadConfig({ argv: ['--evaluation-threshold', '0.6'], env: {} }).evaluationThreshold, 0.6)
  t.equal(loadConfig({ argv: [], env: { EVALUATION_THRESHOLD: '0.57' } }).evaluationThreshold, 0.57)
  t.throws(() => loadConfig({ argv: ['--evaluation-threshold', '0.4'], env: {} }), /evaluation_threshold|evaluation-threshold.*must be a number >= 0.5/)
  t.throws(() => loadConfig({ argv: [], env: { EVALUATION_THRESHOLD: '.6x' } }), /must be a number/)
})
