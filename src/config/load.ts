/**
 * Builds the one `Config` object: schema defaults < config/default.json < --config file < env <
 * flags < overrides. Each layer is checked on its own, so every problem names the setting as the
 * user spelled it there and where it came from; all problems are reported together in one
 * `ConfigError`, before anything binds a port (STYLE B6). The result is deep-frozen.
 */

import { availableParallelism } from 'node:os'
import { readFileSync, existsSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'

import { ConfigError } from '../errors.js'
import { closestName } from './did-you-mean.js'
import {
  kConfigFileEnv, kConfigFileFlag, kConfigProps, kRedacted, kSettingKeys, kSettings, settingsJsonSchema,
  type Config, type RawSettings, type SettingKey, type SettingSpec,
} from './schema.js'

export type { Config, LogFormat, LogLevel, RawSettings } from './schema.js'

export interface LoadConfigOptions {
  /** Command-line arguments without node and the script; default `process.argv.slice(2)`. */
  argv?: readonly string[]
  /** Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>
  /** Default `<package root>/config/default.json`, found from this module's location. */
  defaultsFile?: string
  /** snake_case settings applied last, for tests and embedding. */
  overrides?: Partial<RawSettings>
}

/** One source of settings, already parsed to JSON types. */
interface Layer {
  /** Shown in parentheses after the setting name: a file path, `env`, `flag`, `overrides`. */
  readonly source: string
  readonly values: Record<string, unknown>
  /** How the user spelled each key in this source (`WORKERS`, `--workers`, `workers`). */
  readonly names: Record<string, string>
  /** What the user wrote, for "got ..." (the original string for env and flags). */
  readonly raw: Record<string, unknown>
  /** Found while reading the source (a string that is not a number, an unknown flag), before the schema runs. */
  readonly problems: string[]
  /** Keys whose string could not be read as their type, so never reached `values`. */
  readonly unreadable: Set<string>
}

// Compiled once per process: ajv code generation is the slow part, validation is cheap.
let compiledValidators: { layer: ValidateFunction, complete: ValidateFunction } | null = null

function validators (): { layer: ValidateFunction, complete: ValidateFunction } {
  if (compiledValidators === null) {
    // allowUnionTypes: log_file is `["string", "null"]`, which strict mode otherwise rejects.
    const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: true, allowUnionTypes: true })
    compiledValidators = {
      layer: ajv.compile(settingsJsonSchema(false)),
      complete: ajv.compile(settingsJsonSchema(true)),
    }
  }
  return compiledValidators
}

let packageRootCache: string | null = null

/** The folder holding package.json above this module: src/config under tsx, dist/src/config after tsc. */
export function packageRoot (): string {
  if (packageRootCache !== null) return packageRootCache
  const start = dirname(fileURLToPath(import.meta.url))
  let dir = start
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error(`no package.json above ${start}`)
    dir = parent
  }
  packageRootCache = dir
  return dir
}

export function isHelpRequested (argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false
    if (arg === '--help' || arg === '-h') return true
  }
  return false
}

export function loadConfig (options: LoadConfigOptions = {}): Config {
  const argv = options.argv ?? process.argv.slice(2)
  const env = options.env ?? process.env
  const problems: string[] = []

  const flags = flagLayer(argv)
  const layers: Layer[] = []

  const defaultsFile = options.defaultsFile ?? join(packageRoot(), 'config', 'default.json')
  // The shipped file is labelled as the repository spells it, wherever the process runs from.
  const defaultsLabel = options.defaultsFile ?? relative(packageRoot(), defaultsFile).split(sep).join('/')
  pushFile(layers, problems, defaultsFile, defaultsLabel, null)

  const configFile = flags.configFile ?? nonEmpty(env[kConfigFileEnv])
  if (configFile !== undefined) {
    const origin = flags.configFile !== undefined ? `--${kConfigFileFlag}` : kConfigFileEnv
    pushFile(layers, problems, resolve(configFile), configFile, origin)
  }

  layers.push(envLayer(env), flags.layer)
  if (options.overrides !== undefined) layers.push(objectLayer(options.overrides, 'overrides'))

  return build(layers, problems)
}

/** Schema defaults plus `settings`, validated and frozen; reads no files, env or flags. */
export function configFromSettings (settings: Partial<RawSettings>): Config {
  return build([objectLayer(settings, 'settings')], [])
}

function build (layers: readonly Layer[], problems: string[]): Config {
  const { layer: validateLayer, complete: validateComplete } = validators()
  // Keys with a problem in any layer: cross-field rules involving them are skipped, since their
  // effective value is unknown and a second message about them would only mislead.
  const bad = new Set<string>()
  const merged: Record<string, unknown> = {}
  const origin: Record<string, Layer> = {}

  for (const layer of layers) {
    // Reported in precedence order: each layer's read problems, then its schema problems.
    problems.push(...layer.problems)
    for (const key of layer.unreadable) bad.add(key)
    const layerBad = new Set(checkLayer(validateLayer, layer, problems))
    for (const key of layerBad) bad.add(key)
    for (const key of kSettingKeys) {
      if (!Object.hasOwn(layer.values, key) || layerBad.has(key)) continue
      merged[key] = layer.values[key]
      origin[key] = layer
    }
  }

  // Fills in schema defaults; every value that got here already passed its own layer's check.
  if (!validateComplete(merged)) {
    throw new Error(`config: merged settings failed the schema: ${JSON.stringify(validateComplete.errors)}`)
  }
  const settings = merged as unknown as RawSettings
  const label = (key: SettingKey): string => {
    const layer = origin[key]
    return layer === undefined ? `${key} (default)` : `${layer.names[key]} (${layer.source})`
  }

  if (!bad.has('deadline_ms') && !bad.has('max_queue_delay_us') &&
      settings.deadline_ms * 1000 <= settings.max_queue_delay_us) {
    problems.push('deadline_ms and max_queue_delay_us must not conflict: deadline_ms * 1000 must exceed ' +
      `max_queue_delay_us, got ${label('deadline_ms')} = ${settings.deadline_ms} and ` +
      `${label('max_queue_delay_us')} = ${settings.max_queue_delay_us}`)
  }
  if (!bad.has('max_queue_size') && !bad.has('max_batch_size') &&
      settings.max_queue_size < settings.max_batch_size) {
    problems.push('max_queue_size and max_batch_size must not conflict: max_queue_size must be >= ' +
      `max_batch_size, got ${label('max_queue_size')} = ${settings.max_queue_size} and ` +
      `${label('max_batch_size')} = ${settings.max_batch_size}`)
  }

  // A timestamp up to max_clock_skew_ms ahead opens its bar that much early, and timestamped
  // requests of the bar before are stale until real time catches up: keep it well under a bar.
  if (!bad.has('max_clock_skew_ms') && !bad.has('bar_ms') &&
      settings.max_clock_skew_ms * 10 > settings.bar_ms) {
    problems.push('max_clock_skew_ms and bar_ms must not conflict: max_clock_skew_ms must be at most a tenth of ' +
      `bar_ms, got ${label('max_clock_skew_ms')} = ${settings.max_clock_skew_ms} and ` +
      `${label('bar_ms')} = ${settings.bar_ms}`)
  }

  if (problems.length > 0) throw new ConfigError(problems)

  const config: Record<string, unknown> = {}
  for (const key of kSettingKeys) config[kConfigProps[key]] = settings[key]
  // The contract resolves the model path against the process cwd; do it once, here, so a later
  // chdir or a worker thread cannot change which file is meant.
  config.modelPath = resolve(settings.model_path)
  config.workers = settings.workers === 0 ? defaultWorkerCount() : settings.workers
  config.shadowModelPath = settings.shadow_model_path === null ? null : resolve(settings.shadow_model_path)
  config.stateFile = settings.state_file === null ? null : resolve(settings.state_file)
  config.captureDir = settings.capture_dir === null ? null : resolve(settings.capture_dir)
  return deepFreeze(config as unknown as Config)
}

/** Runs the per-layer schema; pushes one problem per bad key and returns those keys. */
function checkLayer (validate: ValidateFunction, layer: Layer, problems: string[]): string[] {
  if (validate(layer.values)) return []
  const byKey = new Map<string, ErrorObject>()
  for (const error of validate.errors ?? []) {
    if (error.keyword === 'additionalProperties') {
      const key = String((error.params as { additionalProperty: string }).additionalProperty)
      problems.push(`${key} (${layer.source}) is not a known setting${suggest(key)}`)
      continue
    }
    const key = error.instancePath.slice(1)
    const seen = byKey.get(key)
    // A type error explains the value best (a number given to log_level also fails `enum`).
    if (seen === undefined || (error.keyword === 'type' && seen.keyword !== 'type')) byKey.set(key, error)
  }
  for (const [key, error] of byKey) {
    const spec: SettingSpec = kSettings[key as SettingKey]
    problems.push(`${layer.names[key] ?? key} (${layer.source}) must be ${expectation(spec, error)}, ` +
      `got ${showValue(spec, layer.raw[key] ?? layer.values[key])}`)
  }
  return [...byKey.keys()]
}

function expectation (spec: SettingSpec, error: ErrorObject): string {
  switch (spec.kind) {
    case 'integer': return error.keyword === 'maximum' ? `an integer <= ${spec.max}` : `an integer >= ${spec.min}`
    case 'number': return error.keyword === 'maximum' ? `a number <= ${spec.max}` : `a number >= ${spec.min}`
    case 'boolean': return 'true or false'
    case 'enum': return `one of ${(spec.values ?? []).join(', ')}`
    case 'nullable-string': return 'a non-empty string or null'
    case 'string':
      if (error.keyword === 'pattern') return `a string matching ${spec.pattern}`
      return 'a non-empty string'
  }
}

function show (value: unknown): string {
  const text = value === undefined ? 'undefined' : JSON.stringify(value) ?? String(value)
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}

/** `show`, except that a secret setting's value is never echoed, even a wrong one (it may be a real token in the wrong form). */
function showValue (spec: SettingSpec, value: unknown): string {
  return spec.secret === true ? kRedacted : show(value)
}

/**
 * Points a misspelt key in a file (`wokers`) or another spelling of a real one (`maxBatchSize`,
 * `MAX_BATCH_SIZE`) at the key's real name.
 */
function suggest (key: string): string {
  const match = closestName(key, kSettingKeys)
  return match === undefined ? '' : ` (did you mean "${match}"?)`
}

/** Every variable name the server reads: the settings' and CONFIG_FILE. */
const kKnownEnvNames: readonly string[] = [...kSettingKeys.map((key) => kSettings[key].env), kConfigFileEnv]

/**
 * Variables that are not ours but look like a slip for one of ours (`WOKERS`, `LOG_LEVLE`,
 * `max_batch_size`), one message each. Warnings, not errors: the environment is shared with other
 * programs, so an unknown name is normal there, and only one edit (or a different spelling of the
 * same words) counts as a likely slip, so that `HOME` or `HOSTNAME` never trigger it.
 */
export function envNearMisses (env: Readonly<Record<string, string | undefined>>): string[] {
  const known = new Set(kKnownEnvNames)
  const out: string[] = []
  for (const name of Object.keys(env)) {
    if (known.has(name) || env[name] === undefined) continue
    const match = closestName(name, kKnownEnvNames, 1)
    if (match !== undefined) out.push(`${name} (env) is not a variable this server reads (did you mean ${match}?)`)
  }
  return out
}

function objectLayer (values: unknown, source: string): Layer {
  const plain = typeof values === 'object' && values !== null && !Array.isArray(values)
    ? { ...(values as Record<string, unknown>) }
    : {}
  const names: Record<string, string> = {}
  for (const key of Object.keys(plain)) names[key] = key
  return { source, values: plain, names, raw: {}, problems: [], unreadable: new Set() }
}

function pushFile (layers: Layer[], problems: string[], path: string, label: string, origin: string | null): void {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    problems.push(`${label}${origin === null ? '' : ` (named by ${origin})`} cannot be read: ${path}: ${reason}`)
    return
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    problems.push(`${label}: not valid JSON: ${(err as Error).message}`)
    return
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push(`${label}: must hold a JSON object of settings, got ${show(parsed)}`)
    return
  }
  layers.push(objectLayer(parsed, label))
}

function nonEmpty (value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}

/**
 * Env and flag strings become JSON values by the setting's declared kind; a string that cannot be
 * read as that kind is a problem here, and ranges, patterns and enums are left to the schema.
 */
function parseString (spec: SettingSpec, text: string): { ok: true, value: unknown } | { ok: false } {
  switch (spec.kind) {
    case 'integer':
      // Number() would also take '', ' 1', '0x10' and '1e3'; a setting is written in plain digits.
      return /^-?\d+$/.test(text) ? { ok: true, value: Number(text) } : { ok: false }
    case 'number':
      // Plain decimals only ('0.55', '1'), for the same reason.
      return /^-?\d+(\.\d+)?$/.test(text) ? { ok: true, value: Number(text) } : { ok: false }
    case 'boolean': {
      const lower = text.toLowerCase()
      if (lower === 'true' || lower === '1') return { ok: true, value: true }
      if (lower === 'false' || lower === '0') return { ok: true, value: false }
      return { ok: false }
    }
    case 'nullable-string': return { ok: true, value: text === '' ? null : text }
    case 'string':
    case 'enum':
      return { ok: true, value: text }
  }
}

function parseInto (layer: Layer, key: SettingKey, name: string, text: string): void {
  const spec: SettingSpec = kSettings[key]
  layer.names[key] = name
  layer.raw[key] = text
  const parsed = parseString(spec, text)
  if (parsed.ok) {
    layer.values[key] = parsed.value
    return
  }
  // The value never reaches the schema, so phrase it as the schema check would.
  const expected = spec.kind === 'boolean' ? 'true, false, 1 or 0' : expectation(spec, { keyword: 'type' } as ErrorObject)
  layer.problems.push(`${name} (${layer.source}) must be ${expected}, got ${showValue(spec, text)}`)
  layer.unreadable.add(key)
  delete layer.values[key]
}

function envLayer (env: Readonly<Record<string, string | undefined>>): Layer {
  const layer: Layer = { source: 'env', values: {}, names: {}, raw: {}, problems: [], unreadable: new Set() }
  for (const key of kSettingKeys) {
    const spec: SettingSpec = kSettings[key]
    const text = env[spec.env]
    // An empty variable is how shells and compose files "unset"; only LOG_FILE gives it a meaning.
    if (text === undefined || (text === '' && spec.kind !== 'nullable-string')) continue
    parseInto(layer, key, spec.env, text)
  }
  return layer
}

const kFlagToKey: ReadonlyMap<string, SettingKey> = new Map(kSettingKeys.map((key) => [kSettings[key].flag, key]))
const kKnownFlags: readonly string[] = [...kFlagToKey.keys(), kConfigFileFlag, 'help']

function flagLayer (argv: readonly string[]): { layer: Layer, configFile: string | undefined } {
  const layer: Layer = { source: 'flag', values: {}, names: {}, raw: {}, problems: [], unreadable: new Set() }
  const problems = layer.problems
  const options: Record<string, { type: 'string' | 'boolean', short?: string }> = {
    [kConfigFileFlag]: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }
  for (const key of kSettingKeys) options[kSettings[key].flag] = { type: 'string' }

  // strict: false + tokens so that every bad flag is collected, not just the first one thrown.
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true })
  let configFile: string | undefined
  // Index of the word after an unknown `--flag` without `=value`: that word is most likely its
  // value, and one problem about the flag says enough.
  let valueOfUnknown = -1
  for (const token of tokens) {
    if (token.kind === 'positional') {
      if (token.index !== valueOfUnknown) {
        problems.push(`unexpected argument ${show(token.value)} (flags are written --name value)`)
      }
      continue
    }
    if (token.kind !== 'option') continue
    const name = `--${token.name}`
    if (token.name === 'help') continue
    const key = kFlagToKey.get(token.name)
    if (key === undefined && token.name !== kConfigFileFlag) {
      // A single-dash word is a short flag, and only -h exists: no guess for those.
      const match = token.rawName.startsWith('--') ? closestName(token.name, kKnownFlags) : undefined
      problems.push(`${token.rawName} (flag) is not a known flag${match === undefined ? '; see --help' : ` (did you mean --${match}?)`}`)
      if (token.inlineValue !== true) valueOfUnknown = token.index + 1
      continue
    }
    const value = token.value
    // Without strict mode parseArgs takes the next word even when it is another flag.
    if (value === undefined) {
      problems.push(`${name} (flag) needs a value`)
      continue
    }
    if (token.inlineValue !== true && value.startsWith('-') && !/^-\d+$/.test(value)) {
      // Unless the flag is a secret's: a token may well start with '-', and is not echoed.
      const shown = key === undefined ? show(value) : showValue(kSettings[key], value)
      problems.push(`${name} (flag) needs a value, got the flag ${shown}`)
      continue
    }
    if (key !== undefined) parseInto(layer, key, name, value)
    else if (value === '') problems.push(`${name} (flag) needs a value`)
    else configFile = value
  }
  return { layer, configFile }
}

function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}

/**
 * workers: 0 -> one inference thread per core, less the core the event loop (HTTP, features,
 * batching) needs, at least one. On 2 cores that is 1, which measured best: 1/2/4 workers gave
 * 24.9k/22.4k/20.9k req/s at 64 connections and p50 189/210/243 us at one (bench set `workers`).
 */
export function defaultWorkerCount (): number {
  return Math.max(1, availableParallelism() - 1)
}
