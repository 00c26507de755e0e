/**
 * The playback's position slider. It steps by `SEEK_STEP_MS` and runs a whole number of
 * steps, past the recording's end if need be, so that its end (where the last picture is)
 * can be reached; a seek past the end shows the end. The value it is given is always on a
 * step: a browser rounds any other value, the page's value and the browser's then differ,
 * and the change event the browser sends after a drag or a key seeks again, to the rounded
 * time, which at the end is short of the last picture.
 */
export const SEEK_STEP_MS = 100;

export function seekSlider(time: number, duration: number, step = SEEK_STEP_MS): { max: number; value: number } {
  const max = Math.ceil(duration / step) * step;
  return { max, value: time >= duration ? max : Math.min(max, Math.max(0, Math.round(time / step) * step)) };
}
