import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { measureInWholePixels } from './wholePixels';

test("the viewer's element is measured in whole pixels, as the desktop's size is", () => {
  const rfb = {
    element: { width: 1100.4, height: 599.5 },
    _screenSize(this: { element: { width: number; height: number } }) {
      return { w: this.element.width, h: this.element.height };
    },
  };
  assert.equal(measureInWholePixels(rfb), true);
  assert.deepEqual(rfb._screenSize(), { w: 1100, h: 599 });
  rfb.element.height = 700;
  assert.deepEqual(rfb._screenSize(), { w: 1100, h: 700 }, 'still measured live');
  assert.equal(measureInWholePixels({}), false, 'an RFB that measures otherwise is left alone');
});

test('the installed noVNC still measures through _screenSize and compares it with the desktop before asking for a size', () => {
  // Guards an upgrade of noVNC: if the method is renamed the patch silently does nothing.
  const require = createRequire(import.meta.url);
  const source = readFileSync(require.resolve('@novnc/novnc'), 'utf8');
  const request = source.slice(source.indexOf('    _requestRemoteResize() {'));
  assert.match(source, /\n {4}_screenSize\(\) \{/);
  assert.match(request.slice(0, request.indexOf('\n    }\n')), /const size = this\._screenSize\(\);[\s\S]*size\.w === this\._fbWidth && size\.h === this\._fbHeight/);
});
