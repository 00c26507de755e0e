import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appSchema } from '../../catalog/app.js';
import { workloadName, type LaunchSpec } from '../runner.js';
import { SESSION_POD_SELECTOR } from './labels.js';
import { buildSessionPod, type PodSettings } from './pod-spec.js';

const settings: PodSettings = { namespace: 'sortie', sidecarImage: 'ghcr.io/rjsadow/sortie-vnc-sidecar:latest', imagePullPolicy: 'IfNotPresent' };

function launchSpec(app: Record<string, unknown>): LaunchSpec {
  const parsed = appSchema.parse({ id: 'xterm', name: 'XTerm', launch_type: 'container', container_image: 'sortie-demo-apps:latest', ...app });
  return { sessionId: 'abc-123', workloadName: workloadName('abc-123'), userId: 'alice@example.com', app: parsed, streamSecret: 'pw-123' };
}

test('names, labels and annotations let Sortie find and explain its pods', () => {
  const pod = buildSessionPod(launchSpec({}), settings);
  assert.equal(pod.metadata?.name, 'sortie-session-abc-123');
  assert.equal(pod.metadata?.namespace, 'sortie');
  assert.deepEqual(pod.metadata?.labels, {
    'app.kubernetes.io/managed-by': 'sortie',
    'app.kubernetes.io/component': 'session',
    'sortie.io/session-id': 'abc-123',
    'sortie.io/app-id': 'xterm',
  });
  assert.equal(pod.metadata?.annotations?.['sortie.io/user-id'], 'alice@example.com');
  assert.equal(pod.metadata?.annotations?.['sortie.io/app-name'], 'XTerm');
  assert.equal(SESSION_POD_SELECTOR, 'app.kubernetes.io/managed-by=sortie,app.kubernetes.io/component=session');
});

test('the app container runs the catalog image with its command, display and resource limits', () => {
  const pod = buildSessionPod(
    launchSpec({ command: ['xterm', '-fa', 'Monospace'], resource_limits: { cpu_request: '250m', cpu_limit: '1', memory_request: '256Mi', memory_limit: '1Gi' } }),
    settings,
  );
  const app = pod.spec?.containers.find((c) => c.name === 'app');
  assert.ok(app);
  assert.equal(app.image, 'sortie-demo-apps:latest');
  assert.equal(app.imagePullPolicy, 'IfNotPresent');
  assert.deepEqual(app.command, ['xterm', '-fa', 'Monospace']);
  assert.equal(app.args, undefined);
  assert.deepEqual(app.env, [{ name: 'DISPLAY', value: ':99' }, { name: 'HOME', value: '/home/sortie' }]);
  assert.equal(app.workingDir, '/home/sortie');
  assert.deepEqual(app.resources, { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } });
  assert.deepEqual(app.volumeMounts, [{ name: 'x11', mountPath: '/tmp/.X11-unix' }, { name: 'home', mountPath: '/home/sortie' }]);
  assert.deepEqual(app.securityContext, { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true });
});

test('without a command the image CMD runs, and the seed defaults fill resource limits', () => {
  const app = buildSessionPod(launchSpec({}), settings).spec?.containers.find((c) => c.name === 'app');
  assert.ok(app);
  assert.equal('command' in app, false);
  assert.deepEqual(app.resources, { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '2', memory: '2Gi' } });
});

test('the sidecar serves websockify on 6080 and its file endpoint on 6081, with a fast readiness probe, and holds the app until X is up', () => {
  const pod = buildSessionPod(launchSpec({}), settings);
  const names = pod.spec?.containers.map((c) => c.name);
  // Order matters: the kubelet starts the app only after the sidecar's postStart hook returns.
  assert.deepEqual(names, ['vnc-sidecar', 'app']);
  const sidecar = pod.spec!.containers[0]!;
  assert.equal(sidecar.image, settings.sidecarImage);
  assert.equal(sidecar.imagePullPolicy, 'IfNotPresent');
  assert.deepEqual(sidecar.env, [
    { name: 'DISPLAY', value: ':99' },
    { name: 'VNC_PASSWORD', value: 'pw-123' },
    { name: 'VNC_CLIPBOARD', value: 'both' },
  ]);
  assert.deepEqual(sidecar.ports, [
    { name: 'websockify', containerPort: 6080, protocol: 'TCP' },
    { name: 'files', containerPort: 6081, protocol: 'TCP' },
  ]);
  assert.deepEqual(sidecar.readinessProbe?.tcpSocket, { port: 6080 });
  assert.ok((sidecar.readinessProbe?.periodSeconds ?? 10) <= 2);
  const hook = sidecar.lifecycle?.postStart?.exec?.command;
  assert.equal(hook?.[0], 'sh');
  assert.match(hook?.[2] ?? '', /-S \/tmp\/\.X11-unix\/X99/);
  assert.deepEqual(sidecar.resources, { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '500m', memory: '512Mi' } });
  assert.deepEqual(sidecar.volumeMounts, [{ name: 'x11', mountPath: '/tmp/.X11-unix' }, { name: 'home', mountPath: '/session-home' }]);
  assert.deepEqual(sidecar.securityContext, { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true });
});

test('the pod runs as UID 1000 under RuntimeDefault seccomp, without a token, and never restarts', () => {
  const spec = buildSessionPod(launchSpec({}), { ...settings, imagePullPolicy: 'Never' }).spec!;
  assert.deepEqual(spec.securityContext, {
    runAsUser: 1000,
    runAsGroup: 1000,
    fsGroup: 1000,
    runAsNonRoot: true,
    seccompProfile: { type: 'RuntimeDefault' },
  });
  assert.equal(spec.automountServiceAccountToken, false);
  assert.equal(spec.enableServiceLinks, false);
  assert.equal(spec.restartPolicy, 'Never');
  assert.ok((spec.terminationGracePeriodSeconds ?? 30) <= 5);
  assert.deepEqual(spec.volumes, [{ name: 'x11', emptyDir: { medium: 'Memory' } }, { name: 'home', emptyDir: {} }]);
  assert.ok(spec.containers.every((c) => c.imagePullPolicy === 'Never'));
});

test('the built pod does not share objects between calls', () => {
  const spec = launchSpec({ command: ['xeyes'] });
  const a = buildSessionPod(spec, settings);
  a.spec!.containers[1]!.command!.push('--oops');
  a.spec!.containers[0]!.resources!.limits!['cpu'] = '9';
  const b = buildSessionPod(spec, settings);
  assert.deepEqual(b.spec!.containers[1]!.command, ['xeyes']);
  assert.equal(b.spec!.containers[0]!.resources!.limits!['cpu'], '500m');
  assert.deepEqual(spec.app.command, ['xeyes']);
});

test('the stream secret goes to the sidecar only, and an empty one means no VNC password', () => {
  const pod = buildSessionPod(launchSpec({}), settings);
  const app = pod.spec!.containers.find((c) => c.name === 'app')!;
  assert.equal(app.env?.some((e) => e.name === 'VNC_PASSWORD'), false);
  const open = buildSessionPod({ ...launchSpec({}), streamSecret: '' }, settings);
  assert.deepEqual(open.spec!.containers[0]!.env, [
    { name: 'DISPLAY', value: ':99' },
    { name: 'VNC_CLIPBOARD', value: 'both' },
  ]);
});

test("the app's clipboard setting reaches the sidecar's VNC server, for every choice", () => {
  for (const clipboard of ['both', 'to_session', 'from_session', 'none'] as const) {
    const sidecar = buildSessionPod(launchSpec({ clipboard }), settings).spec!.containers[0]!;
    assert.deepEqual(sidecar.env?.find((e) => e.name === 'VNC_CLIPBOARD'), { name: 'VNC_CLIPBOARD', value: clipboard });
  }
});

test('with persistent_home the home is the user\'s claim, not a volume that goes with the pod', () => {
  const kept = buildSessionPod(launchSpec({ persistent_home: true }), settings);
  const home = kept.spec?.volumes?.find((v) => v.name === 'home');
  assert.deepEqual(Object.keys(home ?? {}), ['name', 'persistentVolumeClaim']);
  assert.match(home?.persistentVolumeClaim?.claimName ?? '', /^sortie-home-alice-example-com-[0-9a-f]{10}$/);
  const app = kept.spec!.containers.find((c) => c.name === 'app')!;
  assert.deepEqual(app.volumeMounts?.find((m) => m.name === 'home'), { name: 'home', mountPath: '/home/sortie' });
});

test('the sidecar mounts the app\'s home, emptyDir or claim, at the path its file endpoint serves, apart from its own $HOME', () => {
  for (const persistent_home of [false, true]) {
    const pod = buildSessionPod(launchSpec({ persistent_home }), settings);
    const sidecar = pod.spec!.containers.find((c) => c.name === 'vnc-sidecar')!;
    const app = pod.spec!.containers.find((c) => c.name === 'app')!;
    const mount = sidecar.volumeMounts?.find((m) => m.name === 'home');
    assert.deepEqual(mount, { name: 'home', mountPath: '/session-home' });
    assert.equal(mount?.readOnly, undefined, 'uploads write into it');
    assert.ok(app.volumeMounts?.some((m) => m.name === 'home'));
    // One home volume, shared: what the sidecar writes is what the app reads.
    assert.equal(pod.spec!.volumes?.filter((v) => v.name === 'home').length, 1);
  }
});
