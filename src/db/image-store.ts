import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DatabaseError } from './errors.ts';
import { exists } from '../io/files.ts';

/** An image kept on disk. */
export interface StoredImage {
  /** SHA-256 of the bytes, lower-case hex. */
  readonly sha256: string;
  /** Path relative to the store's data folder, `/`-separated: `images/ab/cd/<sha256>.<ext>`. */
  readonly relativePath: string;
  readonly absolutePath: string;
  readonly bytes: number;
  /** False when the same bytes were already stored (nothing was written). */
  readonly created: boolean;
}

/**
 * Content-addressed storage of submitted photos (platform file links expire, so the bytes are
 * kept). Files live under `<dataDir>/images/ab/cd/<sha256>.<ext>`, where `ab` and `cd` are the
 * first two byte pairs of the hash (keeps folders small).
 */
export interface ImageStore {
  /** Stores bytes once: identical bytes give the same file; writes are atomic (temp + rename). */
  put(bytes: Uint8Array, ext: string): Promise<StoredImage>;
  /** Reads an image back; undefined when it is not stored. */
  read(sha256: string, ext: string): Promise<Buffer | undefined>;
  /** Relative path an image has or would have. */
  relativePathOf(sha256: string, ext: string): string;
  /** True when the image is stored. */
  has(sha256: string, ext: string): Promise<boolean>;
  /** Deletes a stored image; false when it was not there. */
  remove(sha256: string, ext: string): Promise<boolean>;
}

/**
 * Permissions of what the store creates: files readable by the bot's user only, folders
 * searchable by it only (students' photos are personal data; issue 19).
 */
export const IMAGE_FILE_MODE = 0o600;
export const IMAGE_DIR_MODE = 0o700;

const SHA256_HEX = /^[0-9a-f]{64}$/;
const EXTENSION = /^[a-z0-9]{1,5}$/;

/** Canonical extension: lower case, `jpeg` as `jpg`. */
function normalizeExt(ext: string): string {
  const e = ext.replace(/^\./, '').toLowerCase();
  if (!EXTENSION.test(e)) {
    throw new DatabaseError('invalid_argument', `invalid image extension "${ext}"`);
  }
  return e === 'jpeg' ? 'jpg' : e;
}

function relativePath(sha256: string, ext: string): string {
  if (!SHA256_HEX.test(sha256)) {
    throw new DatabaseError('invalid_argument', `not a SHA-256 hex digest: "${sha256}"`);
  }
  return `images/${sha256.slice(0, 2)}/${sha256.slice(2, 4)}/${sha256}.${normalizeExt(ext)}`;
}

/**
 * Creates the image store under a data folder (usually `DATA_DIR`).
 *
 * @example
 * const images = createImageStore(config.DATA_DIR);
 * const { sha256, relativePath } = await images.put(photoBytes, 'jpg');
 */
export function createImageStore(dataDir: string): ImageStore {
  const root = path.resolve(dataDir);
  const absolute = (relative: string): string => path.join(root, ...relative.split('/'));

  return {
    relativePathOf: relativePath,

    async put(bytes, ext) {
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const rel = relativePath(sha256, ext);
      const file = absolute(rel);
      if (await exists(file)) {
        return {
          sha256,
          relativePath: rel,
          absolutePath: file,
          bytes: bytes.length,
          created: false,
        };
      }
      await mkdir(path.dirname(file), { recursive: true, mode: IMAGE_DIR_MODE });
      // A reader never sees a partial file: write beside it, then rename (atomic on one file
      // system). Two writers of the same bytes both rename identical content: harmless.
      const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        await writeFile(temp, bytes, { flush: true, mode: IMAGE_FILE_MODE });
        await chmod(temp, IMAGE_FILE_MODE); // whatever the umask
        await rename(temp, file);
      } catch (e) {
        await unlink(temp).catch(() => undefined);
        throw e;
      }
      return { sha256, relativePath: rel, absolutePath: file, bytes: bytes.length, created: true };
    },

    has: (sha256, ext) => exists(absolute(relativePath(sha256, ext))),

    async remove(sha256, ext) {
      try {
        await unlink(absolute(relativePath(sha256, ext)));
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw e;
      }
    },

    async read(sha256, ext) {
      try {
        return await readFile(absolute(relativePath(sha256, ext)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
    },
  };
}
