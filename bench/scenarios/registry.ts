import { abSet } from './ab.js'
import { baselineSet } from './baseline.js'
import { batchingSet } from './batching.js'
import { defaultSet } from './default.js'
import { overloadSet } from './overload.js'
import { phase2Set } from './phase2.js'
import type { ScenarioSet } from './scenario-set.js'
import { workersSet } from './workers.js'
import { wsSet } from './ws.js'

/** Every set by name, in --help order. */
export const kScenarioSets: ReadonlyMap<string, ScenarioSet> = new Map(
  [defaultSet, wsSet, batchingSet, workersSet, baselineSet, overloadSet, abSet, phase2Set].map((s) => [s.name, s]),
)
