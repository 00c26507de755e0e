import { mayUseApp } from './app-access.js';
import type { Principal } from '../auth/principal.js';
import type { UserRepository } from '../auth/user-repository.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { App } from './app.js';
import type { AppRepository } from './app-repository.js';

/** The catalog as each person may see it, and its administration. */
export class CatalogService {
  constructor(
    private readonly apps: AppRepository,
    private readonly users: UserRepository,
  ) {}

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

  async create(app: App): Promise<App> {
    if (!(await this.apps.create(app))) throw new ConflictError(`An app with id "${app.id}" already exists`);
    return app;
  }

  async update(app: App): Promise<App> {
    if (!(await this.apps.update(app))) throw new NotFoundError(`No app with id "${app.id}" in the catalog`);
    return app;
  }

  async delete(id: string): Promise<void> {
    if (!(await this.apps.delete(id))) throw new NotFoundError(`No app with id "${id}" in the catalog`);
  }
}
