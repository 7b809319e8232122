import { UserError } from '../../errors.ts';
import { corruptFileError } from '../../io/download.ts';

export { errorMessage } from '../../io/download.ts';
import type { DatasetName } from './types.ts';

/**
 * The `dataset.missing` error for a file or folder of `name`, with the command that fetches it.
 */
export function datasetMissingError(name: DatasetName, missingPath: string): UserError {
  const hint =
    name === 'fashion-mnist'
      ? `run \`bin/cnn-classroom download ${name}\` (or \`apt-get install dataset-fashion-mnist\`)`
      : `run \`bin/cnn-classroom download ${name}\``;
  return new UserError('dataset.missing', `${name}: ${missingPath} not found; ${hint}`, {
    dataset: name,
    path: missingPath,
    hint,
  });
}

/**
 * The `dataset.corrupt` error for `file`: the message starts with the path, `params.path` holds it.
 */
export const datasetCorruptError = corruptFileError;

/** True for a file-system error meaning "no such file or folder". */
export function isNotFound(e: unknown): boolean {
  return e instanceof Error && 'code' in e && (e as NodeJS.ErrnoException).code === 'ENOENT';
}
