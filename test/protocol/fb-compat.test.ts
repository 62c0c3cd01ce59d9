/**
 * Backward compatibility of Prediction.components (issue 14) with clients built before it: the
 * phase-1 generated code, frozen in test/fixtures/fb-generated-v1/, stands for every such client
 * (the Rust bot's flatc output reads the same bytes the same way).
 *  - a set's answers (Prediction and BatchResult with components) read with the old code give
 *    every old field intact;
 *  - a single model's answers are byte for byte what the old code writes;
 *  - requests built with the old code are served by the new server (real server, real model, /ws);
 *  - the new decoder reads an old-style Prediction as having no components.
 */
import * as flatbuffers from 'flatbuffers'
import t from 'tap'
import WebSocket from 'ws'
import type { Component } from '../../src/batching/pending-request.js'
import { decodeServerBinary } from '../../src/client/wire-codec.js'
import { FbWriter, type BatchResultSource } from '../../src/protocol/fb-codec.js'
import * as v1 from '../fixtures/fb-generated-v1/prediction_generated.js'
import { startServer } from '../helpers/start-server.js'
import { marketRequest, rng, wsUrl } from '../ws/ws-test-client.js'

function part (modelVersion: string, probability: number, weight: number, status: Component['status']): Component {
  return { modelVersion, modelVersionJson: JSON.stringify(modelVersion), probability, weight, status }
}
const kSet: readonly Component[] = [part('xgb_v1', 0.61, 0.7, 'used'), part('gaf_cnn_v1', 0.4, 0.3, 'used'), part('tcn', Number.NaN, 0, 'no_history')]

/** A Prediction as the old code reads it: every phase-1 field. */
function readV1Prediction (p: v1.Prediction): Record<string, unknown> {
  return {
    id: p.id(), direction: p.direction(), confidence: p.confidence(), probabilityLong: p.probabilityLong(),
    modelVersion: p.modelVersion(), symbol: p.symbol(), latencyMs: p.latencyMs(),
  }
}

function v1Message (bytes: Uint8Array): v1.Message {
  const bb = new flatbuffers.ByteBuffer(bytes)
  if (!v1.Message.bufferHasIdentifier(bb)) throw new Error('not a Message')
  return v1.Message.getRootAsMessage(bb)
}

/** What the phase-1 FbWriter wrote for a Prediction, with the phase-1 generated code, in its order. */
function v1PredictionTable (b: flatbuffers.Builder, id: number, p: number, confidence: number, version: string, symbol: string, latencyMs: number): number {
  const enc = new TextEncoder()
  const ver = b.createString(enc.encode(version))
  const sym = b.createString(enc.encode(symbol))
  v1.Prediction.startPrediction(b)
  v1.Prediction.addId(b, id)
  v1.Prediction.addDirection(b, p >= 0.5 ? v1.Direction.LONG : v1.Direction.SHORT)
  v1.Prediction.addConfidence(b, confidence)
  v1.Prediction.addProbabilityLong(b, p)
  v1.Prediction.addModelVersion(b, ver)
  v1.Prediction.addSymbol(b, sym)
  v1.Prediction.addLatencyMs(b, latencyMs)
  return v1.Prediction.endPrediction(b)
}

function batchSource (components: Array<readonly Component[] | null>): BatchResultSource {
  return {
    id: 77,
    size: 3,
    itemIds: Uint32Array.of(5, 6, 7),
    failed: Uint8Array.of(0, 1, 0),
    probability: Float64Array.of(0.55, 0, 0.2),
    latencyMs: Float64Array.of(1.5, 0, 2.25),
    symbols: ['BTCUSDT', '', 'ETHUSDT'],
    modelVersions: ['set_v1', '', 'set_v1'],
    components,
    wireCodes: ['OVERLOADED', 'DEADLINE_EXCEEDED', 'OVERLOADED'],
    messages: ['', 'Deadline exceeded', ''],
    details: [null, null, null],
  }
}

t.test('a set answer with components reads with the phase-1 code, every old field intact', async (t) => {
  const w = new FbWriter()
  const msg = v1Message(w.prediction(42, 0.55, 'set_v1', 'BTCUSDT', 1.2345, kSet))
  t.equal(msg.bodyType(), v1.Body.Prediction)
  const p = msg.body(new v1.Prediction()) as v1.Prediction
  t.same(readV1Prediction(p), {
    id: 42, direction: v1.Direction.LONG, confidence: 0.55, probabilityLong: 0.55, modelVersion: 'set_v1', symbol: 'BTCUSDT', latencyMs: 1.235,
  })

  const batch = v1Message(w.batchResult(batchSource([kSet, null, kSet])))
  t.equal(batch.bodyType(), v1.Body.BatchResult)
  const r = batch.body(new v1.BatchResult()) as v1.BatchResult
  t.equal(r.id(), 77)
  t.equal(r.itemsLength(), 3)
  const item = new v1.BatchItem()
  t.same(readV1Prediction(r.items(0, item)!.prediction(new v1.Prediction())!), {
    id: 5, direction: v1.Direction.LONG, confidence: 0.55, probabilityLong: 0.55, modelVersion: 'set_v1', symbol: 'BTCUSDT', latencyMs: 1.5,
  })
  t.equal(r.items(1, item)!.prediction(new v1.Prediction()), null)
  const e = r.items(1, item)!.error(new v1.ErrorResponse())!
  t.same([e.id(), e.idKnown(), e.code(), e.message()], [6, true, v1.ErrorCode.DEADLINE_EXCEEDED, 'Deadline exceeded'])
  t.same(readV1Prediction(r.items(2, item)!.prediction(new v1.Prediction())!), {
    id: 7, direction: v1.Direction.SHORT, confidence: 0.8, probabilityLong: 0.2, modelVersion: 'set_v1', symbol: 'ETHUSDT', latencyMs: 2.25,
  })
})

t.test('a single model answer is byte for byte what the phase-1 code writes', async (t) => {
  const b = new flatbuffers.Builder(64)
  const body = v1PredictionTable(b, 9, 0.723457, 0.723457, 'xgb_v1', 'BNBUSDT', 0.412)
  v1.Message.finishMessageBuffer(b, v1.Message.createMessage(b, v1.Body.Prediction, body))
  const expected = b.asUint8Array().slice()
  t.same([...new FbWriter().prediction(9, 0.7234567, 'xgb_v1', 'BNBUSDT', 0.41234, null)], [...expected], 'Prediction')

  // The batch, in the phase-1 BatchResult writer's order: per item its Prediction or its
  // ErrorResponse, then its BatchItem; then the vector and the BatchResult.
  const src = batchSource([null, null, null])
  const bb = new flatbuffers.Builder(64)
  const items: number[] = []
  for (let i = 0; i < src.size; i++) {
    let pred = 0
    let err = 0
    if (src.failed[i] === 0) {
      const p = src.probability[i]!
      pred = v1PredictionTable(bb, src.itemIds[i]!, p, p >= 0.5 ? p : 1 - p, src.modelVersions[i]!, src.symbols[i]!, src.latencyMs[i]!)
    } else {
      const msg = bb.createString(src.messages[i]!)
      v1.ErrorResponse.startErrorResponse(bb)
      v1.ErrorResponse.addId(bb, src.itemIds[i]!)
      v1.ErrorResponse.addIdKnown(bb, true)
      v1.ErrorResponse.addCode(bb, v1.ErrorCode.DEADLINE_EXCEEDED)
      v1.ErrorResponse.addMessage(bb, msg)
      err = v1.ErrorResponse.endErrorResponse(bb)
    }
    v1.BatchItem.startBatchItem(bb)
    if (pred !== 0) v1.BatchItem.addPrediction(bb, pred)
    if (err !== 0) v1.BatchItem.addError(bb, err)
    items.push(v1.BatchItem.endBatchItem(bb))
  }
  const vector = v1.BatchResult.createItemsVector(bb, items)
  v1.BatchResult.startBatchResult(bb)
  v1.BatchResult.addId(bb, src.id)
  v1.BatchResult.addItems(bb, vector)
  v1.Message.finishMessageBuffer(bb, v1.Message.createMessage(bb, v1.Body.BatchResult, v1.BatchResult.endBatchResult(bb)))
  t.same([...new FbWriter().batchResult(src)], [...bb.asUint8Array()], 'BatchResult')
})

t.test('the new decoder reads a phase-1 Prediction as having no components', async (t) => {
  const b = new flatbuffers.Builder(64)
  const body = v1PredictionTable(b, 3, 0.25, 0.75, 'xgb_v1', 'X', 1)
  v1.Message.finishMessageBuffer(b, v1.Message.createMessage(b, v1.Body.Prediction, body))
  const m = decodeServerBinary(b.asUint8Array())
  t.same(m, {
    kind: 'prediction',
    id: 3,
    prediction: { direction: 'SHORT', confidence: 0.75, probability_long: 0.25, model_version: 'xgb_v1', symbol: 'X', latency_ms: 1 },
  })
  t.notOk(m.kind === 'prediction' && 'components' in m.prediction, 'no components key')
})

/** A /ws client that keeps the raw binary frames (the test decodes them with the phase-1 code). */
async function openRaw (url: string): Promise<{ socket: WebSocket, next: () => Promise<Uint8Array> }> {
  const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 20_000 })
  const queue: Uint8Array[] = []
  let waiter: ((b: Uint8Array) => void) | null = null
  socket.on('message', (data: Buffer) => {
    const bytes = new Uint8Array(data)
    if (waiter !== null) { const w = waiter; waiter = null; w(bytes) } else queue.push(bytes)
  })
  await new Promise<void>((resolve, reject) => { socket.once('open', () => { resolve() }); socket.once('error', reject) })
  const next = (): Promise<Uint8Array> => {
    const q = queue.shift()
    if (q !== undefined) return Promise.resolve(q)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { waiter = null; reject(new Error('no frame within 20 s')) }, 20_000)
      waiter = (b) => { clearTimeout(timer); resolve(b) }
    })
  }
  return { socket, next }
}

/** A PredictRequest table built with the phase-1 code, from HTTP field names. */
function v1Request (b: flatbuffers.Builder, id: number, r: Record<string, number | string>): number {
  const sym = b.createString(String(r.symbol))
  const n = (k: string): number => r[k] as number
  v1.PredictRequest.startPredictRequest(b)
  v1.PredictRequest.addId(b, id)
  v1.PredictRequest.addPrice(b, n('price'))
  v1.PredictRequest.addOpen(b, n('open'))
  v1.PredictRequest.addHigh(b, n('high'))
  v1.PredictRequest.addLow(b, n('low'))
  v1.PredictRequest.addVolume(b, n('volume'))
  v1.PredictRequest.addBidVolume(b, n('bid_volume'))
  v1.PredictRequest.addAskVolume(b, n('ask_volume'))
  v1.PredictRequest.addBestBid(b, n('best_bid'))
  v1.PredictRequest.addBestAsk(b, n('best_ask'))
  v1.PredictRequest.addBidDepth5(b, n('bid_depth_5'))
  v1.PredictRequest.addAskDepth5(b, n('ask_depth_5'))
  v1.PredictRequest.addBtcPrice(b, n('btc_price'))
  v1.PredictRequest.addFundingRate(b, n('funding_rate'))
  v1.PredictRequest.addSymbol(b, sym)
  v1.PredictRequest.addTimestampMs(b, n('timestamp_ms'))
  return v1.PredictRequest.endPredictRequest(b)
}

t.test('requests built with the phase-1 code are served by the new server, answers read with it', async (t) => {
  const { url } = await startServer(t)
  const { socket, next } = await openRaw(wsUrl(url))
  t.teardown(() => { socket.terminate() })
  const hello = v1Message(await next())
  t.equal(hello.bodyType(), v1.Body.Hello)
  const modelVersion = (hello.body(new v1.Hello()) as v1.Hello).modelVersion()
  t.type(modelVersion, 'string')

  const rand = rng(14)
  const b = new flatbuffers.Builder(512)
  const single = marketRequest('COMPAT_A', rand)
  v1.Message.finishMessageBuffer(b, v1.Message.createMessage(b, v1.Body.PredictRequest, v1Request(b, 501, single)))
  socket.send(b.asUint8Array().slice())
  const answer = v1Message(await next())
  t.equal(answer.bodyType(), v1.Body.Prediction, 'a Prediction')
  const p = answer.body(new v1.Prediction()) as v1.Prediction
  t.equal(p.id(), 501)
  t.equal(p.symbol(), 'COMPAT_A')
  t.equal(p.modelVersion(), modelVersion)
  t.ok(p.probabilityLong() >= 0 && p.probabilityLong() <= 1, 'a probability')
  t.equal(p.direction(), p.probabilityLong() >= 0.5 ? v1.Direction.LONG : v1.Direction.SHORT)

  b.clear()
  const reqs = [0, 1, 2].map((i) => v1Request(b, i, marketRequest(`COMPAT_${i}`, rand)))
  const vector = v1.PredictBatch.createRequestsVector(b, reqs)
  v1.PredictBatch.startPredictBatch(b)
  v1.PredictBatch.addId(b, 502)
  v1.PredictBatch.addRequests(b, vector)
  v1.Message.finishMessageBuffer(b, v1.Message.createMessage(b, v1.Body.PredictBatch, v1.PredictBatch.endPredictBatch(b)))
  socket.send(b.asUint8Array().slice())
  const batch = v1Message(await next())
  t.equal(batch.bodyType(), v1.Body.BatchResult, 'a BatchResult')
  const r = batch.body(new v1.BatchResult()) as v1.BatchResult
  t.equal(r.id(), 502)
  t.equal(r.itemsLength(), 3)
  for (let i = 0; i < 3; i++) {
    const item = r.items(i, new v1.BatchItem())!.prediction(new v1.Prediction())
    t.equal(item?.symbol(), `COMPAT_${i}`, `item ${i} answered in order`)
    t.equal(item?.id(), i)
  }
})
