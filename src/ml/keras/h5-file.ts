/**
 * HDF5 files through h5wasm (the HDF5 C library compiled to WebAssembly; its Node build works on
 * real paths), with the few reads and writes Keras weight files need: groups, string attributes
 * (Keras 2 splits long ones into `name0`, `name1`... chunks), and float32 datasets.
 *
 * A file given as bytes is written to a private temporary folder, opened, and deleted when done:
 * h5wasm reads files, not buffers.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import h5wasm from 'h5wasm/node';

/** A group or dataset of an open file. */
export type H5Entity = ReturnType<InstanceType<typeof h5wasm.File>['get']>;
/** An open group (the file itself included). */
export type H5Group = InstanceType<typeof h5wasm.Group>;
/** An open dataset. */
export type H5Dataset = InstanceType<typeof h5wasm.Dataset>;

/** A weight array read from or written to a file: row-major float32 values and their shape. */
export interface NamedArray {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** The group at `p`, or undefined when there is none (or it is a dataset). */
export function groupAt(root: H5Group, p: string): H5Group | undefined {
  let entity: H5Entity;
  try {
    entity = root.get(p);
  } catch {
    return undefined;
  }
  return entity instanceof h5wasm.Group ? entity : undefined;
}

/** The dataset at `p`, or undefined. */
export function datasetAt(root: H5Group, p: string): H5Dataset | undefined {
  let entity: H5Entity;
  try {
    entity = root.get(p);
  } catch {
    return undefined;
  }
  return entity instanceof h5wasm.Dataset ? entity : undefined;
}

/** A string attribute (bytes decoded), or undefined. */
export function stringAttribute(g: H5Group, name: string): string | undefined {
  const a = g.attrs[name];
  if (!a) return undefined;
  const v = a.value;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return new TextDecoder().decode(v);
  return undefined;
}

/**
 * A list-of-strings attribute, joined from Keras 2's chunks (`layer_names0`, `layer_names1`...)
 * when the list was too long for one HDF5 attribute (64 KiB). Missing: `[]`.
 */
export function stringListAttribute(g: H5Group, name: string): string[] {
  const one = (v: unknown): string[] =>
    Array.isArray(v) ? v.map((x) => String(x)) : typeof v === 'string' ? [v] : [];
  if (g.attrs[name]) return one(g.attrs[name].value);
  const out: string[] = [];
  for (let i = 0; g.attrs[`${name}${i}`]; i++) out.push(...one(g.attrs[`${name}${i}`]?.value));
  return out;
}

/** A dataset's values as float32 (float64 and integer weights converted), with its shape. */
export function readArray(ds: H5Dataset, name: string): NamedArray {
  const shape = ds.shape ?? [];
  const v = ds.value;
  let data: Float32Array;
  if (v instanceof Float32Array) data = v;
  else if (
    ArrayBuffer.isView(v) &&
    !(v instanceof BigInt64Array) &&
    !(v instanceof BigUint64Array)
  ) {
    data = Float32Array.from(v as unknown as ArrayLike<number>);
  } else if (typeof v === 'number') data = Float32Array.of(v);
  else throw new Error(`dataset ${name} does not hold numbers`);
  return { name, shape, data };
}

/**
 * Opens HDF5 `bytes` for reading, runs `use`, then closes and deletes the temporary copy.
 * @throws {Error} from h5wasm when the bytes are not a readable HDF5 file.
 */
export async function withH5Bytes<T>(
  bytes: Uint8Array,
  use: (file: H5Group) => T | Promise<T>,
): Promise<T> {
  await h5wasm.ready;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cnn-h5-'));
  const file = path.join(dir, 'in.h5');
  try {
    await writeFile(file, bytes);
    const f = new h5wasm.File(file, 'r');
    try {
      return await use(f);
    } finally {
      f.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Creates (or opens) the group at slash-separated `p` under `root`, with its parents. */
export function ensureGroup(root: H5Group, p: string): H5Group {
  let g = root;
  for (const part of p.split('/').filter(Boolean)) {
    g = groupAt(g, part) ?? g.create_group(part);
  }
  return g;
}

/** Writes a float32 dataset `name` (may contain `:`) into `g`. */
export function writeArray(
  g: H5Group,
  name: string,
  shape: readonly number[],
  data: Float32Array,
): void {
  g.create_dataset({ name, data, shape: [...shape], dtype: '<f' });
}

/** Builds an HDF5 file with `fill` and returns its bytes. */
export async function buildH5Bytes(fill: (file: H5Group) => void): Promise<Uint8Array> {
  await h5wasm.ready;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cnn-h5-'));
  const file = path.join(dir, 'out.h5');
  try {
    const f = new h5wasm.File(file, 'w');
    try {
      fill(f);
    } finally {
      f.close();
    }
    return new Uint8Array(await readFile(file));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
