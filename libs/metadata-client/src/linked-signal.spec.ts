import { getEventListeners } from 'node:events';
import { linkSignals } from './linked-signal';

describe('linkSignals', () => {
  it('fires when any source fires, with its reason', () => {
    const a = new AbortController();
    const b = new AbortController();
    const linked = linkSignals([a.signal, undefined, b.signal]);
    b.abort('b went');
    expect(linked.signal.aborted).toBe(true);
    expect(linked.signal.reason).toBe('b went');
  });

  it('starts aborted when a source already is', () => {
    const a = new AbortController();
    a.abort('early');
    expect(linkSignals([a.signal]).signal.reason).toBe('early');
  });

  it('leaves no listener on a long-lived source once disposed', () => {
    const longLived = new AbortController();
    for (let i = 0; i < 100; i += 1) linkSignals([longLived.signal]).dispose();
    expect(getEventListeners(longLived.signal, 'abort')).toHaveLength(0);
  });
});
