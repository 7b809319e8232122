import { InvalidArgumentError } from 'commander';

/** commander parser for a positive integer option. */
export function parseIntOption(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** commander parser for an integer option that may be 0 (0 usually meaning "off"). */
export function parseCountOption(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new InvalidArgumentError('expected 0 or a positive integer');
  }
  return n;
}

/** commander parser for a finite number option. */
export function parseNumberOption(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('expected a number');
  return n;
}

/** commander parser for a number above 0 (a learning rate). */
export function parsePositiveNumberOption(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number above 0');
  return n;
}

/** commander parser for a share of a set: a number in [0, 1). */
export function parseShareOption(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n >= 1) {
    throw new InvalidArgumentError('expected a share from 0 up to (not including) 1, e.g. 0.1');
  }
  return n;
}
