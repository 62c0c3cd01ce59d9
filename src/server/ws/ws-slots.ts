/**
 * The in-flight table of one /ws connection. Requests are admitted with `tag` = a slot of this
 * table, so an answer finds its client id and start time by index, without a Map or a closure
 * per request:
 *
 *   slot:      0     1     2     3    ...  capacity-1     (grows by doubling up to maxInFlight)
 *   ids:      [17 ][ 18 ][ 4  ][    ] ...                  client id of the request (or batch item)
 *   batchOf:  [-1 ][ 0  ][ 0  ][    ]                      -1: a single request; else its batch frame
 *   itemOf:   [ - ][ 0  ][ 1  ][    ]                      position inside that batch
 *   free:     [3, 4, ...] stack of unused slots (freeTop)
 *
 * A single request's outcome is kept in its slot from completion until the send queue answers it
 * (`codes[slot]` null: a prediction). A batch item's outcome goes to its BatchTracker and its
 * slot is freed at once.
 */
import type { Component, PendingRequest } from '../../batching/pending-request.js'
import type { ErrorCode } from '../../errors.js'
import type { FormatIndex } from '../../protocol/ws-formats.js'

const kInitialSlots = 64

export class SlotTable {
  inFlight = 0
  ids = new Uint32Array(0)
  /** performance.now() when the request's frame was read. */
  startMs = new Float64Array(0)
  /** The frame's format (kFormatBinary / kFormatText): the answer goes in the same one. */
  format = new Uint8Array(0)
  batchOf = new Int32Array(0)
  itemOf = new Int32Array(0)
  probability = new Float64Array(0)
  readonly symbols: string[] = []
  readonly versions: string[] = []
  readonly versionsJson: string[] = []
  /** A model set's answer's members (the array is fresh per answer: kept as is); null for a single model. */
  readonly components: Array<readonly Component[] | null> = []
  /** null: the request was answered with a prediction; else its failure's code. */
  readonly codes: Array<ErrorCode | null> = []
  private capacity = 0
  private free = new Int32Array(0)
  private freeTop = 0
  private readonly maxInFlight: number

  constructor (maxInFlight: number) {
    this.maxInFlight = maxInFlight
    this.grow()
  }

  /** A free slot, or -1 when maxInFlight requests are in flight. */
  acquire (): number {
    if (this.freeTop === 0 && !this.grow()) return -1
    this.inFlight++
    return this.free[--this.freeTop]!
  }

  release (slot: number): void {
    // Only a set's answer holds an array here: let it go with the slot.
    if (this.components[slot] != null) this.components[slot] = null
    this.inFlight--
    this.free[this.freeTop++] = slot
  }

  /** Fills a slot for a request read from a frame; `batch` -1 for a single request. */
  assign (slot: number, id: number, format: FormatIndex, startMs: number, batch: number, item: number): void {
    this.ids[slot] = id
    this.startMs[slot] = startMs
    this.format[slot] = format
    this.batchOf[slot] = batch
    this.itemOf[slot] = item
  }

  /** Keeps a single request's outcome (`request` is recycled when the batcher's call returns). */
  store (slot: number, request: PendingRequest, code: ErrorCode | null): void {
    this.codes[slot] = code
    this.probability[slot] = request.probability
    this.symbols[slot] = request.symbol
    this.versions[slot] = request.modelVersion
    this.versionsJson[slot] = request.modelVersionJson
    this.components[slot] = request.components
  }

  /** Doubles the table (all slots are in use), up to maxInFlight; false when at the limit. */
  private grow (): boolean {
    const old = this.capacity
    const max = this.maxInFlight
    if (old >= max) return false
    const capacity = old === 0 ? Math.min(kInitialSlots, max) : Math.min(old * 2, max)
    this.ids = copyInto(new Uint32Array(capacity), this.ids)
    this.startMs = copyInto(new Float64Array(capacity), this.startMs)
    this.format = copyInto(new Uint8Array(capacity), this.format)
    this.batchOf = copyInto(new Int32Array(capacity), this.batchOf)
    this.itemOf = copyInto(new Int32Array(capacity), this.itemOf)
    this.probability = copyInto(new Float64Array(capacity), this.probability)
    const free = new Int32Array(capacity)
    free.set(this.free.subarray(0, this.freeTop))
    for (let slot = capacity - 1; slot >= old; slot--) free[this.freeTop++] = slot
    this.free = free
    this.capacity = capacity
    return true
  }
}

function copyInto<T extends Uint8Array | Uint32Array | Int32Array | Float64Array> (target: T, source: T): T {
  target.set(source as never)
  return target
}
