#!/usr/bin/env node
/**
 * `ml-prediction-server`, the package's command (package.json `bin`):
 *
 *   ml-prediction-server serve [--<setting> <value> ...]   run the server (same as `npm start`)
 *   ml-prediction-server check-model FILE [--bar-ms <int>] validate a model without serving
 *   ml-prediction-server replay [...]                      candles -> training matrix (src/cli/replay.ts)
 *   ml-prediction-server bench [...]                       the benchmark suite (a source checkout only)
 *   ml-prediction-server --version | --help | <command> --help
 *
 * Exit codes (docs/api.md): 0 success; 1 the work failed (the model is refused, the server could
 * not start, a replay failed); 2 bad usage or invalid configuration; 130 interrupted (bench).
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { describeType, kSettings, renderHelp, type SettingSpec } from '../config/schema.js'
import { kPackageName, kPackageRoot, kPackageVersion } from '../openapi/package-info.js'

export const kExitOk = 0
export const kExitFailed = 1
export const kExitUsage = 2

const kHere = dirname(fileURLToPath(import.meta.url))
/** .ts under tsx (npm run dev), .js once built: sibling entry points share this file's extension. */
const kExt = fileURLToPath(import.meta.url).endsWith('.ts') ? '.ts' : '.js'

const kCommands: ReadonlyArray<readonly [string, string]> = [
  ['serve', 'Run the prediction server (HTTP, /ws, /docs). Settings as flags, env or --config.'],
  ['check-model FILE', 'Validate an ONNX model and its metadata (.json beside it), or a model set (.set.json), against the feature schema, with probe predictions; no server.'],
  ['replay', 'Replay historical candles through the serving feature code into a training matrix.'],
  ['bench', 'Run the benchmark suite against a local server (needs a source checkout: bench/).'],
]

function mainHelp (): string {
  const width = Math.max(...kCommands.map(([c]) => c.length)) + 2
  return [
    `Usage: ${kPackageName} <command> [options]`,
    '',
    'Commands:',
    ...kCommands.map(([c, d]) => `  ${c.padEnd(width)}${d}`),
    '',
    'Options:',
    '  -v, --version     Print the version and exit.',
    '  -h, --help        Print this help; `<command> --help` prints the command\'s.',
    '',
    'Exit codes: 0 success; 1 the work failed (model refused, server could not start,',
    'replay failed); 2 bad usage or invalid configuration; 130 interrupted.',
    '',
  ].join('\n')
}

/** One option line from the settings table, so flags, defaults and bounds match `serve --help`. */
function settingLine (key: keyof typeof kSettings): string {
  const spec: SettingSpec = kSettings[key]
  return `  --${spec.flag} <int>  ${spec.description} Must be ${describeType(spec)}. Default ${JSON.stringify(spec.default)}.`
}

function checkModelHelp (): string {
  return [
    `Usage: ${kPackageName} check-model FILE [--bar-ms <int>]`,
    '',
    'Reads FILE (an .onnx model) and the metadata beside it (same name, .json), checks the feature',
    'set version, the feature names and their order, bar_ms, the input and output names and',
    'shape, and runs a probe prediction, exactly as the server does before serving a model.',
    'FILE may be a model set (.set.json, docs/model-sets.md): every member is loaded and checked,',
    'then the set as a whole.',
    '',
    'Options:',
    settingLine('bar_ms'),
    '',
    'Exit codes: 0 the model would be served; 1 it would be refused (the reason is printed with',
    'its stable code: ERR_MODEL_LOAD or ERR_MODEL_INCOMPATIBLE); 2 bad usage.',
    '',
  ].join('\n')
}

async function checkModel (args: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { 'bar-ms': { type: 'string' }, help: { type: 'boolean', short: 'h' } } })
  } catch (err) {
    process.stderr.write(`check-model: ${(err as Error).message}\n`)
    return kExitUsage
  }
  if (parsed.values.help === true) { process.stdout.write(checkModelHelp()); return kExitOk }
  if (parsed.positionals.length !== 1) {
    process.stderr.write(`check-model: expected one FILE, got ${parsed.positionals.length}\n${checkModelHelp()}`)
    return kExitUsage
  }
  const spec = kSettings.bar_ms
  const barMs = parsed.values['bar-ms'] === undefined ? spec.default : Number(parsed.values['bar-ms'])
  if (!Number.isInteger(barMs) || barMs < spec.min! || barMs > spec.max!) {
    process.stderr.write(`check-model: --bar-ms must be ${describeType(spec)}\n`)
    return kExitUsage
  }
  const file = parsed.positionals[0]!
  // Loaded here, not at the top: --help and --version must not load onnxruntime.
  const { checkModelInput, readModelMetadata, metadataPathFor } = await import('../model/model-metadata.js')
  const { kMaxModelBytes, readRegularFile } = await import('../model/model-file.js')
  const { probeModel } = await import('../model/model-probe.js')
  const { isSetPath, loadModelSet } = await import('../model/model-set.js')
  const { kFeatureCount } = await import('../features/feature-spec.js')
  const { ServiceError } = await import('../errors.js')
  try {
    if (isSetPath(file)) {
      // A set is checked by loading it as the server does (one worker per member, no warm-up):
      // each member alone, then the set as a whole.
      const set = await loadModelSet({ setPath: file, barMs, memberWorkers: 1, maxBatchSize: 8, warmupRuns: 0 })
      const members = set.memberStats()
      await set.close()
      process.stdout.write(`ok: model set ${file}: set_version ${set.modelVersion}, ${members.length} members, bar_ms ${barMs}, probe predictions ok\n`)
      for (const m of members) process.stdout.write(`  member ${m.model_version}: ${m.input} input, weight ${m.weight}\n`)
      return kExitOk
    }
    const meta = await readModelMetadata(file)
    const input = checkModelInput(meta, barMs)
    const bytes = await readRegularFile(file, 'model', kMaxModelBytes)
    await probeModel(bytes, { modelPath: file, inputName: meta.input_name, outputName: meta.output_name, featureCount: kFeatureCount, input })
    const note = input.kind === 'tabular'
      ? `feature set ${meta.feature_set_version} (${meta.feature_names.length} features)`
      : `${input.kind} input [${meta.feature_names.join(', ')}] over ${input.window} bars (serves only as a member of a model set)`
    process.stdout.write(`ok: ${file} (metadata ${metadataPathFor(file)}): model_version ${meta.model_version}, ${note}, bar_ms ${barMs}, probe prediction ok\n`)
    return kExitOk
  } catch (err) {
    const code = err instanceof ServiceError ? `${err.code}: ` : ''
    process.stderr.write(`refused: ${code}${(err as Error).message}\n`)
    return kExitFailed
  }
}

/** Runs another entry point of the package as a child with the same Node flags; its status is ours. */
function delegate (script: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, script, ...args], { stdio: 'inherit' })
    const forward = (signal: NodeJS.Signals): void => { child.kill(signal) }
    process.on('SIGINT', forward)
    process.on('SIGTERM', forward)
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward)
      process.off('SIGTERM', forward)
      resolve(code ?? (signal === 'SIGINT' ? 130 : kExitFailed))
    })
  })
}

async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(mainHelp())
      return command === undefined ? kExitUsage : kExitOk
    case '-v':
    case '--version':
      process.stdout.write(`${kPackageVersion}\n`)
      return kExitOk
    case 'serve': {
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(renderHelp().replace(/^Usage: .*$/m, `Usage: ${kPackageName} serve [--config <file>] [--<setting> <value> ...]`) +
          '\nExit codes: 0 stopped cleanly (SIGTERM/SIGINT); 1 could not start (model, port); 2 invalid configuration.\n')
        return kExitOk
      }
      // In-process: serve.ts reads process.argv and owns the signals and the exit code from here.
      process.argv = [process.argv[0]!, join(kHere, `serve${kExt}`), ...rest]
      await import(pathToFileURL(join(kHere, `serve${kExt}`)).href)
      return -1
    }
    case 'check-model':
      return checkModel(rest)
    case 'replay':
      return delegate(join(kHere, `replay${kExt}`), rest)
    case 'bench': {
      // dist/src/cli -> dist/bench/run.js; src/cli -> bench/run.ts.
      const script = join(kHere, '..', '..', 'bench', `run${kExt}`)
      if (!existsSync(script) || !existsSync(join(kPackageRoot, 'bench', 'scenarios'))) {
        process.stderr.write('bench: the benchmark suite is not part of the installed package; run it from a source checkout (npm run bench)\n')
        return kExitUsage
      }
      return delegate(script, rest)
    }
    default:
      process.stderr.write(`${kPackageName}: unknown command "${command}"\n\n${mainHelp()}`)
      return kExitUsage
  }
}

main(process.argv.slice(2)).then(
  (code) => { if (code >= 0) process.exitCode = code },
  (err: unknown) => { process.stderr.write(`${kPackageName}: ${(err as Error)?.stack ?? String(err)}\n`); process.exitCode = kExitFailed },
)
