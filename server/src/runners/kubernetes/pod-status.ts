import type { V1ContainerStateTerminated, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import type { Endpoint } from '../runner.js';
import { APP_CONTAINER, SIDECAR_CONTAINER, WEBSOCKIFY_PORT } from './pod-spec.js';

/**
 * What a session pod means for its session. `deleting` is separate from `failed` because
 * only the runner knows whether it asked for the deletion itself.
 */
export type PodState =
  | { kind: 'pending' }
  | { kind: 'ready'; endpoint: Endpoint }
  | { kind: 'failed'; reason: string }
  | { kind: 'exited'; reason: string }
  | { kind: 'deleting' };

export interface PodStateOptions {
  /**
   * Whether the session was ready before. Decides whether an app that exits with code 0
   * "quit" (exited) or never worked (failed). Unknown (e.g. pods found at start-up): the
   * reason does not claim either way, and code 0 counts as a normal exit.
   */
  wasReady?: boolean;
}

// Kubernetes retries these forever; a person waiting for a desktop should hear at once.
const IMAGE_FAILURES = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'RegistryUnavailable', 'ImageInspectError']);
const CREATE_FAILURES = new Set(['CreateContainerConfigError', 'CreateContainerError', 'RunContainerError', 'PreStartHookError', 'PostStartHookError']);

const ROLE: Record<string, string> = { [APP_CONTAINER]: 'app', [SIDECAR_CONTAINER]: 'VNC sidecar' };

export function podState(pod: V1Pod, options: PodStateOptions = {}): PodState {
  if (pod.metadata?.deletionTimestamp) return { kind: 'deleting' };

  const statuses = pod.status?.containerStatuses ?? [];
  const byName = (name: string) => statuses.find((s) => s.name === name);
  const ordered = [byName(APP_CONTAINER), byName(SIDECAR_CONTAINER)].filter((s): s is V1ContainerStatus => s !== undefined);

  for (const status of ordered) {
    const waiting = status.state?.waiting;
    if (waiting?.reason && IMAGE_FAILURES.has(waiting.reason)) {
      return { kind: 'failed', reason: imageFailure(pod, status, waiting.reason, waiting.message) };
    }
    if (waiting?.reason && CREATE_FAILURES.has(waiting.reason)) {
      const detail = waiting.message ? `: ${waiting.message}` : ` (${waiting.reason})`;
      return { kind: 'failed', reason: `The ${ROLE[status.name]} container could not be created${detail}` };
    }
  }
  for (const status of ordered) {
    const terminated = status.state?.terminated;
    if (terminated) return termination(pod, status.name, terminated, options.wasReady);
  }

  const phase = pod.status?.phase;
  if (phase === 'Failed') {
    // Eviction, node loss and the like: the pod says why, the containers may not.
    const why = [pod.status?.reason, pod.status?.message].filter(Boolean).join(': ');
    return { kind: 'failed', reason: `The session's pod failed${why ? `: ${why}` : ''}` };
  }
  if (phase === 'Succeeded') {
    return options.wasReady === false
      ? { kind: 'failed', reason: 'The app exited (code 0) before the desktop was ready' }
      : { kind: 'exited', reason: 'The app exited' };
  }

  const conditions = pod.status?.conditions ?? [];
  const scheduled = conditions.find((c) => c.type === 'PodScheduled');
  // A home claim still being bound (a provisioner making its volume) is a wait, not a
  // failure: the scheduler tries again once it is bound, and POD_READY_TIMEOUT bounds it.
  const waitingForClaim = /unbound immediate PersistentVolumeClaims|persistentvolumeclaim "[^"]*" not found/i.test(scheduled?.message ?? '');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable' && !waitingForClaim) {
    return { kind: 'failed', reason: `No node can run this session: ${scheduled.message ?? 'the scheduler found no node that fits'}` };
  }

  const ready = conditions.find((c) => c.type === 'Ready');
  const podIP = pod.status?.podIP;
  if (ready?.status === 'True' && podIP) return { kind: 'ready', endpoint: { host: podIP, port: WEBSOCKIFY_PORT } };

  return { kind: 'pending' };
}

/** The steps of a session pod's start that the pod's own status tells apart. */
export type PodLaunchStep = 'scheduling' | 'pulling' | 'starting';

/**
 * Which step of its start a pod that podState() calls `pending` is at, read from the pod's
 * own status (Sortie's Role has no access to events): without a node it waits for one; on
 * a node with a container not yet running, its images are being pulled or its containers
 * created (the kubelet says ContainerCreating for both, PodInitializing while volumes are
 * set up); with every container running and the pod not Ready, the desktop is starting.
 */
export function podLaunchStep(pod: V1Pod): PodLaunchStep {
  const scheduled = pod.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'True');
  if (!scheduled && !pod.spec?.nodeName) return 'scheduling';
  const statuses = pod.status?.containerStatuses ?? [];
  const containers = pod.spec?.containers ?? [];
  const allRunning = containers.length > 0 && containers.every((c) => statuses.find((s) => s.name === c.name)?.state?.running);
  return allRunning ? 'starting' : 'pulling';
}

function imageFailure(pod: V1Pod, status: V1ContainerStatus, reason: string, message: string | undefined): string {
  // The spec holds the image as the catalog wrote it; the status may hold a normalised form.
  const image = pod.spec?.containers.find((c) => c.name === status.name)?.image ?? status.image;
  const detail = message ? `: ${message}` : ` (${reason})`;
  switch (reason) {
    case 'InvalidImageName':
      return `Image "${image}" is not a valid image reference${detail}`;
    case 'ErrImageNeverPull':
      return `Image "${image}" is not present on the node and imagePullPolicy is Never`;
    default:
      return `Image "${image}" could not be pulled${detail}`;
  }
}

function termination(pod: V1Pod, container: string, terminated: V1ContainerStateTerminated, wasReady: boolean | undefined): PodState {
  const role = ROLE[container];
  const beforeReady = wasReady === false ? ' before the desktop was ready' : '';
  const code = terminated.exitCode;

  if (terminated.reason === 'OOMKilled') {
    const limit = pod.spec?.containers.find((c) => c.name === container)?.resources?.limits?.memory;
    const subject = container === APP_CONTAINER ? 'The app' : 'The VNC sidecar';
    return { kind: 'failed', reason: `${subject} ran out of memory (OOMKilled${limit ? `, limit ${limit}` : ''})${beforeReady}` };
  }
  // The runtime could not exec the command at all (typo in `command`, missing binary).
  if (terminated.reason === 'StartError' || terminated.reason === 'ContainerCannotRun') {
    return { kind: 'failed', reason: `The ${role} container could not start: ${terminated.message ?? terminated.reason}` };
  }
  if (container === APP_CONTAINER && code === 0 && wasReady !== false) {
    return { kind: 'exited', reason: 'The app exited' };
  }
  const signal = code === 137 ? ' (killed)' : code === 143 ? ' (terminated)' : '';
  const message = terminated.message ? `: ${terminated.message.trim()}` : '';
  return { kind: 'failed', reason: `The ${role} container exited with code ${code}${signal}${beforeReady}${message}` };
}
