/**
 * The class an explanation is about, as a value (pytorch-grad-cam's "targets"): the model's top
 * prediction, a class index, or a class name.
 */
import { UserError } from '../errors.ts';

/** Which class to explain. */
export type ClassTarget =
  | { readonly kind: 'top' }
  | { readonly kind: 'index'; readonly index: number }
  | { readonly kind: 'name'; readonly name: string };

/** The model's top prediction. */
export const TOP_PREDICTION: ClassTarget = { kind: 'top' };

/**
 * Reads a class as typed: a whole number is an index, anything else a name; empty or absent is
 * the top prediction.
 * @example
 * parseClassTarget('101');    // { kind: 'index', index: 101 }
 * parseClassTarget('tusker'); // { kind: 'name', name: 'tusker' }
 */
export function parseClassTarget(text: string | undefined): ClassTarget {
  const s = (text ?? '').trim();
  if (s === '') return TOP_PREDICTION;
  if (/^\d+$/.test(s)) return { kind: 'index', index: Number(s) };
  return { kind: 'name', name: s };
}

/**
 * The short display form of a class name: its first synonym (`great grey owl, great gray owl,
 * Strix nebulosa` -> `great grey owl`).
 */
export function shortLabel(name: string): string {
  return name.split(',')[0]?.trim() || name;
}

const synonyms = (name: string): string[] =>
  name
    .toLowerCase()
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

/**
 * The class index a target designates. A name matches a class whose name, or one of its
 * comma-separated synonyms, equals it (any letter case); failing that, the one class whose
 * name contains it.
 *
 * @param scores one score per class (for `top`).
 * @throws {UserError} `argument.invalid` for an index out of range, or a name matching no class
 *   or several (the message lists candidates).
 * @example
 * resolveClassIndex({ kind: 'name', name: 'Tusker' }, imagenetNames, scores); // 101
 */
export function resolveClassIndex(
  target: ClassTarget,
  classNames: readonly string[],
  scores: ArrayLike<number>,
): number {
  const count = Math.max(classNames.length, scores.length);
  if (target.kind === 'top') {
    let best = 0;
    for (let i = 1; i < scores.length; i++)
      if ((scores[i] ?? -Infinity) > (scores[best] ?? -Infinity)) best = i;
    return best;
  }
  if (target.kind === 'index') {
    if (!Number.isInteger(target.index) || target.index < 0 || target.index >= count) {
      throw new UserError(
        'argument.invalid',
        `class index ${target.index} is not in 0..${count - 1}`,
        {
          value: String(target.index),
          usage: `a class index 0..${count - 1} or a class name`,
        },
      );
    }
    return target.index;
  }
  const wanted = target.name.trim().toLowerCase();
  const exact = classNames.flatMap((n, i) =>
    synonyms(n).includes(wanted) || n.toLowerCase() === wanted ? [i] : [],
  );
  if (exact.length === 1) return exact[0]!;
  const partial =
    exact.length > 1
      ? exact
      : classNames.flatMap((n, i) => (n.toLowerCase().includes(wanted) ? [i] : []));
  if (partial.length === 1) return partial[0]!;
  const examples =
    partial.length > 1
      ? partial.slice(0, 6).map((i) => `${i} ${shortLabel(classNames[i] ?? '')}`)
      : classNames.slice(0, 6).map((n, i) => `${i} ${shortLabel(n)}`);
  throw new UserError(
    'argument.invalid',
    partial.length > 1
      ? `class "${target.name}" is ambiguous: ${examples.join(', ')}${partial.length > 6 ? ', ...' : ''}`
      : `no class "${target.name}"; classes are e.g. ${examples.join(', ')}`,
    {
      value: target.name,
      usage: `a class index 0..${count - 1} or a class name (${examples.join(', ')}...)`,
    },
  );
}
