import { constants } from 'node:os';

export type StopSignal = 'SIGINT' | 'SIGTERM';

export interface StopSignalHandlers {
  /** The first Ctrl+C or SIGTERM: start a graceful stop. */
  first(signal: StopSignal): void;
  /** Any later one, while that stop runs: the user wants out now. */
  again(signal: StopSignal): void;
}

/** Routes SIGINT and SIGTERM: the first starts a graceful stop, the next ones `again`. */
export function onStopSignals(handlers: StopSignalHandlers): void {
  let received = false;
  const listener = (signal: StopSignal) => {
    if (received) {
      handlers.again(signal);
      return;
    }
    received = true;
    handlers.first(signal);
  };
  process.on('SIGINT', listener);
  process.on('SIGTERM', listener);
}

/** The exit status a shell reports for a process killed by `signal` (130 for SIGINT). */
export function signalExitCode(signal: StopSignal): number {
  return 128 + constants.signals[signal];
}
