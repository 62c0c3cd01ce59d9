/**
 * One WebSocket connection of the generator to the server's /ws, pipelined: up to `capacity`
 * requests in flight, each with its own id, answered in any order (CONTRACT.md, "WebSocket").
 * Raw `net` socket and bench/lib/ws-frames.ts, for the same reason as HTTP: a prebuilt frame per
 * request (the id patched in) and answers read only for their id and outcome.
 *
 * In-flight requests live in slot tables, no allocation per request:
 *
 *   slot:      0      1      2     ...  capacity-1
 *   ids        id     id     id          (0 when free)
 *   originMs   intended (open) or actual (closed) send time
 *   sentMs     actual send time, for the timeout sweep
 *   measured   1 if the request counts (sent in the window)
 *
 *   id = sequence(21 bits) * 2048 + slot  -> uint32; an answer finds its slot as id % 2048, and a
 *   late answer to a timed-out request is recognised (the slot's id moved on) and ignored.
 *
 * The first message after the upgrade is the server's hello; its max_in_flight caps the depth.
 * Writes made while handling one incoming chunk, or one burst of the open-loop schedule, are
 * corked into one syscall.
 */

import net from 'node:net'
import { performance } from 'node:perf_hooks'
import * as flatbuffers from 'flatbuffers'
import {
  BatchItem, BatchResult, Body, ErrorResponse, Hello, Message, Prediction,
} from '../../src/protocol/generated/prediction_generated.js'
import { kConnectTimeoutMs, reconnectDelayMs, type GenConnection, type RunHooks } from './gen-connection.js'
import type { WsTemplate } from './load-types.js'
import {
  ServerFrameParser, clientFrame, clientFrameHeaderBytes, kOpBinary, kOpClose, kOpPing, kOpPong, kOpText,
  parseUpgradeResponse, upgradeRequest, type FrameSink,
} from './ws-frames.js'

const kMaxDepth = 2048
const kWireCodes = ['INVALID_ARGUMENT', 'MODEL_NOT_LOADED', 'OVERLOADED', 'DEADLINE_EXCEEDED', 'INTERNAL']
const kTextHead = /^\{"type":"([a-z_]+)","id":(\d+|null)/
const kTextCode = /"code":"([A-Z_]+)"/

// Reused accessors: decoding an answer allocates only the ByteBuffer.
const kMessage = new Message()
const kPrediction = new Prediction()
const kError = new ErrorResponse()
const kBatch = new BatchResult()
const kItem = new BatchItem()
const kHello = new Hello()

export class WsConnection implements GenConnection, FrameSink {
  capacity: number
  inFlight: number
  ready: boolean
  connecting: boolean
  private readonly hooks: RunHooks
  private readonly host: string
  private readonly port: number
  private readonly template: WsTemplate
  private readonly depth: number
  private readonly parser: ServerFrameParser
  private socket: net.Socket | null
  private upgraded: boolean
  private expectedAccept: string
  private head: Buffer | null
  private corked: boolean
  private attempts: number
  private lastError: string | null
  private seq: number
  private readonly ids: Uint32Array
  private readonly originMs: Float64Array
  private readonly sentMs: Float64Array
  private readonly measured: Uint8Array
  private readonly freeSlots: Int32Array
  private freeTop: number
  /** Binary template frame (header + payload) with the id at idAt; null for text. */
  private readonly binaryFrame: Buffer | null
  private readonly idAt: number

  constructor (hooks: RunHooks, host: string, port: number, template: WsTemplate, depth: number) {
    this.capacity = 0
    this.inFlight = 0
    this.ready = false
    this.connecting = false
    this.hooks = hooks
    this.host = host
    this.port = port
    this.template = template
    this.depth = Math.min(depth, kMaxDepth)
    this.parser = new ServerFrameParser()
    this.socket = null
    this.upgraded = false
    this.expectedAccept = ''
    this.head = null
    this.corked = false
    this.attempts = 0
    this.lastError = null
    this.seq = 0
    this.ids = new Uint32Array(this.depth)
    this.originMs = new Float64Array(this.depth)
    this.sentMs = new Float64Array(this.depth)
    this.measured = new Uint8Array(this.depth)
    this.freeSlots = new Int32Array(this.depth)
    this.freeTop = 0
    if (template.binary) {
      this.binaryFrame = clientFrame(kOpBinary, template.payload)
      this.idAt = clientFrameHeaderBytes(template.payload.length) + template.idAt
    } else {
      this.binaryFrame = null
      this.idAt = 0
    }
    this.uncork = this.uncork.bind(this)
  }

  connect (): void {
    this.parser.reset()
    this.upgraded = false
    this.head = null
    this.lastError = null
    this.connecting = true
    this.capacity = 0
    const socket = net.connect({ host: this.host, port: this.port, noDelay: true })
    this.socket = socket
    socket.setTimeout(kConnectTimeoutMs)
    socket.on('connect', () => {
      const upgrade = upgradeRequest(this.host, this.port, this.template.path)
      this.expectedAccept = upgrade.expectedAccept
      socket.write(upgrade.bytes)
    })
    socket.on('timeout', () => { socket.destroy(Object.assign(new Error('connect timeout'), { code: 'ECONNTIMEOUT' })) })
    socket.on('data', (chunk: Buffer) => { this.onData(chunk) })
    socket.on('error', (err: NodeJS.ErrnoException) => { this.lastError = err.code ?? err.message })
    socket.on('close', () => { this.onClose(socket) })
  }

  send (originMs: number, nowMs: number, measured: boolean): void {
    const slot = this.freeSlots[--this.freeTop]!
    // Sequence 0 is skipped so that no id is 0, the free-slot mark.
    let seq = this.seq++ & 0x1FFFFF
    if (seq === 0) seq = this.seq++ & 0x1FFFFF
    this.ids[slot] = seq * kMaxDepth + slot
    this.originMs[slot] = originMs
    this.sentMs[slot] = nowMs
    this.measured[slot] = measured ? 1 : 0
    this.inFlight++
    let frame: Buffer
    if (this.binaryFrame !== null) {
      // A fresh copy: a queued write still references the previous one.
      frame = Buffer.allocUnsafe(this.binaryFrame.length)
      this.binaryFrame.copy(frame)
      frame.writeUInt32LE(this.ids[slot]!, this.idAt)
    } else {
      frame = clientFrame(kOpText, Buffer.from(`${this.template.textPrefix}${this.ids[slot]}${this.template.textSuffix}`, 'latin1'))
    }
    const socket = this.socket!
    if (!this.corked) {
      this.corked = true
      socket.cork()
      process.nextTick(this.uncork)
    }
    socket.write(frame)
  }

  flush (): void { this.uncork() }

  sweep (nowMs: number, timeoutMs: number): void {
    if (this.inFlight === 0) return
    for (let slot = 0; slot < this.capacity; slot++) {
      if (this.ids[slot] !== 0 && nowMs - this.sentMs[slot]! > timeoutMs) {
        const measured = this.measured[slot] === 1
        this.release(slot)
        this.hooks.onTimeout(this, measured)
      }
    }
  }

  shutdown (): number {
    let measured = 0
    for (let slot = 0; slot < this.capacity; slot++) {
      if (this.ids[slot] !== 0 && this.measured[slot] === 1) measured++
      this.ids[slot] = 0
    }
    this.inFlight = 0
    this.ready = false
    const socket = this.socket
    this.socket = null
    socket?.destroy()
    return measured
  }

  // ---- FrameSink ----------------------------------------------------------------------------

  message (opcode: number, payload: Buffer): void {
    if (!this.ready) {
      this.onHello(opcode, payload)
      return
    }
    let id = -1
    let outcome: string | null = null
    if (opcode === kOpBinary) {
      const bb = new flatbuffers.ByteBuffer(payload)
      if (payload.length < 8 || !Message.bufferHasIdentifier(bb)) { this.protocolError('answer is not a prediction-protocol Message'); return }
      const msg = Message.getRootAsMessage(bb, kMessage)
      switch (msg.bodyType()) {
        case Body.Prediction: id = (msg.body(kPrediction) as Prediction).id(); break
        case Body.ErrorResponse: {
          const e = msg.body(kError) as ErrorResponse
          if (e.idKnown()) id = e.id()
          outcome = kWireCodes[e.code()] ?? 'INTERNAL'
          break
        }
        case Body.BatchResult: {
          const r = msg.body(kBatch) as BatchResult
          id = r.id()
          for (let i = 0, n = r.itemsLength(); i < n; i++) {
            if (r.items(i, kItem)!.prediction(kPrediction) === null) { outcome = 'BATCH_ITEM_ERROR'; break }
          }
          break
        }
        default: this.protocolError(`unexpected message type ${msg.bodyType()}`); return
      }
    } else {
      const m = kTextHead.exec(payload.toString('latin1', 0, Math.min(payload.length, 64)))
      if (m === null) { this.protocolError('text answer does not start with type and id'); return }
      id = m[2] === 'null' ? -1 : Number(m[2])
      if (m[1] === 'error') {
        outcome = kTextCode.exec(payload.toString('latin1'))?.[1] ?? 'INTERNAL'
      } else if (m[1] === 'batch_result') {
        if (payload.includes('"type":"error"')) outcome = 'BATCH_ITEM_ERROR'
      } else if (m[1] !== 'prediction') {
        this.protocolError(`unexpected answer type ${m[1]}`)
        return
      }
    }
    // An answer without a usable id cannot be paired: its request ends as a timeout.
    if (id < 0) return
    const slot = id % kMaxDepth
    if (slot >= this.capacity || this.ids[slot] !== id) return // late answer to a timed-out request
    const now = performance.now()
    const measured = this.measured[slot] === 1
    const origin = this.originMs[slot]!
    this.release(slot)
    this.hooks.onAnswer(this, origin, measured, outcome, now)
  }

  control (opcode: number, payload: Buffer): void {
    if (opcode === kOpPing) this.socket?.write(clientFrame(kOpPong, payload))
    else if (opcode === kOpClose) {
      this.lastError = `WS_CLOSE_${payload.length >= 2 ? payload.readUInt16BE(0) : 1005}`
      this.socket?.destroy()
    }
  }

  // ---- internals ----------------------------------------------------------------------------

  private release (slot: number): void {
    this.ids[slot] = 0
    this.freeSlots[this.freeTop++] = slot
    this.inFlight--
  }

  private uncork (): void {
    if (!this.corked) return
    this.corked = false
    this.socket?.uncork()
  }

  private onData (chunk: Buffer): void {
    let data = chunk
    if (!this.upgraded) {
      data = this.head === null ? chunk : Buffer.concat([this.head, chunk])
      const start = parseUpgradeResponse(data, this.expectedAccept)
      if (start instanceof Error) { this.protocolError(start.message); return }
      if (start === -1) { this.head = data; return }
      this.head = null
      this.upgraded = true
      data = data.subarray(start)
      if (data.length === 0) return
    }
    const socket = this.socket!
    // Answers in this chunk trigger sends (closed loop): one writev for all of them.
    if (!this.corked) { this.corked = true; socket.cork() }
    const err = this.parser.push(data, this)
    this.uncork()
    if (err !== null) this.protocolError(err.message)
  }

  private onHello (opcode: number, payload: Buffer): void {
    let maxInFlight = -1
    try {
      if (opcode === kOpBinary) {
        const bb = new flatbuffers.ByteBuffer(payload)
        const msg = Message.getRootAsMessage(bb, kMessage)
        if (msg.bodyType() === Body.Hello) maxInFlight = (msg.body(kHello) as Hello).maxInFlight()
      } else {
        const hello = JSON.parse(payload.toString('utf8')) as { type?: string, max_in_flight?: number }
        if (hello.type === 'hello' && typeof hello.max_in_flight === 'number') maxInFlight = hello.max_in_flight
      }
    } catch { /* reported below */ }
    if (maxInFlight < 1) { this.protocolError('the first message was not a hello'); return }
    this.capacity = Math.min(this.depth, maxInFlight)
    this.freeTop = 0
    for (let slot = this.capacity - 1; slot >= 0; slot--) { this.ids[slot] = 0; this.freeSlots[this.freeTop++] = slot }
    this.inFlight = 0
    this.connecting = false
    this.attempts = 0
    this.socket?.setTimeout(0)
    this.ready = true
    this.hooks.onReady(this)
  }

  private protocolError (message: string): void {
    this.lastError = 'EPROTO'
    process.emitWarning(`bench ws: ${message}`)
    this.socket?.destroy()
  }

  private onClose (socket: net.Socket): void {
    if (this.socket !== socket) return
    this.socket = null
    this.corked = false
    const wasReady = this.ready
    if (this.connecting) {
      this.connecting = false
      this.hooks.onConnectError(this)
    }
    if (wasReady) { this.ready = false; this.hooks.onDown(this) }
    for (let slot = 0; slot < this.capacity; slot++) {
      if (this.ids[slot] !== 0) {
        const measured = this.measured[slot] === 1
        this.release(slot)
        this.hooks.onFailed(this, measured, this.lastError ?? 'ECLOSED')
      }
    }
    if (this.hooks.finished) return
    if (wasReady) this.hooks.onReconnect()
    const delay = reconnectDelayMs(this.attempts++)
    setTimeout(() => { if (!this.hooks.finished) this.connect() }, delay)
  }
}
