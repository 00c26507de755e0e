import type { Logger } from 'pino';
import type { RunningStream } from '../sessions/session-service.js';
import type { PreopenedUpstreams } from './preopened-upstreams.js';

/** How replicas tell each other which sessions' streams are about to move (the session feed, on PostgreSQL). */
export interface HandoffChannel {
  announceMoving(sessionIds: readonly string[]): void;
  onMoving(listener: (sessionIds: string[]) => void): () => void;
}

export interface StreamHandoffOptions {
  channel: HandoffChannel;
  preopened: PreopenedUpstreams;
  /** Those of the sessions that are running someone's desktop, with where to reach it. */
  runningStreams: (sessionIds: readonly string[]) => Promise<RunningStream[]>;
  logger: Logger;
  /** How long a draining replica lets its streams flow after announcing them, so the others can prepare. */
  leadMs?: number;
  /** How long a connection opened for a moving stream waits for its viewer. */
  keepMs?: number;
  /** Most connections this replica holds open ahead at once, pooled sessions' included. */
  maxOpen?: number;
}

export const HANDOFF_DEFAULTS = {
  // Opening a session's side takes 0.1-0.5 s on a busy node (websockify forks, then Xvnc's
  // greeting and the VNC password); the streams go on flowing meanwhile, so waiting costs
  // the person nothing.
  leadMs: 1000,
  // Its viewer reconnects within moments of the close; one that never comes is not waited for long.
  keepMs: 15_000,
  maxOpen: 2000,
} as const;

/**
 * Moves a draining replica's streams to the others without their viewers waiting for the
 * session side. When a replica drains (a rolling update, an eviction), each viewer
 * reconnects through another replica, which until now had to open the session's side from
 * nothing: most of the reconnect's wait. So the draining replica first names its sessions
 * to the others, lets its streams flow for `leadMs` more, and only then closes them; every
 * other replica opens those sessions' side ahead (PreopenedUpstreams) for the viewer about
 * to arrive, and closes what nobody took after `keepMs`. Every replica prepares, as any may
 * receive the viewer; the one it lands on uses its connection, the others' expire.
 *
 * Nothing here lets anyone in: a connection opened ahead goes only to a viewer the relay's
 * own access check let in. A replica that dies without draining announces nothing, and its
 * viewers reconnect the slow way.
 */
export class StreamHandoff {
  private readonly leadMs: number;
  private readonly keepMs: number;
  private readonly maxOpen: number;
  private unsubscribe: (() => void) | undefined;
  /** Set once this replica drains: it prepares for nobody's streams any more. */
  private leaving = false;

  constructor(private readonly o: StreamHandoffOptions) {
    this.leadMs = o.leadMs ?? HANDOFF_DEFAULTS.leadMs;
    this.keepMs = o.keepMs ?? HANDOFF_DEFAULTS.keepMs;
    this.maxOpen = o.maxOpen ?? HANDOFF_DEFAULTS.maxOpen;
  }

  /** Listens for other replicas' announcements. */
  start(): void {
    this.unsubscribe ??= this.o.channel.onMoving((ids) => {
      void this.prepare(ids).catch((err: unknown) => this.o.logger.warn({ err }, 'could not prepare for streams moving here'));
    });
  }

  /**
   * This replica drains: tells the others which sessions it streams, and resolves when they
   * have had `leadMs` to prepare (at once when there are none).
   */
  async announce(sessionIds: readonly string[]): Promise<void> {
    this.leaving = true;
    if (sessionIds.length === 0) return;
    this.o.channel.announceMoving(sessionIds);
    this.o.logger.info({ streams: sessionIds.length, leadMs: this.leadMs }, 'told the other replicas which streams are moving');
    await new Promise((resolve) => setTimeout(resolve, this.leadMs));
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  private async prepare(sessionIds: string[]): Promise<void> {
    // Our own announcement comes back to us too; a replica on its way out takes no streams.
    if (this.leaving) return;
    const room = this.maxOpen - this.o.preopened.sessionIds().length;
    if (room <= 0) return;
    const streams = await this.o.runningStreams(sessionIds.slice(0, room));
    if (this.leaving) return;
    for (const stream of streams) this.o.preopened.open(stream.id, stream.endpoint, stream.secret, this.keepMs);
    this.o.logger.debug({ asked: sessionIds.length, opening: streams.length }, 'opening moving streams ahead');
  }
}
