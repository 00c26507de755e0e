import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_HOME_SIZE } from '../contract/apps.js';
import { parseQuantity } from '../contract/quantity.js';
import { DEFAULT_MAX_UPLOAD_MB } from '../contract/files.js';
import { ConfigError } from '../errors.js';

/**
 * Everything Sortie reads from its environment, in one place. Names and defaults of the
 * seed's variables (SORTIE_NAMESPACE, SESSION_TIMEOUT, SESSION_CLEANUP_INTERVAL,
 * POD_READY_TIMEOUT, SORTIE_VNC_SIDECAR_IMAGE, KUBECONFIG) are a contract with operators.
 */
export interface Config {
  port: number;
  host: string;
  /** Peers whose X-Forwarded-For/-Proto/-Host are believed (proxy-addr syntax). */
  trustedProxies: string;
  appsFile: string;
  runner: 'local' | 'kubernetes';
  dbPath: string;
  /** A PostgreSQL URL (SORTIE_DATABASE_URL): when set, the database instead of the SQLite file at dbPath. */
  databaseUrl: string | undefined;
  webDir: string;
  logLevel: string;
  /** Minutes a session may live before cleanup ends it. */
  sessionTimeoutMinutes: number;
  /** Minutes between cleanup sweeps. */
  cleanupIntervalMinutes: number;
  /** Seconds a session may stay `creating` before it fails. */
  podReadyTimeoutSeconds: number;
  /** Sessions one user may have queued, starting or running; over it a launch answers 429. */
  maxSessionsPerUser: number;
  /** Sessions starting or running at once; more wait queued. Undefined: the runner's own capacity (unlimited on Kubernetes). */
  maxSessions: number | undefined;
  /** Viewers one session may have at once (SORTIE_MAX_VIEWERS_PER_SESSION); one more is refused with close code 4429. */
  maxViewersPerSession: number;
  /** The largest file the session file API accepts, in bytes (SORTIE_MAX_UPLOAD_MB); more answers 413. */
  maxUploadBytes: number;
  /**
   * Seconds a stream may be silent before the relay pings the viewer (SORTIE_STREAM_PING_INTERVAL),
   * so proxies that drop idle connections (often after 60 s) see traffic both ways.
   */
  streamPingIntervalSeconds: number;
  /** Days audit events are kept (SORTIE_AUDIT_RETENTION_DAYS); 0 keeps them forever. */
  auditRetentionDays: number;
  /** Days session recordings are kept (SORTIE_RECORDING_RETENTION_DAYS, default 30); 0 keeps them until deleted. */
  recordingRetentionDays: number;
  /**
   * Where recordings are written (SORTIE_RECORDINGS_DIR): by default `recordings` beside the
   * SQLite file, in the data directory. Replicas on PostgreSQL share one folder (a shared
   * volume), so any of them plays back what another recorded.
   */
  recordingsDir: string;
  /**
   * `GET /metrics`: on its own port when `port` is set (SORTIE_METRICS_PORT), else on the
   * main port, and only with `token` (SORTIE_METRICS_TOKEN), which scrapers send as a
   * Bearer token wherever it is served. Neither set: no metrics.
   */
  metrics: { token: string | undefined; port: number | undefined };
  kubernetes: {
    namespace: string;
    sidecarImage: string;
    imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
    kubeconfig: string | undefined;
    /** Each user's persistent home claim: its size (SORTIE_HOME_SIZE) and StorageClass (SORTIE_HOME_STORAGE_CLASS, else the cluster's default). */
    home: { size: string; storageClass: string | undefined };
  };
  local: {
    /** Where the local runner records each session's processes, so a restart can find them. */
    stateDir: string;
  };
  auth: AuthConfig;
}

export interface AuthConfig {
  /** Off only when an operator says so (SORTIE_AUTH=disabled); everyone is then an admin. */
  enabled: boolean;
  adminUsername: string;
  /** Used once, when the first start finds no admin; generated and logged when unset. */
  adminPassword: string | undefined;
  /** Signs access tokens. Generated and kept in the database when unset. */
  jwtSecret: string | undefined;
  accessTokenMinutes: number;
  refreshTokenHours: number;
  /** The URL people use to reach Sortie; OIDC redirects and the Origin check use it. */
  publicUrl: string | undefined;
  /** Extra origins allowed to open streams and call the API from a browser. */
  allowedOrigins: string[];
  /** Brute-force protection for password sign-in (SORTIE_LOGIN_*). */
  signInLimits: {
    maxFailuresPerAccount: number;
    maxFailuresPerAddress: number;
    lockoutMinutes: number;
  };
  oidc:
    | {
        issuer: string;
        clientId: string;
        clientSecret: string | undefined;
        name: string;
        scopes: string;
        adminClaim: string;
        adminValue: string;
      }
    | undefined;
}

const attemptCount = (name: string, fallback: number) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === '') return fallback;
      const value = Number(raw);
      if (!Number.isInteger(value) || value < 1) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a whole number of attempts, at least 1, got "${raw}"` });
        return z.NEVER;
      }
      return value;
    });

export const DEFAULT_SIDECAR_IMAGE = 'ghcr.io/rjsadow/sortie-vnc-sidecar:latest';

// Fractions are allowed so tests (and impatient operators) can use sub-minute timeouts.
const positiveNumber = (name: string, fallback: number) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === '') return fallback;
      const value = Number(raw);
      if (!Number.isFinite(value) || value <= 0) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a positive number, got "${raw}"` });
        return z.NEVER;
      }
      return value;
    });

const retentionDays = z
  .string()
  .optional()
  .transform((raw, ctx) => {
    if (raw === undefined || raw.trim() === '') return 365;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0) {
      ctx.addIssue({ code: 'custom', message: `SORTIE_AUDIT_RETENTION_DAYS must be a number of days (0 keeps the audit log forever), got "${raw}"` });
      return z.NEVER;
    }
    return value;
  });

const recordingRetentionDays = z
  .string()
  .optional()
  .transform((raw, ctx) => {
    if (raw === undefined || raw.trim() === '') return 30;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0) {
      ctx.addIssue({ code: 'custom', message: `SORTIE_RECORDING_RETENTION_DAYS must be a number of days (0 keeps recordings until an admin deletes them), got "${raw}"` });
      return z.NEVER;
    }
    return value;
  });

const wholeNumber = (name: string) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === '') return undefined;
      const value = Number(raw);
      if (!Number.isInteger(value) || value < 1) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a whole number of sessions, at least 1, got "${raw}"` });
        return z.NEVER;
      }
      return value;
    });

const viewerCount = z
  .string()
  .optional()
  .transform((raw, ctx) => {
    if (raw === undefined || raw.trim() === '') return 5;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1) {
      ctx.addIssue({ code: 'custom', message: `SORTIE_MAX_VIEWERS_PER_SESSION must be a whole number of viewers, at least 1, got "${raw}"` });
      return z.NEVER;
    }
    return value;
  });

const port = z
  .string()
  .optional()
  .transform((raw, ctx) => {
    if (raw === undefined || raw.trim() === '') return 8080;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0 || value > 65535) {
      ctx.addIssue({ code: 'custom', message: `SORTIE_PORT must be a port number (0-65535), got "${raw}"` });
      return z.NEVER;
    }
    return value;
  });

// The value is never echoed: it holds the database password.
const databaseUrl = z
  .string()
  .optional()
  .transform((raw, ctx) => {
    if (raw === undefined || raw.trim() === '') return undefined;
    const value = raw.trim();
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    const host = url && (url.hostname || url.searchParams.get('host'));
    if (!url || !/^postgres(ql)?:$/i.test(url.protocol) || !host || url.pathname.length < 2) {
      ctx.addIssue({
        code: 'custom',
        message: 'SORTIE_DATABASE_URL must be a PostgreSQL URL with a host and a database, such as postgres://sortie:PASSWORD@db.example.com:5432/sortie',
      });
      return z.NEVER;
    }
    return value;
  });

const metricsPort = z
  .string()
  .optional()
  .transform((raw, ctx) => {
    if (raw === undefined || raw.trim() === '') return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0 || value > 65535) {
      ctx.addIssue({ code: 'custom', message: `SORTIE_METRICS_PORT must be a port number (0-65535), got "${raw}"` });
      return z.NEVER;
    }
    return value;
  });

const envSchema = z.object({
  SORTIE_PORT: port,
  // Default depends on SORTIE_AUTH: see host below.
  SORTIE_HOST: z.string().trim().min(1, 'SORTIE_HOST must not be empty').optional(),
  SORTIE_APPS_FILE: z.string().default('examples/apps.json'),
  SORTIE_RUNNER: z.enum(['local', 'kubernetes'], {
    error: (issue) => `SORTIE_RUNNER must be "local" or "kubernetes", got "${String(issue.input)}"`,
  }).default('local'),
  SORTIE_DB_PATH: z.string().default('data/sortie.db'),
  SORTIE_DATABASE_URL: databaseUrl,
  SORTIE_WEB_DIR: z.string().optional(),
  SORTIE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SESSION_TIMEOUT: positiveNumber('SESSION_TIMEOUT', 120),
  SESSION_CLEANUP_INTERVAL: positiveNumber('SESSION_CLEANUP_INTERVAL', 5),
  POD_READY_TIMEOUT: positiveNumber('POD_READY_TIMEOUT', 120),
  SORTIE_MAX_VIEWERS_PER_SESSION: viewerCount,
  SORTIE_MAX_UPLOAD_MB: positiveNumber('SORTIE_MAX_UPLOAD_MB', DEFAULT_MAX_UPLOAD_MB),
  SORTIE_STREAM_PING_INTERVAL: positiveNumber('SORTIE_STREAM_PING_INTERVAL', 25),
  SORTIE_METRICS_TOKEN: z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === '') return undefined;
      if (!/^\S{16,}$/.test(raw)) {
        // The value is never echoed: it is a secret.
        ctx.addIssue({ code: 'custom', message: 'SORTIE_METRICS_TOKEN must be at least 16 characters without spaces (for example: openssl rand -hex 32)' });
        return z.NEVER;
      }
      return raw;
    }),
  SORTIE_METRICS_PORT: metricsPort,
  SORTIE_MAX_SESSIONS_PER_USER: wholeNumber('SORTIE_MAX_SESSIONS_PER_USER'),
  SORTIE_MAX_SESSIONS: wholeNumber('SORTIE_MAX_SESSIONS'),
  SORTIE_NAMESPACE: z.string().default('default'),
  SORTIE_VNC_SIDECAR_IMAGE: z.string().default(DEFAULT_SIDECAR_IMAGE),
  SORTIE_IMAGE_PULL_POLICY: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
  SORTIE_HOME_SIZE: z
    .string()
    .trim()
    // A Kubernetes quantity of bytes, as a claim's request takes it; under 1 Mi is a slip.
    .refine((size) => (parseQuantity(size) ?? 0) >= 2 ** 20, 'SORTIE_HOME_SIZE must be a storage size such as 10Gi or 500Mi')
    .default(DEFAULT_HOME_SIZE),
  SORTIE_HOME_STORAGE_CLASS: z
    .string()
    .trim()
    .regex(/^$|^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'SORTIE_HOME_STORAGE_CLASS must be the name of a StorageClass (lowercase letters, digits, "-" and ".")')
    .optional(),
  KUBECONFIG: z.string().optional(),
  SORTIE_LOCAL_STATE_DIR: z.string().optional(),
  SORTIE_AUTH: z.enum(['enabled', 'disabled'], {
    error: (issue) => `SORTIE_AUTH must be "enabled" or "disabled", got "${String(issue.input)}"`,
  }).default('enabled'),
  SORTIE_ADMIN_USERNAME: z.string().trim().min(1).default('admin'),
  SORTIE_ADMIN_PASSWORD: z.string().min(12, 'SORTIE_ADMIN_PASSWORD must be at least 12 characters').optional(),
  SORTIE_JWT_SECRET: z.string().min(32, 'SORTIE_JWT_SECRET must be at least 32 characters').optional(),
  SORTIE_ACCESS_TOKEN_TTL: positiveNumber('SORTIE_ACCESS_TOKEN_TTL', 15),
  SORTIE_REFRESH_TOKEN_TTL: positiveNumber('SORTIE_REFRESH_TOKEN_TTL', 168),
  SORTIE_LOGIN_MAX_FAILURES: attemptCount('SORTIE_LOGIN_MAX_FAILURES', 10),
  SORTIE_LOGIN_MAX_FAILURES_PER_ADDRESS: attemptCount('SORTIE_LOGIN_MAX_FAILURES_PER_ADDRESS', 30),
  SORTIE_LOGIN_LOCKOUT: positiveNumber('SORTIE_LOGIN_LOCKOUT', 15),
  SORTIE_AUDIT_RETENTION_DAYS: retentionDays,
  SORTIE_RECORDING_RETENTION_DAYS: recordingRetentionDays,
  SORTIE_RECORDINGS_DIR: z.string().trim().min(1, 'SORTIE_RECORDINGS_DIR must be a folder; leave it unset for "recordings" beside SORTIE_DB_PATH').optional(),
  SORTIE_TRUSTED_PROXIES: z.string().trim().min(1, 'SORTIE_TRUSTED_PROXIES must not be empty').default('loopback,linklocal,uniquelocal'),
  SORTIE_PUBLIC_URL: z.url({ error: 'SORTIE_PUBLIC_URL must be a URL such as https://sortie.example.com' }).optional(),
  SORTIE_ALLOWED_ORIGINS: z.string().optional(),
  SORTIE_OIDC_ISSUER: z.url({ error: 'SORTIE_OIDC_ISSUER must be the issuer URL' }).optional(),
  SORTIE_OIDC_CLIENT_ID: z.string().optional(),
  SORTIE_OIDC_CLIENT_SECRET: z.string().optional(),
  SORTIE_OIDC_NAME: z.string().default('single sign-on'),
  SORTIE_OIDC_SCOPES: z.string().default('openid profile email'),
  SORTIE_OIDC_ADMIN_CLAIM: z.string().default('groups'),
  SORTIE_OIDC_ADMIN_VALUE: z.string().default('sortie-admins'),
});

/** The directory holding the built server, so defaults work from any working directory. */
const repoRoot = path.resolve(import.meta.dirname, '..', '..', '..');

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (e.SORTIE_OIDC_ISSUER && !e.SORTIE_OIDC_CLIENT_ID) {
    throw new ConfigError('Invalid configuration:\n  SORTIE_OIDC_CLIENT_ID: required when SORTIE_OIDC_ISSUER is set');
  }
  if (e.SORTIE_METRICS_PORT !== undefined && e.SORTIE_METRICS_PORT !== 0 && e.SORTIE_METRICS_PORT === e.SORTIE_PORT) {
    throw new ConfigError(`Invalid configuration:\n  SORTIE_METRICS_PORT: must differ from SORTIE_PORT (${e.SORTIE_PORT}); it is a second listener for /metrics only`);
  }
  const dbPath = path.resolve(e.SORTIE_DB_PATH);
  return {
    port: e.SORTIE_PORT,
    // With sign-in off anyone who reaches the port is an admin: listen on this machine only
    // unless the operator says otherwise.
    host: e.SORTIE_HOST ?? (e.SORTIE_AUTH === 'enabled' ? '0.0.0.0' : '127.0.0.1'),
    trustedProxies: e.SORTIE_TRUSTED_PROXIES,
    appsFile: path.resolve(e.SORTIE_APPS_FILE),
    runner: e.SORTIE_RUNNER,
    dbPath,
    databaseUrl: e.SORTIE_DATABASE_URL,
    webDir: path.resolve(e.SORTIE_WEB_DIR ?? path.join(repoRoot, 'dist', 'web')),
    logLevel: e.SORTIE_LOG_LEVEL,
    sessionTimeoutMinutes: e.SESSION_TIMEOUT,
    cleanupIntervalMinutes: e.SESSION_CLEANUP_INTERVAL,
    podReadyTimeoutSeconds: e.POD_READY_TIMEOUT,
    maxSessionsPerUser: e.SORTIE_MAX_SESSIONS_PER_USER ?? 3,
    maxSessions: e.SORTIE_MAX_SESSIONS,
    maxViewersPerSession: e.SORTIE_MAX_VIEWERS_PER_SESSION,
    maxUploadBytes: Math.floor(e.SORTIE_MAX_UPLOAD_MB * 1024 * 1024),
    streamPingIntervalSeconds: e.SORTIE_STREAM_PING_INTERVAL,
    auditRetentionDays: e.SORTIE_AUDIT_RETENTION_DAYS,
    recordingRetentionDays: e.SORTIE_RECORDING_RETENTION_DAYS,
    recordingsDir: path.resolve(e.SORTIE_RECORDINGS_DIR ?? path.join(path.dirname(dbPath), 'recordings')),
    metrics: { token: e.SORTIE_METRICS_TOKEN, port: e.SORTIE_METRICS_PORT },
    kubernetes: {
      namespace: e.SORTIE_NAMESPACE,
      sidecarImage: e.SORTIE_VNC_SIDECAR_IMAGE,
      imagePullPolicy: e.SORTIE_IMAGE_PULL_POLICY,
      kubeconfig: e.KUBECONFIG,
      home: { size: e.SORTIE_HOME_SIZE, storageClass: e.SORTIE_HOME_STORAGE_CLASS || undefined },
    },
    local: {
      stateDir: path.resolve(e.SORTIE_LOCAL_STATE_DIR ?? path.join(path.dirname(dbPath), 'local-sessions')),
    },
    auth: {
      enabled: e.SORTIE_AUTH === 'enabled',
      adminUsername: e.SORTIE_ADMIN_USERNAME,
      adminPassword: e.SORTIE_ADMIN_PASSWORD,
      jwtSecret: e.SORTIE_JWT_SECRET,
      accessTokenMinutes: e.SORTIE_ACCESS_TOKEN_TTL,
      refreshTokenHours: e.SORTIE_REFRESH_TOKEN_TTL,
      publicUrl: e.SORTIE_PUBLIC_URL?.replace(/\/+$/, ''),
      allowedOrigins: (e.SORTIE_ALLOWED_ORIGINS ?? '').split(',').map((o) => o.trim().replace(/\/+$/, '')).filter(Boolean),
      signInLimits: {
        maxFailuresPerAccount: e.SORTIE_LOGIN_MAX_FAILURES,
        maxFailuresPerAddress: e.SORTIE_LOGIN_MAX_FAILURES_PER_ADDRESS,
        lockoutMinutes: e.SORTIE_LOGIN_LOCKOUT,
      },
      oidc: e.SORTIE_OIDC_ISSUER
        ? {
            issuer: e.SORTIE_OIDC_ISSUER,
            clientId: e.SORTIE_OIDC_CLIENT_ID!,
            clientSecret: e.SORTIE_OIDC_CLIENT_SECRET,
            name: e.SORTIE_OIDC_NAME,
            scopes: e.SORTIE_OIDC_SCOPES,
            adminClaim: e.SORTIE_OIDC_ADMIN_CLAIM,
            adminValue: e.SORTIE_OIDC_ADMIN_VALUE,
          }
        : undefined,
    },
  };
}
