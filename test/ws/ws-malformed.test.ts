/**
 * Hostile frames on /ws (STYLE B8's table pattern): each row is sent on one connection, must be
 * answered with an INVALID_ARGUMENT error carrying the id when the frame let it be read, and the
 * connection must then still answer a good request.
 */
import * as flatbuffers from 'flatbuffers'
import t from 'tap'
import { FbClientCodec } from '../../src/client/wire-codec.js'
import { FbWriter } from '../../src/protocol/fb-codec.js'
import { Body, Message } from '../../src/protocol/generated/prediction_generated.js'
import { startServer } from '../helpers/start-server.js'
import { RawWs, wsUrl } from './ws-test-client.js'

const codec = new FbClientCodec()
const writer = new FbWriter()

function copy (bytes: Uint8Array): Uint8Array { return bytes.slice() }

/** Byte position of field `slot` (0-based) of the table at `pos`, or -1 when absent. */
function fieldPos (bytes: Uint8Array, pos: number, slot: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const vt = pos - view.getInt32(pos, true)
  const off = view.getUint16(vt + 4 + 2 * slot, true)
  return off === 0 ? -1 : pos + off
}

function root (bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true)
}

/** Position of the body table of a Message. */
function bodyPos (bytes: Uint8Array): number {
  const at = fieldPos(bytes, root(bytes), 1)
  return at + new DataView(bytes.buffer, bytes.byteOffset).getUint32(at, true)
}

function withUnionType (bytes: Uint8Array, type: number): Uint8Array {
  const out = copy(bytes)
  out[fieldPos(out, root(out), 0)] = type
  return out
}

function emptyMessage (): Uint8Array {
  const b = new flatbuffers.Builder(64)
  Message.startMessage(b)
  Message.finishMessageBuffer(b, Message.endMessage(b))
  return b.asUint8Array().slice()
}

function batchWithVectorLength (n: number): Uint8Array {
  const out = copy(codec.batch(31, [{ price: 1 }, { price: 2 }]))
  const body = bodyPos(out)
  const at = fieldPos(out, body, 1)
  const vec = at + new DataView(out.buffer).getUint32(at, true)
  new DataView(out.buffer).setUint32(vec, n, true)
  return out
}

function batchWithCorruptItem (): Uint8Array {
  const out = copy(codec.batch(32, [{ price: 1, symbol: 'OKAY' }, { price: 2 }]))
  const body = bodyPos(out)
  const at = fieldPos(out, body, 1)
  const vec = at + new DataView(out.buffer).getUint32(at, true)
  new DataView(out.buffer).setUint32(vec + 4 + 4, 0x7FFFFFF0, true) // item 1 points far outside
  return out
}

function requestWithBogusSymbolLength (): Uint8Array {
  const out = copy(codec.request(33, { price: 1, symbol: 'ABC' }))
  const body = bodyPos(out)
  const at = fieldPos(out, body, 14)
  const str = at + new DataView(out.buffer).getUint32(at, true)
  new DataView(out.buffer).setUint32(str, 0x7FFFFFF0, true)
  return out
}

interface Case {
  readonly name: string
  readonly frame: Uint8Array | string
  /** The id the error must carry, or null when the frame gives none. */
  readonly id: number | null
  /** Pattern for the error's detail (FastAPI issues), when there is one. */
  readonly detail?: unknown
  /** A batch frame whose items are answered one by one: the item that must fail. */
  readonly batchItem?: { readonly index: number, readonly detail: unknown }
}

const good = codec.request(1, { price: 612.5 })
const cases: Case[] = [
  { name: 'garbage bytes', frame: Buffer.from('this is not a flatbuffer at all'), id: null },
  { name: 'empty binary frame', frame: new Uint8Array(0), id: null },
  { name: 'too short for a Message', frame: new Uint8Array(11).fill(7), id: null },
  { name: 'right identifier, root offset outside', frame: (() => { const b = copy(good); new DataView(b.buffer).setUint32(0, 0xFFFF, true); return b })(), id: null },
  { name: 'truncated FlatBuffer (half a request)', frame: good.slice(0, Math.floor(good.length / 2)), id: null },
  { name: 'truncated FlatBuffer (last 8 bytes cut)', frame: good.slice(0, good.length - 8), id: null },
  { name: 'a Message with no body', frame: emptyMessage(), id: null },
  { name: 'wrong union type: a Prediction', frame: copy(writer.prediction(55, 0.6, 'v', 'A', 1, null)), id: 55 },
  { name: 'wrong union type: a Hello', frame: copy(writer.hello({ modelVersion: 'v', featureSetVersion: 'f', features: ['a'], maxInFlight: 1, maxMessageBytes: 1, maxBatchRequests: 1, defaultSymbol: 'A' })), id: null },
  { name: 'unknown union type 99', frame: withUnionType(good, 99), id: null },
  // Type confusion: the price's low 32 bits, read as the requests vector's offset, point outside.
  { name: 'request tagged as a batch', frame: withUnionType(codec.request(56, { price: 612.123456 }), Body.PredictBatch), id: 56 },
  { name: 'batch vector length 2^31-1', frame: batchWithVectorLength(0x7FFFFFFF), id: 31, detail: [{ loc: ['requests'] }] },
  { name: 'batch vector longer than the frame', frame: batchWithVectorLength(900), id: 31 },
  { name: 'batch item pointing outside the frame', frame: batchWithCorruptItem(), id: null, batchItem: { index: 1, detail: [{ loc: ['requests', 1], type: 'value_error.flatbuffers' }] } },
  { name: 'symbol string longer than the frame', frame: requestWithBogusSymbolLength(), id: 33, detail: [{ loc: ['symbol'], type: 'value_error.flatbuffers' }] },
  { name: 'JSON garbage', frame: '{"id": 7, "price": ', id: null },
  { name: 'JSON: not an object', frame: '[1, 2, 3]', id: null, detail: [{ loc: [], type: 'type_error.dict' }] },
  { name: 'JSON: a string', frame: '"hello"', id: null },
  { name: 'JSON: missing id', frame: '{"price": 612.5}', id: null, detail: [{ loc: ['id'], type: 'value_error.missing' }] },
  { name: 'JSON: id is a string', frame: '{"id": "7", "price": 612.5}', id: null, detail: [{ loc: ['id'] }] },
  { name: 'JSON: negative id', frame: '{"id": -1, "price": 612.5}', id: null },
  { name: 'JSON: id over uint32', frame: '{"id": 4294967296, "price": 612.5}', id: null },
  { name: 'JSON: fractional id', frame: '{"id": 1.5, "price": 612.5}', id: null },
  { name: 'JSON: unknown type', frame: '{"id": 3, "type": "hello"}', id: 3, detail: [{ loc: ['type'] }] },
  { name: 'JSON: price is a string', frame: '{"id": 4, "price": "612.5"}', id: 4, detail: [{ loc: ['price'], type: 'type_error.float' }] },
  { name: 'JSON: price 1e999 (Infinity)', frame: '{"id": 5, "price": 1e999}', id: 5, detail: [{ loc: ['price'], type: 'value_error.number.not_finite' }] },
  { name: 'JSON: price smuggled in __proto__', frame: '{"id": 6, "__proto__": {"price": 1}}', id: 6, detail: [{ loc: ['price'], type: 'value_error.missing' }] },
  { name: 'JSON: symbol is a number', frame: '{"id": 8, "price": 1, "symbol": 12}', id: 8, detail: [{ loc: ['symbol'], type: 'type_error.str' }] },
  { name: 'JSON: timestamp is a string', frame: '{"id": 9, "price": 1, "timestamp_ms": "now"}', id: 9, detail: [{ loc: ['timestamp_ms'] }] },
  // V8's JSON.parse is not recursive: deep nesting parses, and is refused as a wrong type.
  { name: 'JSON: deeply nested', frame: `{"id": 10, "price": ${'['.repeat(200_000)}${']'.repeat(200_000)}}`, id: 10, detail: [{ loc: ['price'], type: 'type_error.float' }] },
  { name: 'JSON: batch requests is not a list', frame: '{"id": 11, "type": "predict_batch", "requests": {}}', id: 11, detail: [{ loc: ['requests'], type: 'type_error.list' }] },
  { name: 'JSON: batch without requests', frame: '{"id": 12, "type": "predict_batch"}', id: 12, detail: [{ loc: ['requests'], type: 'value_error.missing' }] },
  { name: 'JSON: batch too long', frame: JSON.stringify({ id: 13, type: 'predict_batch', requests: new Array(1001).fill({ price: 1 }) }), id: 13, detail: [{ loc: ['requests'], type: 'value_error.list.max_items' }] },
]

t.test('malformed frames: an error with the id when readable, and the connection stays usable', async (t) => {
  const { url } = await startServer(t)
  const ws = await RawWs.open(wsUrl(url))
  t.teardown(() => { ws.close() })
  t.match(await ws.next(), { kind: 'hello' })
  let goodId = 1000
  for (const c of cases) {
    ws.send(c.frame)
    const answer = await ws.next()
    if (c.batchItem !== undefined) {
      t.match(answer, { kind: 'batch' }, `${c.name}: a batch result`)
      if (answer.kind === 'batch') {
        t.match(answer.results[c.batchItem.index], { ok: false, error: { wireCode: 'INVALID_ARGUMENT', detail: c.batchItem.detail } }, `${c.name}: the item fails`)
        t.match(answer.results[0], { ok: true }, `${c.name}: the other items are answered`)
      }
    } else {
      t.match(answer, { kind: 'error', id: c.id, error: { code: 'ERR_REMOTE', wireCode: 'INVALID_ARGUMENT' } }, `${c.name}: INVALID_ARGUMENT, id ${String(c.id)}`)
      t.equal(answer.binary, typeof c.frame !== 'string', `${c.name}: answered in the frame's format`)
      if (c.detail !== undefined && answer.kind === 'error') t.match(answer.error.detail, c.detail, `${c.name}: detail`)
    }
    ws.send(codec.request(++goodId, { price: 612.5, symbol: 'STILL_OK' }))
    t.match(await ws.next(), { kind: 'prediction', id: goodId, prediction: { symbol: 'STILL_OK' } }, `${c.name}: the connection still serves`)
  }
})
