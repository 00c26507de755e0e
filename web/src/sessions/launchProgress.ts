import type { LaunchStep } from '../contract';
import { elapsedSeconds } from '../ui/format';

/** A launch step as the viewer lists it: how long it took, or has taken so far. */
export interface StepLine {
  step: LaunchStep['step'];
  label: string;
  /** Under way: the time shown keeps counting. */
  current: boolean;
  duration: string;
}

/** "0 s", "42 s", "1 min 05 s": short enough to read at a glance while waiting. */
export function formatDuration(seconds: number): string {
  const whole = Math.max(0, Math.floor(Number.isFinite(seconds) ? seconds : 0));
  if (whole < 60) return `${whole} s`;
  const minutes = Math.floor(whole / 60);
  return `${minutes} min ${String(whole % 60).padStart(2, '0')} s`;
}

/** The steps of a launch with their durations at `now`; finished steps keep what they took. */
export function stepLines(progress: readonly LaunchStep[] | null | undefined, now: number): StepLine[] {
  return (progress ?? []).map((s) => {
    const current = s.ended_at === null;
    const seconds = current ? elapsedSeconds(s.started_at, now) : elapsedSeconds(s.started_at, Date.parse(s.ended_at!));
    return { step: s.step, label: s.label, current, duration: formatDuration(seconds) };
  });
}
