/**
 * The answers of one /ws connection, sent together. Answers are not written from inside the
 * batcher's loop one by one: the connection records each outcome and queues its slot (a single
 * request, entry >= 0) or batch frame (entry `~index` < 0) here; one microtask per connection and
 * tick then encodes and sends everything ready inside a single `ws.cork` (one syscall), with the
 * format's shared encoder for each message in turn (uWS copies on send, so a Builder is reused at
 * once). Slots and frames are freed as they are answered, and also when the socket closed first.
 */
import type { WebSocket } from 'uWebSockets.js'
import type { Logger } from '../../log/logger.js'
import { messageOf, wireOf } from '../../protocol/wire-codes.js'
import type { BatchFrames } from './ws-batches.js'
import type { WsShared } from './ws-context.js'
import type { SlotTable } from './ws-slots.js'

/** `ws.send` result: 1 sent, 0 buffered (backpressure), 2 dropped (over maxBackpressure). */
const kSendDropped = 2

/** Whose socket the queue sends on: re-read at each send (a dropped send closes it at once). */
export interface SocketHolder {
  readonly ws: WebSocket<unknown> | null
}

/**
 * Sends one message. uWS drops a send when more than maxBackpressure bytes wait for this client;
 * closeOnBackpressureLimit only stops uWS reading from the socket (it stays open, holding its
 * buffer, until the idle timeout), so the connection is closed here, at once, freeing the buffer.
 * The client sees 1006.
 */
export function sendOrClose (ws: WebSocket<unknown>, message: string | Uint8Array, binary: boolean, log: Logger): void {
  if (ws.send(message, binary) !== kSendDropped) return
  log.info({ event: 'ws_backpressure_close', buffered_bytes: ws.getBufferedAmount() }, 'Closing a WebSocket that does not read its answers')
  ws.close()
}

export class SendQueue {
  private readonly holder: SocketHolder
  private readonly shared: WsShared
  private readonly slots: SlotTable
  private readonly frames: BatchFrames
  /** Answers to send: a slot (>= 0) or `~batchIndex` (< 0). */
  private readonly ready: number[] = []
  private flushScheduled = false

  constructor (holder: SocketHolder, shared: WsShared, slots: SlotTable, frames: BatchFrames) {
    this.holder = holder
    this.shared = shared
    this.slots = slots
    this.frames = frames
    this.flush = this.flush.bind(this)
    this.sendReady = this.sendReady.bind(this)
  }

  push (entry: number): void {
    this.ready.push(entry)
    if (this.flushScheduled) return
    this.flushScheduled = true
    queueMicrotask(this.flush)
  }

  private flush (): void {
    this.flushScheduled = false
    const ws = this.holder.ws
    if (ws !== null) ws.cork(this.sendReady)
    else this.sendReady()
  }

  /** Sends every ready answer (inside `ws.cork` while the socket is open) and frees its slot or frame. */
  private sendReady (): void {
    const { ready, slots, frames } = this
    const { formats, outcomes, log } = this.shared
    for (let k = 0; k < ready.length; k++) {
      const entry = ready[k]!
      // A dropped send closes the socket here, synchronously (onClose sets ws to null): re-read it each time.
      const ws = this.holder.ws
      if (entry >= 0) {
        if (ws !== null) {
          const encoder = formats[slots.format[entry]!]!.encoder
          const code = slots.codes[entry]
          const message = code === null
            ? encoder.prediction(slots.ids[entry]!, slots.probability[entry]!, slots.versions[entry]!, slots.versionsJson[entry]!,
              slots.symbols[entry]!, outcomes.answered(slots.startMs[entry]!), slots.components[entry] ?? null)
            : encoder.error(slots.ids[entry]!, true, wireOf(code!), messageOf(code!), null)
          sendOrClose(ws, message, encoder.binary, log)
        }
        slots.release(entry)
      } else {
        const b = ~entry
        if (ws !== null) {
          const batch = frames.get(b)
          const encoder = formats[frames.formatOf(b)].encoder
          outcomes.answered(batch.startMs)
          sendOrClose(ws, encoder.batchResult(batch), encoder.binary, log)
        }
        frames.release(b)
      }
    }
    ready.length = 0
  }
}
