/**
 * How the CLI reports a model it cannot load: with the command that trains it when it is a
 * shipped recipe, and as JSON for `--json` runs.
 */
import { isUserError, UserError } from '../errors.ts';
import { RECIPES } from '../trainer/recipes.ts';

/**
 * The error to report for a failure to load a model from the command line: a `model.unknown`
 * whose id is a recipe `train` knows (not installed, but trainable) says so, with the command that
 * makes it; anything else is returned as it is. The CLI's, not the core's: the core never
 * imports the trainer, and a chat user cannot train.
 *
 * @example
 * await registry.get('alexnet-cifar10').catch((e) => { throw notTrainedHint(e); });
 * // UserError model.unknown: model "alexnet-cifar10" is not trained yet:
 * //   bin/cnn-classroom train alexnet-cifar10 --data-dir <data>
 */
export function notTrainedHint(e: unknown): unknown {
  if (!isUserError(e) || e.id !== 'model.unknown') return e;
  const id = String(e.params.model ?? '');
  if (!Object.hasOwn(RECIPES, id)) return e;
  return new UserError(
    'model.unknown',
    `model "${id}" is not trained yet: bin/cnn-classroom train ${id} --data-dir <data>`,
    e.params,
  );
}

/**
 * Prints a user error the JSON way of the CLI, `{"error":{"code","message"}}` on stdout, and sets
 * exit status 1; for `--json` runs, whose output a program reads. Any other error is thrown on,
 * to be reported (and logged) by the CLI's entry point.
 */
export function printJsonError(e: unknown): void {
  if (!isUserError(e)) throw e;
  console.log(JSON.stringify({ error: { code: e.id, message: e.message } }));
  process.exitCode = 1;
}
