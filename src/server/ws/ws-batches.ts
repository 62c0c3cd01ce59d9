/**
 * The batch frames of one /ws connection in progress: a BatchTracker per frame (reused once the
 * frame is answered) and the frame's format. A frame is named by its index here; the in-flight
 * table (SlotTable.batchOf) and the send queue (`~index`) refer to it by that index.
 */
import type { FormatIndex } from '../../protocol/ws-formats.js'
import { BatchTracker } from '../batch-tracker.js'

export class BatchFrames {
  private readonly trackers: BatchTracker[] = []
  private readonly formats: FormatIndex[] = []
  private readonly free: number[] = []

  /** Starts a frame of `size` items; returns its index. */
  open (id: number, size: number, format: FormatIndex, startMs: number): number {
    const b = this.free.length > 0 ? this.free.pop()! : this.trackers.push(new BatchTracker()) - 1
    this.trackers[b]!.reset(id, size, startMs)
    this.formats[b] = format
    return b
  }

  get (b: number): BatchTracker { return this.trackers[b]! }
  formatOf (b: number): FormatIndex { return this.formats[b]! }

  /** The frame was answered (or its connection closed): its tracker serves the next frame. */
  release (b: number): void {
    this.trackers[b]!.release()
    this.free.push(b)
  }
}
