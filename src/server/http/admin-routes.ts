import { timingSafeEqual } from 'node:crypto'
import { isAbsolute, relative, resolve } from 'node:path'
import type { HttpRequest, HttpResponse } from 'uWebSockets.js'
import type { ModelManager, ReloadOutcome } from '../../model/model-manager.js'
import { readBody, refuseBadFraming, type BodyTarget } from './body-reader.js'
import { writeError, writeJson } from './reply.js'

const kMaxAdminBody = 4096

/**
 * POST /admin/reload            reload the serving model's file, or {"model_path": "..."} another
 *                               file of the models folder
 * POST /admin/shadow            {"model_path": "..."}: score a candidate beside the serving model
 * DELETE /admin/shadow          stop shadow scoring
 *
 * Registered only when admin_token is set; every call needs `Authorization: Bearer <token>`.
 * Paths are confined to the models folder, so the token cannot be used to make the server open
 * arbitrary files.
 */
export class AdminRoutes {
  private readonly manager: ModelManager
  private readonly token: Buffer

  constructor (manager: ModelManager, token: string) {
    this.manager = manager
    this.token = Buffer.from(token)
  }

  reload (res: HttpResponse, req: HttpRequest): void {
    this.withBody(res, req, (body) => this.manager.reload(body === null ? undefined : body, 'admin'))
  }

  startShadow (res: HttpResponse, req: HttpRequest): void {
    this.withBody(res, req, (body) => {
      if (body === null) return Promise.resolve(null)
      return this.manager.setShadow(body)
    })
  }

  stopShadow (res: HttpResponse, req: HttpRequest): void {
    if (!this.authorized(req)) { writeError(res, 'ERR_UNAUTHORIZED'); return }
    let aborted = false
    res.onAborted(() => { aborted = true })
    void this.manager.setShadow(null).then((outcome) => {
      if (!aborted) res.cork(() => { writeOutcome(res, outcome) })
    })
  }

  /** True when the request carries this server's admin token (also used by /health for details). */
  authorized (req: HttpRequest): boolean {
    return bearerTokenMatches(req.getHeader('authorization'), this.token)
  }

  /** Reads an optional `{"model_path"}` body (req is read synchronously, before any await). */
  private withBody (res: HttpResponse, req: HttpRequest, run: (modelPath: string | null) => Promise<ReloadOutcome | null>): void {
    if (!this.authorized(req)) { writeError(res, 'ERR_UNAUTHORIZED'); return }
    const target: BodyTarget & { aborted: boolean } = {
      aborted: false,
      onBadFraming: () => { refuseBadFraming(res, target) },
      onBodyTooLarge: () => { if (!target.aborted) res.cork(() => { writeError(res, 'ERR_BODY_TOO_LARGE') }) },
      onBody: (body) => {
        const parsed = this.modelPathFrom(body)
        if (typeof parsed === 'object' && parsed !== null) {
          res.cork(() => { writeJson(res, 422, JSON.stringify({ detail: parsed.error })) })
          return
        }
        void run(parsed).then((outcome) => {
          if (target.aborted) return
          res.cork(() => {
            if (outcome === null) writeJson(res, 422, JSON.stringify({ detail: 'model_path is required' }))
            else writeOutcome(res, outcome)
          })
        })
      },
    }
    res.onAborted(() => { target.aborted = true })
    readBody(res, req, kMaxAdminBody, target)
  }

  private modelPathFrom (body: Buffer): string | null | { error: string } {
    if (body.length === 0) return null
    let value: unknown
    try { value = JSON.parse(body.toString('utf8')) } catch { return { error: 'body is not valid JSON' } }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return { error: 'body must be a JSON object' }
    const path = Object.hasOwn(value, 'model_path') ? (value as { model_path: unknown }).model_path : undefined
    if (path === undefined || path === null) return null
    if (typeof path !== 'string' || path.length === 0) return { error: 'model_path must be a non-empty string' }
    const dir = this.manager.modelsDir
    const full = resolve(dir, path)
    const rel = relative(dir, full)
    if (rel.startsWith('..') || isAbsolute(rel)) return { error: `model_path must name a file in the models folder ${dir}` }
    return full
  }
}

/**
 * `Authorization: Bearer <token>`. The scheme is case-insensitive and may be followed by more
 * than one space (RFC 9110 §11.1, §11.4: `bearer x` is the same credential); the token itself is
 * compared exactly, in constant time.
 */
export function bearerTokenMatches (header: string, token: Buffer): boolean {
  const match = /^bearer +/i.exec(header)
  if (match === null) return false
  const given = Buffer.from(header.slice(match[0].length))
  return given.length === token.length && timingSafeEqual(given, token)
}

function writeOutcome (res: HttpResponse, outcome: ReloadOutcome): void {
  if (outcome.ok) {
    writeJson(res, 200, JSON.stringify({ status: 'ok', ...outcome, ok: undefined }))
  } else {
    // The named model is unusable; the serving one (model_version) is unchanged.
    writeJson(res, outcome.code === 'ERR_SHUTTING_DOWN' ? 503 : 422, JSON.stringify({ detail: outcome.error, code: outcome.code, model_version: outcome.model_version }))
  }
}
