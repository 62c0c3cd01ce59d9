/**
 * A worker's side of the row layout (features/row-layout.ts): turns the rows posted in its slot
 * into the session's input tensor, and the session's output back into one answer per row.
 *
 * - tabular: the slot holds packed feature rows; they are the input as they are.
 * - gaf / sequence: the slot holds packed window blocks (count, 61 closes, 61 BTC closes, as
 *   doubles). Each row's tensor is computed here by the same WindowInputWriter the training
 *   replay uses. A row whose window is incomplete (fewer bars than the member's window since the
 *   symbol's history began or was reset, a missing BTC price) is not sent to the session: its
 *   answer is NaN, which the model set reads as "no history" and leaves the member out.
 *
 * Why in the worker and not on the event loop: the transform is ~7 µs per request for a 3x32x32
 * GAF (docs/phase2.md), about a third of what the event loop spends on a request at full load,
 * while the worker spends 35-54 µs per row on the CNN anyway; and the window block a row carries
 * is ~1 KB against 12 KB of tensor. Everything here is allocated once per worker.
 */
import { kWindowCloses, kWindowDoubles } from '../features/row-layout.js'
import { inputDims, WindowInputWriter, type InputSpec } from '../features/window-input.js'

export class RowInput {
  /** Per-row tensor dims, without the batch. */
  readonly rowDims: readonly number[]
  /** Float32 values per row of the session's input. */
  readonly rowLength: number
  /** The session's input: valid rows, packed. */
  readonly input: Float32Array
  private readonly writer: WindowInputWriter | null
  private readonly window: number
  /** Row -> its index among the valid rows, or -1. */
  private readonly validIndex: Int32Array
  private readonly closes = new Float64Array(kWindowCloses)
  private readonly btc = new Float64Array(kWindowCloses)

  constructor (spec: InputSpec, featureCount: number, maxBatchSize: number) {
    const dims = inputDims(spec)
    this.rowDims = dims ?? [featureCount]
    this.rowLength = this.rowDims.reduce((a, b) => a * b, 1)
    this.input = new Float32Array(maxBatchSize * this.rowLength)
    this.writer = spec.kind === 'tabular' ? null : new WindowInputWriter(spec)
    this.window = spec.kind === 'tabular' ? 0 : spec.window
    this.validIndex = new Int32Array(maxBatchSize)
  }

  /** Fills `input` from the slot's rows; returns how many rows it holds (the valid ones). */
  build (shared: Float32Array, windows: Float64Array, rows: number): number {
    const writer = this.writer
    if (writer === null) {
      this.input.set(shared.subarray(0, rows * this.rowLength))
      return rows
    }
    const { closes, btc, window } = this
    let valid = 0
    for (let r = 0; r < rows; r++) {
      const at = r * kWindowDoubles
      // count < window: too little history (or the row was gathered while no windowed member served)
      if (!(windows[at]! >= window)) {
        this.validIndex[r] = -1
        continue
      }
      for (let k = 0; k < kWindowCloses; k++) {
        closes[k] = windows[at + 1 + k]!
        btc[k] = windows[at + 1 + kWindowCloses + k]!
      }
      if (writer.write(closes, btc, this.input, valid * this.rowLength)) this.validIndex[r] = valid++
      else this.validIndex[r] = -1
    }
    return valid
  }

  /** Writes P(up) per row over the head of the slot (NaN for a row the session did not see). */
  answer (probabilities: Float32Array | null, shared: Float32Array, rows: number): void {
    if (this.writer === null) {
      for (let i = 0; i < rows; i++) shared[i] = probabilities![i * 2 + 1]!
      return
    }
    for (let i = 0; i < rows; i++) {
      const j = this.validIndex[i]!
      shared[i] = j < 0 ? Number.NaN : probabilities![j * 2 + 1]!
    }
  }
}
