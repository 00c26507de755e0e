import { z } from 'zod';
import { APP_ID_PATTERN, APP_MAX_SESSIONS_LIMIT, APP_WARM_POOL_LIMIT, DEFAULT_RESOURCE_LIMITS, LAUNCH_TYPES, VISIBILITIES, type App } from '../contract/apps.js';
import { CLIPBOARD_MODES, DEFAULT_CLIPBOARD } from '../contract/clipboard.js';
import { DEFAULT_FILE_TRANSFER, FILE_TRANSFER_MODES } from '../contract/files.js';
import { parseQuantity } from '../contract/quantity.js';
import { RECORDING_MODES } from '../contract/recordings.js';

// The shape and its defaults are the contract's; this module holds the checks behind them.
export { DEFAULT_RESOURCE_LIMITS } from '../contract/apps.js';
export type { App, ResourceLimits } from '../contract/apps.js';

const quantity = (what: 'CPU' | 'memory') =>
  z
    .string()
    .trim()
    .refine((q) => (parseQuantity(q) ?? -1) >= 0, {
      message: `must be a Kubernetes ${what} quantity such as ${what === 'CPU' ? '"500m" or "2"' : '"512Mi" or "2Gi"'}`,
    });

const resourceLimits = z
  .object({
    cpu_request: quantity('CPU').default(DEFAULT_RESOURCE_LIMITS.cpu_request),
    cpu_limit: quantity('CPU').default(DEFAULT_RESOURCE_LIMITS.cpu_limit),
    memory_request: quantity('memory').default(DEFAULT_RESOURCE_LIMITS.memory_request),
    memory_limit: quantity('memory').default(DEFAULT_RESOURCE_LIMITS.memory_limit),
  })
  .strict()
  .superRefine((r, ctx) => {
    // The API server refuses a pod whose request exceeds its limit; say so up front.
    if (parseQuantity(r.cpu_request)! > parseQuantity(r.cpu_limit)!) {
      ctx.addIssue({ code: 'custom', path: ['cpu_request'], message: `${r.cpu_request} is more than cpu_limit ${r.cpu_limit}` });
    }
    if (parseQuantity(r.memory_request)! > parseQuantity(r.memory_limit)!) {
      ctx.addIssue({ code: 'custom', path: ['memory_request'], message: `${r.memory_request} is more than memory_limit ${r.memory_limit}` });
    }
  });

export const appSchema = z
  .object({
    id: z.string().regex(APP_ID_PATTERN, 'must be 1-63 lowercase letters, digits, ".", "_" or "-", starting and ending with a letter or digit'),
    name: z.string().trim().min(1, 'must not be empty'),
    description: z.string().default(''),
    url: z.string().default(''),
    icon: z.string().default(''),
    category: z.string().default('Other'),
    visibility: z.enum(VISIBILITIES).default('public'),
    launch_type: z.enum(LAUNCH_TYPES),
    container_image: z.string().default(''),
    /** argv that starts the app; for the kubernetes runner it overrides the image's CMD. */
    command: z.array(z.string().min(1)).min(1, 'must hold at least the program to run').optional(),
    resource_limits: resourceLimits.default(DEFAULT_RESOURCE_LIMITS),
    /** At most this many sessions of the app start or run at once; more wait in the launch queue. */
    max_sessions: z
      .number({ error: 'must be a whole number of sessions, at least 1' })
      .int('must be a whole number of sessions, at least 1')
      .min(1, 'must be a whole number of sessions, at least 1')
      .max(APP_MAX_SESSIONS_LIMIT, `must be at most ${APP_MAX_SESSIONS_LIMIT}`)
      .optional(),
    /** The session's $HOME is the user's own and outlives the session. */
    persistent_home: z.boolean({ error: 'must be true or false' }).default(false),
    /** Which ways the file API may move files; the routes refuse the others with 403. */
    file_transfer: z
      .enum(FILE_TRANSFER_MODES, { error: `must be ${FILE_TRANSFER_MODES.slice(0, -1).map((m) => `"${m}"`).join(', ')} or "${FILE_TRANSFER_MODES.at(-1)}"` })
      .default(DEFAULT_FILE_TRANSFER),
    /** Which ways text may move between a viewer's clipboard and the session's; the VNC server enforces it. */
    clipboard: z
      .enum(CLIPBOARD_MODES, { error: `must be ${CLIPBOARD_MODES.slice(0, -1).map((m) => `"${m}"`).join(', ')} or "${CLIPBOARD_MODES.at(-1)}"` })
      .default(DEFAULT_CLIPBOARD),
    /** Whether Sortie records the app's sessions from the stream it relays; `optional` lets the person launching choose. */
    recording: z
      .enum(RECORDING_MODES, { error: `must be ${RECORDING_MODES.slice(0, -1).map((m) => `"${m}"`).join(', ')} or "${RECORDING_MODES.at(-1)}"` })
      // Left out means `off`; the stored app always says which (its column's default).
      .optional(),
    /** Sessions kept started and unassigned, each taken by the next launch (the warm pool). */
    warm_pool: z
      .number({ error: `must be a whole number of sessions from 0 to ${APP_WARM_POOL_LIMIT}` })
      .int(`must be a whole number of sessions from 0 to ${APP_WARM_POOL_LIMIT}`)
      .min(0, `must be a whole number of sessions from 0 to ${APP_WARM_POOL_LIMIT}`)
      .max(APP_WARM_POOL_LIMIT, `must be at most ${APP_WARM_POOL_LIMIT}: each pooled session holds a desktop nobody uses yet`)
      .optional(),
  })
  .superRefine((app, ctx) => {
    if (app.launch_type === 'url' && !/^https?:\/\//.test(app.url)) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'a "url" app needs an http(s) url' });
    }
    if (app.launch_type === 'container' && app.container_image.trim() === '' && !app.command) {
      ctx.addIssue({ code: 'custom', path: ['container_image'], message: 'a "container" app needs a container_image (or a command)' });
    }
    if ((app.warm_pool ?? 0) > 0 && app.launch_type === 'url') {
      ctx.addIssue({ code: 'custom', path: ['warm_pool'], message: 'a "url" app is a link, Sortie starts nothing to keep warm: use 0' });
    }
    // A pooled session starts before anyone owns it, and the home is its owner's: on Kubernetes
    // it is mounted when the pod is created, on the local runner when the sandbox starts.
    if ((app.warm_pool ?? 0) > 0 && app.persistent_home) {
      ctx.addIssue({
        code: 'custom',
        path: ['warm_pool'],
        message:
          'cannot be used with persistent_home: a pooled session starts before anyone claims it, and the home is mounted ' +
          'when it starts (at pod creation on Kubernetes), so it could not be the user\'s; set warm_pool to 0 or persistent_home to false',
      });
    }
  });

// What the schema lets through is exactly the contract's App, in both directions.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemaIsContract: Same<z.infer<typeof appSchema>, App> = true;
void schemaIsContract;
