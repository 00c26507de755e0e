import type { Clipboard } from './clipboard.js';
import type { FileTransfer } from './files.js';
import type { RecordingMode } from './recordings.js';

export const VISIBILITIES = ['public', 'approved', 'admin_only'] as const;
/** `public`: every signed-in user; `approved`: admins and approved users; `admin_only`: admins. */
export type Visibility = (typeof VISIBILITIES)[number];

export const LAUNCH_TYPES = ['url', 'container'] as const;
/** `container`: an app Sortie starts; `url`: a plain link. */
export type LaunchType = (typeof LAUNCH_TYPES)[number];

/** Kubernetes quantities, e.g. "500m" CPU or "2Gi" memory. */
export interface ResourceLimits {
  cpu_request: string;
  cpu_limit: string;
  memory_request: string;
  memory_limit: string;
}

/** The seed's defaults for apps that give no resource_limits (or only some of them). */
/** The size of each user's persistent home on Kubernetes unless SORTIE_HOME_SIZE says otherwise. */
export const DEFAULT_HOME_SIZE = '10Gi';

export const DEFAULT_RESOURCE_LIMITS = {
  cpu_request: '500m',
  cpu_limit: '2',
  memory_request: '512Mi',
  memory_limit: '2Gi',
} as const satisfies ResourceLimits;

/** An app as the API sends it (and as apps.json holds it, once defaults are filled in). */
export interface App {
  id: string;
  name: string;
  description: string;
  url: string;
  icon: string;
  category: string;
  visibility: Visibility;
  launch_type: LaunchType;
  container_image: string;
  /** argv that starts the app; for the kubernetes runner it overrides the image's CMD. */
  command?: string[];
  resource_limits: ResourceLimits;
  /** At most this many sessions of the app start or run at once; more wait in the launch queue. */
  max_sessions?: number;
  /**
   * The session's $HOME is the user's own home, kept after the session ends: the next session
   * of that user (any app with a persistent home) finds it as it was left.
   */
  persistent_home: boolean;
  /** Which ways files may move through Sortie's file API (default `both`); enforced by the server. */
  file_transfer: FileTransfer;
  /** Which ways text may move between the viewer's clipboard and the session's (default `both`); enforced by the session's VNC server. */
  clipboard: Clipboard;
  /** Whether Sortie records the app's sessions (default `off`); `optional` lets the person launching choose. */
  recording?: RecordingMode;
  /**
   * Sessions of the app Sortie keeps started and unassigned (default 0): a launch takes one,
   * running at once, and another starts in its place. Not with `persistent_home`.
   */
  warm_pool?: number;
}

/** Lowercase DNS-label-like ids: they end up in pod labels and URLs. */
export const APP_ID_PATTERN = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;

/** The most an app's max_sessions may say. */
export const APP_MAX_SESSIONS_LIMIT = 100_000;
/** The most an app's warm_pool may say: each pooled session holds a desktop nobody uses yet. */
export const APP_WARM_POOL_LIMIT = 20;
