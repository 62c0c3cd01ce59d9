/**
 * The numbers of a prediction answer, computed here and nowhere else, so that the JSON answers
 * (HTTP and WebSocket text frames) and the FlatBuffers answer carry exactly the same values.
 */

/** 6 decimals for probabilities: more digits than a float32 probability carries usefully. */
export function round6 (x: number): number { return Math.round(x * 1e6) / 1e6 }
/** 3 decimals for milliseconds (microsecond resolution). */
export function round3 (x: number): number { return Math.round(x * 1e3) / 1e3 }

/** The contract's direction rule (CONTRACT.md): LONG when p >= 0.5, SHORT otherwise (NaN too). */
export function isLong (probabilityLong: number): boolean { return probabilityLong >= 0.5 }

/**
 * `confidence` on the wire: max(p, 1 - p), rounded. `rounded` is round6(p), which the caller has
 * already computed for probability_long. The SHORT side is computed from the unrounded p
 * (round6(1 - p), not 1 - round6(p)), which is what every answer has always carried.
 */
export function wireConfidence (probabilityLong: number, rounded: number): number {
  return isLong(probabilityLong) ? rounded : round6(1 - probabilityLong)
}
