/**
 * Windowed model inputs: the last N closes of a symbol (and of BTC) turned into the tensor a
 * windowed model member reads. The same code runs in the training replay (src/cli/replay.ts
 * `--input gaf|sequence`) and, later, in serving, so the model is trained on exactly the numbers it
 * will be served (docs/phase2.md).
 *
 * Kinds:
 * - `gaf`: Gramian Angular Fields, `[channels, N, N]` per row. A window x[0..N) (oldest first) is
 *   min-max rescaled to [-1, 1], x~ = ((x - max) + (x - min)) / (max - min), and each value becomes
 *   an angle phi = arccos(x~). GASF[i][j] = cos(phi_i + phi_j), GADF[i][j] = sin(phi_i - phi_j).
 *   Computed through the identities cos(a+b) = x~i x~j - s_i s_j and sin(a-b) = s_i x~j - x~i s_j,
 *   with s = sqrt(1 - x~^2) = sin(phi) (phi in [0, pi], so sin >= 0): no arccos in the N^2 loop.
 * - `sequence`: `[channels, N]` per row, for 1-D models.
 * - `tabular`: the 31 bars-v1 features (src/features/feature-spec.ts); not windowed, nothing here.
 *
 * A flat window (max == min) rescales to x~ = 0 everywhere (phi = pi/2): GASF = -1, GADF = 0. A
 * window with fewer than N closes, or a NaN among them, is incomplete: the writer fills its
 * channels with 0 and returns false, so the caller can skip the row (training) or not serve it.
 */

import { ModelIncompatibleError } from '../errors.js'

/** GAF channels: which series, which field. */
export const kGafChannels = ['gasf_close', 'gadf_close', 'gasf_btc', 'gadf_btc'] as const
export type GafChannel = typeof kGafChannels[number]
/** Sequence channels: the window rescaled to [-1, 1], or log returns (position 0 is 0). */
export const kSequenceChannels = ['close_scaled', 'close_logret', 'btc_scaled', 'btc_logret'] as const
export type SequenceChannel = typeof kSequenceChannels[number]

export interface GafInputSpec { readonly kind: 'gaf', readonly window: number, readonly channels: readonly GafChannel[] }
export interface SequenceInputSpec { readonly kind: 'sequence', readonly window: number, readonly channels: readonly SequenceChannel[] }
export interface TabularInputSpec { readonly kind: 'tabular' }
export type InputSpec = GafInputSpec | SequenceInputSpec | TabularInputSpec
export type WindowedInputSpec = GafInputSpec | SequenceInputSpec

/** Bounds on `window`: 8 bars minimum for any shape to mean something; 60 = SymbolState's close history. */
export const kMinWindow = 8
export const kMaxWindow = 60

/**
 * Parses a member's metadata `input` declaration (absent = tabular, which is what phase-1 metadata
 * files mean by saying nothing). Throws ModelIncompatibleError (a model whose input cannot be built
 * cannot be served) naming the bad field.
 */
export function parseInputSpec (raw: unknown): InputSpec {
  if (raw === undefined) return { kind: 'tabular' }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ModelIncompatibleError('input must be an object like {"kind": "gaf", "window": 32, "channels": [...]}')
  const o = raw as Record<string, unknown>
  const kind = o.kind
  if (kind === 'tabular') {
    const extra = Object.keys(o).filter(k => k !== 'kind')
    if (extra.length > 0) throw new ModelIncompatibleError(`input kind "tabular" takes no other fields, got ${extra.join(', ')}`)
    return { kind }
  }
  if (kind !== 'gaf' && kind !== 'sequence') throw new ModelIncompatibleError(`input.kind must be "tabular", "gaf" or "sequence", got ${JSON.stringify(kind)}`)
  const extra = Object.keys(o).filter(k => k !== 'kind' && k !== 'window' && k !== 'channels')
  if (extra.length > 0) throw new ModelIncompatibleError(`input has unknown field(s) ${extra.join(', ')}`)
  const window = o.window
  if (typeof window !== 'number' || !Number.isInteger(window) || window < kMinWindow || window > kMaxWindow) {
    throw new ModelIncompatibleError(`input.window must be an integer in [${kMinWindow}, ${kMaxWindow}], got ${JSON.stringify(window)}`)
  }
  const allowed: readonly string[] = kind === 'gaf' ? kGafChannels : kSequenceChannels
  const channels = o.channels
  if (!Array.isArray(channels) || channels.length === 0) throw new ModelIncompatibleError(`input.channels must be a non-empty array of ${allowed.join(', ')}`)
  const seen = new Set<string>()
  for (const c of channels) {
    if (typeof c !== 'string' || !allowed.includes(c)) throw new ModelIncompatibleError(`input.channels: ${JSON.stringify(c)} is not one of ${allowed.join(', ')}`)
    if (seen.has(c)) throw new ModelIncompatibleError(`input.channels: "${c}" appears twice`)
    seen.add(c)
  }
  return kind === 'gaf'
    ? { kind, window, channels: channels as GafChannel[] }
    : { kind, window, channels: channels as SequenceChannel[] }
}

/** Per-row tensor dims without the batch: [C, N, N], [C, N], or null for tabular. */
export function inputDims (spec: InputSpec): number[] | null {
  if (spec.kind === 'gaf') return [spec.channels.length, spec.window, spec.window]
  if (spec.kind === 'sequence') return [spec.channels.length, spec.window]
  return null
}

/** True when any channel reads BTC's closes. */
export function usesBtc (spec: WindowedInputSpec): boolean {
  return (spec.channels as readonly string[]).some(c => c.endsWith('_btc') || c.startsWith('btc_'))
}

/**
 * Checks a declaration against the model's ONNX input (its `inputMetadata` shape: numbers for fixed
 * dims, strings for symbolic ones). The batch dimension must be symbolic (the batcher stacks rows);
 * every other dimension must equal the declaration's. For tabular, the row length is `tabularWidth`
 * (kFeatureCount). Returns null when they agree, else the reason (the loader wraps it in its error).
 */
export function checkInputShape (spec: InputSpec, shape: ReadonlyArray<number | string>, tabularWidth: number): string | null {
  const dims = inputDims(spec) ?? [tabularWidth]
  const want = `[batch, ${dims.join(', ')}]`
  const got = `[${shape.map(d => typeof d === 'string' ? (d.length > 0 ? d : '?') : String(d)).join(', ')}]`
  if (shape.length !== dims.length + 1) return `input kind "${spec.kind}" needs a rank-${dims.length + 1} tensor ${want}, the model's input is ${got}`
  if (typeof shape[0] !== 'string') return `the model's batch dimension is fixed at ${shape[0]!}; it must be symbolic (${want}), got ${got}`
  for (let i = 0; i < dims.length; i++) {
    if (shape[i + 1] !== dims[i]) return `the model's input is ${got}, the declared input "${spec.kind}" gives ${want}`
  }
  return null
}

/**
 * Writes one row of a windowed input. Holds the only scratch it needs (4 Float64Arrays of N), so a
 * call allocates nothing; one writer per thread, not shared across concurrent calls.
 */
export class WindowInputWriter {
  readonly spec: WindowedInputSpec
  readonly window: number
  /** Float32 values per row: C*N*N (gaf) or C*N (sequence). */
  readonly rowLength: number
  readonly needsBtc: boolean
  private readonly xClose: Float64Array
  private readonly sClose: Float64Array
  private readonly xBtc: Float64Array
  private readonly sBtc: Float64Array

  constructor (spec: WindowedInputSpec) {
    this.spec = spec
    this.window = spec.window
    const dims = inputDims(spec)!
    this.rowLength = dims.reduce((a, b) => a * b, 1)
    this.needsBtc = usesBtc(spec)
    this.xClose = new Float64Array(spec.window)
    this.sClose = new Float64Array(spec.window)
    this.xBtc = new Float64Array(spec.window)
    this.sBtc = new Float64Array(spec.window)
  }

  /**
   * `closes` and `btc` hold at least N values; the last N (oldest first, the current bar last) are
   * used. `btc` may be null when no channel needs it. Writes `rowLength` floats at `out[offset..)`.
   * Returns false (and zeros the row) when a window it needs is incomplete: too short or with NaN.
   */
  write (closes: Float64Array, btc: Float64Array | null, out: Float32Array, offset: number): boolean {
    const n = this.window
    let ok = rescale(closes, n, this.xClose, this.sClose)
    if (this.needsBtc) ok = ok && btc !== null && rescale(btc, n, this.xBtc, this.sBtc)
    if (!ok) {
      out.fill(0, offset, offset + this.rowLength)
      return false
    }
    const spec = this.spec
    let at = offset
    if (spec.kind === 'gaf') {
      for (let c = 0; c < spec.channels.length; c++) {
        const ch = spec.channels[c]!
        const onBtc = ch === 'gasf_btc' || ch === 'gadf_btc'
        const x = onBtc ? this.xBtc : this.xClose
        const s = onBtc ? this.sBtc : this.sClose
        if (ch === 'gasf_close' || ch === 'gasf_btc') writeGasf(x, s, n, out, at)
        else writeGadf(x, s, n, out, at)
        at += n * n
      }
    } else {
      for (let c = 0; c < spec.channels.length; c++) {
        const ch = spec.channels[c]!
        if (ch === 'close_scaled' || ch === 'btc_scaled') {
          const x = ch === 'close_scaled' ? this.xClose : this.xBtc
          for (let i = 0; i < n; i++) out[at + i] = x[i]!
        } else {
          const src = ch === 'close_logret' ? closes : btc!
          const base = src.length - n
          out[at] = 0
          for (let i = 1; i < n; i++) out[at + i] = Math.log(src[base + i]! / src[base + i - 1]!)
        }
        at += n
      }
    }
    return true
  }
}

/**
 * Last n of `src` -> x~ in [-1, 1] (min-max) and s = sqrt(1 - x~^2). False when src is shorter than
 * n or the window holds a NaN or a non-positive close.
 */
function rescale (src: Float64Array, n: number, x: Float64Array, s: Float64Array): boolean {
  const base = src.length - n
  if (base < 0) return false
  let min = Infinity
  let max = -Infinity
  for (let i = 0; i < n; i++) {
    const v = src[base + i]!
    if (!(v > 0) || v === Infinity) return false // NaN, <= 0 and Infinity: not a price
    if (v < min) min = v
    if (v > max) max = v
  }
  const range = max - min
  for (let i = 0; i < n; i++) {
    const v = src[base + i]!
    // (v - max) + (v - min) rather than 2v - max - min: exact 0 at the midpoint, and exactly
    // -1 / +1 at the extremes, so the clamp below only guards rounding.
    let t = range > 0 ? ((v - max) + (v - min)) / range : 0
    if (t > 1) t = 1
    else if (t < -1) t = -1
    x[i] = t
    s[i] = Math.sqrt(1 - t * t)
  }
  return true
}

function writeGasf (x: Float64Array, s: Float64Array, n: number, out: Float32Array, at: number): void {
  for (let i = 0; i < n; i++) {
    const xi = x[i]!
    const si = s[i]!
    const row = at + i * n
    for (let j = 0; j < n; j++) out[row + j] = xi * x[j]! - si * s[j]!
  }
}

function writeGadf (x: Float64Array, s: Float64Array, n: number, out: Float32Array, at: number): void {
  for (let i = 0; i < n; i++) {
    const xi = x[i]!
    const si = s[i]!
    const row = at + i * n
    for (let j = 0; j < n; j++) out[row + j] = si * x[j]! - xi * s[j]!
  }
}
