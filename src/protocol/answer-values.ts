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
 * `confidence` on the wire: max(p, 1 - p), rounded. Computed from the unrounded p on the SHORT
 * side (round6(1 - p), not 1 - round6(p)), which is what every answer has always carried.
 */
export function wireConfidence (probabilityLong: number): number {
  return isLong(probabilityLong) ? round6(probabilityLong) : round6(1 - probabilityLong)
}
