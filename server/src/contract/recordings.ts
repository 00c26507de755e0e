import type { Page } from './pages.js';

/**
 * Whether Sortie records an app's sessions: `off` (the default), `always`, or `optional`,
 * when the person launching chooses (`"record": true` in POST /api/sessions).
 */
export const RECORDING_MODES = ['off', 'always', 'optional'] as const;
export type RecordingMode = (typeof RECORDING_MODES)[number];

export const DEFAULT_RECORDING: RecordingMode = 'off';

/** A session's recording as GET /api/admin/recordings shows it; admins only. */
export interface Recording {
  id: string;
  session_id: string;
  /** Whose session it was. */
  user_id: string;
  app_id: string;
  app_name: string;
  /** ISO-8601: when the first recorded bytes (the desktop's ServerInit) arrived. */
  started_at: string;
  /** ISO-8601 when the last segment ended; null while a segment is being recorded. */
  ended_at: string | null;
  /** Milliseconds from the start to the last recorded bytes. */
  duration_ms: number;
  /** Bytes of the recording file. */
  size_bytes: number;
  /** Stretches recorded: one per viewer connection of the session's owner. */
  segments: number;
  /** Why the recording stops early or has a gap; null when it is whole. */
  incomplete: string | null;
}

/** GET /api/admin/recordings: newest first. */
export interface RecordingPage extends Page {
  recordings: Recording[];
}
