/**
 * The session images in the local cluster are the builds of the repository's Dockerfiles
 * (scripts/local-cluster.sh build-image, buildah), and carry what those Dockerfiles promise
 * the pod spec: user 1000, DISPLAY :99, websockify's port 6080 and the file endpoint's 6081,
 * the command. A second build with nothing changed builds and imports nothing.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { REPO_ROOT } from '../support/paths.js';
import { requireCluster, run, runOk } from './tools.js';

const SIDECAR_IMAGE = 'ghcr.io/rjsadow/sortie-vnc-sidecar:latest';
const DEMO_IMAGE = 'docker.io/library/sortie-demo-apps:latest';
const SCRIPT = path.join(REPO_ROOT, 'scripts', 'local-cluster.sh');

interface ImageConfig {
  config: { User?: string; Env?: string[]; Cmd?: string[]; ExposedPorts?: Record<string, unknown>; WorkingDir?: string };
}

/** Every reference in the node's containerd with the digest it points at. */
async function imageDigests(): Promise<Map<string, string>> {
  const res = await runOk('bash', [SCRIPT, 'ctr', 'images', 'ls']);
  // Columns: REF TYPE DIGEST SIZE ...
  return new Map(res.stdout.trim().split('\n').slice(1).map((line) => {
    const [ref, , digest] = line.split(/\s+/);
    return [ref!, digest!];
  }));
}

/** The image config containerd holds for REF (manifest → config blob). */
async function imageConfig(ref: string, digests: Map<string, string>): Promise<ImageConfig> {
  const digest = digests.get(ref);
  assert.ok(digest, `containerd has no ${ref}`);
  const manifest = JSON.parse((await runOk('bash', [SCRIPT, 'ctr', 'content', 'get', digest])).stdout);
  return JSON.parse((await runOk('bash', [SCRIPT, 'ctr', 'content', 'get', manifest.config.digest])).stdout);
}

describe('the cluster’s session images are built from their Dockerfiles', () => {
  let firstBuild = '';

  before(async () => {
    requireCluster();
    assert.equal(process.getuid?.(), 0, 'building and importing images needs root (buildah, ctr)');
    // Current with the Dockerfiles as they are now (seconds when `up` already built them).
    firstBuild = (await runOk('bash', [SCRIPT, 'build-image', 'vnc-sidecar', 'demo-apps'], { timeoutMs: 20 * 60_000 })).stdout;
  });

  test(':latest is the build tagged with the key of the current Dockerfile and context', async () => {
    const digests = await imageDigests();
    for (const [image, archive] of [[SIDECAR_IMAGE, 'vnc-sidecar'], [DEMO_IMAGE, 'demo-apps']] as const) {
      const key = firstBuild.match(new RegExp(`/${archive}-([0-9a-f]+)\\.tar$`, 'm'))?.[1];
      assert.ok(key, `build-image printed no archive for ${archive}:\n${firstBuild}`);
      const buildRef = `${image.replace(/:latest$/, '')}:sortie-build-${key}`;
      assert.equal(digests.get(image), digests.get(buildRef), `${image} is not the current build ${buildRef}`);
    }
  });

  test('the sidecar carries docker/vnc-sidecar/Dockerfile’s contract', async () => {
    const { config } = await imageConfig(SIDECAR_IMAGE, await imageDigests());
    assert.equal(config.User, '1000');
    assert.ok(config.Env?.includes('DISPLAY=:99'), JSON.stringify(config.Env));
    assert.ok(config.Env?.includes('SCREEN_RESOLUTION=1280x800x24'), JSON.stringify(config.Env));
    assert.ok(config.ExposedPorts && '6080/tcp' in config.ExposedPorts, JSON.stringify(config.ExposedPorts));
    // The file endpoint Sortie's file API dials (docker/vnc-sidecar/files.py).
    assert.ok(config.ExposedPorts && '6081/tcp' in config.ExposedPorts, JSON.stringify(config.ExposedPorts));
    assert.deepEqual(config.Cmd, ['/usr/local/bin/sortie-vnc-start']);
    assert.equal(config.WorkingDir, '/home/sortie');
  });

  test('the demo apps carry docker/demo-apps/Dockerfile’s contract', async () => {
    const { config } = await imageConfig(DEMO_IMAGE, await imageDigests());
    assert.equal(config.User, '1000');
    assert.ok(config.Env?.includes('DISPLAY=:99'), JSON.stringify(config.Env));
    assert.deepEqual(config.Cmd, ['xterm']);
  });

  test('a second build with nothing changed builds and imports nothing', async () => {
    const again = await run('bash', [SCRIPT, 'build-image', 'vnc-sidecar', 'demo-apps'], { timeoutMs: 5 * 60_000 });
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stdout, firstBuild, 'the same archives, so the same keys');
    assert.doesNotMatch(again.stderr, /buildah bud|importing/, again.stderr);
  });
});
