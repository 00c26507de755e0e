import { PerformanceObserver } from 'node:perf_hooks';

export interface GcPauses {
  count: number;
  totalMs: number;
  maxMs: number;
}

/**
 * GC pauses in this process, so the bench can tell pauses from CPU starvation. `take()`
 * answers those since the last call. (A PerformanceObserver costs nothing between collections.)
 */
export function watchGcPauses(): { take: () => GcPauses } {
  let gc: GcPauses = { count: 0, totalMs: 0, maxMs: 0 };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.count++;
      gc.totalMs += entry.duration;
      gc.maxMs = Math.max(gc.maxMs, entry.duration);
    }
  }).observe({ entryTypes: ['gc'] });
  return {
    take: () => {
      const taken = gc;
      gc = { count: 0, totalMs: 0, maxMs: 0 };
      return taken;
    },
  };
}
