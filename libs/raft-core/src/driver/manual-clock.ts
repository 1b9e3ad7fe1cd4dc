import type { Clock, TimerHandle } from './ports';

interface Timer {
  readonly id: number;
  readonly at: number;
  readonly callback: () => void;
}

/**
 * A {@link Clock} that only moves when told to: tests advance time explicitly instead of
 * waiting on wall-clock timeouts. {@link advance} fires due timers in time order and lets the
 * event loop settle between them (one macrotask turn), so async work they start completes.
 */
export class ManualClock implements Clock {
  private time = 0;
  private nextId = 1;
  private timers: Timer[] = [];

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer = { id: this.nextId++, at: this.time + Math.max(0, ms), callback };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** Moves time forward by `ms`, firing timers as their time comes. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await settle();
      let next: Timer | undefined;
      for (const timer of this.timers)
        if (timer.at <= end && (next === undefined || timer.at < next.at)) next = timer;
      if (next === undefined) break;
      const due = next;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = due.at;
      due.callback();
    }
    this.time = end;
    await settle();
  }
}

/** Lets pending promise jobs and immediate callbacks run (one event-loop turn, no waiting). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
