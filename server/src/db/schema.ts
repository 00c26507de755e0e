import type { Generated } from 'kysely';

/** Row shapes as stored. Timestamps are ISO-8601 strings so SQLite and PostgreSQL agree. */
export interface SessionsTable {
  id: string;
  user_id: string;
  app_id: string;
  app_name: string;
  pod_name: string;
  status: 'creating' | 'running' | 'failed' | 'terminated';
  reason: string | null;
  /** `host:port` of the session's websockify, known once running. Never sent to clients. */
  endpoint: string | null;
  created_at: string;
  updated_at: string;
  /** Last time a viewer was connected; SESSION_TIMEOUT counts idle time from here. */
  last_active_at: string;
}

export interface AppsTable {
  id: string;
  name: string;
  description: string;
  url: string;
  icon: string;
  category: string;
  visibility: 'public' | 'approved' | 'admin_only';
  launch_type: 'url' | 'container';
  container_image: string;
  /** JSON array of strings, or null. */
  command: string | null;
  /** JSON object with cpu_request, cpu_limit, memory_request, memory_limit. */
  resource_limits: string;
  position: Generated<number>;
}

export interface Database {
  sessions: SessionsTable;
  apps: AppsTable;
}
