/**
 * A client generated from the served document by a real generator (openapi-typescript) type-checks
 * against what the real server answers: the test collects real bodies, writes them as literals
 * typed with the generated `paths`, and runs tsc. Also checks the generated Prediction and the
 * client library's `Prediction` are the same type, and that a wrong body is refused (so the check
 * can fail).
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { predictionJson } from '../../src/protocol/json-answer.js'
import { getJson, postJson, startServer } from '../helpers/start-server.js'

const run = promisify(execFile)
const require = createRequire(import.meta.url)
const kGenerator = join(resolve(require.resolve('openapi-typescript/package.json'), '..'), 'bin', 'cli.js')
const kTsc = require.resolve('typescript/bin/tsc')
const kGood = { price: 612.5, open: 611, high: 613, low: 610.5, volume: 10, symbol: 'GENUSDT' }
/** A model set's answer as the server writes it (src/protocol/json-answer.ts); the default server serves one model. */
const kSetAnswer = JSON.parse(predictionJson(0.58, '"set_v1"', 'GENUSDT', 1.25, [
  { modelVersion: 'xgb_v1', modelVersionJson: '"xgb_v1"', probability: 0.58, weight: 1, status: 'used' },
  { modelVersion: 'gaf_cnn_v1', modelVersionJson: '"gaf_cnn_v1"', probability: Number.NaN, weight: 0, status: 'no_history' },
]))

async function tsc (dir: string, file: string): Promise<{ ok: boolean, out: string }> {
  try {
    await run(process.execPath, [kTsc, '--noEmit', '--strict', '--skipLibCheck', '--target', 'ES2022',
      '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--types', 'node', join(dir, file)], { timeout: 120_000, cwd: process.cwd() })
    return { ok: true, out: '' }
  } catch (err) {
    return { ok: false, out: String((err as { stdout?: string }).stdout ?? err) }
  }
}

t.test('openapi-typescript client type-checks against real answers', async (t) => {
  const { url } = await startServer(t)
  const dir = mkdtempSync(join(tmpdir(), 'openapi-client-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const doc = await getJson(`${url}/openapi.json`)
  writeFileSync(join(dir, 'openapi.json'), JSON.stringify(doc.body))
  await run(process.execPath, [kGenerator, join(dir, 'openapi.json'), '-o', join(dir, 'api.d.ts')], { timeout: 60_000 })

  const answers = {
    predict200: (await postJson(`${url}/predict`, kGood)).body,
    predict422: (await postJson(`${url}/predict`, {})).body,
    predict400: (await postJson(`${url}/predict`, '{', true)).body,
    batch200: (await postJson(`${url}/predict/batch`, { requests: [kGood, { price: -1 }] })).body,
    health200: (await getJson(`${url}/health`)).body,
    ready200: (await getJson(`${url}/health/ready`)).body,
    metrics200: (await getJson(`${url}/metrics`)).body,
  }
  const lit = (v: unknown): string => JSON.stringify(v)
  const clientPrediction = resolve('src/client/wire-codec.ts').replace(/\.ts$/, '.js')
  writeFileSync(join(dir, 'use.ts'), `
import type { paths, components } from './api.js'
import type { Prediction as ClientPrediction } from ${lit(clientPrediction)}
type Json<P extends keyof paths, M extends keyof paths[P], S extends number> =
  paths[P][M] extends { responses: infer R } ? S extends keyof R ? R[S] extends { content: { 'application/json': infer B } } ? B : never : never : never
type Body<P extends keyof paths> = paths[P]['post'] extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never

export const request: Body<'/predict'> = ${lit(kGood)}
export const batchRequest: Body<'/predict/batch'> = { requests: [${lit(kGood)}] }
export const predict200: Json<'/predict', 'post', 200> = ${lit(answers.predict200)}
export const predict422: Json<'/predict', 'post', 422> = ${lit(answers.predict422)}
export const predict400: Json<'/predict', 'post', 400> = ${lit(answers.predict400)}
export const batch200: Json<'/predict/batch', 'post', 200> = ${lit(answers.batch200)}
export const health200: Json<'/health', 'get', 200> = ${lit(answers.health200)}
export const ready200: Json<'/health/ready', 'get', 200> = ${lit(answers.ready200)}
export const metrics200: Json<'/metrics', 'get', 200> = ${lit(answers.metrics200)}

// The generated Prediction and the client library's are the same shape, both ways.
type Generated = components['schemas']['Prediction']
export const a: ClientPrediction = predict200 satisfies Generated
export const b: Generated = a
// A model set's answer (issue 14): the components list, a left-out member's null included.
export const setAnswer: ClientPrediction = ${lit(kSetAnswer)} satisfies Json<'/predict', 'post', 200>
export const c: Generated = setAnswer
`)
  const good = await tsc(dir, 'use.ts')
  t.ok(good.ok, `real answers type-check against the generated client\n${good.out}`)

  writeFileSync(join(dir, 'bad.ts'), `
import type { components } from './api.js'
export const p: components['schemas']['Prediction'] = { ...${lit(answers.predict200)}, direction: 'UP' }
export const r: components['schemas']['PredictRequest'] = { volume: 1 }
export const s: components['schemas']['Prediction'] = { ...${lit(kSetAnswer)}, components: [{ model_version: 'm', probability_long: 0.5, weight: 1, status: 'skipped' }] }
`)
  const bad = await tsc(dir, 'bad.ts')
  t.notOk(bad.ok, 'a wrong direction and a request without price are type errors')
  t.match(bad.out, /"UP"/)
  t.match(bad.out, /price/)
  t.match(bad.out, /"skipped"/, 'an unknown component status is a type error')
})
