// The supervisor view's pure parts: the period it asks for, and how it writes durations.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { seconds } from '../../static/js/supervisor/charts.js';
import { isoWithOffset, localMidnight } from '../../static/js/supervisor/stats.js';

describe('the period of "today"', () => {
  it('starts at local midnight and is sent with the local UTC offset', () => {
    const now = new Date(2026, 11, 2, 14, 3, 27);
    const midnight = localMidnight(now);
    assert.deepEqual([midnight.getHours(), midnight.getMinutes(), midnight.getSeconds(), midnight.getDate()], [0, 0, 0, 2]);
    const text = isoWithOffset(midnight);
    assert.match(text, /^2026-12-02T00:00:00[+-]\d\d:\d\d$/);
    // The text names the same instant as the Date (whatever this machine's zone is).
    assert.equal(new Date(text).getTime(), midnight.getTime());
    assert.equal(new Date(isoWithOffset(now)).getTime(), now.getTime());
  });
});

describe('durations', () => {
  it('reads at a glance: hundredths under 10 s, tenths under a minute, m:ss above', () => {
    assert.equal(seconds(null), '–');
    assert.equal(seconds(0.4234), '0.42 s');
    assert.equal(seconds(12.34), '12.3 s');
    assert.equal(seconds(185.4), '3:05');
  });
});
