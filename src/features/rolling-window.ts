/**
 * Fixed-capacity windows over the last N finalized bars, updated in O(1) when a bar closes.
 *
 *   values: [ v3 | v4 | v0 | v1 | v2 ]    head -> next slot to overwrite (the oldest value)
 *                       ^head
 *
 * NaN values occupy a slot but are left out of the sums, so a missing volume or BTC price shortens
 * the effective sample instead of pretending to be 0. Running sums drift by rounding as values are
 * added and removed; they are recomputed exactly from the buffer each time the head wraps, which
 * bounds the drift to one window's worth of operations at amortized O(1).
 */
export class RollingStats {
  readonly capacity: number
  private readonly values: Float64Array
  private head = 0
  private filled = 0
  sum = 0
  sumSq = 0
  /** Number of non-NaN values in the window. */
  count = 0

  constructor (capacity: number) {
    this.capacity = capacity
    this.values = new Float64Array(capacity)
  }

  push (x: number): void {
    if (this.filled === this.capacity) {
      const old = this.values[this.head]!
      if (old === old) { // not NaN
        this.sum -= old
        this.sumSq -= old * old
        this.count--
      }
    } else {
      this.filled++
    }
    this.values[this.head] = x
    if (x === x) {
      this.sum += x
      this.sumSq += x * x
      this.count++
    }
    this.head++
    if (this.head === this.capacity) {
      this.head = 0
      this.resum()
    }
  }

  clear (): void {
    this.head = 0
    this.filled = 0
    this.sum = 0
    this.sumSq = 0
    this.count = 0
  }

  /** Float64 slots `saveTo` writes: head, filled, sum, sumSq, count, then the whole buffer. */
  get stateLength (): number { return 5 + this.capacity }

  /**
   * Copies the window into `out[at ..)` for the state file (src/features/state-file.ts). The
   * running sums are saved as they are, not recomputed: they carry rounding drift that a
   * recomputation would not reproduce, and a restored server must answer bit for bit as one that
   * kept running.
   */
  saveTo (out: Float64Array, at: number): number {
    out[at] = this.head
    out[at + 1] = this.filled
    out[at + 2] = this.sum
    out[at + 3] = this.sumSq
    out[at + 4] = this.count
    out.set(this.values, at + 5)
    return at + this.stateLength
  }

  /** Inverse of `saveTo`; false (window untouched) when the slots cannot be a window of this capacity. */
  restoreFrom (src: Float64Array, at: number): boolean {
    const head = src[at]!
    const filled = src[at + 1]!
    const count = src[at + 4]!
    if (!validRing(head, filled, this.capacity) || !isCount(count, filled)) return false
    this.head = head
    this.filled = filled
    this.sum = src[at + 2]!
    this.sumSq = src[at + 3]!
    this.count = count
    this.values.set(src.subarray(at + 5, at + this.stateLength))
    return true
  }

  private resum (): void {
    let sum = 0
    let sumSq = 0
    let count = 0
    for (let i = 0; i < this.filled; i++) {
      const v = this.values[i]!
      if (v === v) {
        sum += v
        sumSq += v * v
        count++
      }
    }
    this.sum = sum
    this.sumSq = sumSq
    this.count = count
  }
}

/** Pairs (x, y) over the last N bars; a pair counts only when both are present. */
export class RollingPairStats {
  readonly capacity: number
  private readonly xs: Float64Array
  private readonly ys: Float64Array
  private head = 0
  private filled = 0
  sx = 0
  sy = 0
  sxx = 0
  syy = 0
  sxy = 0
  count = 0

  constructor (capacity: number) {
    this.capacity = capacity
    this.xs = new Float64Array(capacity)
    this.ys = new Float64Array(capacity)
  }

  push (x: number, y: number): void {
    if (this.filled === this.capacity) {
      const ox = this.xs[this.head]!
      const oy = this.ys[this.head]!
      if (ox === ox && oy === oy) {
        this.sx -= ox
        this.sy -= oy
        this.sxx -= ox * ox
        this.syy -= oy * oy
        this.sxy -= ox * oy
        this.count--
      }
    } else {
      this.filled++
    }
    this.xs[this.head] = x
    this.ys[this.head] = y
    if (x === x && y === y) {
      this.sx += x
      this.sy += y
      this.sxx += x * x
      this.syy += y * y
      this.sxy += x * y
      this.count++
    }
    this.head++
    if (this.head === this.capacity) {
      this.head = 0
      this.resum()
    }
  }

  clear (): void {
    this.head = 0
    this.filled = 0
    this.sx = this.sy = this.sxx = this.syy = this.sxy = 0
    this.count = 0
  }

  /** head, filled, sx, sy, sxx, syy, sxy, count, xs, ys (see `RollingStats.saveTo`). */
  get stateLength (): number { return 8 + 2 * this.capacity }

  saveTo (out: Float64Array, at: number): number {
    out[at] = this.head
    out[at + 1] = this.filled
    out[at + 2] = this.sx
    out[at + 3] = this.sy
    out[at + 4] = this.sxx
    out[at + 5] = this.syy
    out[at + 6] = this.sxy
    out[at + 7] = this.count
    out.set(this.xs, at + 8)
    out.set(this.ys, at + 8 + this.capacity)
    return at + this.stateLength
  }

  restoreFrom (src: Float64Array, at: number): boolean {
    const head = src[at]!
    const filled = src[at + 1]!
    const count = src[at + 7]!
    if (!validRing(head, filled, this.capacity) || !isCount(count, filled)) return false
    this.head = head
    this.filled = filled
    this.sx = src[at + 2]!
    this.sy = src[at + 3]!
    this.sxx = src[at + 4]!
    this.syy = src[at + 5]!
    this.sxy = src[at + 6]!
    this.count = count
    const xs = at + 8
    const ys = xs + this.capacity
    this.xs.set(src.subarray(xs, ys))
    this.ys.set(src.subarray(ys, ys + this.capacity))
    return true
  }

  private resum (): void {
    let sx = 0; let sy = 0; let sxx = 0; let syy = 0; let sxy = 0; let count = 0
    for (let i = 0; i < this.filled; i++) {
      const x = this.xs[i]!
      const y = this.ys[i]!
      if (x === x && y === y) {
        sx += x; sy += y; sxx += x * x; syy += y * y; sxy += x * y; count++
      }
    }
    this.sx = sx; this.sy = sy; this.sxx = sxx; this.syy = syy; this.sxy = sxy; this.count = count
  }
}

/** The last N values, addressable by age (1 = most recent). */
export class RecentValues {
  readonly capacity: number
  private readonly values: Float64Array
  private head = 0
  private filled = 0

  constructor (capacity: number) {
    this.capacity = capacity
    this.values = new Float64Array(capacity)
  }

  push (x: number): void {
    this.values[this.head] = x
    this.head = this.head + 1 === this.capacity ? 0 : this.head + 1
    if (this.filled < this.capacity) this.filled++
  }

  /** Value pushed `age` pushes ago (1 = last); NaN when the history is shorter. */
  ago (age: number): number {
    if (age < 1 || age > this.filled) return Number.NaN
    let i = this.head - age
    if (i < 0) i += this.capacity
    return this.values[i]!
  }

  get size (): number { return this.filled }

  clear (): void {
    this.head = 0
    this.filled = 0
  }

  /** head, filled, then the whole buffer (see `RollingStats.saveTo`). */
  get stateLength (): number { return 2 + this.capacity }

  saveTo (out: Float64Array, at: number): number {
    out[at] = this.head
    out[at + 1] = this.filled
    out.set(this.values, at + 2)
    return at + this.stateLength
  }

  restoreFrom (src: Float64Array, at: number): boolean {
    const head = src[at]!
    const filled = src[at + 1]!
    if (!validRing(head, filled, this.capacity)) return false
    this.head = head
    this.filled = filled
    this.values.set(src.subarray(at + 2, at + this.stateLength))
    return true
  }
}

/**
 * A ring's indices as the push methods leave them: until the ring is full, the next slot is the
 * number filled (heads wrap only once full). A restored ring that broke this would read stale
 * slots as history.
 */
function validRing (head: number, filled: number, capacity: number): boolean {
  if (!Number.isInteger(head) || !Number.isInteger(filled)) return false
  if (filled < 0 || filled > capacity || head < 0 || head >= capacity) return false
  return filled === capacity || head === filled
}

function isCount (count: number, filled: number): boolean {
  return Number.isInteger(count) && count >= 0 && count <= filled
}

/** Sample variance from running sums; NaN below `minCount` samples, clamped at 0 against rounding. */
export function varianceFromSums (sum: number, sumSq: number, count: number, minCount: number): number {
  if (count < minCount || count < 2) return Number.NaN
  const v = (sumSq - (sum * sum) / count) / (count - 1)
  return v > 0 ? v : 0
}
