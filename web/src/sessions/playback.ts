import RFB from '@novnc/novnc';
import { parseRecording, toSegments, type Segment } from '../../../server/src/recordings/recording-format';

/**
 * Plays a Sortie recording (docs/design.md, "Recordings") in noVNC: each segment is a fresh
 * RFB connection over a stand-in for a WebSocket, led through a synthetic handshake (RFB 3.8,
 * security None) and then fed the recorded server bytes at their recorded times. Seeking
 * replays the target's segment from its start without waiting, then goes on in time.
 */

/** What noVNC needs of a WebSocket; it only reads from here, and what it sends goes nowhere. */
class RecordedChannel {
  binaryType = 'arraybuffer';
  protocol = 'binary';
  readyState = 'open';
  onopen: ((e: unknown) => void) | null = null;
  onmessage: ((e: { data: ArrayBuffer }) => void) | null = null;
  onclose: ((e: { code: number; reason: string; wasClean: boolean }) => void) | null = null;
  onerror: ((e: unknown) => void) | null = null;
  // The player is a viewer only: input, resizes and update requests have no desktop to reach.
  send(): void {}
  close(): void {
    if (this.readyState === 'closed') return;
    this.readyState = 'closed';
    this.onclose?.({ code: 1000, reason: '', wasClean: true });
  }
  deliver(bytes: Uint8Array): void {
    if (this.readyState !== 'open') return;
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    this.onmessage?.({ data: copy.buffer });
  }
}

const HANDSHAKE = [
  new TextEncoder().encode('RFB 003.008\n'),
  new Uint8Array([1, 1]), // one security type: None
  new Uint8Array([0, 0, 0, 0]), // SecurityResult: OK
];

export interface PlayerEvents {
  /** The playback position moved (ms from the recording's start). */
  onTime?: (ms: number) => void;
  /** Playing stopped at the end. */
  onEnd?: () => void;
}

export class RecordingPlayer {
  readonly segments: Segment[];
  readonly duration: number;
  private rfb: RFB | null = null;
  private channel: RecordedChannel | null = null;
  private segment = -1;
  /** The next chunk of the current segment to feed. */
  private next = 0;
  private position = 0;
  private playing = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Wall-clock time at which `position` was current, while playing. */
  private anchor = 0;

  constructor(
    bytes: Uint8Array,
    private readonly target: HTMLElement,
    private readonly events: PlayerEvents = {},
  ) {
    const { records } = parseRecording(bytes);
    this.segments = toSegments(records);
    this.duration = records.length > 0 ? records[records.length - 1]!.at : 0;
    // Opens on the desktop as the recording begins: its ServerInit (and size) shown.
    const first = this.segments[0];
    if (first) this.seek(first.chunks[0]?.at ?? first.at);
  }

  get time(): number {
    return this.playing ? Math.min(this.duration, this.position + (performance.now() - this.anchor)) : this.position;
  }

  get isPlaying(): boolean {
    return this.playing;
  }

  play(): void {
    if (this.playing) return;
    if (this.position >= this.duration) this.seek(this.segments[0]?.at ?? 0);
    this.playing = true;
    this.anchor = performance.now();
    this.schedule();
  }

  pause(): void {
    if (!this.playing) return;
    this.position = this.time;
    this.playing = false;
    clearTimeout(this.timer);
  }

  /** Shows the desktop as it was at `ms`: the segment holding it, replayed from its start at once. */
  seek(ms: number): void {
    clearTimeout(this.timer);
    const target = Math.max(0, Math.min(ms, this.duration));
    let index = 0;
    for (let i = 0; i < this.segments.length; i++) if (this.segments[i]!.at <= target) index = i;
    this.connect(index);
    this.feedUntil(target);
    this.position = target;
    this.anchor = performance.now();
    this.events.onTime?.(target);
    if (this.playing) this.schedule();
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.playing = false;
    this.disconnect();
  }

  private connect(index: number): void {
    this.disconnect();
    this.segment = index;
    this.next = 0;
    const channel = new RecordedChannel();
    this.channel = channel;
    const rfb = new RFB(this.target, channel as unknown as WebSocket, { shared: true });
    rfb.viewOnly = true;
    rfb.scaleViewport = true;
    rfb.background = '#111';
    this.rfb = rfb;
    for (const part of HANDSHAKE) channel.deliver(part);
  }

  private disconnect(): void {
    const rfb = this.rfb;
    this.rfb = null;
    this.channel = null;
    if (rfb) {
      try {
        rfb.disconnect();
      } catch {
        // already disconnected
      }
    }
  }

  private feedUntil(ms: number): void {
    const segment = this.segments[this.segment];
    if (!segment || !this.channel) return;
    while (this.next < segment.chunks.length && segment.chunks[this.next]!.at <= ms) this.channel.deliver(segment.chunks[this.next++]!.data);
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (!this.playing) return;
    const now = this.time;
    this.feedUntil(now);
    const following = this.segments[this.segment + 1];
    if (following && following.at <= now) {
      this.connect(this.segment + 1);
      this.feedUntil(now);
    }
    this.events.onTime?.(now);
    if (now >= this.duration) {
      this.position = this.duration;
      this.playing = false;
      this.events.onEnd?.();
      return;
    }
    const segment = this.segments[this.segment];
    const nextChunk = segment?.chunks[this.next]?.at ?? Infinity;
    const nextSegment = following?.at ?? Infinity;
    // Wakes for the next bytes, and at least four times a second for the time shown.
    const wait = Math.max(0, Math.min(nextChunk, nextSegment, this.duration, now + 250) - now);
    this.timer = setTimeout(() => this.schedule(), wait);
  }
}
