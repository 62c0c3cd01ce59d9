/**
 * Checks a real answer against the OpenAPI document: the status is documented for the route, the
 * content type is one the document names, the JSON body validates (ajv, JSON Schema 2020-12 as
 * OpenAPI 3.1 uses), required headers are present and every documented header that is present
 * matches its schema. Opt-in: tests that want it call `check` with what postJson/getJson returned.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import { kErrorTable, type ErrorCode } from '../../src/errors.js'

export interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly body: unknown
}

type Json = Record<string, any>

const kDocId = 'urn:ml-prediction-server:openapi'

/** RFC 6901 escaping of one pointer segment. */
const seg = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1')

export class OpenApiChecker {
  readonly doc: Json
  private readonly ajv: Ajv2020
  private readonly compiled = new Map<string, ValidateFunction>()

  constructor (doc: Json) {
    this.doc = doc
    // strict off: the document holds OpenAPI keywords (paths, x-error-codes...) next to schemas.
    this.ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false })
    this.ajv.addSchema({ ...doc, $id: kDocId })
  }

  private validator (pointer: string): ValidateFunction {
    let v = this.compiled.get(pointer)
    if (v === undefined) {
      v = this.ajv.compile({ $ref: `${kDocId}#${pointer}` })
      this.compiled.set(pointer, v)
    }
    return v
  }

  /** Schema check of any value against a pointer into the document (e.g. a component). */
  validate (pointer: string, value: unknown): string[] {
    const v = this.validator(pointer)
    if (v(value)) return []
    return (v.errors ?? []).map((e) => `${pointer}: ${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`)
  }

  /** Problems with this answer to `method path`; empty when it matches the document. */
  check (method: string, path: string, answer: Answer): string[] {
    const m = method.toLowerCase()
    const item = this.doc.paths?.[path] as Json | undefined
    const op = item?.[m]
    let response: Json | undefined
    let base: string
    const problems: string[] = []
    if (op === undefined) {
      // Not an operation: an unknown path answers NotFound, another method on a path MethodNotAllowed.
      const name = item === undefined ? 'NotFound' : 'MethodNotAllowed'
      const want = item === undefined ? 404 : 405
      if (answer.status !== want) return [`${method} ${path}: ${answer.status}, the document says ${want} (${name})`]
      response = this.doc.components.responses[name]
      base = `/components/responses/${name}`
      if (item !== undefined) {
        const allow = Object.keys(item).map((k) => k.toUpperCase()).sort().join(', ')
        const sent = (answer.headers.get('allow') ?? '').split(',').map((x) => x.trim()).sort().join(', ')
        if (sent !== allow) problems.push(`${method} ${path} 405: Allow "${sent}", documented methods "${allow}"`)
      }
    } else {
      response = op.responses?.[String(answer.status)] ?? op.responses?.default
      base = `/paths/${seg(path)}/${m}/responses/${answer.status}`
    }
    if (response === undefined) return [`${method} ${path}: status ${answer.status} is not documented (documented: ${Object.keys(op.responses ?? {}).join(', ')})`]
    const contentType = (answer.headers.get('content-type') ?? '').split(';')[0]!.trim()
    const content = response.content as Json | undefined
    if (content !== undefined) {
      if (!(contentType in content)) problems.push(`${method} ${path} ${answer.status}: content-type ${contentType} not documented (${Object.keys(content).join(', ')})`)
      else if (contentType === 'application/json') problems.push(...this.validate(`${base}/content/${seg(contentType)}/schema`, answer.body))
    }
    const headers = (response.headers ?? {}) as Json
    for (const [name, spec] of Object.entries(headers)) {
      const value = answer.headers.get(name)
      if (value === null) {
        if (spec.required === true) problems.push(`${method} ${path} ${answer.status}: required header ${name} missing`)
        continue
      }
      if (spec.schema !== undefined) problems.push(...this.validate(`${base}/headers/${seg(name)}/schema`, value))
    }
    // The headers the error registry attaches are exactly the documented ones: a Retry-After the
    // document does not mention, or one missing where the registry code says it is sent, is drift.
    for (const name of ['Retry-After', 'WWW-Authenticate', 'Allow']) {
      if (answer.headers.get(name) !== null && !(name in headers)) problems.push(`${method} ${path} ${answer.status}: header ${name} sent but not documented`)
    }
    const codes = (response['x-error-codes'] ?? []) as ErrorCode[]
    const detail = (answer.body as { detail?: unknown } | null)?.detail
    const code = codes.find((c) => kErrorTable[c].message === detail)
    if (code !== undefined) {
      for (const name of Object.keys(kErrorTable[code].headers ?? {})) {
        if (name !== 'Connection' && answer.headers.get(name) === null) problems.push(`${method} ${path} ${answer.status} (${code}): ${name} missing`)
      }
    }
    return problems
  }
}
