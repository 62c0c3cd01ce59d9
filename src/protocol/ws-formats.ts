/**
 * The two /ws frame formats behind one interface each way, so that the transport makes the
 * text/binary choice once per frame (from the frame's type) and once per connection (the hello),
 * and everything after it (dispatch, the in-flight table, batches, the send queue) carries a
 * format index, not a flag tested at every step.
 */
import type { ErrorCode, ValidationIssue, WireCode } from '../errors.js'
import type { MarketSnapshot } from '../features/market-snapshot.js'
import { FbFrameReader, FbWriter } from './fb-codec.js'
import { batchResultText, errorText, helloText, predictionText } from './json-answer.js'
import { JsonFrameReader } from './json-frame.js'
import type { DecodedRequest, DecodeLimits } from './json-request.js'
import type { BatchResultSource, ComponentSource, FrameKind, HelloInfo } from './messages.js'

/** What the transport reads of a client frame, whichever its format. Reused per frame. */
export interface FrameReader {
  readonly id: number
  readonly idKnown: boolean
  /** Why `open` returned kFrameInvalid: the message, the registry code and the issues (or null). */
  readonly error: string
  readonly errorCode: ErrorCode
  readonly issues: readonly ValidationIssue[] | null
  /** Requests in a batch frame. */
  readonly length: number
  /** The id of the request `decode` last read. */
  readonly decodedId: number
  open (bytes: Uint8Array, maxBatchRequests: number): FrameKind
  decode (index: number, snapshot: MarketSnapshot, out: DecodedRequest, limits: DecodeLimits, nowMs: number,
    locPrefix: ReadonlyArray<string | number>): readonly ValidationIssue[]
}

/** A batch outcome with the JSON-escaped model versions the text encoder needs. */
export interface EncodableBatch extends BatchResultSource {
  readonly modelVersionsJson: readonly string[]
}

/**
 * The server's answers in one format. A returned Uint8Array is a view of a reused Builder, valid
 * until the next call: send it (uWS copies) before encoding the next answer.
 */
export interface AnswerEncoder {
  /** ws.send's isBinary for what this encoder returns. */
  readonly binary: boolean
  /** `components`: a model set's members' parts, or null for a single model's answer. */
  prediction (id: number, probability: number, modelVersion: string, modelVersionJson: string, symbol: string, latencyMs: number,
    components: readonly ComponentSource[] | null): string | Uint8Array
  error (id: number, idKnown: boolean, wireCode: WireCode, message: string, detailJson: string | null): string | Uint8Array
  batchResult (src: EncodableBatch): string | Uint8Array
  hello (info: HelloInfo): string | Uint8Array
}

export class FbAnswerEncoder implements AnswerEncoder {
  readonly binary = true
  private readonly writer = new FbWriter()
  prediction (id: number, probability: number, modelVersion: string, _modelVersionJson: string, symbol: string, latencyMs: number,
    components: readonly ComponentSource[] | null): Uint8Array {
    return this.writer.prediction(id, probability, modelVersion, symbol, latencyMs, components)
  }

  error (id: number, idKnown: boolean, wireCode: WireCode, message: string, detailJson: string | null): Uint8Array {
    return this.writer.error(id, idKnown, wireCode, message, detailJson)
  }

  batchResult (src: EncodableBatch): Uint8Array { return this.writer.batchResult(src) }
  hello (info: HelloInfo): Uint8Array { return this.writer.hello(info) }
}

export class JsonAnswerEncoder implements AnswerEncoder {
  readonly binary = false
  prediction (id: number, probability: number, _modelVersion: string, modelVersionJson: string, symbol: string, latencyMs: number,
    components: readonly ComponentSource[] | null): string {
    return predictionText(id, probability, modelVersionJson, symbol, latencyMs, components)
  }

  error (id: number, idKnown: boolean, wireCode: WireCode, message: string, detailJson: string | null): string {
    return errorText(id, idKnown, wireCode, message, detailJson)
  }

  batchResult (src: EncodableBatch): string { return batchResultText(src, src.modelVersionsJson) }
  hello (info: HelloInfo): string { return helloText(info) }
}

/** One format: its reader and its encoder. */
export interface WireFormat {
  readonly reader: FrameReader
  readonly encoder: AnswerEncoder
}

/** Index of a format in `wsFormats()`'s list, as the transport stores it per request. */
export const kFormatBinary = 0
export const kFormatText = 1
export type FormatIndex = typeof kFormatBinary | typeof kFormatText

/** A fresh reader and encoder per format (each server owns one set: they hold reused buffers). */
export function wsFormats (): readonly [WireFormat, WireFormat] {
  return [
    { reader: new FbFrameReader(), encoder: new FbAnswerEncoder() },
    { reader: new JsonFrameReader(), encoder: new JsonAnswerEncoder() },
  ]
}
