import type { MarketSnapshot } from './market-snapshot.js'
import { SymbolState, kApplyOk, type ApplyStatus } from './symbol-state.js'
import { BarTrack } from '../monitoring/bar-track.js'

/** Told when a symbol's bar closes (before it is folded into the history) and when a symbol is evicted. */
export interface BarListener {
  barClosing (symbol: string, state: SymbolState): void
  evicted (symbol: string, state: SymbolState): void
}

export interface FeatureStoreOptions {
  readonly barMs: number
  readonly maxGapBars: number
  /** Symbols with state, at most; the longest idle is dropped first. */
  readonly maxSymbols: number
}

/**
 * The single owner of per-symbol feature state. It lives on the main thread, so however many
 * inference workers run, a symbol's bars are updated in request order by one writer; workers see
 * only finished feature rows.
 *
 * Bounded: a client inventing symbols cannot exhaust memory. A Map keeps insertion order, so
 * moving a symbol to the end on use makes the first key the least recently used one.
 */
export class FeatureStore {
  private readonly states = new Map<string, SymbolState>()
  private readonly options: FeatureStoreOptions
  /** Last symbol touched: repeated ticks of one symbol skip the LRU reordering. */
  private lastSymbol: string | null = null
  evictions = 0
  /** Realized outcomes and capture (monitoring/monitor.ts); null: no per-bar bookkeeping at all. */
  listener: BarListener | null = null
  /** After an applied request with a listener: the symbol's track, its bar and the request's seq. */
  lastTrack: BarTrack | null = null
  lastBar = -1
  lastSeq = 0
  /** The state the last `apply` went to (its window is written after the row: row-layout.ts). */
  lastState: SymbolState | null = null

  constructor (options: FeatureStoreOptions) {
    this.options = options
  }

  get size (): number { return this.states.size }

  has (symbol: string): boolean { return this.states.has(symbol) }

  /** See `SymbolState.apply`. A stale snapshot for an unknown symbol creates no state. */
  apply (symbol: string, snapshot: MarketSnapshot, arrivalMs: number, out: Float32Array | Float64Array, offset: number): ApplyStatus {
    let state = this.states.get(symbol)
    if (state === undefined) {
      if (this.states.size >= this.options.maxSymbols) this.evictOldest()
      state = new SymbolState(this.options.barMs, this.options.maxGapBars)
      this.states.set(symbol, state)
    } else if (this.lastSymbol !== symbol) {
      this.states.delete(symbol)
      this.states.set(symbol, state)
    }
    this.lastSymbol = symbol
    this.lastState = state
    const listener = this.listener
    if (listener === null) return state.apply(snapshot, arrivalMs, out, offset)
    // A request opening a later bar closes the current one: the listener sees it as served.
    if (state.barIndex >= 0 && state.barOf(snapshot, arrivalMs) > state.barIndex) listener.barClosing(symbol, state)
    const status = state.apply(snapshot, arrivalMs, out, offset)
    if (status === kApplyOk) {
      const track = state.track ?? (state.track = new BarTrack())
      this.lastTrack = track
      this.lastBar = state.barIndex
      this.lastSeq = track.note(snapshot, state.barIndex)
    }
    return status
  }

  get barMs (): number { return this.options.barMs }
  get maxGapBars (): number { return this.options.maxGapBars }
  get maxSymbols (): number { return this.options.maxSymbols }

  /** Every symbol with its state, least recently used first: the order the state file keeps. */
  entries (): Array<[string, SymbolState]> {
    return Array.from(this.states)
  }

  /** Whether `state` is still the one held for `symbol` (not evicted or replaced meanwhile). */
  holds (symbol: string, state: SymbolState): boolean {
    return this.states.get(symbol) === state
  }

  /** An empty state with this store's bar length and gap rule, to restore into. */
  newState (): SymbolState {
    return new SymbolState(this.options.barMs, this.options.maxGapBars)
  }

  /**
   * Puts a restored state in as the most recently used symbol (so restoring in file order keeps
   * the saved LRU order); start-up only. Beyond max_symbols the least recent goes, as in `apply`.
   */
  restore (symbol: string, state: SymbolState): void {
    if (this.states.has(symbol)) this.states.delete(symbol)
    else if (this.states.size >= this.options.maxSymbols) this.evictOldest()
    this.states.set(symbol, state)
  }

  /** Bar index of a symbol's current bar, or -1; for tests and diagnostics. */
  currentBar (symbol: string): number {
    return this.states.get(symbol)?.barIndex ?? -1
  }

  private evictOldest (): void {
    const oldest = this.states.keys().next()
    if (oldest.done === true) return
    const state = this.states.get(oldest.value)!
    this.states.delete(oldest.value)
    if (this.lastSymbol === oldest.value) { this.lastSymbol = null; this.lastState = null }
    this.listener?.evicted(oldest.value, state)
    this.evictions++
  }
}
