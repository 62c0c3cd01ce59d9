/**
 * Model sets (issue 14): several ONNX members served as one model. A set file
 * (`models/NAME.set.json`, docs/model-sets.md) names its members, files in the same folder, and
 * their weights:
 *
 *   {"set_version": "ensemble_phase2_v1", "combiner": "weighted_mean",
 *    "members": [{"model": "xgboost_phase1_v2_calibrated.onnx", "weight": 0.7, "workers": 1},
 *                {"model": "gaf_cnn_phase2_v1.onnx", "weight": 0.3, "workers": 2}]}
 *
 * Each member is a LoadedModel with its own worker pool. The set is one BatchRunner to the
 * batcher: a batch of requests goes to every member at once (each pool copies the part of the
 * rows it reads, row-layout.ts, and queues the batch behind its own busy workers), and is
 * answered when every member has answered: per row, the weighted mean of the members that could
 * answer, weights renormalized over them. A windowed member answers NaN for a row without enough
 * history, and a member whose batch failed is left out of every row of it; the answer's
 * `components` says which and why. A set needs a tabular member (it always has an answer), so a
 * row without any answer means the tabular member(s) failed: that request is answered INTERNAL.
 *
 * Why one gathering queue for the set and not one per member: every request needs every member,
 * so a member's batches would hold the same requests anyway; what differs per member is its
 * pool (workers, queue of batches waiting for a worker), which is what each member has.
 */
import { basename, dirname, join } from 'node:path'
import type { BatchCompletion, BatchRunner } from '../batching/dynamic-batcher.js'
import { runBatch } from '../batching/dynamic-batcher.js'
import type { Component, ComponentStatus } from '../batching/pending-request.js'
import { InferenceError, ModelIncompatibleError, ModelLoadError, ServiceError } from '../errors.js'
import { kMaxMetadataBytes, readRegularFile } from './model-file.js'
import { loadModel, type LoadedModel, type ModelLoadOptions } from './model-loader.js'
import type { ModelMetadata } from './model-metadata.js'

/** A set file's name ends so: `model_path` naming one loads a set. */
export const kSetSuffix = '.set.json'
/** Members per set, at most: each has a pool of workers, and an answer lists them all. */
export const kMaxMembers = 8
const kMaxMemberWorkers = 64
/** Written in place of a member's probabilities when its batch failed (a probability is never negative). */
const kFailed = -1

export function isSetPath (modelPath: string): boolean { return modelPath.endsWith(kSetSuffix) }

export interface SetMemberDeclaration {
  /** The member's .onnx, a file name in the set file's folder; its metadata .json sits beside it. */
  readonly model: string
  readonly weight: number
  /**
   * Worker threads of this member's pool; default 1. Not the server's `workers` (one per core
   * less one): a set of two members would then start two threads per core, and a GAF-CNN worker
   * holds ~27 MB (bench/README.md#model-sets).
   */
  readonly workers?: number
}

export interface SetDefinition {
  readonly set_version: string
  readonly combiner: 'weighted_mean'
  readonly members: readonly SetMemberDeclaration[]
  readonly [key: string]: unknown
}

/** Per member, what its answers counted since the set was loaded (for /metrics). */
export interface MemberStats {
  readonly model_version: string
  readonly input: string
  readonly weight: number
  readonly workers: number
  readonly rows_used: number
  readonly rows_no_history: number
  readonly rows_failed: number
}

/**
 * Reads and checks a set file without loading anything: the format, each member's declaration
 * (named in every message), duplicate files. Throws ModelLoadError.
 */
export async function readSetDefinition (setPath: string): Promise<SetDefinition> {
  const bytes = await readRegularFile(setPath, 'model set', kMaxMetadataBytes).catch((err: unknown) => {
    throw new ModelLoadError(`${(err as Error).message}: set model_path to a model set file (${kSetSuffix}) or an .onnx model`, err)
  })
  let raw: unknown
  try {
    raw = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch (err) {
    throw new ModelLoadError(`model set ${setPath} is not valid JSON: ${(err as Error).message}`, err)
  }
  return parseSetDefinition(raw, setPath)
}

export function parseSetDefinition (raw: unknown, setPath: string): SetDefinition {
  const where = `model set ${basename(setPath)}`
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ModelLoadError(`${where} must be a JSON object with set_version, combiner and members`)
  const o = raw as Record<string, unknown>
  if (typeof o.set_version !== 'string' || !/^[A-Za-z0-9_.-]{1,128}$/.test(o.set_version)) {
    throw new ModelLoadError(`${where}: set_version must be 1 to 128 of [A-Za-z0-9_.-], got ${JSON.stringify(o.set_version)}`)
  }
  if (o.combiner !== 'weighted_mean') throw new ModelLoadError(`${where}: combiner must be "weighted_mean" (the only one), got ${JSON.stringify(o.combiner)}`)
  const members = o.members
  if (!Array.isArray(members) || members.length === 0) throw new ModelLoadError(`${where}: members must be a non-empty array`)
  if (members.length > kMaxMembers) throw new ModelLoadError(`${where} has ${members.length} members, at most ${kMaxMembers}`)
  const seen = new Set<string>()
  const parsed = members.map((m: unknown, i): SetMemberDeclaration => {
    const label = `${where} member ${i + 1}`
    if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new ModelLoadError(`${label} must be an object like {"model": "x.onnx", "weight": 0.5}`)
    const d = m as Record<string, unknown>
    const model = d.model
    if (typeof model !== 'string' || !/^[A-Za-z0-9_.-]{1,200}\.onnx$/.test(model) || model.startsWith('.')) {
      throw new ModelLoadError(`${label}: model must be an .onnx file name in the set's folder (no path), got ${JSON.stringify(model)}`)
    }
    const named = `${where} member ${model}`
    const extra = Object.keys(d).filter(k => k !== 'model' && k !== 'weight' && k !== 'workers')
    if (extra.length > 0) throw new ModelLoadError(`${named}: unknown field(s) ${extra.join(', ')} (allowed: model, weight, workers)`)
    const weight = d.weight
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
      throw new ModelLoadError(`${named}: weight must be a finite number > 0, got ${JSON.stringify(weight) ?? String(weight)}`)
    }
    const workers = d.workers
    if (workers !== undefined && (typeof workers !== 'number' || !Number.isInteger(workers) || workers < 1 || workers > kMaxMemberWorkers)) {
      throw new ModelLoadError(`${named}: workers must be an integer in [1, ${kMaxMemberWorkers}], got ${JSON.stringify(workers)}`)
    }
    if (seen.has(model)) throw new ModelLoadError(`${named} is listed twice`)
    seen.add(model)
    return workers === undefined ? { model, weight } : { model, weight, workers }
  })
  return { ...o, set_version: o.set_version, combiner: 'weighted_mean', members: parsed }
}

interface Member {
  readonly model: LoadedModel
  /** The declared weight (the set renormalizes per row over the members that answered). */
  readonly weight: number
  used: number
  noHistory: number
  failed: number
}

/**
 * One batch on its way through every member. Pooled per set; each holds its own answer buffer
 * per member, since several batches can be in flight at once (one per worker of the widest pool).
 */
class SetCall {
  readonly set: LoadedSet
  readonly completions: MemberCompletion[]
  /** Per member: where its pool writes this batch's answers (P(up) per row, then its time). */
  readonly targets: ArrayBuffer[]
  readonly answers: Float32Array[]
  /** 0 waiting, 1 answered, 2 failed: per member. */
  readonly state: Uint8Array
  buffer: ArrayBuffer | null = null
  rows = 0
  remaining = 0
  failed = 0
  completion: BatchCompletion | null = null

  constructor (set: LoadedSet, members: number, maxBatchSize: number) {
    this.set = set
    this.state = new Uint8Array(members)
    this.completions = Array.from({ length: members }, (_, m) => new MemberCompletion(this, m))
    this.targets = Array.from({ length: members }, () => new ArrayBuffer((maxBatchSize + 1) * 4))
    this.answers = this.targets.map(b => new Float32Array(b))
  }
}

/** A member's BatchCompletion for one call: bound once, so a dispatch allocates nothing. */
class MemberCompletion implements BatchCompletion {
  readonly call: SetCall
  readonly member: number
  constructor (call: SetCall, member: number) { this.call = call; this.member = member }
  batchDone (): void { this.call.set.memberAnswered(this.call, this.member, 1) }
  batchFailed (): void { this.call.set.memberAnswered(this.call, this.member, 2) }
}

/** A loaded set: its members' pools and the weighted-mean combiner. */
export class LoadedSet implements BatchRunner {
  readonly definition: SetDefinition
  /** Synthesized for the server: the set's version, with the tabular member's features. */
  readonly metadata: ModelMetadata
  readonly modelVersion: string
  readonly modelVersionJson: string
  readonly modelPath: string
  readonly loadedAt: Date
  readonly windowed: boolean
  /** Batches in flight at once: the widest member's pool (narrower ones queue theirs). */
  readonly workers: number
  private readonly members: readonly Member[]
  private readonly maxBatchSize: number
  private readonly freeCalls: SetCall[] = []

  constructor (definition: SetDefinition, setPath: string, models: readonly LoadedModel[], maxBatchSize: number) {
    this.definition = definition
    this.modelVersion = definition.set_version
    this.modelVersionJson = JSON.stringify(definition.set_version)
    this.modelPath = setPath
    this.loadedAt = new Date()
    this.members = models.map((model, m) => ({ model, weight: definition.members[m]!.weight, used: 0, noHistory: 0, failed: 0 }))
    this.maxBatchSize = maxBatchSize
    this.windowed = models.some(m => m.windowed)
    this.workers = Math.max(...models.map(m => m.workers))
    const tabular = models.find(m => !m.windowed)!
    this.metadata = {
      ...tabular.metadata,
      model_version: definition.set_version,
      input_name: '',
      output_name: '',
      members: models.map(m => m.modelVersion),
    }
  }

  /** The members' models, in the set's order. */
  get models (): readonly LoadedModel[] { return this.members.map(m => m.model) }

  get threads (): ReadonlyArray<import('node:worker_threads').Worker> { return this.members.flatMap(m => m.model.threads) }

  dispatch (buffer: ArrayBuffer, rows: number, completion: BatchCompletion): void {
    const members = this.members
    const call = this.freeCalls.pop() ?? new SetCall(this, members.length, this.maxBatchSize)
    call.buffer = buffer
    call.rows = rows
    call.completion = completion
    call.remaining = members.length
    call.failed = 0
    call.state.fill(0)
    for (let m = 0; m < members.length; m++) members[m]!.model.dispatchFrom(buffer, call.targets[m]!, rows, call.completions[m]!)
  }

  run (buffer: ArrayBuffer, rows: number): Promise<ArrayBuffer> { return runBatch(this, buffer, rows) }

  /** A member's pool answered (1) or failed (2) its part of `call`. */
  memberAnswered (call: SetCall, m: number, state: 1 | 2): void {
    call.state[m] = state
    if (state === 2) {
      call.failed++
      this.members[m]!.failed += call.rows
    }
    if (--call.remaining > 0) return
    const { buffer, rows, completion } = call
    call.buffer = null
    call.completion = null
    if (call.failed === this.members.length) {
      this.freeCalls.push(call)
      completion!.batchFailed(new InferenceError(`every member of set ${this.modelVersion} failed this batch`))
      return
    }
    this.combine(new Float32Array(buffer!), rows, call)
    // Back in the pool only after combine has read its answers.
    this.freeCalls.push(call)
    completion!.batchDone(buffer!)
  }

  /**
   * Answers over the head of the set's batch buffer, as a single model's are: P(up) per row, then
   * the batch's inference time (the slowest member's); then, for `componentsOf`, each member's
   * probabilities (NaN: no history; kFailed: its batch failed). The rows' inputs are no longer
   * needed: every member copied them when its batch was posted.
   */
  private combine (out: Float32Array, rows: number, call: SetCall): void {
    const members = this.members
    const state = call.state
    let slowestUs = 0
    for (let m = 0; m < members.length; m++) {
      const member = members[m]!
      const base = rows + 1 + m * rows
      if (state[m] === 2) {
        out.fill(kFailed, base, base + rows)
        continue
      }
      const answers = call.answers[m]!
      if (answers[rows]! > slowestUs) slowestUs = answers[rows]!
      for (let i = 0; i < rows; i++) {
        const p = answers[i]!
        out[base + i] = p
        if (p === p) member.used++
        else member.noHistory++
      }
    }
    for (let i = 0; i < rows; i++) {
      let sum = 0
      let weights = 0
      for (let m = 0; m < members.length; m++) {
        const p = out[rows + 1 + m * rows + i]!
        if (p >= 0) {
          sum += members[m]!.weight * p
          weights += members[m]!.weight
        }
      }
      out[i] = weights > 0 ? sum / weights : Number.NaN
    }
    out[rows] = slowestUs
  }

  componentsOf (answers: Float32Array, rows: number, row: number): readonly Component[] {
    const members = this.members
    let weights = 0
    for (let m = 0; m < members.length; m++) {
      if (answers[rows + 1 + m * rows + row]! >= 0) weights += members[m]!.weight
    }
    const parts = new Array<Component>(members.length)
    for (let m = 0; m < members.length; m++) {
      const member = members[m]!
      const p = answers[rows + 1 + m * rows + row]!
      const status: ComponentStatus = p >= 0 ? 'used' : p === kFailed ? 'failed' : 'no_history'
      parts[m] = {
        modelVersion: member.model.modelVersion,
        modelVersionJson: member.model.modelVersionJson,
        probability: status === 'used' ? p : Number.NaN,
        weight: status === 'used' ? member.weight / weights : 0,
        status,
      }
    }
    return parts
  }

  memberStats (): MemberStats[] {
    return this.members.map(m => ({
      model_version: m.model.modelVersion,
      input: m.model.input.kind,
      weight: m.weight,
      workers: m.model.workers,
      rows_used: m.used,
      rows_no_history: m.noHistory,
      rows_failed: m.failed,
    }))
  }

  async close (force = false): Promise<void> {
    await Promise.all(this.members.map(m => m.model.close(force)))
  }
}

export interface SetLoadOptions extends Omit<ModelLoadOptions, 'modelPath' | 'member' | 'workers'> {
  readonly setPath: string
  /** Every member's workers, whatever the set file says (a shadow candidate runs one each). */
  readonly memberWorkers?: number
}

/**
 * Loads every member (each validated and warmed in its own pool, as a single model is) and
 * checks the set as a whole. Any failure closes what was loaded and throws, naming the member:
 * the caller keeps serving what it served.
 */
export async function loadModelSet (options: SetLoadOptions): Promise<LoadedSet> {
  const { setPath } = options
  const definition = await readSetDefinition(setPath)
  if (options.transport === 'message') {
    throw new ModelLoadError(`model set ${definition.set_version}: worker_transport=message cannot serve a set (its members share each batch); use shared-memory`)
  }
  const dir = dirname(setPath)
  const results = await Promise.allSettled(definition.members.map(decl => loadModel({
    ...options,
    modelPath: join(dir, decl.model),
    workers: options.memberWorkers ?? decl.workers ?? 1,
    member: { setVersion: definition.set_version },
  })))
  const loaded = results.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
  const failedAt = results.findIndex(r => r.status === 'rejected')
  try {
    if (failedAt >= 0) {
      const err = (results[failedAt] as PromiseRejectedResult).reason as Error
      const named = `model set ${definition.set_version} member ${definition.members[failedAt]!.model}: ${err.message}`
      throw err instanceof ModelIncompatibleError ? new ModelIncompatibleError(named) : new ModelLoadError(named, err)
    }
    checkMembersAgree(definition, loaded)
  } catch (err) {
    await Promise.allSettled(loaded.map(m => m.close()))
    throw err instanceof ServiceError ? err : new ModelLoadError((err as Error).message, err)
  }
  return new LoadedSet(definition, setPath, loaded, options.maxBatchSize)
}

/** What the set needs of its members together (each was checked alone by its load). */
function checkMembersAgree (definition: SetDefinition, models: readonly LoadedModel[]): void {
  const where = `model set ${definition.set_version}`
  const versions = new Map<string, string>()
  models.forEach((m, i) => {
    const file = definition.members[i]!.model
    const other = versions.get(m.modelVersion)
    if (other !== undefined) throw new ModelIncompatibleError(`${where}: members ${other} and ${file} both have model_version "${m.modelVersion}"; answers name members by version`)
    versions.set(m.modelVersion, file)
  })
  if (!models.some(m => !m.windowed)) {
    throw new ModelIncompatibleError(`${where} has no tabular member: a windowed member cannot answer a symbol with too little history, so every set needs one that always can`)
  }
  // Feature schema and bar_ms need no cross-check here: each member was held to the server's own
  // at its load (checkModelInput), so members that load agree with each other.
}
