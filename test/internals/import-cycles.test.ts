// Structure check: no module of src/ imports itself back through any chain of imports. A cycle
// means two modules cannot be understood, tested or constructed one before the other (the server
// once needed mutable `{current}` boxes to build its parts because of one). Type-only imports
// count too: a type cycle is the same coupling, only erased at run time.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import t from 'tap'
import ts from 'typescript'

import { packageRoot } from '../../src/config/load.js'

const kSrc = join(packageRoot(), 'src')

function sourceFiles (dir: string): string[] {
  const out: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...sourceFiles(path))
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path)
  }
  return out.sort()
}

/** Relative specifiers of every import, re-export and dynamic import() in `file`, as src paths. */
export function importsOf (file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS)
  const specs: string[] = []
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      specs.push(node.moduleSpecifier.text)
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] !== undefined && ts.isStringLiteral(node.arguments[0])) {
      specs.push(node.arguments[0].text)
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      specs.push(node.argument.literal.text)
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
  return specs
    .filter((s) => s.startsWith('.'))
    // NodeNext: sources import './x.js' for './x.ts'.
    .map((s) => resolve(dirname(file), s.replace(/\.js$/, '.ts')))
}

/** Every elementary cycle's strongly connected component (Tarjan), each as one cycle path. */
export function findCycles (graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let index = 0
  const indexOf = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const components: string[][] = []
  const strong = (v: string): void => {
    indexOf.set(v, index); low.set(v, index); index++
    stack.push(v); onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue
      if (!indexOf.has(w)) { strong(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)) } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indexOf.get(w)!))
    }
    if (low.get(v) === indexOf.get(v)) {
      const component: string[] = []
      let w: string
      do { w = stack.pop()!; onStack.delete(w); component.push(w) } while (w !== v)
      const selfLoop = (graph.get(v) ?? []).includes(v)
      if (component.length > 1 || selfLoop) components.push(component)
    }
  }
  for (const v of [...graph.keys()].sort()) if (!indexOf.has(v)) strong(v)
  // Name one concrete cycle per component: a shortest path from its first member back to itself.
  return components.map((members) => {
    const inside = new Set(members)
    const start = [...members].sort()[0]!
    const prev = new Map<string, string>()
    const queue = [start]
    for (let i = 0; i < queue.length; i++) {
      const v = queue[i]!
      for (const w of graph.get(v) ?? []) {
        if (!inside.has(w)) continue
        if (w === start) {
          const path = [start]
          for (let x: string | undefined = v; x !== undefined && x !== start; x = prev.get(x)) path.splice(1, 0, x)
          return [...path, start]
        }
        if (!prev.has(w)) { prev.set(w, v); queue.push(w) }
      }
    }
    return [...members, members[0]!]
  })
}

t.test('src/ has no import cycles', async (t) => {
  const files = sourceFiles(kSrc)
  t.ok(files.length > 40, `parsed ${files.length} modules`)
  const graph = new Map<string, string[]>()
  for (const file of files) graph.set(file, importsOf(file, readFileSync(file, 'utf8')))
  const edges = [...graph.values()].reduce((n, e) => n + e.length, 0)
  t.ok(edges > files.length, `found ${edges} relative imports`)
  const cycles = findCycles(graph).map((c) => c.map((f) => relative(kSrc, f)).join(' -> '))
  t.strictSame(cycles, [], cycles.length === 0 ? 'no cycles' : `import cycles:\n  ${cycles.join('\n  ')}`)
})

t.test('the checker itself finds a cycle and names it', async (t) => {
  // Guards against a checker that passes because it sees no edges: a known graph with one cycle.
  const graph = new Map([['a', ['b']], ['b', ['c']], ['c', ['a', 'd']], ['d', []], ['e', ['e']]])
  t.strictSame(findCycles(graph), [['a', 'b', 'c', 'a'], ['e', 'e']])
  const text = "import type { X } from './x.js'\nexport { y } from '../y.js'\nconst z = await import('./z.js')\ntype W = import('./w.js').W\nimport ts from 'typescript'\n"
  t.strictSame(importsOf('/p/src/a.ts', text), ['/p/src/x.ts', '/p/y.ts', '/p/src/z.ts', '/p/src/w.ts'])
})
