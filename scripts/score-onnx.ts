/**
 * Scores rows with an ONNX model in onnxruntime-node, the serving runtime, and writes P(up) per
 * row as raw float32. training/evaluate_set.py uses it: Python has no onnxruntime here, and the
 * shipped files themselves (not a re-implementation in xgboost or torch) are what a model set
 * serves, so they are what gets evaluated.
 *
 *   npx tsx scripts/score-onnx.ts MODEL.onnx INPUT OUT.f32 [--dims ROWS,D1,...] [--batch 256]
 *
 * INPUT is a .npy file (float32, C order, as `replay --input gaf` writes it; the shape comes from
 * its header) or raw float32 rows with --dims. The input name and P(up)'s column come from the
 * model's metadata (MODEL.json: input_name, output_name, positive_class_index). Rows are read in
 * batches, so a 500 MB tensor file never sits in memory whole. One intra-op thread, as a pool
 * worker runs.
 */
import { closeSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import * as ort from 'onnxruntime-node'

interface NpyLayout { dataOffset: number, shape: number[] }

function readNpyHeader (path: string): NpyLayout {
  const fd = openSync(path, 'r')
  try {
    const head = Buffer.alloc(10)
    readSync(fd, head, 0, 10, 0)
    if (head.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${path}: not a .npy file`)
    if (head[6] !== 1) throw new Error(`${path}: only .npy format 1.0 is read, got ${head[6]!}`)
    const headerLength = head.readUInt16LE(8)
    const dict = Buffer.alloc(headerLength)
    readSync(fd, dict, 0, headerLength, 10)
    const text = dict.toString('latin1')
    if (!/'descr':\s*'<f4'/.test(text)) throw new Error(`${path}: dtype must be little-endian float32 ('<f4'): ${text.trim()}`)
    if (/'fortran_order':\s*True/.test(text)) throw new Error(`${path}: Fortran order is not supported`)
    const shapeText = /'shape':\s*\(([^)]*)\)/.exec(text)?.[1]
    if (shapeText === undefined) throw new Error(`${path}: no shape in the header`)
    const shape = shapeText.split(',').map(s => s.trim()).filter(s => s !== '').map(Number)
    return { dataOffset: 10 + headerLength, shape }
  } finally {
    closeSync(fd)
  }
}

async function main (): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { dims: { type: 'string' }, batch: { type: 'string', default: '256' } },
  })
  const [modelPath, inputPath, outPath] = positionals
  if (modelPath === undefined || inputPath === undefined || outPath === undefined || positionals.length !== 3) {
    throw new Error('usage: score-onnx.ts MODEL.onnx INPUT(.npy|.f32) OUT.f32 [--dims ROWS,D1,...] [--batch 256]')
  }
  const meta = JSON.parse(readFileSync(modelPath.replace(/\.onnx$/, '.json'), 'utf8')) as
    { input_name?: string, output_name?: string, positive_class_index?: number }
  const inputName = meta.input_name ?? 'features'
  const outputName = meta.output_name ?? 'probabilities'
  const positive = meta.positive_class_index ?? 1
  const layout: NpyLayout = inputPath.endsWith('.npy')
    ? readNpyHeader(inputPath)
    : { dataOffset: 0, shape: (values.dims ?? '').split(',').filter(s => s !== '').map(Number) }
  const [rows, ...dims] = layout.shape
  if (rows === undefined || dims.length === 0 || !layout.shape.every(d => Number.isInteger(d) && d >= 0)) {
    throw new Error(`input shape must be [rows, ...] of non-negative integers, got [${layout.shape.join(',')}] (--dims for raw input)`)
  }
  const batch = Number(values.batch)
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`--batch must be an integer >= 1, got "${values.batch!}"`)
  const rowLength = dims.reduce((a, b) => a * b, 1)
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 })
  const fd = openSync(inputPath, 'r')
  const buffer = new Float32Array(batch * rowLength)
  const bytes = new Uint8Array(buffer.buffer)
  const p1 = new Float32Array(rows)
  try {
    for (let s = 0; s < rows; s += batch) {
      const n = Math.min(batch, rows - s)
      const want = n * rowLength * 4
      const got = readSync(fd, bytes, 0, want, layout.dataOffset + s * rowLength * 4)
      if (got !== want) throw new Error(`${inputPath}: short read at row ${s} (${got} of ${want} bytes): file shorter than its shape`)
      const input = new ort.Tensor('float32', buffer.subarray(0, n * rowLength), [n, ...dims])
      const out = await session.run({ [inputName]: input }, [outputName])
      const p = out[outputName]!.data as Float32Array
      const width = p.length / n
      for (let i = 0; i < n; i++) p1[s + i] = p[width * i + positive]!
    }
  } finally {
    closeSync(fd)
    await session.release()
  }
  writeFileSync(outPath, Buffer.from(p1.buffer))
}

main().catch((err: unknown) => {
  process.stderr.write(`score-onnx: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
