import { NO_AUDIT, type AuditRecorder } from '../audit/audit-log.js';
import { mayUseApp } from './app-access.js';
import type { Principal } from '../auth/principal.js';
import type { UserRepository } from '../auth/user-repository.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { App } from './app.js';
import type { AppRepository } from './app-repository.js';

/** The catalog as each person may see it, and its administration. */
export class CatalogService {
  private readonly changeListeners: Array<(appId: string) => void> = [];

  constructor(
    private readonly apps: AppRepository,
    private readonly users: UserRepository,
    private readonly audit: AuditRecorder = NO_AUDIT,
  ) {}

  /** Told after an app is created, edited or removed (the warm pools follow). */
  onChange(listener: (appId: string) => void): void {
    this.changeListeners.push(listener);
  }

  private changed(appId: string): void {
    for (const listener of this.changeListeners) listener(appId);
  }

  /** The apps `principal` may see and launch. */
  async list(principal: Principal): Promise<App[]> {
    const all = await this.apps.list();
    if (principal.role === 'admin') return all;
    const approvals = await this.users.approvals(principal.userId);
    return all.filter((app) => mayUseApp(principal, approvals, app));
  }

  /** An app `principal` may launch; others' apps answer as if they did not exist. */
  async forLaunch(principal: Principal, id: string): Promise<App> {
    const app = await this.apps.get(id);
    const allowed = app && (principal.role === 'admin' || mayUseApp(principal, await this.users.approvals(principal.userId), app));
    if (!app || !allowed) throw new NotFoundError(`No app with id "${id}" in the catalog`);
    return app;
  }

  async create(actor: Principal, given: App): Promise<App> {
    const app = asStored(given);
    if (!(await this.apps.create(app))) throw new ConflictError(`An app with id "${app.id}" already exists`);
    this.audit.record({ action: 'app.create', actor, target: { type: 'app', id: app.id, name: app.name } });
    this.changed(app.id);
    return app;
  }

  async update(actor: Principal, given: App): Promise<App> {
    // As stored, so a field left out at its default is no change, and the answer shows what is kept.
    const app = asStored(given);
    const before = await this.apps.get(app.id);
    if (!(await this.apps.update(app))) throw new NotFoundError(`No app with id "${app.id}" in the catalog`);
    this.audit.record({ action: 'app.update', actor, target: { type: 'app', id: app.id, name: app.name }, details: { changed: changedFields(before, app) } });
    this.changed(app.id);
    return app;
  }

  async delete(actor: Principal, id: string): Promise<void> {
    const before = await this.apps.get(id);
    if (!(await this.apps.delete(id))) throw new NotFoundError(`No app with id "${id}" in the catalog`);
    this.audit.record({ action: 'app.delete', actor, target: { type: 'app', id, ...(before ? { name: before.name } : {}) } });
    this.changed(id);
  }
}

/** The names of the fields an update changed (values stay out of the audit log: commands can hold anything). */
function changedFields(before: App | undefined, after: App): string[] {
  if (!before) return [];
  const keys = new Set([...Object.keys(before), ...Object.keys(after)] as (keyof App)[]);
  return [...keys].filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key])).sort();
}

/** An app with the defaults the database fills in for fields left out. */
function asStored(app: App): App {
  return { ...app, recording: app.recording ?? 'off', warm_pool: app.warm_pool ?? 0 };
}
