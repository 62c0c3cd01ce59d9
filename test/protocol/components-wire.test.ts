/**
 * `components` on the wire (issue 14: a model set's answer carries each member's part): the JSON
 * encoders (HTTP bodies, /ws text frames) and the FlatBuffers writer, read back by the client
 * library's decoders. A single model's answer (components null) must stay exactly the phase-1
 * answer: the literal strings below are what the server wrote before model sets.
 */
import t from 'tap'
import type { Component } from '../../src/batching/pending-request.js'
import { decodeServerBinary, decodeServerText } from '../../src/client/wire-codec.js'
import { FbWriter } from '../../src/protocol/fb-codec.js'
import { batchResultText, httpBatchJson, predictionJson, predictionText, type HttpBatchSource } from '../../src/protocol/json-answer.js'
import type { Prediction } from '../../src/protocol/messages.js'

/** As the set loader builds a member's part: modelVersionJson is JSON.stringify(modelVersion), once. */
function part (modelVersion: string, probability: number, weight: number, status: Component['status']): Component {
  return { modelVersion, modelVersionJson: JSON.stringify(modelVersion), probability, weight, status }
}

const kSet: readonly Component[] = [
  part('xgb_v1', 0.51234567, 0.7000000001, 'used'),
  part('gaf_cnn_v1', Number.NaN, 0, 'no_history'),
  part('tcn_v0', Number.NaN, 0, 'failed'),
  part('lin_v2', 0.25, 0.2999999999, 'used'),
]
const kSetJson = '"components":[' +
  '{"model_version":"xgb_v1","probability_long":0.512346,"weight":0.7,"status":"used"},' +
  '{"model_version":"gaf_cnn_v1","probability_long":null,"weight":0,"status":"no_history"},' +
  '{"model_version":"tcn_v0","probability_long":null,"weight":0,"status":"failed"},' +
  '{"model_version":"lin_v2","probability_long":0.25,"weight":0.3,"status":"used"}]'
const kSetDecoded = [
  { model_version: 'xgb_v1', probability_long: 0.512346, weight: 0.7, status: 'used' },
  { model_version: 'gaf_cnn_v1', probability_long: null, weight: 0, status: 'no_history' },
  { model_version: 'tcn_v0', probability_long: null, weight: 0, status: 'failed' },
  { model_version: 'lin_v2', probability_long: 0.25, weight: 0.3, status: 'used' },
]

function predictionOf (m: ReturnType<typeof decodeServerBinary>): Prediction {
  if (m.kind !== 'prediction') throw new Error(`expected a prediction, got ${m.kind}`)
  return m.prediction
}

t.test('a single model answer is the phase-1 answer byte for byte: no components key', async (t) => {
  t.equal(predictionJson(0.7234567, '"xgb_v1"', 'BNBUSDT', 0.41234, null),
    '{"direction":"LONG","confidence":0.723457,"probability_long":0.723457,"model_version":"xgb_v1","symbol":"BNBUSDT","latency_ms":0.412}')
  t.equal(predictionText(9, 0.25, '"xgb_v1"', 'X', 1, null),
    '{"type":"prediction","id":9,"direction":"SHORT","confidence":0.75,"probability_long":0.25,"model_version":"xgb_v1","symbol":"X","latency_ms":1}')
  const fromText = predictionOf(decodeServerText(predictionText(9, 0.25, '"xgb_v1"', 'X', 1, null)))
  const fromBinary = predictionOf(decodeServerBinary(new FbWriter().prediction(9, 0.25, 'xgb_v1', 'X', 1, null)))
  t.notOk('components' in fromText, 'text: no components key')
  t.notOk('components' in fromBinary, 'binary: no components key')
})

t.test('a set answer appends components after the existing fields (HTTP body and text frame)', async (t) => {
  const http = predictionJson(0.44, '"set_v1"', 'BTCUSDT', 2.5, kSet)
  t.equal(http,
    `{"direction":"SHORT","confidence":0.56,"probability_long":0.44,"model_version":"set_v1","symbol":"BTCUSDT","latency_ms":2.5,${kSetJson}}`)
  const text = predictionText(3, 0.44, '"set_v1"', 'BTCUSDT', 2.5, kSet)
  t.equal(text, `{"type":"prediction","id":3,${http.slice(1)}`, 'the text frame is the HTTP answer with type and id in front')
  t.same(JSON.parse(http).components, kSetDecoded)
  t.same(predictionOf(decodeServerText(text)).components, kSetDecoded, 'the client decoder reads them')
})

t.test('FlatBuffers: components round trip, left-out members read as probability null, weight 0', async (t) => {
  const w = new FbWriter()
  const p = predictionOf(decodeServerBinary(w.prediction(7, 0.44, 'set_v1', 'BTCUSDT', 2.5, kSet)))
  t.same(p, {
    direction: 'SHORT', confidence: 0.56, probability_long: 0.44, model_version: 'set_v1', symbol: 'BTCUSDT', latency_ms: 2.5,
    components: kSetDecoded,
  })
  t.same(p, predictionOf(decodeServerText(predictionText(7, 0.44, '"set_v1"', 'BTCUSDT', 2.5, kSet))), 'binary and text decode to the same value')
  // A member whose probability is exactly 0 is not "left out": the optional scalar keeps 0 apart from absent.
  const zero = predictionOf(decodeServerBinary(w.prediction(8, 0.1, 's', 'A', 1, [part('m', 0, 1, 'used')])))
  t.same(zero.components, [{ model_version: 'm', probability_long: 0, weight: 1, status: 'used' }])
  const empty = predictionOf(decodeServerBinary(w.prediction(8, 0.1, 's', 'A', 1, [])))
  t.same(empty.components, [], 'an empty list stays an empty list (present), not absent')
})

t.test('batches: per-item components, single-model items and failed items side by side', async (t) => {
  const other: readonly Component[] = [part('xgb_v1', 0.9, 1, 'used'), part('gaf_cnn_v1', Number.NaN, 0, 'failed')]
  const src: HttpBatchSource = {
    id: 21,
    size: 4,
    itemIds: Uint32Array.of(0, 1, 2, 3),
    failed: Uint8Array.of(0, 0, 1, 0),
    probability: Float64Array.of(0.44, 0.6, 0, 0.9),
    latencyMs: Float64Array.of(1, 2, 0, 3),
    symbols: ['A', 'B', '', 'C'],
    modelVersions: ['set_v1', 'xgb_v1', '', 'set_v1'],
    modelVersionsJson: ['"set_v1"', '"xgb_v1"', '""', '"set_v1"'],
    components: [kSet, null, null, other],
    codes: ['ERR_OVERLOADED', 'ERR_OVERLOADED', 'ERR_OVERLOADED', 'ERR_OVERLOADED'],
    wireCodes: ['OVERLOADED', 'OVERLOADED', 'OVERLOADED', 'OVERLOADED'],
    messages: ['', '', 'Overloaded', ''],
    details: [null, null, null, null],
  }
  const http = JSON.parse(httpBatchJson(src)).predictions
  t.same(http[0].components, kSetDecoded)
  t.notOk('components' in http[1], 'a single model item has no components key')
  t.equal(http[2].error, 'OVERLOADED')
  t.same(http[3].components, [{ model_version: 'xgb_v1', probability_long: 0.9, weight: 1, status: 'used' },
    { model_version: 'gaf_cnn_v1', probability_long: null, weight: 0, status: 'failed' }])

  const w = new FbWriter()
  for (const [name, m] of [['binary', decodeServerBinary(w.batchResult(src))], ['text', decodeServerText(batchResultText(src, src.modelVersionsJson))]] as const) {
    if (m.kind !== 'batch') { t.fail(`${name}: not a batch`); continue }
    t.equal(m.results.length, 4)
    const [a, b, c, d] = m.results
    t.same(a?.ok === true ? a.prediction.components : 'not ok', kSetDecoded, `${name}: item 0`)
    t.ok(b?.ok === true && !('components' in b.prediction), `${name}: item 1 (single model) has none`)
    t.equal(c?.ok, false, `${name}: item 2 failed`)
    // Item 3's components are written after item 0's and item 1's tables: the writer's scratch
    // arrays for items and for components must not clobber each other.
    t.same(d?.ok === true ? d.prediction.components?.map((x) => x.status) : 'not ok', ['used', 'failed'], `${name}: item 3`)
  }
})

t.test('hostile: versions with quotes and unicode stay valid JSON; NaN and infinities never reach JSON', async (t) => {
  const versions = ['a"b\\c', 'ünïcødé-版本-🚀', 'line\nbreak\u2028sep', 'lone\uD800surrogate', '</script>', '']
  const parts = versions.map((v, i) => part(v, i % 2 === 0 ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY, Number.NaN, 'used'))
  parts.push(part('nan', Number.NaN, 0, 'no_history'))
  for (const text of [predictionJson(0.5, '"set"', 'A', 1, parts), predictionText(1, 0.5, '"set"', 'A', 1, parts)]) {
    t.notMatch(text, /NaN|Infinity/, 'no NaN or Infinity literal')
    const parsed = JSON.parse(text) as { components: Array<{ model_version: string, probability_long: unknown, weight: unknown }> }
    t.same(parsed.components.map((c) => c.model_version), [...versions.map((v) => JSON.parse(JSON.stringify(v))), 'nan'], 'every version reads back')
    t.ok(parsed.components.every((c) => c.probability_long === null && c.weight === 0), 'non-finite probability -> null, non-finite weight -> 0')
  }
  const fb = predictionOf(decodeServerBinary(new FbWriter().prediction(1, 0.5, 'set', 'A', 1, parts))).components ?? []
  t.same(fb.map((c) => c.model_version), [...versions.map((v) => new TextDecoder().decode(new TextEncoder().encode(v))), 'nan'],
    'binary: UTF-8 versions read back (a lone surrogate becomes U+FFFD, as UTF-8 must)')
  t.ok(fb.every((c) => c.probability_long === null && c.weight === 0), 'binary: the same null and 0')
})

t.test('decoders: a status the client does not know reads as failed, other fields as given', async (t) => {
  const text = '{"type":"prediction","id":1,"direction":"LONG","confidence":0.6,"probability_long":0.6,"model_version":"s","symbol":"A","latency_ms":1,' +
    '"components":[{"model_version":"m","probability_long":null,"weight":0,"status":"stale"}]}'
  t.same(predictionOf(decodeServerText(text)).components, [{ model_version: 'm', probability_long: null, weight: 0, status: 'failed' }])
})
