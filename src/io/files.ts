/**
 * File-system questions asked all over the project, answered once: whether a path exists, is a
 * file, is a folder.
 */
import { stat } from 'node:fs/promises';

/**
 * Whether `p` exists (file, folder or anything else): false only when it is missing.
 * @throws the file-system error when `p` cannot be checked (EACCES on a parent...), so that a
 *   permission problem is not taken for absence (and a file overwritten).
 */
export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw e;
  }
}

/** Whether `p` is a regular file (following symbolic links); false when it cannot be checked. */
export async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isFile() ?? false;
}

/** Whether `p` is a folder (following symbolic links); false when it cannot be checked. */
export async function isDirectory(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}
