import type { AuditRecorder } from '../audit/audit-log.js';
import type { Principal } from '../auth/principal.js';
import type { App } from '../catalog/app.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { Runner } from '../runners/runner.js';
import type { SessionRepository } from './session-repository.js';

export interface UserHomeServiceOptions {
  sessions: SessionRepository;
  runner: Runner;
  appById: (appId: string) => Promise<App | undefined>;
  audit: AuditRecorder;
}

/** Admins' side of persistent homes: removing one, never while a session of its user is in it. */
export class UserHomeService {
  constructor(private readonly o: UserHomeServiceOptions) {}

  async delete(actor: Principal, userId: string): Promise<void> {
    const homes = this.o.runner.homes;
    if (!homes) throw new NotFoundError(`The ${this.o.runner.kind} runner keeps no persistent homes`);
    for (const session of await this.o.sessions.list({ userId })) {
      if (session.status === 'terminated' || session.status === 'failed') continue;
      const app = await this.o.appById(session.app_id);
      // An app deleted since its launch may still have had a persistent home: assume it does.
      if (!app || app.persistent_home) {
        throw new ConflictError(`User "${userId}" has a live session (${session.id}, ${app?.name ?? session.app_id}) using the home; end it first`);
      }
    }
    if (!(await homes.delete(userId))) throw new NotFoundError(`User "${userId}" has no persistent home`);
    this.o.audit.record({ action: 'user.home_delete', actor, target: { type: 'user', id: userId } });
  }
}
