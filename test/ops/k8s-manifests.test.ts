/**
 * Kubernetes manifests (deploy/k8s). No cluster and no kubeconform here, so this checks what can be
 * checked offline:
 * - every file parses as YAML and every document is a named Kubernetes object;
 * - the pieces fit: selectors match pod labels, the HPA and PDB target the Deployment, probes use
 *   the server's routes and the named port, CONFIG_FILE points at the mounted ConfigMap key, the
 *   ConfigMap's config file passes the server's own config loader, the grace period outlasts
 *   preStop + shutdown_timeout_ms, the pod runs as the image's non-root user, resources are sized
 *   for 2 cores and 1 worker, maxReplicas fits the router's server slots;
 * - the router's deploy/k8s/haproxy.cfg passes `haproxy -c` and has the same defaults and
 *   frontend rules as deploy/haproxy/haproxy.cfg, the file haproxy-affinity.test.ts proves;
 * - `kubectl kustomize` renders the set when kubectl is installed.
 * Takes ~2 s.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { loadConfig } from '../../src/config/load.js'
import { findBinary, kRepoRoot } from './ops-helpers.js'

const dir = join(kRepoRoot, 'deploy/k8s')
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()

type K8sObject = { apiVersion: string, kind: string, metadata: { name: string, labels?: Record<string, string> }, spec?: any, data?: Record<string, string> }
const objects: Array<K8sObject & { file: string }> = []

t.test('every manifest parses and every document is a named object', async (t) => {
  t.ok(files.length >= 6, `${files.length} YAML files`)
  for (const file of files) {
    const docs = parseAllDocuments(readFileSync(join(dir, file), 'utf8'))
    for (const doc of docs) {
      t.same(doc.errors.map(String), [], `${file}: YAML parses`)
      const obj = doc.toJS() as K8sObject
      if (file === 'kustomization.yaml') continue
      t.ok(obj.apiVersion && obj.kind && obj.metadata?.name, `${file}: ${obj.kind}/${obj.metadata?.name}`)
      objects.push({ ...obj, file })
    }
  }
})

function find (kind: string, name?: string): K8sObject & { file: string } {
  const o = objects.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name))
  if (o === undefined) throw new Error(`no ${kind}${name === undefined ? '' : `/${name}`}`)
  return o
}

const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v)

t.test('the inference Deployment: probes, resources, config, shutdown, security', async (t) => {
  const dep = find('Deployment', 'ml-prediction-server')
  const pod = dep.spec.template
  t.ok(matches(dep.spec.selector.matchLabels, pod.metadata.labels), 'selector matches pod labels')
  const c = pod.spec.containers[0]
  t.equal(c.ports[0].containerPort, 8000)
  t.equal(c.ports[0].name, 'http')
  t.same(c.livenessProbe.httpGet, { path: '/health/live', port: 'http' }, 'liveness: /health/live')
  t.same(c.readinessProbe.httpGet, { path: '/health/ready', port: 'http' }, 'readiness: /health/ready')
  t.same(c.startupProbe.httpGet, { path: '/health/ready', port: 'http' }, 'startup: /health/ready')
  t.ok(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold >= 30, 'start-up allowance >= 30 s (model load and warm-up)')
  t.equal(c.resources.requests.cpu, '2', 'requests 2 CPUs')
  t.ok(c.resources.limits.memory, 'memory limit set')

  // The config file the pod reads: CONFIG_FILE -> the ConfigMap key mounted at that path.
  const configFile = c.env.find((e: any) => e.name === 'CONFIG_FILE').value as string
  const mount = c.volumeMounts.find((m: any) => configFile.startsWith(`${m.mountPath}/`))
  t.ok(mount, `CONFIG_FILE ${configFile} is under a mounted volume`)
  const volume = pod.spec.volumes.find((v: any) => v.name === mount.name)
  const cm = find('ConfigMap', volume.configMap.name)
  const key = configFile.slice(mount.mountPath.length + 1)
  t.ok(cm.data?.[key], `ConfigMap ${cm.metadata.name} has ${key}`)

  const tmp = mkdtempSync(join(tmpdir(), 'ml-k8s-'))
  t.teardown(() => { rmSync(tmp, { recursive: true, force: true }) })
  writeFileSync(join(tmp, key), cm.data![key]!)
  const config = loadConfig({ argv: [], env: { CONFIG_FILE: join(tmp, key) } })
  t.equal(config.workers, 1, 'the config file passes the server loader: 1 worker for 2 requested CPUs (the event loop takes the other)')
  t.equal(config.port, 8000)
  t.equal(config.modelPath, '/app/models/xgboost_phase1_v2_calibrated.onnx', 'MODEL_PATH as in the image')

  const preStop = Number(c.lifecycle?.preStop?.exec?.command?.at(-1) ?? 0)
  t.ok(pod.spec.terminationGracePeriodSeconds * 1000 > config.shutdownTimeoutMs + preStop * 1000,
    `terminationGracePeriodSeconds ${pod.spec.terminationGracePeriodSeconds} s > preStop ${preStop} s + shutdown_timeout_ms ${config.shutdownTimeoutMs}`)

  const dockerUser = /^USER\s+(\d+)/m.exec(readFileSync(join(kRepoRoot, 'Dockerfile'), 'utf8'))?.[1]
  t.equal(pod.spec.securityContext.runAsNonRoot, true)
  t.equal(String(pod.spec.securityContext.runAsUser), dockerUser, 'runAsUser is the image USER')
  t.equal(c.securityContext.readOnlyRootFilesystem, true)
  t.equal(dep.spec.strategy.rollingUpdate.maxUnavailable, 0, 'rolling update never drops below the desired count')
})

t.test('Services, HPA and PDB select the inference pods', async (t) => {
  const dep = find('Deployment', 'ml-prediction-server')
  const podLabels = dep.spec.template.metadata.labels
  const headless = find('Service', 'ml-prediction-server-pods')
  t.equal(headless.spec.clusterIP, 'None', 'headless Service for the router to discover pods')
  for (const svc of objects.filter((o) => o.kind === 'Service' && o.metadata.name.startsWith('ml-prediction-server'))) {
    t.ok(matches(svc.spec.selector, podLabels), `Service ${svc.metadata.name} selects the inference pods`)
    t.equal(svc.spec.ports[0].targetPort, 'http')
  }
  const hpa = find('HorizontalPodAutoscaler')
  t.equal(hpa.apiVersion, 'autoscaling/v2')
  t.same(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: dep.metadata.name }, 'HPA scales the Deployment')
  t.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas >= hpa.spec.minReplicas)
  t.ok(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds >= 600, 'scale-down is slow (each change moves symbols)')
  const pdb = find('PodDisruptionBudget')
  t.equal(pdb.apiVersion, 'policy/v1')
  t.ok(matches(pdb.spec.selector.matchLabels, podLabels), 'PDB selects the inference pods')
  t.ok(pdb.spec.maxUnavailable === 1 || pdb.spec.minAvailable !== undefined)

  const slots = Number(/server-template\s+\S+\s+(\d+)/.exec(readFileSync(join(dir, 'haproxy.cfg'), 'utf8'))?.[1])
  t.ok(hpa.spec.maxReplicas <= slots, `maxReplicas ${hpa.spec.maxReplicas} <= router slots ${slots}`)

  const router = find('Deployment', 'ml-router')
  t.equal(router.spec.replicas, 1, 'one router: one symbol -> pod assignment')
  const routerSvc = find('Service', 'ml-router')
  t.ok(matches(routerSvc.spec.selector, router.spec.template.metadata.labels), 'ml-router Service selects the router')
  t.notOk(matches(routerSvc.spec.selector, podLabels), 'and not the inference pods')
  const env = Object.fromEntries(router.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]))
  t.match(env.ML_PODS_DNS, new RegExp(`^${headless.metadata.name}\\.`), 'router resolves the headless Service')
  const defaultSymbol = JSON.parse(readFileSync(join(kRepoRoot, 'config/default.json'), 'utf8')).default_symbol
  t.equal(env.ML_DEFAULT_SYMBOL, defaultSymbol, 'router default symbol = server default_symbol')
})

function section (cfg: string, header: string): string {
  const start = cfg.indexOf(`\n${header}`)
  if (start < 0) throw new Error(`no section ${header}`)
  const rest = cfg.slice(start + 1)
  const end = rest.search(/\n(?=[a-z])/)
  return (end < 0 ? rest : rest.slice(0, end)).split('\n').filter((l) => !/^\s*#/.test(l)).join('\n').trim()
}

t.test('the router config: valid, and the same routing rules as the tested HAProxy recipe', async (t) => {
  const k8s = readFileSync(join(dir, 'haproxy.cfg'), 'utf8')
  const tested = readFileSync(join(kRepoRoot, 'deploy/haproxy/haproxy.cfg'), 'utf8')
  for (const header of ['defaults', 'frontend ml_service']) {
    t.equal(section(k8s, header), section(tested, header), `${header}: identical to deploy/haproxy/haproxy.cfg`)
  }
  const backendLines = (cfg: string): string[] => section(cfg, 'backend ml_replicas').split('\n').map((l) => l.trim())
    .filter((l) => /^(balance|hash-type|option httpchk|option http-server-close|http-check|http-response)/.test(l))
  t.same(backendLines(k8s), backendLines(tested), 'backend: same balance, hash, server-side connection mode, checks')
  const haproxy = findBinary('haproxy')
  if (haproxy === null) {
    t.pass('haproxy absent: `haproxy -c` not run', { skip: true })
  } else {
    const r = spawnSync(haproxy, ['-c', '-f', join(dir, 'haproxy.cfg')], { encoding: 'utf8', timeout: 20_000 })
    t.equal(r.status, 0, `haproxy -c: ${(r.stdout + r.stderr).trim().split('\n').at(-1)}`)
  }
})

t.test('kustomization lists every manifest and renders', async (t) => {
  const kust = parseAllDocuments(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'))[0]!.toJS()
  t.same([...kust.resources].sort(), files.filter((f) => f !== 'kustomization.yaml'), 'every manifest is a resource')
  t.same(kust.configMapGenerator[0].files, ['haproxy.cfg'])
  const kubectl = findBinary('kubectl')
  if (kubectl === null) {
    t.pass('kubectl absent: `kubectl kustomize` not run', { skip: true })
    return
  }
  const r = spawnSync(kubectl, ['kustomize', dir], { encoding: 'utf8', timeout: 30_000 })
  t.equal(r.status, 0, `kubectl kustomize: ${r.stderr.trim().split('\n')[0] ?? ''}`)
  const rendered = parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject)
  const cm = rendered.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('ml-router-config'))
  t.ok(cm?.data?.['haproxy.cfg']?.includes('server-template'), 'router ConfigMap generated from haproxy.cfg')
  const router = rendered.find((o) => o.kind === 'Deployment' && o.metadata.name === 'ml-router')
  t.equal(router?.spec.template.spec.volumes[0].configMap.name, cm?.metadata.name, 'and referenced by its hashed name')
})
