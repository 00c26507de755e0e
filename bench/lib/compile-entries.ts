import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '..', '..');

/**
 * Compiles the server plus the given entry files (paths relative to `root`: this checkout,
 * or a revision exported next to a copy of bench/lib) to plain JavaScript in `outDir` with
 * the project's own tsc, so the benchmarked Sortie runs under plain `node` as deployed, not
 * through tsx. Types are not checked (--noCheck): a benchmark is not the place to gate on
 * types. Returns each entry's compiled path, in order, plus the compiled server's main.js
 * (what `npm start` runs).
 */
export async function compileEntries(entries: string[], outDir: string, root = repoRoot): Promise<{ entries: string[]; main: string }> {
  const nodeModules = path.join(repoRoot, 'node_modules');
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
        typeRoots: [path.join(nodeModules, '@types')],
        skipLibCheck: true,
        resolveJsonModule: true,
        noCheck: true,
        rootDir: root,
        outDir: path.join(outDir, 'out'),
      },
      files: [path.join(root, 'server/src/main.ts'), ...entries.map((e) => path.join(root, e))],
      include: [path.join(root, 'server/src/**/*.ts')],
      exclude: [path.join(root, 'server/src/**/*.test.ts')],
    }),
  );
  // The output resolves packages and its module type from here, as the checkout would.
  writeFileSync(path.join(outDir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  if (!existsSync(path.join(outDir, 'node_modules'))) symlinkSync(nodeModules, path.join(outDir, 'node_modules'));
  try {
    await run(process.execPath, [path.join(nodeModules, 'typescript', 'bin', 'tsc'), '-p', tsconfig], { maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stdout?: string; message: string };
    throw new Error(`compiling Sortie failed: ${e.stdout || e.message}`);
  }
  const built = (file: string) => {
    const js = path.join(outDir, 'out', file.replace(/\.ts$/, '.js'));
    if (!existsSync(js)) throw new Error(`compiling produced no ${js}`);
    return js;
  };
  return { entries: entries.map(built), main: built('server/src/main.ts') };
}
