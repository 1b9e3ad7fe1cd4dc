import { Inflights, Progress } from './progress';

describe('Inflights', () => {
  it('bounds messages by count and bytes and frees acknowledged ones', () => {
    const inflights = new Inflights(3, 100);
    inflights.add(5, 10);
    inflights.add(7, 10);
    expect(inflights.full()).toBe(false);
    inflights.add(9, 10);
    expect(inflights.full()).toBe(true);
    inflights.freeLE(7);
    expect(inflights.count).toBe(1);
    expect(inflights.inflightBytes).toBe(10);
    inflights.add(20, 95);
    expect(inflights.full()).toBe(true); // bytes
    inflights.freeFirstOne();
    expect(inflights.count).toBe(1);
  });
});

describe('Progress', () => {
  const progress = (): Progress => new Progress(11, false, 4, 0);

  it('probe sends one append at a time; replicate pipelines up to the window', () => {
    const p = progress();
    expect(p.isPaused()).toBe(false);
    p.sentEntries(3, 13, 30);
    expect(p.isPaused()).toBe(true);
    expect(p.next).toBe(11); // probe does not advance optimistically
    expect(p.maybeUpdate(10)).toBe(true);
    p.becomeReplicate();
    for (let i = 0; i < 4; i++) p.sentEntries(1, p.next, 10);
    expect(p.next).toBe(15);
    expect(p.isPaused()).toBe(true);
    p.maybeUpdate(12);
    p.inflights.freeLE(12);
    expect(p.isPaused()).toBe(false);
  });

  it('ignores stale rejections and backs off to the hint', () => {
    const p = progress();
    p.match = 5;
    expect(p.maybeDecrTo(8, 7)).toBe(false); // not the probe in flight (next - 1 = 10)
    expect(p.maybeDecrTo(10, 7)).toBe(true);
    expect(p.next).toBe(7);
    p.becomeReplicate();
    expect(p.maybeDecrTo(4, 1)).toBe(false); // at or below match: stale
    expect(p.maybeDecrTo(9, 1)).toBe(true);
    expect(p.next).toBe(6);
  });

  it('leaves snapshot state to probe past the snapshot', () => {
    const p = progress();
    p.becomeSnapshot(40);
    expect(p.isPaused()).toBe(true);
    p.becomeProbe();
    expect(p.next).toBe(41);
    expect(p.state).toBe('probe');
  });
});
