/**
 * scripts/local-cluster.sh's first-time decisions, on a machine with none of the state the
 * project leaves behind: which Kubernetes version to build and whether a cached build is
 * used, with stub `apt-get`/`apt-cache` first on PATH and a scratch cache, cluster and apt
 * sources directory. The script is sourced in a bash subprocess (its `main` is guarded),
 * with `build_kubernetes_binaries` replaced by a function that records the call.
 * Also: a failing command names itself, the file and the line, and the exit is non-zero.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SCRIPT = path.join(REPO_ROOT, 'scripts/local-cluster.sh');
const SCRIPT_LINES = readFileSync(SCRIPT, 'utf8').split('\n');
// The script's concerns live in libraries it sources; apt is driven from this one.
const HOST_PACKAGES = path.join(REPO_ROOT, 'scripts/local-cluster/host-packages.sh');
const HOST_PACKAGES_LINES = readFileSync(HOST_PACKAGES, 'utf8').split('\n');

// Two source versions in the archive, plus another source package that must not count.
const SHOWSRC = `Package: kubernetes
Binary: kubernetes-client
Version: 1.20.5+really1.20.2-1
Directory: pool/main/k/kubernetes

Package: golang-k8s-sigs-yaml
Binary: golang-k8s-sigs-yaml-dev
Version: 9.9.9-1

Package: kubernetes
Binary: kubernetes-client
Version: 1.20.5+really1.20.2-1.1
Directory: pool/main/k/kubernetes
`;
const SOURCE_VERSION = '1.20.5+really1.20.2-1.1';

// apt as it behaves on a fresh machine: `showsrc` exits 100 until a deb-src entry exists
// AND `apt-get update` has fetched its lists. Every call is logged; anything the tests do
// not expect fails loudly.
const APT_CACHE_STUB = `#!/bin/sh
echo "apt-cache $*" >>"$STUB_DIR/calls"
if [ "$*" = "showsrc kubernetes" ]; then
  if [ -e "$STUB_DIR/lists-have-deb-src" ]; then cat "$STUB_DIR/showsrc"; exit 0; fi
  echo "E: You must put some 'deb-src' URIs in your sources.list" >&2
  exit 100
fi
echo "apt-cache stub: unexpected call: $*" >&2
exit 99
`;
const APT_GET_STUB = `#!/bin/sh
echo "apt-get $*" >>"$STUB_DIR/calls"
if [ "$1" = update ]; then
  status=$(cat "$STUB_DIR/update-status" 2>/dev/null || echo 0)
  [ "$status" = 0 ] || { echo "E: stub: update failed" >&2; exit "$status"; }
  if [ -e "$SORTIE_APT_SOURCES_DIR/sortie-deb-src.sources" ]; then : >"$STUB_DIR/lists-have-deb-src"; fi
  exit 0
fi
echo "apt-get stub: unexpected call: $*" >&2
exit 99
`;

// Sources the script, swaps the build for a recorder, runs ensure_kubernetes_binaries and
// prints what it decided.
const ENSURE = `
source "$1"
build_kubernetes_binaries() { echo "build $KUBE_VERSION $KUBE_BIN_DIR" >>"$STUB_DIR/calls"; }
ensure_kubernetes_binaries
echo "KUBE_VERSION=$KUBE_VERSION"
echo "KUBE_BIN_DIR=$KUBE_BIN_DIR"
`;

let root: string;
let stubs: string;
let cache: string;
let sources: string;

function run(script: string, args: string[] = []) {
  const res = spawnSync('bash', ['-c', script, 'bash', SCRIPT, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      ...process.env,
      PATH: `${stubs}:${process.env.PATH}`,
      STUB_DIR: stubs,
      SORTIE_CACHE_DIR: cache,
      SORTIE_CLUSTER_DIR: path.join(root, 'cluster'),
      SORTIE_APT_SOURCES_DIR: sources,
    },
  });
  assert.equal(res.error, undefined);
  return res;
}

function calls(): string[] {
  const file = path.join(stubs, 'calls');
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : [];
}

/** The archive already has a deb-src entry (the machine had it before the first run). */
function debSrcAlreadyConfigured() {
  writeFileSync(path.join(stubs, 'lists-have-deb-src'), '');
}

/** A build in the cache, finished (with its `.complete` stamp) or not. */
function cachedBuild(version: string, complete: boolean): string {
  const bin = path.join(cache, 'kubernetes', version, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(path.join(bin, 'kube-apiserver'), '');
  if (complete) writeFileSync(path.join(bin, '.complete'), '');
  return bin;
}

function decided(stdout: string) {
  return {
    version: /^KUBE_VERSION=(.*)$/m.exec(stdout)?.[1],
    binDir: /^KUBE_BIN_DIR=(.*)$/m.exec(stdout)?.[1],
  };
}

const debSrcEntry = () => path.join(sources, 'sortie-deb-src.sources');

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'sortie-local-cluster-'));
  stubs = path.join(root, 'stubs');
  cache = path.join(root, 'cache'); // not created: a fresh machine has no cache at all
  sources = path.join(root, 'sources.list.d');
  mkdirSync(stubs);
  mkdirSync(sources);
  writeFileSync(path.join(stubs, 'apt-cache'), APT_CACHE_STUB);
  writeFileSync(path.join(stubs, 'apt-get'), APT_GET_STUB);
  chmodSync(path.join(stubs, 'apt-cache'), 0o755);
  chmodSync(path.join(stubs, 'apt-get'), 0o755);
  writeFileSync(path.join(stubs, 'showsrc'), SHOWSRC);
  // The machine's own (binary) entry: the deb-src entry must reuse its mirror.
  writeFileSync(
    path.join(sources, 'debian.sources'),
    [
      'Types: deb',
      'URIs: http://mirror.example.org/debian',
      'Suites: bookworm bookworm-updates',
      'Components: main',
      '',
      'Types: deb',
      'URIs: http://security.example.org/debian-security',
      'Suites: bookworm-security',
      'Components: main',
      '',
    ].join('\n'),
  );
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('local-cluster.sh: which Kubernetes to build, on the first run', () => {
  test('with a deb-src entry, the newest source version is built and apt sources are left alone', () => {
    debSrcAlreadyConfigured();
    const res = run(ENSURE);
    assert.equal(res.status, 0, res.stderr);
    const binDir = path.join(cache, 'kubernetes', SOURCE_VERSION, 'bin');
    assert.deepEqual(decided(res.stdout), { version: SOURCE_VERSION, binDir });
    assert.deepEqual(calls(), ['apt-cache showsrc kubernetes', `build ${SOURCE_VERSION} ${binDir}`]);
    assert.equal(existsSync(debSrcEntry()), false);
  });

  test('with a deb-src entry and that version cached, nothing is built', () => {
    debSrcAlreadyConfigured();
    const binDir = cachedBuild(SOURCE_VERSION, true);
    const res = run(ENSURE);
    assert.equal(res.status, 0, res.stderr);
    assert.deepEqual(decided(res.stdout), { version: SOURCE_VERSION, binDir });
    assert.deepEqual(calls(), ['apt-cache showsrc kubernetes']);
  });

  test('without a deb-src entry but with a cached build, the cache is used and apt is not touched', () => {
    const binDir = cachedBuild('1.20.5+really1.20.2-1', true);
    const res = run(ENSURE);
    assert.equal(res.status, 0, res.stderr);
    assert.deepEqual(decided(res.stdout), { version: '1.20.5+really1.20.2-1', binDir });
    // showsrc exited 100 under pipefail, and the script went on.
    assert.deepEqual(calls(), ['apt-cache showsrc kubernetes']);
    assert.equal(existsSync(debSrcEntry()), false, 'a deb-src entry was added although the cache sufficed');
    assert.doesNotMatch(res.stderr, /error/);
  });

  test('with neither, the deb-src entry is added (same mirror), apt updated, and the version found and built', () => {
    const res = run(ENSURE);
    assert.equal(res.status, 0, res.stderr);
    const binDir = path.join(cache, 'kubernetes', SOURCE_VERSION, 'bin');
    assert.deepEqual(decided(res.stdout), { version: SOURCE_VERSION, binDir });
    assert.deepEqual(calls(), [
      'apt-cache showsrc kubernetes',
      'apt-get update -qq',
      'apt-cache showsrc kubernetes',
      `build ${SOURCE_VERSION} ${binDir}`,
    ]);
    const entry = readFileSync(debSrcEntry(), 'utf8');
    assert.match(entry, /^Types: deb-src$/m);
    assert.match(entry, /^URIs: http:\/\/mirror\.example\.org\/debian$/m);
    assert.match(entry, /^Suites: bookworm$/m);
    assert.doesNotMatch(res.stderr, /error/);
  });

  test('with the deb-src entry left by a run that stopped before apt-get update, apt is updated again', () => {
    writeFileSync(debSrcEntry(), 'Types: deb-src\nURIs: http://mirror.example.org/debian\nSuites: bookworm\n');
    const res = run(ENSURE);
    assert.equal(res.status, 0, res.stderr);
    assert.equal(decided(res.stdout).version, SOURCE_VERSION);
    assert.ok(calls().includes('apt-get update -qq'), calls().join('\n'));
  });

  test('a half-finished build (no .complete stamp) is rebuilt, not used', () => {
    const binDir = cachedBuild(SOURCE_VERSION, false);
    const res = run(ENSURE);
    assert.equal(res.status, 0, res.stderr);
    assert.deepEqual(decided(res.stdout), { version: SOURCE_VERSION, binDir });
    assert.equal(calls().at(-1), `build ${SOURCE_VERSION} ${binDir}`);
    assert.ok(existsSync(debSrcEntry()), 'the unfinished build was taken for a cache');
  });

  test('a half-finished build of the deb-src version is rebuilt', () => {
    debSrcAlreadyConfigured();
    const binDir = cachedBuild(SOURCE_VERSION, false);
    const res = run(ENSURE);
    assert.equal(res.status, 0, res.stderr);
    assert.deepEqual(calls(), ['apt-cache showsrc kubernetes', `build ${SOURCE_VERSION} ${binDir}`]);
  });
});

describe('local-cluster.sh: it never stops silently', () => {
  test('apt-cache showsrc exiting 100 under pipefail yields an empty version, not the end of the script', () => {
    const res = run('source "$1"; v=$(kubernetes_source_version); echo "version=[$v]"; echo survived');
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /^version=\[\]$/m);
    assert.match(res.stdout, /^survived$/m);
  });

  test('a failing command prints the ERR line (command, status, file, line) and the exit is non-zero', () => {
    writeFileSync(path.join(stubs, 'update-status'), '100');
    const res = run(ENSURE);
    assert.equal(res.status, 100, res.stderr);
    const m = /^\[local-cluster\] error: "(.+)" failed with status (\d+) at (.+):(\d+) \(logs: (.+)\)$/m.exec(res.stderr);
    assert.ok(m, `no ERR line in: ${res.stderr}`);
    const [, command, status, file, line, logs] = m;
    assert.equal(command, 'apt-get update -qq 1>&2'); // as bash prints it
    assert.equal(status, '100');
    assert.equal(file, HOST_PACKAGES);
    assert.match(HOST_PACKAGES_LINES[Number(line) - 1] ?? '', /apt-get update -qq/);
    assert.equal(logs, `${path.join(root, 'cluster')}/logs and ${cache}/build`);
    assert.equal(decided(res.stdout).version, undefined, 'it went on after the failure');
    assert.ok(!calls().some((c) => c.startsWith('build ')), 'it built after apt-get update failed');
  });

  test('run as a program, a failing command names itself too', () => {
    // kubectl is not in the (scratch) cache: the command fails with 127.
    const res = spawnSync('bash', [SCRIPT, 'kubectl', 'get', 'nodes'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, SORTIE_CACHE_DIR: cache, SORTIE_CLUSTER_DIR: path.join(root, 'cluster') },
    });
    assert.equal(res.status, 127, res.stderr);
    const m = /^\[local-cluster\] error: "(.+)" failed with status 127 at (.+):(\d+) /m.exec(res.stderr);
    assert.ok(m, `no ERR line in: ${res.stderr}`);
    assert.equal(m[2], SCRIPT);
    assert.match(SCRIPT_LINES[Number(m[3]) - 1] ?? '', /\$KUBECTL/);
  });

  test('status on a machine without a cluster answers "not answering" with exit 1 and no error line', () => {
    const res = spawnSync('bash', [SCRIPT, 'status'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, SORTIE_CACHE_DIR: cache, SORTIE_CLUSTER_DIR: path.join(root, 'cluster') },
    });
    assert.equal(res.status, 1, res.stderr);
    assert.match(res.stdout, /^api-server: {2}not answering/m);
    assert.match(res.stdout, /containerd:stopped/);
    assert.equal(res.stderr, '');
  });
});

describe('local-cluster.sh kubeconfig: the path tests and benchmarks use', () => {
  const clusterDir = () => path.join(root, 'cluster');
  const asProgram = (...args: string[]) =>
    spawnSync('bash', [SCRIPT, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, SORTIE_CACHE_DIR: cache, SORTIE_CLUSTER_DIR: clusterDir() },
    });

  test('without a cluster it prints nothing on stdout, says how to get one, and exits 1 without an error line', () => {
    const res = asProgram('kubeconfig');
    assert.equal(res.status, 1, res.stderr);
    assert.equal(res.stdout, '');
    assert.match(res.stderr, /^\[local-cluster\] error: no cluster: .*admin\.kubeconfig does not exist; run '.*local-cluster\.sh up'$/m);
    assert.doesNotMatch(res.stderr, /failed with status/);
  });

  test('with a kubeconfig but no API server answering, it is not up either', () => {
    mkdirSync(clusterDir(), { recursive: true });
    writeFileSync(path.join(clusterDir(), 'admin.kubeconfig'), 'apiVersion: v1\n');
    const res = asProgram('kubeconfig');
    assert.equal(res.status, 1, res.stderr);
    assert.equal(res.stdout, '');
    assert.match(res.stderr, /the cluster is not up: the API server at https:\/\/127\.0\.0\.1:6443 does not answer/);
  });

  // The health checks are swapped for answers; everything else is the script's own.
  const withHealth = (api: boolean, node: boolean) => `
source "$1"
mkdir -p "$CLUSTER_DIR" && : >"$ADMIN_KUBECONFIG"
api_answers() { ${api}; }
node_ready() { ${node}; }
cmd_kubeconfig
`;

  test('with the API server answering and the node Ready, stdout is exactly the admin kubeconfig path, the one `env` exports', () => {
    const res = run(withHealth(true, true));
    assert.equal(res.status, 0, res.stderr);
    const kubeconfig = path.join(clusterDir(), 'admin.kubeconfig');
    assert.equal(res.stdout, `${kubeconfig}\n`);
    const env = asProgram('env');
    assert.equal(env.status, 0, env.stderr);
    assert.ok(env.stdout.split('\n').includes(`export KUBECONFIG='${kubeconfig}'`), env.stdout);
  });

  test('with the node not Ready, it exits 1 and points at status', () => {
    const res = run(withHealth(true, false));
    assert.equal(res.status, 1, res.stderr);
    assert.equal(res.stdout, '');
    assert.match(res.stderr, /the cluster is not up: node sortie-node is not Ready \(see '.* status'\)/);
  });
});

describe('local-cluster.sh: starting its daemons', () => {
  // A daemon stands in for etcd & co: `sleep` with a marker argument, so the test finds
  // its process (and kills it, whatever happens) by that marker alone.
  let marker: string;
  beforeEach(() => {
    marker = String(100_000 + Math.floor(Math.random() * 800_000));
  });
  afterEach(() => {
    spawnSync('pkill', ['-f', `^sleep ${marker}$`]);
  });

  // `set -m` after sourcing: the caller's job control, which the script's own `set +m`
  // would otherwise undo. Under it every background job leads its own process group,
  // setsid forks, and a pid taken from `$!` is a setsid already gone.
  const startSleep = (jobControl: boolean) => `
source "$1"
${jobControl ? 'set -m' : ''}
sleep_answers() { daemon_running sleep; }
start_daemon sleep sleep ${marker}
wait_for_daemon sleep 5 "the sleep daemon" sleep_answers
echo "recorded=$(cat "$PID_DIR/sleep.pid") actual=$(pgrep -f '^sleep ${marker}$')"
stop_daemon sleep 5
pgrep -f '^sleep ${marker}$' || echo "stopped"
`;

  for (const jobControl of [false, true]) {
    test(`the pid file holds the daemon's own pid, and stop ends it${jobControl ? ', also under job control' : ''}`, () => {
      const res = run(startSleep(jobControl));
      assert.equal(res.status, 0, res.stderr);
      const m = /^recorded=(\d+) actual=(\d+)$/m.exec(res.stdout);
      assert.ok(m, res.stdout + res.stderr);
      assert.equal(m[1], m[2]);
      assert.match(res.stdout, /^stopped$/m);
      assert.match(res.stderr, /the sleep daemon: ok/);
    });
  }

  test('a daemon that dies at once is reported with its log, not waited for', () => {
    const res = run(`
source "$1"
start_daemon sh sh -c 'echo "cannot bind" >&2; exit 3'
wait_for_daemon sh 30 "sh answering" false
`);
    assert.equal(res.status, 1, res.stderr);
    assert.match(res.stderr, /sh exited; last lines of .*sh\.log:\ncannot bind\n/);
    assert.match(res.stderr, /error: sh did not start/);
  });

  test('job control exported by the caller is off inside the script', () => {
    const res = spawnSync('bash', ['-c', 'source "$1"; echo "flags=$-"', 'bash', SCRIPT], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, SHELLOPTS: 'braceexpand:hashall:monitor', SORTIE_CACHE_DIR: cache, SORTIE_CLUSTER_DIR: path.join(root, 'cluster') },
    });
    assert.equal(res.status, 0, res.stderr);
    assert.doesNotMatch(/^flags=(.*)$/m.exec(res.stdout)?.[1] ?? 'm', /m/);
  });
});

describe('the scripts: shared helpers and lint', () => {
  test('the Debian mirror is the bookworm one, even when the security archive is listed first', () => {
    const file = path.join(sources, 'debian.sources');
    writeFileSync(
      file,
      [
        'Types: deb',
        'URIs: http://security.example.org/debian-security',
        'Suites: bookworm-security',
        '',
        'Types: deb-src',
        'URIs: http://src.example.org/debian',
        'Suites: bookworm',
        '',
        'Types: deb',
        '# a comment line inside the stanza',
        'URIs: http://mirror.example.org/debian',
        'Suites: bookworm bookworm-updates',
        '',
      ].join('\n'),
    );
    const helper = path.join(REPO_ROOT, 'scripts/local-cluster/debian-mirror.sh');
    const res = run(`source ${JSON.stringify(helper)}; debian_mirror "$SORTIE_APT_SOURCES_DIR/debian.sources"; debian_mirror /nonexistent`);
    assert.equal(res.status, 0, res.stderr);
    assert.equal(res.stdout, 'http://mirror.example.org/debian\nhttp://deb.debian.org/debian\n');
  });

  test('shellcheck finds nothing in scripts/', () => {
    const libraries = ['credentials', 'daemons', 'debian-mirror', 'host-packages', 'images', 'kubernetes-build', 'network', 'runc-wrapper'];
    const scripts = ['local-cluster.sh', 'setup.sh', 'sortie.sh', 'test.sh', ...libraries.map((l) => `local-cluster/${l}.sh`)];
    // Every library is linted: a new one that is not listed here fails this test.
    assert.deepEqual(readdirSync(path.join(REPO_ROOT, 'scripts/local-cluster')).sort(), libraries.map((l) => `${l}.sh`));
    const res = spawnSync('shellcheck', ['--external-sources', ...scripts.map((s) => path.join(REPO_ROOT, 'scripts', s))], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(res.error, undefined, 'shellcheck is not installed: scripts/setup.sh installs it');
    assert.equal(res.status, 0, res.stdout);
  });
});
