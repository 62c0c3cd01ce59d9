/**
 * What every result records about the machine and the code (STYLE B9; pino's
 * `benchmarks/utils/runbench.js` prints the same system line): OS, CPU model, cores, memory, Node,
 * the versions of the parts on the hot path, the git commit (and whether the tree had local
 * changes), the load average before and after, and what was pinned where.
 */

import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface MachineInfo {
  readonly os: string
  readonly arch: string
  readonly cpuModel: string
  readonly logicalCores: number
  readonly memoryGb: number
  readonly node: string
  readonly v8: string
  readonly packages: Readonly<Record<string, string | null>>
  readonly git: { readonly commit: string | null, readonly dirty: boolean | null, readonly branch: string | null }
  readonly tasksetAvailable: boolean
}

export interface LoadSnapshot {
  readonly at: string
  readonly loadAverage: readonly [number, number, number]
  /** The `uptime` command's line, or null where it does not exist. */
  readonly uptime: string | null
}

const kPackages = ['onnxruntime-node', 'piscina', 'uWebSockets.js', 'hdr-histogram-js', 'tsx']

/** The folder holding the project's package.json, from bench/lib (source) or dist/bench/lib. */
export function findRepoRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json')
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'ml-prediction-server') return dir
    dir = dirname(dir)
  }
  throw new Error('could not find the ml-prediction-server package.json above bench/lib')
}

export function collectMachineInfo (repoRoot: string): MachineInfo {
  const cpus = os.cpus()
  const packages: Record<string, string | null> = {}
  for (const name of kPackages) packages[name] = packageVersion(repoRoot, name)
  return {
    os: `${os.type()} ${os.release()}`,
    arch: os.arch(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    logicalCores: cpus.length,
    memoryGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    v8: process.versions.v8,
    packages,
    git: gitInfo(repoRoot),
    tasksetAvailable: commandExists('taskset'),
  }
}

export function loadSnapshot (): LoadSnapshot {
  const [a, b, c] = os.loadavg()
  let uptime: string | null = null
  try { uptime = execFileSync('uptime', { encoding: 'utf8', timeout: 2000 }).trim() } catch { /* not installed */ }
  return { at: new Date().toISOString(), loadAverage: [round2(a!), round2(b!), round2(c!)], uptime }
}

/** One line for the terminal: what the figures were measured on. */
export function machineLine (m: MachineInfo): string {
  const commit = m.git.commit === null ? 'no git' : `${m.git.commit.slice(0, 10)}${m.git.dirty === true ? '+local changes' : ''}`
  return `${m.cpuModel}, ${m.logicalCores} logical cores, ${m.memoryGb} GB, ${m.os} ${m.arch}, ` +
    `Node ${m.node}, onnxruntime-node ${m.packages['onnxruntime-node'] ?? '?'}, piscina ${m.packages.piscina ?? '?'}, ` +
    `uWS ${m.packages['uWebSockets.js'] ?? '?'}, commit ${commit}`
}

let clkTck: number | null = null

/** USER_HZ for /proc/<pid>/stat times: `getconf CLK_TCK`, 100 on every common Linux build. */
export function clockTicksPerSecond (): number {
  if (clkTck === null) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim()) || 100
    } catch {
      clkTck = 100
    }
  }
  return clkTck
}

export function commandExists (command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore', timeout: 2000 })
    return true
  } catch {
    return false
  }
}

function packageVersion (repoRoot: string, name: string): string | null {
  try {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { name: string, version: string }
    // uWebSockets.js is installed under an alias (npm:uws-pack@...): say which package it really is.
    return pkg.name === name ? pkg.version : `${pkg.name}@${pkg.version}`
  } catch {
    return null
  }
}

function gitInfo (repoRoot: string): MachineInfo['git'] {
  const git = (...args: string[]): string | null => {
    try {
      return execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    } catch {
      return null
    }
  }
  const commit = git('rev-parse', 'HEAD')
  const status = commit === null ? null : git('status', '--porcelain', '--untracked-files=no')
  return { commit, dirty: status === null ? null : status.length > 0, branch: git('rev-parse', '--abbrev-ref', 'HEAD') }
}

function round2 (x: number): number {
  return Math.round(x * 100) / 100
}
