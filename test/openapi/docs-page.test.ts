/**
 * /docs renders in a real headless Chromium (Debian's `chromium`, installed by .ci/run) from the
 * server's own files, with the network off for everything but 127.0.0.1, and lists every route
 * of the document. A screenshot is kept as a test artifact (.tap/openapi-docs.png, not committed).
 * Without chromium the test is skipped, except in CI (CI=true), where that is a failure.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t from 'tap'
import { startServer } from '../helpers/start-server.js'

const kChromium = process.env.CHROMIUM ?? '/usr/bin/chromium'
const kArtifact = resolve('.tap', 'openapi-docs.png')

function chromium (args: string[], userDataDir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(kChromium, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-sync', '--disable-dev-shm-usage', `--user-data-dir=${userDataDir}`,
      // Nothing but the test server: a CDN request would fail rather than hide a missing file.
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      // Lets the page's scripts run to completion before the DOM is dumped / the shot is taken.
      '--virtual-time-budget=15000',
      ...args,
    ], { timeout: 60_000, maxBuffer: 64 << 20 }, (err, stdout) => { if (err) reject(err); else resolve(stdout) })
  })
}

t.test('/docs renders in headless Chromium and lists every route', { skip: !existsSync(kChromium) && process.env.CI !== 'true' ? `${kChromium} not installed` : false }, async (t) => {
  const { url } = await startServer(t, { admin_token: 'docs-test-token' })
  const doc = await (await fetch(`${url}/openapi.json`)).json() as { paths: Record<string, Record<string, unknown>> }
  const profile = mkdtempSync(join(tmpdir(), 'openapi-chromium-'))
  t.teardown(() => { rmSync(profile, { recursive: true, force: true }) })

  const dom = await chromium(['--dump-dom', `${url}/docs`], join(profile, 'a'))
  t.match(dom, /class="[^"]*swagger-ui/, 'Swagger UI rendered')
  t.match(dom, /ML prediction server/, 'title from the document')
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) {
      // Each operation is one block: <div class="opblock opblock-post" id="operations-predict-predict">.
      t.match(dom, new RegExp(`opblock-${method}[^]*?data-path="${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"`), `${method.toUpperCase()} ${path} listed`)
    }
  }

  mkdirSync(resolve('.tap'), { recursive: true })
  rmSync(kArtifact, { force: true })
  await chromium(['--window-size=1280,2600', `--screenshot=${kArtifact}`, `${url}/docs`], join(profile, 'b'))
  t.ok(existsSync(kArtifact) && statSync(kArtifact).size > 10_000, `screenshot written to ${kArtifact}`)
})
