import t from 'tap'
import { ResponseParser, kIncomplete, kProtocolError } from '../../bench/lib/response-parser.js'

const ok = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a":"xyz"}'

/** Feeds `parts` in order; returns every push result. */
function feed (parts: readonly string[]): { results: number[], parser: ResponseParser } {
  const parser = new ResponseParser()
  return { results: parts.map((p) => parser.push(Buffer.from(p, 'latin1'))), parser }
}

t.test('framings the generator must understand', async (t) => {
  const cases: Array<{ name: string, parts: string[], expect: number[], closeAfter?: boolean }> = [
    { name: 'content-length, one chunk', parts: [ok], expect: [200] },
    { name: 'head and body split', parts: [ok.slice(0, 30), ok.slice(30, 70), ok.slice(70)], expect: [kIncomplete, kIncomplete, 200] },
    { name: 'lower-case header, other status', parts: ['HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\n{}'], expect: [503] },
    { name: 'chunked', parts: ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n', '3\r\nefg\r\n0\r\n\r\n'], expect: [kIncomplete, 200] },
    { name: 'chunked with trailer', parts: ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: 1\r\n\r\n'], expect: [200] },
    { name: '204 has no body', parts: ['HTTP/1.1 204 No Content\r\n\r\n'], expect: [204] },
    { name: '100 Continue then the answer', parts: ['HTTP/1.1 100 Continue\r\n\r\n' + ok], expect: [200] },
    { name: 'connection: close is reported', parts: ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'], expect: [200], closeAfter: true },
  ]
  for (const c of cases) {
    const { results, parser } = feed(c.parts)
    t.same(results, c.expect, c.name)
    t.equal(parser.closeAfter, c.closeAfter ?? false, `${c.name}: closeAfter`)
  }
  // Byte by byte: the slowest possible arrival still parses to one answer.
  const parser = new ResponseParser()
  const bytes = Buffer.from(ok, 'latin1')
  const results: number[] = []
  for (let i = 0; i < bytes.length; i++) results.push(parser.push(bytes.subarray(i, i + 1)))
  t.same(results.filter((r) => r !== kIncomplete), [200], 'byte by byte')
  t.equal(results[results.length - 1], 200)
  // The parser is reusable for the next answer on the same connection.
  t.equal(parser.push(Buffer.from(ok, 'latin1')), 200, 'next answer on the same parser')
})

t.test('protocol errors are errors, never latency', async (t) => {
  const cases: Array<{ name: string, data: string, match: RegExp }> = [
    { name: 'bytes after a complete answer (pipelining is off)', data: ok + 'HTTP/1.1', match: /after a complete response/ },
    { name: 'no framing', data: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello', match: /neither Content-Length nor chunked/ },
    { name: 'not HTTP', data: 'SSH-2.0-OpenSSH\r\n\r\n', match: /not an HTTP/ },
    { name: 'bad status', data: 'HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n', match: /bad status/ },
    { name: 'bad chunk size', data: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', match: /malformed chunked/ },
  ]
  for (const c of cases) {
    const parser = new ResponseParser()
    t.equal(parser.push(Buffer.from(c.data, 'latin1')), kProtocolError, c.name)
    t.match(parser.error, c.match, `${c.name}: message`)
  }
  const parser = new ResponseParser()
  t.equal(parser.push(Buffer.alloc(20_000, 65)), kProtocolError, 'an endless head is refused')
})
