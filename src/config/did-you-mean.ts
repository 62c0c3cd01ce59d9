/**
 * "Did you mean ...?" for misspelt setting names in config files, flags and the environment.
 *
 * Written here rather than taken from a package: it runs only at start-up over ~30 names, so
 * speed is irrelevant, and the common slip of swapping two letters (`wrokers`, `prot`) must cost
 * one edit, which plain Levenshtein packages (fastest-levenshtein, leven) count as two.
 */

/**
 * Optimal-string-alignment distance: insertions, deletions, substitutions and transpositions of
 * adjacent characters each cost 1 (Damerau-Levenshtein without edits inside a transposed pair).
 */
export function editDistance (a: string, b: string): number {
  if (a === b) return 0
  const n = b.length
  // Three rows are enough: a transposition looks back two rows.
  let before = new Array<number>(n + 1).fill(0)
  let previous = Array.from({ length: n + 1 }, (_, j) => j)
  let current = new Array<number>(n + 1).fill(0)
  for (let i = 1; i <= a.length; i++) {
    current[0] = i
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let d = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2]! + 1)
      current[j] = d
    }
    [before, previous, current] = [previous, current, before]
  }
  return previous[n]!
}

/** Lower case, letters and digits only: `maxBatchSize`, `MAX_BATCH_SIZE`, `max-batch-size` all agree. */
export function normaliseName (name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '')
}

/**
 * Edits allowed before a name stops looking like a slip: one for short names (so `HOME` is not
 * taken for `HOST`, nor `proto` for `port`), two up to ten characters, three beyond.
 */
function allowedEdits (length: number): number {
  return length <= 5 ? 1 : length <= 10 ? 2 : 3
}

/**
 * The candidate `name` was most likely meant to be, or undefined when none is close. Spelling
 * variants (case, `_`, `-`) are free; then the fewest edits wins, ties going to the earlier
 * candidate. `maxEdits` narrows the default allowance (the environment uses 1: it holds other
 * programs' variables too).
 */
export function closestName (name: string, candidates: Iterable<string>, maxEdits?: number): string | undefined {
  const wanted = normaliseName(name)
  if (wanted === '') return undefined
  const limit = Math.min(allowedEdits(wanted.length), maxEdits ?? Infinity)
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const distance = editDistance(wanted, normaliseName(candidate))
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return bestDistance <= limit ? best : undefined
}
