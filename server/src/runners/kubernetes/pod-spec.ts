import type { V1Container, V1Pod, V1SecurityContext } from '@kubernetes/client-node';
import type { LaunchSpec } from '../runner.js';
import { homeClaimName } from './home-claim.js';
import { ANNOTATION_APP_NAME, ANNOTATION_USER_ID, LABEL_APP_ID, LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_SESSION_ID } from './labels.js';

/** What the operator chose for every session pod (from config.kubernetes). */
export interface PodSettings {
  namespace: string;
  sidecarImage: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
}


export const APP_CONTAINER = 'app';
export const SIDECAR_CONTAINER = 'vnc-sidecar';
export const WEBSOCKIFY_PORT = 6080;
/** The sidecar's file endpoint (docker/vnc-sidecar/files.py), behind the session's secret. */
export const FILES_PORT = 6081;
export const DISPLAY = ':99';
export const X11_SOCKET_DIR = '/tmp/.X11-unix';
const X11_SOCKET = `${X11_SOCKET_DIR}/X${DISPLAY.slice(1)}`;

/** Short, so ending a session (or a Sortie-initiated delete) frees its quota quickly. */
export const TERMINATION_GRACE_SECONDS = 5;

const SESSION_UID = 1000;

/**
 * The app's $HOME, on a volume of its own: an emptyDir that goes with the pod, or with
 * `persistent_home` the user's claim (see home-claim.ts), which outlives it. A fixed path,
 * not the image's home, so the same home works for every app that mounts it.
 */
export const SESSION_HOME = '/home/sortie';
export const HOME_VOLUME = 'home';
/**
 * Where the sidecar mounts the same home, for its file endpoint (files.py serves this path
 * by default). Not the sidecar's own $HOME, so nothing the VNC programs write lands in it.
 */
export const SIDECAR_HOME = '/session-home';

/** Xvnc, websockify and the file endpoint are small; this keeps quota accounting honest without starving them. */
export const SIDECAR_RESOURCES = {
  requests: { cpu: '50m', memory: '128Mi' },
  limits: { cpu: '500m', memory: '512Mi' },
} as const;

/**
 * Holds the app back until Xvnc's socket exists. The kubelet starts containers in order and
 * does not start the next one until the previous one's postStart hook returns, so an app
 * that opens DISPLAY at once (xterm does) never races the X server and dies with
 * "Can't open display". Bounded so a sidecar whose Xvnc never comes up fails the pod
 * (FailedPostStartHook) instead of hanging it.
 */
const WAIT_FOR_DISPLAY = `i=0; while [ ! -S ${X11_SOCKET} ]; do i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.1; done`;

const containerSecurity = (): V1SecurityContext => ({
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  runAsNonRoot: true,
});

export function buildSessionPod(spec: LaunchSpec, settings: PodSettings): V1Pod {
  const { app } = spec;
  const limits = app.resource_limits;
  const displayEnv = () => [{ name: 'DISPLAY', value: DISPLAY }];
  const x11Mount = () => [{ name: 'x11', mountPath: X11_SOCKET_DIR }];

  const sidecar: V1Container = {
    name: SIDECAR_CONTAINER,
    image: settings.sidecarImage,
    imagePullPolicy: settings.imagePullPolicy,
    // Inline rather than a Secret: the Role stays pods-only, and pod specs in the sessions'
    // namespace are readable only by Sortie and cluster admins. The NetworkPolicy is the
    // first line; the password is what stops a connection that gets past it.
    env: [
      ...displayEnv(),
      ...(spec.streamSecret ? [{ name: 'VNC_PASSWORD', value: spec.streamSecret }] : []),
      // Xvnc's own clipboard settings enforce the catalog's choice (see start.sh).
      { name: 'VNC_CLIPBOARD', value: app.clipboard },
    ],
    ports: [
      { name: 'websockify', containerPort: WEBSOCKIFY_PORT, protocol: 'TCP' },
      { name: 'files', containerPort: FILES_PORT, protocol: 'TCP' },
    ],
    // Fast probing: readiness is what turns `creating` into `running` for the user.
    readinessProbe: {
      tcpSocket: { port: WEBSOCKIFY_PORT },
      periodSeconds: 1,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 3,
    },
    lifecycle: { postStart: { exec: { command: ['sh', '-c', WAIT_FOR_DISPLAY] } } },
    resources: { requests: { ...SIDECAR_RESOURCES.requests }, limits: { ...SIDECAR_RESOURCES.limits } },
    securityContext: containerSecurity(),
    // The file API reaches the home here (both containers run as UID 1000), not by pods/exec.
    volumeMounts: [...x11Mount(), { name: HOME_VOLUME, mountPath: SIDECAR_HOME }],
  };

  const appContainer: V1Container = {
    name: APP_CONTAINER,
    image: app.container_image,
    imagePullPolicy: settings.imagePullPolicy,
    ...(app.command ? { command: [...app.command] } : {}),
    env: [...displayEnv(), { name: 'HOME', value: SESSION_HOME }],
    workingDir: SESSION_HOME,
    resources: {
      requests: { cpu: limits.cpu_request, memory: limits.memory_request },
      limits: { cpu: limits.cpu_limit, memory: limits.memory_limit },
    },
    securityContext: containerSecurity(),
    volumeMounts: [...x11Mount(), { name: HOME_VOLUME, mountPath: SESSION_HOME }],
  };

  const home = app.persistent_home
    ? { name: HOME_VOLUME, persistentVolumeClaim: { claimName: homeClaimName(spec.userId) } }
    : { name: HOME_VOLUME, emptyDir: {} };

  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: spec.workloadName,
      namespace: settings.namespace,
      labels: {
        [LABEL_MANAGED_BY]: 'sortie',
        [LABEL_COMPONENT]: 'session',
        [LABEL_SESSION_ID]: spec.sessionId,
        [LABEL_APP_ID]: app.id,
      },
      annotations: {
        [ANNOTATION_USER_ID]: spec.userId,
        [ANNOTATION_APP_NAME]: app.name,
        // The sidecar comes first (see WAIT_FOR_DISPLAY); keep `kubectl logs/exec` on the app.
        'kubectl.kubernetes.io/default-container': APP_CONTAINER,
      },
    },
    spec: {
      containers: [sidecar, appContainer],
      securityContext: {
        runAsUser: SESSION_UID,
        runAsGroup: SESSION_UID,
        fsGroup: SESSION_UID,
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
      volumes: [{ name: 'x11', emptyDir: { medium: 'Memory' } }, home],
    },
  };
}
