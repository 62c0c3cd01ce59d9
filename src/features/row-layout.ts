/**
 * The layout of one request's row in a batch buffer: what the batcher gathers and the worker
 * pools read. One layout for every model, so a swap between a single tabular model and a model
 * set (or a set as shadow) never has to re-lay rows already gathering.
 *
 *   float32 index   0 .. 30   the 31 bars-v1 features (feature-spec.ts): what tabular members read
 *                   31        padding (keeps the window block 8-byte aligned)
 *   float64 index   16        window block: how many of the closes below are real (0: not written)
 *                   17 .. 77  the symbol's last 61 closes, oldest first, the current bar's last
 *                   78 .. 138 BTC's closes for the same 61 minutes
 *
 * The window block is float64 because that is what the training replay computes GAF and sequence
 * tensors from (SymbolState keeps doubles): BTC near 95,000 in float32 moves in steps of 0.008,
 * which is a visible fraction of a quiet 32-minute range after min-max rescaling. Rows are
 * written only while a windowed member serves or shadows (`count` is 0 otherwise, so a windowed
 * member never reads a stale window); a tabular pool copies only the first 31 floats of each row.
 */
import { kFeatureCount } from './feature-spec.js'

/** Closes kept per series: 60 finalized bars and the current one (SymbolState.kMaxRecentCloses). */
export const kWindowCloses = 61
/** Float32 slots before the window block (31 features + 1 padding). */
export const kWindowOffset = 32
/** Float64 values in the window block: count, closes, BTC closes. */
export const kWindowDoubles = 1 + 2 * kWindowCloses
/** Float32 slots of the window block. */
export const kWindowFloats = kWindowDoubles * 2
/** Float32 slots per row: the batch buffer's stride. */
export const kRowFloats = kWindowOffset + kWindowFloats
/** Float64 stride of a row, for a Float64Array view over the batch buffer. */
export const kRowDoubles = kRowFloats / 2

if (kFeatureCount > kWindowOffset) throw new Error('row-layout: the feature row outgrew its slots')
