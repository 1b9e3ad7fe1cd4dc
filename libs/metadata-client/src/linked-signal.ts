import { setMaxListeners } from 'node:events';

/** An abort signal that fires when any of its sources does, and a way to unhook it. */
export interface LinkedSignal {
  readonly signal: AbortSignal;
  /** Removes the listeners from the sources (call when the call ends: no leak per call). */
  dispose(): void;
}

/**
 * Links `sources` into one signal. Unlike `AbortSignal.any`, the listeners it adds to
 * long-lived sources (the client's close signal) are removed explicitly when the call ends.
 */
export function linkSignals(sources: readonly (AbortSignal | undefined)[]): LinkedSignal {
  const controller = new AbortController();
  const present = sources.filter((s): s is AbortSignal => s !== undefined);
  const already = present.find((s) => s.aborted);
  if (already !== undefined) {
    controller.abort(already.reason);
    return { signal: controller.signal, dispose: () => undefined };
  }
  const listeners = present.map((source) => {
    const listener = () => controller.abort(source.reason);
    source.addEventListener('abort', listener, { once: true });
    return () => source.removeEventListener('abort', listener);
  });
  return {
    signal: controller.signal,
    dispose: () => {
      for (const remove of listeners) remove();
    },
  };
}

/** Lets one signal serve any number of concurrent calls without Node's leak warning. */
export function allowManyListeners(signal: AbortSignal): void {
  setMaxListeners(0, signal);
}
