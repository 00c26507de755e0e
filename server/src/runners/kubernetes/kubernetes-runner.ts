import { CoreV1Api, ListWatch, Watch, type KubeConfig, type V1Pod, type V1PodList } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { App } from '../../catalog/app.js';
import { ConfigError, ConflictError, InputError } from '../../errors.js';
import type { RunnerMetrics } from '../../metrics/metrics.js';
import { workloadName, type HomeFiles, type LaunchSpec, type Runner, type UserHomes, type Workload, type WorkloadEvent } from '../runner.js';
import { apiMessage, apiStatusCode } from './api-errors.js';
import { buildHomeClaim, DEFAULT_HOME, homeClaimName, type HomeSettings } from './home-claim.js';
import { ANNOTATION_USER_ID, LABEL_SESSION_ID, SESSION_POD_SELECTOR } from './labels.js';
import { buildSessionPod, TERMINATION_GRACE_SECONDS, type PodSettings } from './pod-spec.js';
import { podLaunchStep, podState, type PodLaunchStep } from './pod-status.js';
import { SidecarHomeFiles } from './sidecar-files.js';

export interface KubernetesRunnerOptions extends PodSettings {
  kubeConfig: KubeConfig;
  /** The claims behind persistent homes (SORTIE_HOME_SIZE, SORTIE_HOME_STORAGE_CLASS); default 10Gi of the cluster's default class. */
  home?: Omit<HomeSettings, 'namespace'>;
  logger: Logger;
  /** Delays between attempts to re-establish a dropped pod watch (doubling, capped). */
  watchBackoff?: { initialMs: number; maxMs: number };
  /** Counts failures of the pod watch (launch and stop failures are counted by the session service). */
  metrics?: RunnerMetrics;
}

/** What this runner last told the session service about a session. */
type Reported = 'pending' | 'ready' | 'ended';

const DELETED_OUTSIDE = "The session's pod was deleted outside Sortie";

/**
 * Sessions as pods. State comes from one informer (list + watch on Sortie's labels), so
 * readiness reaches the session service as soon as the API server sees it and an idle
 * session costs the API server nothing. start() answers from the informer's cache: the
 * pods are listed once, not once for reconciliation and again for the watch.
 */
export class KubernetesRunner implements Runner {
  readonly kind = 'kubernetes' as const;

  private readonly core: CoreV1Api;
  private readonly settings: PodSettings;
  private readonly logger: Logger;
  private readonly backoff: { initialMs: number; maxMs: number };

  private informer: ListWatch<V1Pod> | undefined;
  private onEvent: ((event: WorkloadEvent) => void) | undefined;
  private readonly reported = new Map<string, Reported>();
  /** The launch step last reported for each pending pod, so only a change is news. */
  private readonly steps = new Map<string, PodLaunchStep>();
  /** Sessions Sortie is deleting: their pods' last moments are not news. */
  private readonly stopping = new Set<string>();

  private closed = false;
  private starting = false;
  /** Set once start() has adopted the pods in the informer's cache; events count from then on. */
  private adopted = false;
  private watchErrors = 0;
  private restartAttempt = 0;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: KubernetesRunnerOptions) {
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.settings = { namespace: options.namespace, sidecarImage: options.sidecarImage, imagePullPolicy: options.imagePullPolicy };
    this.logger = options.logger.child({ namespace: options.namespace });
    this.backoff = options.watchBackoff ?? { initialMs: 500, maxMs: 30_000 };
  }

  validate(app: App): void {
    if (app.container_image.trim() === '') {
      throw new InputError(`App "${app.id}" has no container_image; the kubernetes runner needs an image to run`);
    }
  }

  async start(onEvent: (event: WorkloadEvent) => void): Promise<Workload[]> {
    if (this.informer) throw new Error('KubernetesRunner.start() was already called');
    this.onEvent = onEvent;

    // One list for adoption and the watch alike: the informer's first list fills its cache,
    // and the pods found there are adopted once it has arrived.
    let listed = false;
    // What makeInformer builds, typed as the cache it also is; not started until informer.start().
    const informer = new ListWatch<V1Pod>(
      `/api/v1/namespaces/${encodeURIComponent(this.settings.namespace)}/pods`,
      new Watch(this.options.kubeConfig),
      async () => {
        const list = await this.listSessionPods();
        listed = true;
        return list;
      },
      false,
      SESSION_POD_SELECTOR,
    );
    // Until the pods in the cache are adopted, what the informer sees is start()'s answer,
    // not news: a pod that changes meanwhile is adopted as the cache holds it then.
    informer.on('add', (pod) => this.adopted && this.observe(pod));
    informer.on('update', (pod) => this.adopted && this.observe(pod));
    informer.on('delete', (pod) => this.adopted && this.forget(pod));
    informer.on('error', (err) => this.watchFailed(err));
    this.informer = informer;

    // A list or watch that cannot even start (RBAC without `list` or `watch`, wrong server)
    // is a setup problem to report now, not something to retry quietly forever.
    let firstFailure: { verb: 'list' | 'watch'; err: unknown } | undefined;
    const captureFirst = (err: unknown) => {
      firstFailure ??= { verb: listed ? 'watch' : 'list', err };
    };
    informer.on('error', captureFirst);
    this.starting = true;
    try {
      await informer.start();
    } finally {
      this.starting = false;
      informer.off('error', captureFirst);
    }
    if (firstFailure) {
      this.informer = undefined;
      await informer.stop();
      throw this.accessError(firstFailure.verb, firstFailure.err);
    }

    // Synchronous from here to the return: no informer callback runs between adopting the
    // cache and the handlers above starting to report.
    const pods = informer.list();
    const workloads = pods.flatMap((pod) => this.adopt(pod));
    this.adopted = true;
    this.logger.info({ pods: pods.length }, 'watching session pods');
    return workloads;
  }

  async launch(spec: LaunchSpec): Promise<void> {
    // The sidecar hands it to tigervncpasswd as one line.
    if (!/^[!-~]*$/.test(spec.streamSecret)) throw new Error('The stream secret must be printable ASCII without spaces');
    if (spec.app.persistent_home) await this.ensureHome(spec.userId);
    const pod = buildSessionPod(spec, this.settings);
    const { namespace } = this.settings;
    try {
      await this.core.createNamespacedPod({ namespace, body: pod });
    } catch (err) {
      const code = apiStatusCode(err);
      if (code === undefined) {
        // No answer: the pod may exist anyway. Launch failures must leave nothing behind.
        await this.core.deleteNamespacedPod({ name: spec.workloadName, namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
        throw new Error(`Could not reach the Kubernetes API server to create the session's pod: ${apiMessage(err)}`);
      }
      const message = apiMessage(err);
      this.logger.warn({ sessionId: spec.sessionId, code, message }, 'pod creation refused');
      if (code === 403 && /exceeded quota/i.test(message)) {
        throw new ConflictError(`The namespace's resource quota refused the session: ${message}`);
      }
      if (code === 403) {
        throw new ConfigError(`Sortie is not allowed to create pods in namespace "${namespace}" (check deploy/kubernetes/rbac.yaml): ${message}`);
      }
      if (code === 409) {
        throw new ConflictError(`A pod named "${spec.workloadName}" already exists in namespace "${namespace}"`);
      }
      if (code === 422 || code === 400) {
        throw new InputError(`Kubernetes rejected the session's pod as invalid: ${message}`);
      }
      if (code === 404) {
        throw new ConfigError(`Namespace "${namespace}" does not exist (SORTIE_NAMESPACE): ${message}`);
      }
      throw new Error(`Kubernetes refused to create the session's pod (HTTP ${code}): ${message}`);
    }
    this.logger.debug({ sessionId: spec.sessionId, pod: spec.workloadName }, 'pod created');
  }

  /** Through the file endpoint in each pod's sidecar, on the home volume the app mounts. */
  readonly files: HomeFiles = new SidecarHomeFiles();

  readonly homes: UserHomes = {
    delete: async (userId) => {
      try {
        // The claim goes once no pod uses it (Kubernetes' pvc-protection); the session
        // layer has checked that none of the user's sessions does.
        await this.core.deleteNamespacedPersistentVolumeClaim({ name: homeClaimName(userId), namespace: this.settings.namespace });
        return true;
      } catch (err) {
        if (apiStatusCode(err) === 404) return false;
        if (apiStatusCode(err) === 403) throw this.homeAccessError('delete', err);
        throw new Error(`Could not delete the home of user "${userId}": ${apiMessage(err)}`);
      }
    },
  };

  /** The user's home claim, made on first use; one that exists is used as it is. */
  private async ensureHome(userId: string): Promise<void> {
    const { namespace } = this.settings;
    try {
      await this.core.createNamespacedPersistentVolumeClaim({ namespace, body: buildHomeClaim(userId, { namespace, ...(this.options.home ?? DEFAULT_HOME) }) });
      this.logger.info({ userId, claim: homeClaimName(userId) }, 'home created');
    } catch (err) {
      const code = apiStatusCode(err);
      if (code === 409) return;
      if (code === 403 && /exceeded quota/i.test(apiMessage(err))) {
        throw new ConflictError(`The namespace's resource quota refused the user's home: ${apiMessage(err)}`);
      }
      if (code === 403) throw this.homeAccessError('create', err);
      if (code === 422 || code === 400) throw new ConfigError(`Kubernetes rejected the home's claim (SORTIE_HOME_SIZE, SORTIE_HOME_STORAGE_CLASS): ${apiMessage(err)}`);
      throw new Error(`Could not create the user's home (claim ${homeClaimName(userId)}): ${apiMessage(err)}`);
    }
  }

  private homeAccessError(verb: 'create' | 'delete', err: unknown): ConfigError {
    return new ConfigError(
      `Sortie may not ${verb} persistentvolumeclaims in namespace "${this.settings.namespace}" (apply deploy/kubernetes/rbac.yaml): ${apiMessage(err)}`,
    );
  }

  /**
   * The session pods as the API server lists them now, not the informer's cache: the sweep
   * that uses this removes pods, and a cache behind a broken watch could be minutes old.
   * Pods already being deleted are left out: asking again would not make them go sooner.
   */
  async list(): Promise<Workload[]> {
    let pods: V1PodList;
    try {
      pods = await this.listSessionPods();
    } catch (err) {
      throw this.accessError('list', err);
    }
    return pods.items.flatMap((pod): Workload[] => {
      const sessionId = sessionOf(pod);
      if (!sessionId) return [];
      const state = podState(pod);
      switch (state.kind) {
        case 'deleting':
          return [];
        case 'ready':
          return [{ sessionId, state: 'ready', endpoint: state.endpoint }];
        case 'pending':
          return [{ sessionId, state: 'starting' }];
        default:
          return [{ sessionId, state: 'ended', reason: state.reason }];
      }
    });
  }

  /**
   * Names the claiming user in the pod's `sortie.io/user-id` annotation (empty while pooled),
   * for whoever looks at the cluster: an operator reading the pod, or a tool that reports use by owner.
   * A JSON patch of that one key; the pod's spec is never patched.
   */
  async assignOwner(sessionId: string, userId: string): Promise<void> {
    const { namespace } = this.settings;
    try {
      await this.core.patchNamespacedPod({
        name: workloadName(sessionId),
        namespace,
        body: [{ op: 'add', path: `/metadata/annotations/${ANNOTATION_USER_ID.replace(/~/g, '~0').replace(/\//g, '~1')}`, value: userId }],
      });
    } catch (err) {
      const code = apiStatusCode(err);
      // Gone already: the watch reports that, and the session ends with it.
      if (code === 404) return;
      if (code === 403) {
        throw new ConfigError(`Sortie may not patch pods in namespace "${namespace}" to name a claimed session's owner (apply deploy/kubernetes/rbac.yaml): ${apiMessage(err)}`);
      }
      throw new Error(`Could not name the owner on the pod of session ${sessionId}: ${apiMessage(err)}`);
    }
  }

  async stop(sessionId: string): Promise<void> {
    this.stopping.add(sessionId);
    try {
      await this.core.deleteNamespacedPod({
        name: workloadName(sessionId),
        namespace: this.settings.namespace,
        gracePeriodSeconds: TERMINATION_GRACE_SECONDS,
      });
    } catch (err) {
      if (apiStatusCode(err) === 404) {
        this.stopping.delete(sessionId);
        this.reported.delete(sessionId);
        this.steps.delete(sessionId);
        return;
      }
      this.stopping.delete(sessionId);
      throw new Error(`Could not delete the pod of session ${sessionId}: ${apiMessage(err)}`);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.clearRestart();
    await this.informer?.stop();
  }

  private listSessionPods(): Promise<V1PodList> {
    return this.core.listNamespacedPod({ namespace: this.settings.namespace, labelSelector: SESSION_POD_SELECTOR });
  }

  /** A pod in the cache at start-up: recorded as already reported, so no event repeats what start() returns. */
  private adopt(pod: V1Pod): Workload[] {
    const sessionId = sessionOf(pod);
    if (!sessionId) return [];
    const state = podState(pod);
    switch (state.kind) {
      case 'ready':
        this.reported.set(sessionId, 'ready');
        return [{ sessionId, state: 'ready', endpoint: state.endpoint }];
      case 'pending':
        this.reported.set(sessionId, 'pending');
        // Recorded, not reported, like the rest of an adopted pod: its next step is news.
        this.steps.set(sessionId, podLaunchStep(pod));
        return [{ sessionId, state: 'starting' }];
      case 'deleting':
        this.reported.set(sessionId, 'ended');
        return [{ sessionId, state: 'ended', reason: "The session's pod is being deleted" }];
      default:
        this.reported.set(sessionId, 'ended');
        return [{ sessionId, state: 'ended', reason: state.reason }];
    }
  }

  private observe(pod: V1Pod): void {
    const sessionId = sessionOf(pod);
    if (!sessionId || this.stopping.has(sessionId)) return;
    const before = this.reported.get(sessionId) ?? 'pending';
    if (before === 'ended') return;

    const state = podState(pod, { wasReady: before === 'ready' });
    if (state.kind !== 'pending') this.steps.delete(sessionId);
    switch (state.kind) {
      case 'pending':
        if (before === 'pending') this.reportStep(sessionId, pod);
        return;
      case 'ready':
        if (before === 'ready') return;
        this.reported.set(sessionId, 'ready');
        this.emit({ type: 'ready', sessionId, endpoint: state.endpoint });
        return;
      case 'deleting':
        this.reported.set(sessionId, 'ended');
        this.emit({ type: 'failed', sessionId, reason: DELETED_OUTSIDE });
        return;
      default:
        this.reported.set(sessionId, 'ended');
        this.emit({ type: state.kind, sessionId, reason: state.reason });
    }
  }

  private forget(pod: V1Pod): void {
    const sessionId = sessionOf(pod);
    if (!sessionId) return;
    const before = this.reported.get(sessionId);
    this.reported.delete(sessionId);
    this.steps.delete(sessionId);
    if (this.stopping.delete(sessionId)) return;
    if (before !== 'ended') this.emit({ type: 'failed', sessionId, reason: DELETED_OUTSIDE });
  }

  /** Tells the session service when a pending pod moves on to another step of its start. */
  private reportStep(sessionId: string, pod: V1Pod): void {
    const step = podLaunchStep(pod);
    if (this.steps.get(sessionId) === step) return;
    this.steps.set(sessionId, step);
    this.emit({ type: 'progress', sessionId, step, at: new Date().toISOString() });
  }

  private emit(event: WorkloadEvent): void {
    this.logger[event.type === 'progress' ? 'debug' : 'info']({ ...event }, `session ${event.type}`);
    try {
      this.onEvent?.(event);
    } catch (err) {
      // A throwing listener must not take the informer down with it.
      this.logger.error({ err, sessionId: event.sessionId }, 'session event handler threw');
    }
  }

  private watchFailed(err: unknown): void {
    this.watchErrors++;
    if (!this.closed && !this.starting) this.options.metrics?.runnerError('watch');
    // Stopping the informer aborts its request, which it reports as an error.
    if (this.closed || this.starting || !this.informer || this.restartTimer) return;
    const delayMs = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** this.restartAttempt);
    this.restartAttempt++;
    this.logger.warn({ err: apiMessage(err), attempt: this.restartAttempt, delayMs }, 'pod watch failed; restarting');
    this.restartTimer = setTimeout(() => void this.restartWatch(), delayMs);
  }

  private async restartWatch(): Promise<void> {
    this.restartTimer = undefined;
    if (this.closed || !this.informer) return;
    const errorsBefore = this.watchErrors;
    await this.informer.start();
    if (this.watchErrors === errorsBefore && !this.closed) {
      this.logger.info({ attempts: this.restartAttempt }, 'pod watch restarted');
      this.restartAttempt = 0;
    }
  }

  private clearRestart(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
  }

  private accessError(verb: 'list' | 'watch', err: unknown): Error {
    const code = apiStatusCode(err) ?? (err as { statusCode?: number } | undefined)?.statusCode;
    const where = `pods in namespace "${this.settings.namespace}"`;
    if (code === 401 || code === 403) {
      return new ConfigError(`Sortie may not ${verb} ${where} (HTTP ${code}; apply deploy/kubernetes/rbac.yaml): ${apiMessage(err)}`);
    }
    const server = this.options.kubeConfig.getCurrentCluster()?.server ?? 'the Kubernetes API server';
    return new Error(`Could not ${verb} ${where} at ${server}: ${apiMessage(err)}`);
  }
}

function sessionOf(pod: V1Pod): string | undefined {
  return pod.metadata?.labels?.[LABEL_SESSION_ID];
}
