import { MAX_BAN_SECONDS } from '@unionize/protocol';
import { CtlError } from './errors.js';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 7 * 86_400 };

/** `90s`, `30m`, `12h`, `7d`, `2w`, or several of them (`1h30m`), in seconds; a CtlError saying what is wanted otherwise. */
export function parseDuration(text: string, max = MAX_BAN_SECONDS): number {
  const trimmed = text.trim();
  if (!/^([0-9]{1,9}[smhdw])+$/.test(trimmed)) throw new CtlError(`${JSON.stringify(text.slice(0, 40))} is not a duration: write e.g. 90s, 30m, 12h, 7d, 2w or 1h30m`, 2);
  let seconds = 0;
  for (const [, n, unit] of trimmed.matchAll(/([0-9]+)([smhdw])/g)) seconds += Number(n) * UNIT_SECONDS[unit!]!;
  if (seconds < 1 || seconds > max) throw new CtlError(`a duration of 1s to ${Math.floor(max / 86_400)}d, not ${trimmed}`, 2);
  return seconds;
}
