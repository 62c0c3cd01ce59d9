/**
 * The generated documents themselves: the OpenAPI document passes a real OpenAPI 3.1 validator
 * (@seriousme/openapi-schema-validator, offline: it ships the official JSON schemas), every
 * request error code of the registry is documented on some route, and the document follows the
 * validator's field table (a field added there appears here with its bounds).
 */
import { Validator } from '@seriousme/openapi-schema-validator'
import { Ajv2020 } from 'ajv/dist/2020.js'
import t from 'tap'
import { kErrorTable, kRequestErrorCodes } from '../../src/errors.js'
import { buildAsyncApiDocument, buildOpenApiDocument, type ApiDocumentOptions } from '../../src/openapi/document.js'
import { readFlatBuffersSchema } from '../../src/openapi/package-info.js'
import { predictionJson, predictionText } from '../../src/protocol/json-answer.js'
import { kNumericFields } from '../../src/protocol/request-fields.js'
import { OpenApiChecker } from '../helpers/openapi-check.js'

const kOptions: ApiDocumentOptions = { version: '0.0.0-test', maxBatchRequests: 7, maxBodyBytes: 4096, defaultSymbol: 'ABCUSDT', adminEnabled: true }

t.test('passes the OpenAPI 3.1 validator', async (t) => {
  for (const adminEnabled of [true, false]) {
    const validator = new Validator()
    const result = await validator.validate(buildOpenApiDocument({ ...kOptions, adminEnabled }))
    t.same(result.errors ?? [], [], `valid (admin ${adminEnabled})`)
    t.equal(result.valid, true)
    t.equal(validator.version, '3.1')
  }
})

t.test('the validator catches a broken document (the check can fail)', async (t) => {
  const doc = buildOpenApiDocument(kOptions) as { paths: Record<string, any> }
  doc.paths['/predict'].post.responses = { 200: { content: {} } } // a response without its required description
  const result = await new Validator().validate(doc)
  t.equal(result.valid, false)
})

t.test('every request error code is documented on a route, with its status and headers', async (t) => {
  const doc = buildOpenApiDocument(kOptions) as { paths: Record<string, Record<string, any>>, components: { responses: Record<string, any> } }
  const documented = new Map<string, string[]>()
  const visit = (status: string, response: any): void => {
    for (const code of response['x-error-codes'] ?? []) {
      documented.set(code, [...(documented.get(code) ?? []), status])
      const headers = kErrorTable[code as keyof typeof kErrorTable].headers ?? {}
      for (const name of Object.keys(headers)) {
        if (name !== 'Connection') t.ok(response.headers?.[name], `${code} response documents ${name}`)
      }
    }
  }
  for (const ops of Object.values(doc.paths)) {
    for (const op of Object.values(ops)) for (const [status, response] of Object.entries(op.responses)) visit(status, response)
  }
  visit('405', doc.components.responses.MethodNotAllowed)
  visit('404', doc.components.responses.NotFound)
  // ERR_PROTOCOL is a /ws answer (binary frame not readable), described by the AsyncAPI document.
  for (const code of kRequestErrorCodes.filter((c) => c !== 'ERR_PROTOCOL')) {
    const statuses = documented.get(code)
    t.ok(statuses, `${code} documented`)
    for (const status of statuses ?? []) t.equal(Number(status), kErrorTable[code].statusCode, `${code} under its registry status`)
  }
  t.ok(documented.get('ERR_UNAUTHORIZED'), 'the admin 401 is documented')
})

t.test('request schema follows the validator\'s field table', async (t) => {
  const doc = buildOpenApiDocument(kOptions) as any
  const schema = doc.components.schemas.PredictRequest
  for (const f of kNumericFields) {
    t.ok(schema.properties[f.wire], `${f.wire} documented`)
    t.equal(schema.required.includes(f.wire), f.required, `${f.wire} required as in the table`)
    if (f.positive) t.equal(schema.properties[f.wire].exclusiveMinimum, 0, `${f.wire} > 0`)
  }
  t.equal(doc.components.schemas.BatchRequest.properties.requests.maxItems, 7, 'batch limit from the configuration')
})

t.test('AsyncAPI document: message schemas compile; FlatBuffers schema included', async (t) => {
  const fbs = readFlatBuffersSchema()
  const doc = buildAsyncApiDocument(kOptions, fbs) as any
  t.equal(doc.asyncapi, '3.0.0')
  t.equal(doc.components.schemas.FlatBuffersMessage.schema, fbs)
  const ajv = new Ajv2020({ strict: false })
  ajv.addSchema({ ...doc, $id: 'urn:ml-prediction-server:asyncapi' })
  for (const name of Object.keys(doc.components.messages)) {
    if (name === 'FlatBuffersMessage') continue
    t.doesNotThrow(() => ajv.compile({ $ref: `urn:ml-prediction-server:asyncapi#/components/schemas/${name}` }), `${name} compiles`)
  }
  const request = ajv.compile({ $ref: 'urn:ml-prediction-server:asyncapi#/components/schemas/WsPredictRequest' })
  t.ok(request({ id: 1, price: 612.5 }))
  t.notOk(request({ price: 612.5 }), 'id is required')
})

t.test('a model set answer (components) matches both documents; a bad component does not', async (t) => {
  const parts = [
    { modelVersion: 'xgb_v1', modelVersionJson: '"xgb_v1"', probability: 0.61, weight: 1, status: 'used' as const },
    { modelVersion: 'gaf "cnn"', modelVersionJson: JSON.stringify('gaf "cnn"'), probability: Number.NaN, weight: 0, status: 'no_history' as const },
  ]
  const checker = new OpenApiChecker(buildOpenApiDocument(kOptions))
  const body = JSON.parse(predictionJson(0.61, '"set_v1"', 'ABCUSDT', 1.5, parts))
  t.same(checker.validate('/components/schemas/Prediction', body), [], 'HTTP: a set answer')
  t.same(checker.validate('/components/schemas/Prediction', JSON.parse(predictionJson(0.61, '"xgb_v1"', 'ABCUSDT', 1.5, null))), [], 'HTTP: a single model answer')
  const bad = { ...body, components: [{ ...body.components[0], status: 'skipped' }] }
  t.not(checker.validate('/components/schemas/Prediction', bad).length, 0, 'an unknown status is refused')
  const extra = { ...body, components: [{ ...body.components[0], note: 1 }] }
  t.not(checker.validate('/components/schemas/Prediction', extra).length, 0, 'an undocumented component field is refused')

  const ajv = new Ajv2020({ strict: false })
  ajv.addSchema({ ...buildAsyncApiDocument(kOptions, readFlatBuffersSchema()), $id: 'urn:ml-prediction-server:asyncapi' })
  const frame = ajv.compile({ $ref: 'urn:ml-prediction-server:asyncapi#/components/schemas/WsPrediction' })
  t.ok(frame(JSON.parse(predictionText(4, 0.61, '"set_v1"', 'ABCUSDT', 1.5, parts))), '/ws text frame with components')
  t.notOk(frame({ ...JSON.parse(predictionText(4, 0.61, '"set_v1"', 'ABCUSDT', 1.5, parts)), components: [{ model_version: 'x' }] }), 'an incomplete component is refused')
})
