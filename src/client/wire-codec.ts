/**
 * The client's view of the /ws and HTTP wire formats. The formats themselves live in
 * src/protocol/ (shared with the server); this module fixes the client's error type, RemoteError,
 * and re-exports what the library's users import. It loads nothing of the server (no uWS, no
 * onnxruntime): protocol/ imports only flatbuffers and src/errors.ts.
 */
import { decodeServerBinary as decodeBinary } from '../protocol/fb-client.js'
import { decodeHttpBatch, decodeHttpError, decodeServerText as decodeText } from '../protocol/json-answer.js'
import type {
  PredictionResult as ResultOf, RemoteErrorFactory, ServerMessage as MessageOf,
} from '../protocol/messages.js'
import { RemoteError } from './errors.js'

export { FbClientCodec } from '../protocol/fb-client.js'
export { batchText, requestText } from '../protocol/json-request.js'
export type { ComponentStatus, Prediction, PredictionComponent, PredictionRequest, ServerHello } from '../protocol/messages.js'

/** One item of a batch answer: a prediction, or the server's error for that item. */
export type PredictionResult = ResultOf<RemoteError>
/** A decoded server message. */
export type ServerMessage = MessageOf<RemoteError>

const remoteError: RemoteErrorFactory<RemoteError> = (wireCode, message, detail, statusCode) =>
  new RemoteError(wireCode, message, detail, statusCode)

/** Decodes a binary frame from the server; throws on a frame that is not a Message. */
export function decodeServerBinary (bytes: Uint8Array): ServerMessage { return decodeBinary(bytes, remoteError) }

/** Decodes a text frame from the server; throws on anything that is not one of its messages. */
export function decodeServerText (text: string): ServerMessage { return decodeText(text, remoteError) }

/** The RemoteError of an HTTP answer that is not 200. */
export function httpError (status: number, body: unknown): RemoteError { return decodeHttpError(status, body, remoteError) }

/** The items of a 200 /predict/batch answer. */
export function httpBatchResults (body: unknown): PredictionResult[] { return decodeHttpBatch(body, remoteError) }

