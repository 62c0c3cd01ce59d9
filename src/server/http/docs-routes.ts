import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js'
import type { Config } from '../../config/schema.js'
import { buildAsyncApiDocument, buildOpenApiDocument, type ApiDocumentOptions } from '../../openapi/document.js'
import { kPackageVersion, readFlatBuffersSchema } from '../../openapi/package-info.js'
import { writeMethodNotAllowed } from './reply.js'

/** Swagger UI's files, from the npm package `swagger-ui-dist` (no CDN: the page works offline). */
const kSwaggerAssets: ReadonlyArray<readonly [string, string]> = [
  ['swagger-ui.css', 'text/css; charset=utf-8'],
  ['swagger-ui-bundle.js', 'text/javascript; charset=utf-8'],
  ['swagger-ui-standalone-preset.js', 'text/javascript; charset=utf-8'],
  ['favicon-32x32.png', 'image/png'],
]

// Our own page and initializer (swagger-ui-dist's index.html points at the petstore example).
const kIndexHtml = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>ML prediction server API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
`
const kInitJs = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: 'StandaloneLayout',
  validatorUrl: null
})
`

interface Asset {
  readonly type: string
  readonly body: Buffer
}

/**
 * GET /openapi.json, /asyncapi.json, /schemas/prediction.fbs and the /docs page. Every body is
 * built once, at start, from the same tables the validator and the error registry use
 * (src/openapi/document.ts) and this server's configuration; requests only write a buffer.
 */
export class DocsRoutes {
  readonly openapi: Record<string, unknown>
  readonly asyncapi: Record<string, unknown>
  private readonly assets = new Map<string, Asset>()

  constructor (config: Config) {
    const options: ApiDocumentOptions = {
      version: kPackageVersion,
      maxBatchRequests: config.maxBatchRequests,
      maxBodyBytes: config.maxBodyBytes,
      defaultSymbol: config.defaultSymbol,
      adminEnabled: config.adminToken !== null,
    }
    const fbs = readFlatBuffersSchema()
    this.openapi = buildOpenApiDocument(options)
    this.asyncapi = buildAsyncApiDocument(options, fbs)
    const jsonType = 'application/json'
    this.assets.set('/openapi.json', { type: jsonType, body: Buffer.from(JSON.stringify(this.openapi)) })
    this.assets.set('/asyncapi.json', { type: jsonType, body: Buffer.from(JSON.stringify(this.asyncapi)) })
    this.assets.set('/schemas/prediction.fbs', { type: 'text/plain; charset=utf-8', body: Buffer.from(fbs) })
    this.assets.set('/docs', { type: 'text/html; charset=utf-8', body: Buffer.from(kIndexHtml) })
    this.assets.set('/docs/init.js', { type: 'text/javascript; charset=utf-8', body: Buffer.from(kInitJs) })
    const dist = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'))
    for (const [file, type] of kSwaggerAssets) this.assets.set(`/docs/${file}`, { type, body: readFileSync(join(dist, file)) })
  }

  /** Registers the GETs, and 405 (with Allow) for other methods on the same paths. */
  register (app: TemplatedApp, onMethodNotAllowed: () => void, draining: () => boolean): void {
    for (const [path, asset] of this.assets) {
      app.get(path, (res) => { this.write(res, asset, draining()) })
      app.any(path, (res) => { onMethodNotAllowed(); writeMethodNotAllowed(res, 'GET', draining()) })
    }
  }

  private write (res: HttpResponse, asset: Asset, close: boolean): void {
    res.writeStatus('200 OK').writeHeader('Content-Type', asset.type).writeHeader('Cache-Control', 'no-cache').end(asset.body, close)
  }
}
