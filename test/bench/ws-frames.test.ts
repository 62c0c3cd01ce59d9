import * as flatbuffers from 'flatbuffers'
import t from 'tap'
import { bodyFor, kPredictBody, requestTemplate } from '../../bench/lib/request-bodies.js'
import {
  ServerFrameParser, clientFrame, clientFrameHeaderBytes, kOpBinary, kOpClose, kOpPing, kOpText, parseUpgradeResponse, upgradeRequest,
} from '../../bench/lib/ws-frames.js'
import { Body, Message, PredictBatch, PredictRequest } from '../../src/protocol/generated/prediction_generated.js'

function serverFrame (opcode: number, payload: Buffer, fin = true): Buffer {
  const n = payload.length
  const head = n < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, n])
    : n < 65_536 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 126, n >> 8, n & 0xff])
      : Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, 127, 0, 0, 0, 0]), Buffer.from([n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff])])
  return Buffer.concat([head, payload])
}

t.test('server frames parse whatever the chunking', async (t) => {
  const big = Buffer.alloc(70_000, 7)
  const mid = Buffer.alloc(300, 3)
  const stream = Buffer.concat([
    serverFrame(kOpBinary, Buffer.from('hello')),
    serverFrame(kOpText, mid),
    serverFrame(kOpPing, Buffer.from('p')),
    serverFrame(kOpBinary, big),
    serverFrame(kOpText, Buffer.from('frag-'), false), serverFrame(0, Buffer.from('ment')),
  ])
  for (const size of [1, 7, 300, stream.length]) {
    const parser = new ServerFrameParser()
    const got: Array<[string, number, number]> = []
    const sink = {
      message: (op: number, p: Buffer) => { got.push(['message', op, p.length]) },
      control: (op: number, p: Buffer) => { got.push(['control', op, p.length]) },
    }
    const errors: Array<Error | null> = []
    for (let i = 0; i < stream.length; i += size) errors.push(parser.push(stream.subarray(i, i + size), sink))
    t.ok(errors.every((e) => e === null), `no errors in chunks of ${size}`)
    t.same(got, [['message', 2, 5], ['message', 1, 300], ['control', 9, 1], ['message', 2, 70_000], ['message', 1, 9]], `chunks of ${size}`)
  }
  const parser = new ServerFrameParser()
  const sink = { message: () => {}, control: () => {} }
  t.match(parser.push(Buffer.from([0x82, 0x81, 0, 0, 0, 0, 1]), sink), /masked frame/)
  t.match(new ServerFrameParser().push(Buffer.from([0xC2, 0x00]), sink), /RSV/)
  t.match(new ServerFrameParser().push(Buffer.from([0x80, 0x00]), sink), /continuation/)
})

t.test('client frames: zero mask key, payload unchanged, all three length forms', async (t) => {
  for (const n of [0, 125, 126, 65_535, 65_536]) {
    const payload = Buffer.alloc(n, 9)
    const f = clientFrame(kOpBinary, payload)
    t.equal(f[0], 0x82)
    t.equal(f[1]! & 0x80, 0x80, 'masked bit set')
    t.equal(f.length, clientFrameHeaderBytes(n) + n, `length ${n}`)
    t.equal(f.readUInt32BE(clientFrameHeaderBytes(n) - 4), 0, 'mask key 0')
    t.ok(f.subarray(clientFrameHeaderBytes(n)).equals(payload))
  }
  t.equal(clientFrame(kOpClose, Buffer.alloc(0))[0], 0x88)
})

t.test('the upgrade answer is checked', async (t) => {
  const { bytes, expectedAccept } = upgradeRequest('127.0.0.1', 1, '/ws?format=json')
  t.match(bytes.toString('latin1'), /^GET \/ws\?format=json HTTP\/1\.1\r\n.*Sec-WebSocket-Version: 13\r\n\r\n$/s)
  const ok = Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${expectedAccept}\r\n\r\nXY`)
  t.equal(parseUpgradeResponse(ok, expectedAccept), ok.length - 2, 'frames start after the head')
  t.equal(parseUpgradeResponse(ok.subarray(0, 20), expectedAccept), -1, 'incomplete head')
  t.match(parseUpgradeResponse(Buffer.from('HTTP/1.1 503 Service Unavailable\r\n\r\n'), expectedAccept), /upgrade refused: HTTP\/1\.1 503/)
  t.match(parseUpgradeResponse(Buffer.from('HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: nope\r\n\r\n'), expectedAccept), /Accept/)
})

t.test('request templates carry each request id where the server reads it', async (t) => {
  const single = requestTemplate('ws-binary', '127.0.0.1', 1, '/ws', kPredictBody)
  if (single.kind !== 'ws') throw new Error('expected a ws template')
  for (const id of [1, 2049, 0xFFFFFFFF]) {
    const bytes = Buffer.from(single.ws.payload)
    bytes.writeUInt32LE(id, single.ws.idAt)
    const msg = Message.getRootAsMessage(new flatbuffers.ByteBuffer(bytes))
    t.equal(msg.bodyType(), Body.PredictRequest)
    const req = msg.body(new PredictRequest()) as PredictRequest
    t.equal(req.id(), id, `id ${id} patched`)
    t.equal(req.price(), 612.5)
    t.equal(req.symbol(), 'BNBUSDT')
  }
  const batch = requestTemplate('ws-binary', '127.0.0.1', 1, '/ws', bodyFor('/predict/batch', 4))
  if (batch.kind !== 'ws') throw new Error('expected a ws template')
  const bytes = Buffer.from(batch.ws.payload)
  bytes.writeUInt32LE(77, batch.ws.idAt)
  const b = Message.getRootAsMessage(new flatbuffers.ByteBuffer(bytes)).body(new PredictBatch()) as PredictBatch
  t.equal(b.id(), 77, 'batch id patched')
  t.equal(b.requestsLength(), 4)
  t.same([0, 1, 2, 3].map((i) => b.requests(i)!.id()), [0, 1, 2, 3], 'item ids untouched')

  const text = requestTemplate('ws-json', '127.0.0.1', 1, '/ws', kPredictBody)
  if (text.kind !== 'ws') throw new Error('expected a ws template')
  t.equal(text.ws.path, '/ws?format=json')
  const frame = JSON.parse(`${text.ws.textPrefix}123${text.ws.textSuffix}`) as Record<string, unknown>
  t.same(frame, { ...JSON.parse(kPredictBody) as object, type: 'predict_request', id: 123 })
})
