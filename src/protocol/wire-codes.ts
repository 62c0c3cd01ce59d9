/**
 * The contract's wire codes (errors.ts `WireCode`) and their FlatBuffers enum, one table for the
 * server's writer and the client's reader; the reverse map is derived from it.
 */
import { kErrorTable, type ErrorCode, type WireCode } from '../errors.js'
import { ErrorCode as FbErrorCode } from './generated/prediction_generated.js'

export const kWireToFb: Readonly<Record<WireCode, FbErrorCode>> = {
  INVALID_ARGUMENT: FbErrorCode.INVALID_ARGUMENT,
  MODEL_NOT_LOADED: FbErrorCode.MODEL_NOT_LOADED,
  OVERLOADED: FbErrorCode.OVERLOADED,
  DEADLINE_EXCEEDED: FbErrorCode.DEADLINE_EXCEEDED,
  INTERNAL: FbErrorCode.INTERNAL,
}

/** FlatBuffers enum value -> wire code (indexed by the enum's value). */
export const kFbToWire: readonly WireCode[] = (() => {
  const out: WireCode[] = []
  for (const wire of Object.keys(kWireToFb) as WireCode[]) out[kWireToFb[wire]] = wire
  return out
})()

/** A FlatBuffers enum value as a wire code; a value this build does not know reads as INTERNAL. */
export function wireCodeOfFb (code: number): WireCode { return kFbToWire[code] ?? 'INTERNAL' }

/** A JSON `code` / `error` field as a wire code; anything unknown reads as INTERNAL. */
export function wireCodeOfText (code: unknown): WireCode {
  return typeof code === 'string' && Object.hasOwn(kWireToFb, code) ? code as WireCode : 'INTERNAL'
}

/** The wire code a registry code is answered with (codes without one never reach a client: INTERNAL). */
export function wireOf (code: ErrorCode): WireCode { return kErrorTable[code].wireCode ?? 'INTERNAL' }

/** Default message of a registry code, for the `message` field. */
export function messageOf (code: ErrorCode): string { return kErrorTable[code].message }

/**
 * The wire code of an HTTP error answer (CONTRACT.md's status table): what the client library
 * reads from a status and a FastAPI `detail`.
 */
export function wireCodeOfStatus (status: number, detail: unknown): WireCode {
  if (status === 400 || status === 413 || status === 422) return 'INVALID_ARGUMENT'
  if (status === 503) return detail === kErrorTable.ERR_MODEL_NOT_LOADED.message ? 'MODEL_NOT_LOADED' : 'OVERLOADED'
  if (status === 504) return 'DEADLINE_EXCEEDED'
  return 'INTERNAL'
}
