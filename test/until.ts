import type { EventEmitter } from 'node:events';

/** Resolves once `ready()` holds, looking again at each 'change' of `emitter`. */
export function until(emitter: EventEmitter, ready: () => boolean): Promise<void> {
  if (ready()) return Promise.resolve();
  return new Promise((resolve) => {
    const look = (): void => {
      if (!ready()) return;
      emitter.off('change', look);
      resolve();
    };
    emitter.on('change', look);
  });
}
