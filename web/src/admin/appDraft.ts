import { APP_ID_PATTERN, APP_WARM_POOL_LIMIT, DEFAULT_CLIPBOARD, DEFAULT_FILE_TRANSFER, DEFAULT_RECORDING, type App, type Clipboard, type FileTransfer, type LaunchType, type RecordingMode, type ResourceLimits, type Visibility } from '../contract';
import type { AppInput } from './adminApi';
import { formatCommand, parseCommand } from './command';

/** The app form's state: every field as the text in its input. */
export interface AppDraft {
  id: string;
  name: string;
  description: string;
  category: string;
  icon: string;
  visibility: Visibility;
  launch_type: LaunchType;
  url: string;
  container_image: string;
  command: string;
  cpu_request: string;
  cpu_limit: string;
  memory_request: string;
  memory_limit: string;
  /** Empty for no per-app limit. */
  max_sessions: string;
  /** Sessions kept started for the next launches; empty for none. */
  warm_pool: string;
  file_transfer: FileTransfer;
  clipboard: Clipboard;
  recording: RecordingMode;
  /** A checkbox, so the one field that is not text. */
  persistent_home: boolean;
}

export type DraftField = keyof AppDraft;
/** The fields edited as text (all but the checkbox). */
export type TextField = Exclude<DraftField, 'persistent_home'>;
export type DraftErrors = Partial<Record<DraftField, string>>;

export const LIMIT_FIELDS = ['cpu_request', 'cpu_limit', 'memory_request', 'memory_limit'] as const satisfies readonly (keyof ResourceLimits & DraftField)[];

export function toDraft(app: App | null): AppDraft {
  const limits: Partial<ResourceLimits> = app?.resource_limits ?? {};
  return {
    id: app?.id ?? '',
    name: app?.name ?? '',
    description: app?.description ?? '',
    category: app?.category ?? '',
    icon: app?.icon ?? '',
    visibility: app?.visibility ?? 'public',
    launch_type: app?.launch_type ?? 'container',
    url: app?.url ?? '',
    container_image: app?.container_image ?? '',
    command: formatCommand(app?.command),
    cpu_request: limits.cpu_request ?? '',
    cpu_limit: limits.cpu_limit ?? '',
    memory_request: limits.memory_request ?? '',
    memory_limit: limits.memory_limit ?? '',
    max_sessions: app?.max_sessions?.toString() ?? '',
    warm_pool: app?.warm_pool ? app.warm_pool.toString() : '',
    file_transfer: app?.file_transfer ?? DEFAULT_FILE_TRANSFER,
    clipboard: app?.clipboard ?? DEFAULT_CLIPBOARD,
    recording: app?.recording ?? DEFAULT_RECORDING,
    persistent_home: app?.persistent_home ?? false,
  };
}

/** Client-side checks for the obvious; the server's answer is the authority on the rest. */
export function fromDraft(draft: AppDraft, isNew: boolean): { ok: true; app: AppInput } | { ok: false; errors: DraftErrors } {
  const errors: DraftErrors = {};
  const id = draft.id.trim();
  if (isNew) {
    if (!id) errors.id = 'Give the app an id.';
    else if (!APP_ID_PATTERN.test(id))
      errors.id = 'Use 1–63 lowercase letters, digits, ".", "_" or "-", starting and ending with a letter or digit.';
  }
  if (!draft.name.trim()) errors.name = 'Give the app a name.';

  const isUrl = draft.launch_type === 'url';
  if (isUrl && !draft.url.trim()) errors.url = 'A web link app needs the address it opens.';

  let argv: string[] | undefined;
  if (!isUrl && draft.command.trim()) {
    const parsed = parseCommand(draft.command);
    if (parsed.ok) argv = parsed.argv;
    else errors.command = parsed.error;
  }
  let maxSessions: number | undefined;
  if (!isUrl && draft.max_sessions.trim()) {
    maxSessions = Number(draft.max_sessions.trim());
    if (!Number.isInteger(maxSessions) || maxSessions < 1) errors.max_sessions = 'Use a whole number of sessions, at least 1, or leave it empty for no limit.';
  }
  let warmPool = 0;
  if (!isUrl && draft.warm_pool.trim()) {
    warmPool = Number(draft.warm_pool.trim());
    if (!Number.isInteger(warmPool) || warmPool < 0 || warmPool > APP_WARM_POOL_LIMIT)
      errors.warm_pool = `Use a whole number of sessions from 0 to ${APP_WARM_POOL_LIMIT}, or leave it empty for none.`;
    else if (warmPool > 0 && draft.persistent_home)
      errors.warm_pool = 'Sessions kept ready start before anyone takes them, so they cannot have a person’s own home: use 0, or a fresh home each session.';
  }
  if (Object.keys(errors).length > 0) return { ok: false, errors };

  const app: AppInput = {
    id,
    name: draft.name.trim(),
    description: draft.description.trim(),
    icon: draft.icon.trim(),
    visibility: draft.visibility,
    launch_type: draft.launch_type,
    url: isUrl ? draft.url.trim() : '',
    container_image: isUrl ? '' : draft.container_image.trim(),
    file_transfer: draft.file_transfer,
    clipboard: draft.clipboard,
    // Left out means off (an app replaced without it records nothing).
    ...(!isUrl && draft.recording !== 'off' ? { recording: draft.recording } : {}),
    persistent_home: !isUrl && draft.persistent_home,
  };
  if (draft.category.trim()) app.category = draft.category.trim();
  if (!isUrl) {
    if (argv && argv.length > 0) app.command = argv;
    if (maxSessions !== undefined) app.max_sessions = maxSessions;
    app.warm_pool = warmPool;
    const limits: Partial<ResourceLimits> = {};
    for (const field of LIMIT_FIELDS) {
      const value = draft[field].trim();
      if (value) limits[field] = value;
    }
    app.resource_limits = limits;
  }
  return { ok: true, app };
}

/** The server names the field it rejects: `field "resource_limits.cpu_limit" must be …`. */
export function fieldFromServerMessage(message: string): DraftField | null {
  const match = /field\s+"([^"]+)"/i.exec(message);
  if (!match?.[1]) return null;
  const path = match[1].replace(/^resource_limits\./, '').split('.')[0] ?? '';
  const known: readonly string[] = Object.keys(toDraft(null));
  return known.includes(path) ? (path as DraftField) : null;
}
