import type { Readable } from 'node:stream';
import type { App } from '../catalog/app.js';
import type { FileEntry } from '../contract/files.js';
import type { LaunchStepName } from '../contract/sessions.js';
import { PayloadTooLargeError } from '../errors.js';

/** Where a session's websockify listens; the stream relay dials it. */
export interface Endpoint {
  host: string;
  port: number;
}

export interface LaunchSpec {
  sessionId: string;
  /** `sortie-session-<id>`: the pod's name, and the local runner's label for the session. */
  workloadName: string;
  userId: string;
  app: App;
  /**
   * The session's VNC password. The VNC server must require it; Sortie answers the VNC
   * challenge itself, so anyone reaching the stream port without Sortie is refused.
   */
  streamSecret: string;
}

/** A session's workload as the runner finds it, used to reconcile at start-up and by the leader's sweep. */
export interface Workload {
  sessionId: string;
  state: 'starting' | 'ready' | 'ended';
  endpoint?: Endpoint;
  /** Why it ended, when state is `ended`. */
  reason?: string;
}

/**
 * What a runner tells the session service. `failed` means the workload can never become
 * (or stay) usable; `exited` means it ended on its own after working, e.g. the user quit
 * the app. `progress` says which step of starting a workload has reached, and when (ISO
 * time); it is news for a person waiting, never a change of the session's status.
 */
export type WorkloadEvent =
  | { type: 'progress'; sessionId: string; step: Exclude<LaunchStepName, 'queued'>; at: string }
  | { type: 'ready'; sessionId: string; endpoint: Endpoint }
  | { type: 'failed'; sessionId: string; reason: string }
  | { type: 'exited'; sessionId: string; reason: string };

/** Which session's home, and how to reach it: a store behind the session's own endpoint dials it with the secret. */
export interface HomeTarget {
  sessionId: string;
  endpoint: Endpoint;
  secret?: string;
}

/** A file being read out of a home: its size when opened, and exactly that many bytes. */
export interface HomeFileRead {
  size: number;
  modified: string;
  stream: Readable;
}

/**
 * Files in a running session's home. `path` is a list of plain names below the home (no
 * "", ".", ".." or "/"; the session layer has checked the text), and the store still
 * refuses, at the moment it opens them, every component that is a symlink or leaves the
 * home: the app owns the home and may swap anything in it at any time. Errors are
 * InputError (400: not a folder, a symlink, a special file), NotFoundError (404) and
 * PayloadTooLargeError (413).
 */
export interface HomeFiles {
  list(target: HomeTarget, path: readonly string[]): Promise<FileEntry[]>;
  read(target: HomeTarget, path: readonly string[]): Promise<HomeFileRead>;
  /**
   * Streams `body` into a new file beside the target and renames it over the target once
   * complete, so a cut or refused upload leaves the old file (or nothing) behind. The
   * parent folder must exist. More than `maxBytes` bytes rejects with PayloadTooLargeError.
   */
  write(target: HomeTarget, path: readonly string[], body: AsyncIterable<Uint8Array>, maxBytes: number): Promise<{ size: number }>;
}

/**
 * The homes that outlive sessions, one per user, made by the runner on the first launch of
 * an app with `persistent_home`. Ending a session never removes one; an admin does.
 */
export interface UserHomes {
  /** Removes the user's home and everything in it; false when there was none. */
  delete(userId: string): Promise<boolean>;
}

/** What every HomeFiles (and the session layer, for a declared Content-Length) says about an upload over the limit. */
export function uploadTooLarge(maxBytes: number): PayloadTooLargeError {
  const mib = maxBytes / (1024 * 1024);
  return new PayloadTooLargeError(`The file is larger than the upload limit of ${Number.isInteger(mib) ? mib : mib.toFixed(2)} MiB (SORTIE_MAX_UPLOAD_MB)`);
}

/**
 * One engine that runs sessions (Kubernetes pods, or local processes). The session service
 * owns session state; a runner only creates, watches and removes workloads.
 */
export interface Runner {
  readonly kind: 'local' | 'kubernetes';
  /** Throws InputError when this runner cannot run the app at all (checked before anything is created). */
  validate(app: App): void;
  /**
   * Begins watching workloads and resolves with those that exist now, so the service can
   * reconcile. Events for them and for later launches go to `onEvent`.
   */
  start(onEvent: (event: WorkloadEvent) => void): Promise<Workload[]>;
  /**
   * The workloads that exist now, asked afresh (not the events so far): the leading replica
   * compares them with the database now and then to remove those whose session is over.
   * Workloads already being removed may be left out.
   */
  list(): Promise<Workload[]>;
  /**
   * Creates the workload and resolves once it is created (not ready). Rejects with a
   * reason a person can act on (for example a quota refusal); nothing is left behind then.
   */
  launch(spec: LaunchSpec): Promise<void>;
  /**
   * How many sessions this runner can hold starting or running at once, when it can tell
   * (the local runner measures the machine); absent or undefined means no limit of its own.
   * Used when SORTIE_MAX_SESSIONS is not set: more sessions wait in the launch queue.
   */
  capacity?(): number | undefined;
  /**
   * How many sessions may be starting at once without starving Sortie itself of CPU (the
   * local runner's desktops start on Sortie's own machine); absent means no limit. The
   * others wait in the launch queue a moment longer, and the API stays responsive.
   */
  startLimit?(): number;
  /** The session file API's way into running sessions' homes; absent when this runner has none yet. */
  readonly files?: HomeFiles;
  /** Users' persistent homes (apps with `persistent_home`); absent when this runner keeps none. */
  readonly homes?: UserHomes;
  /**
   * Records that a pooled session's workload now belongs to `userId` (a launch claimed it), so
   * what the cluster shows names its owner. Absent when the runner keeps no owner past launch.
   */
  assignOwner?(sessionId: string, userId: string): Promise<void>;
  /** Removes every trace of the session's workload. Idempotent. */
  stop(sessionId: string): Promise<void>;
  /** Stops watching. Running workloads are left alone: a restart adopts them. */
  close(): Promise<void>;
}

export function workloadName(sessionId: string): string {
  return `sortie-session-${sessionId}`;
}
