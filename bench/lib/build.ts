import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Compiles the server and the bench's Sortie child to plain JavaScript with the project's
 * own tsc, as `npm run build:server` does for production, into `outDir` (a scratch dir,
 * never the checkout). Running the child from that output means Sortie runs under plain
 * `node`, as deployed: under tsx the same server used about twice the CPU per GB relayed
 * (see bench/README.md).
 *
 * `root` holds server/src and bench/lib (this checkout, or a revision exported next to a
 * copy of bench/lib). Types are not checked (--noCheck): the tree may be mid-edit, and a
 * benchmark is not the place to gate on types. Returns the compiled children's paths.
 */
export async function buildSortie(root: string, outDir: string): Promise<{ sortie: string; relayOnly: string }> {
  const repoNodeModules = path.resolve(import.meta.dirname, '..', '..', 'node_modules');
  mkdirSync(outDir, { recursive: true });
  const tsconfig = path.join(outDir, 'tsconfig.json');
  writeFileSync(
    tsconfig,
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023'],
        types: ['node'],
        typeRoots: [path.join(repoNodeModules, '@types')],
        skipLibCheck: true,
        resolveJsonModule: true,
        noCheck: true,
        rootDir: root,
        outDir: path.join(outDir, 'out'),
      },
      files: [path.join(root, 'bench/lib/sortie-child.ts'), path.join(root, 'bench/lib/relay-only-child.ts')],
      include: [path.join(root, 'server/src/**/*.ts')],
      exclude: [path.join(root, 'server/src/**/*.test.ts')],
    }),
  );
  // The output resolves packages and module type from here, as the checkout's would.
  writeFileSync(path.join(outDir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  if (!existsSync(path.join(outDir, 'node_modules'))) symlinkSync(repoNodeModules, path.join(outDir, 'node_modules'));
  try {
    await run(process.execPath, [path.join(repoNodeModules, 'typescript', 'bin', 'tsc'), '-p', tsconfig], { maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stdout?: string; message: string };
    throw new Error(`compiling Sortie failed: ${e.stdout || e.message}`);
  }
  const built = (name: string) => {
    const file = path.join(outDir, 'out', 'bench', 'lib', `${name}.js`);
    if (!existsSync(file)) throw new Error(`compiling Sortie produced no ${file}`);
    return file;
  };
  return { sortie: built('sortie-child'), relayOnly: built('relay-only-child') };
}
