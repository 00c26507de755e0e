import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
const backend = 'http://127.0.0.1:8080';

export default defineConfig({
  root,
  // The API, the VNC relay and the health check all live on the Sortie server;
  // in dev the browser talks to Vite, so those paths are forwarded. The Host header is
  // kept: Sortie refuses writes and streams whose Origin does not match the Host.
  server: {
    proxy: {
      '/api': { target: backend },
      '/ws': { target: backend, ws: true },
      '/healthz': { target: backend },
    },
  },
  oxc: {
    jsx: { runtime: 'automatic' },
  },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    // noVNC probes WebCodecs with a top-level await at module load.
    target: 'es2022',
  },
});
