/**
 * A LatencyHistogram seen two ways: over a sliding window of recent time (what is happening now)
 * and over the whole life of the process. One recording feeds both.
 *
 *   ring:  [ slot | slot | ... | slot ]   kSlots + 1 histograms of `windowMs / kSlots` each
 *                  ^ current (recorded into)    the others: the kSlots sub-intervals before it
 *   past:  everything that has left the ring (folded in when its slot is reused)
 *
 *   window   = merge of the ring               covers the last windowMs .. windowMs + slotMs
 *   lifetime = merge of the ring + past
 *
 * Why a ring rather than hdr's `Recorder`: the Recorder swaps histograms for a reader on another
 * thread; here recording and reading share one thread, and we need several intervals, not one.
 *
 * The hot path (`record`) writes one histogram and touches no clock: rotation happens in
 * `rotate(nowMs)`, which the owner calls from an unref'd timer once per slot and before every
 * read, so reads are exact to the slot even if the timer is late. Records made between a slot
 * boundary and the (late) timer land in the slot before: they leave the window up to one timer
 * delay early. Folding a slot into `past` walks its counts array (~17k entries for 60 s in µs),
 * about 20-50 µs, once per slot period, off the request path.
 */

import { LatencyHistogram } from './latency-histogram.js'

/** Sub-intervals in a window: the window moves in steps of windowMs / kSlots. */
export const kSlots = 6

export interface WindowedHistogramOptions {
  /** Highest value tracked, as LatencyHistogram's `highest`. */
  readonly highest: number
  /** Window length in ms; a multiple of kSlots ms is not required. */
  readonly windowMs: number
  /** The clock reading (ms) at which slot 0 starts. */
  readonly originMs: number
}

export class WindowedHistogram {
  readonly windowMs: number
  readonly slotMs: number
  private readonly originMs: number
  private readonly ring: LatencyHistogram[]
  private readonly past: LatencyHistogram
  /** Scratch for merged reads; `window()` and `lifetime()` return it, valid until the next read. */
  private readonly view: LatencyHistogram
  private current: LatencyHistogram
  /** [index of the current slot in `ring`, its epoch (slot number since originMs)]. */
  private readonly position: Float64Array

  constructor (options: WindowedHistogramOptions) {
    const { highest, windowMs, originMs } = options
    if (!(Number.isFinite(windowMs) && windowMs >= kSlots)) throw new RangeError(`windowMs must be >= ${kSlots}, got ${windowMs}`)
    this.windowMs = windowMs
    this.slotMs = windowMs / kSlots
    this.originMs = originMs
    this.ring = []
    for (let i = 0; i <= kSlots; i++) this.ring.push(new LatencyHistogram({ highest }))
    this.past = new LatencyHistogram({ highest })
    this.view = new LatencyHistogram({ highest })
    this.current = this.ring[0]!
    this.position = new Float64Array(2)
  }

  /** Hot path: one histogram write, no clock, no allocation. Returns the value recorded. */
  record (value: number): number {
    return this.current.record(value)
  }

  /**
   * Moves the window to `nowMs`: each slot that falls out is folded into the lifetime part and
   * reused as the current one. Idempotent within a slot; a clock that goes back changes nothing.
   */
  rotate (nowMs: number): void {
    const epoch = Math.floor((nowMs - this.originMs) / this.slotMs)
    const position = this.position
    let steps = epoch - position[1]!
    if (!(steps > 0)) return
    const ring = this.ring
    // After ring.length steps every slot has been folded once: more steps would change nothing.
    if (steps > ring.length) steps = ring.length
    let index = position[0]!
    for (let i = 0; i < steps; i++) {
      index = index + 1 === ring.length ? 0 : index + 1
      const slot = ring[index]!
      if (slot.count > 0) {
        this.past.add(slot)
        slot.reset()
      }
    }
    position[0] = index
    position[1] = epoch
    this.current = ring[index]!
  }

  /**
   * Seconds the window view covers at `nowMs` (after `rotate(nowMs)`): from the start of the
   * oldest slot in the ring, or from origin while the process is younger than that.
   */
  coveredSeconds (nowMs: number): number {
    const oldestEpoch = Math.max(0, this.position[1]! - kSlots)
    return Math.max(0, nowMs - (this.originMs + oldestEpoch * this.slotMs)) / 1000
  }

  /** The recent window merged into the shared scratch histogram. */
  window (): LatencyHistogram {
    const view = this.view
    view.reset()
    for (const slot of this.ring) view.add(slot)
    return view
  }

  /**
   * Everything since origin, merged into the same scratch. Call right after `window()` to reuse
   * its merge (`fromWindow`): only the folded part is added then.
   */
  lifetime (fromWindow = false): LatencyHistogram {
    const view = fromWindow ? this.view : this.window()
    view.add(this.past)
    return view
  }

  /** Count since origin without merging (cheap: per-slot totals). */
  get lifetimeCount (): number {
    let n = this.past.count
    for (const slot of this.ring) n += slot.count
    return n
  }

  /** Exact sum since origin without merging. */
  get lifetimeTotal (): number {
    let sum = this.past.total
    for (const slot of this.ring) sum += slot.total
    return sum
  }

  /** Exact mean since origin without merging, or null when nothing was recorded. */
  lifetimeMean (): number | null {
    const n = this.lifetimeCount
    return n === 0 ? null : this.lifetimeTotal / n
  }
}
