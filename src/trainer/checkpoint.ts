import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { recoverInterruptedSwap, writeDirAtomically } from '../ml/model-io.ts';
import type { EpochRecord, HostTensor, TrainCheckpoint } from './train.ts';

const STATE_FILE = 'state.json';
const TENSORS_FILE = 'tensors.bin';

const specSchema = z.object({ name: z.string(), shape: z.array(z.number().int().min(0)) });
const stateSchema = z.object({
  version: z.literal(1),
  /** What the run was started with; a resume with other settings is refused. */
  fingerprint: z.string(),
  epochsDone: z.number().int().min(0),
  // A run without a validation split has NaN valLoss/valAcc, which JSON writes as null.
  history: z.array(
    z.record(
      z.string(),
      z
        .number()
        .nullable()
        .transform((v) => v ?? NaN),
    ),
  ),
  rngState: z.record(z.string(), z.unknown()),
  weights: z.array(specSchema),
  optimizer: z.array(specSchema),
  best: z
    .object({ epoch: z.number().int(), valAcc: z.number(), weights: z.array(specSchema) })
    .optional(),
});

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * Writes a training checkpoint into `dir` atomically (a fresh folder renamed into place, see
 * `writeDirAtomically`): `state.json` (epochs done, history, random state, tensor names and
 * shapes) and `tensors.bin` (weights, optimizer moments and best weights, float32
 * little-endian, in that order). A kill during the write leaves the previous checkpoint.
 *
 * @param fingerprint the run's settings (model id, epochs, batch, rates, seed...): {@link
 *   loadCheckpoint} returns nothing when they differ.
 */
export async function saveCheckpoint(
  dir: string,
  fingerprint: string,
  c: TrainCheckpoint,
): Promise<void> {
  const groups = [c.weights, c.optimizer, c.best?.weights ?? []];
  const total = groups.reduce((s, g) => s + g.reduce((t, w) => t + w.values.length, 0), 0);
  const buf = new Float32Array(total);
  let at = 0;
  for (const g of groups) {
    for (const w of g) {
      buf.set(w.values, at);
      at += w.values.length;
    }
  }
  const spec = (ws: readonly HostTensor[]) =>
    ws.map((w) => ({ name: w.name, shape: [...w.shape] }));
  const state: z.infer<typeof stateSchema> = {
    version: 1,
    fingerprint,
    epochsDone: c.epochsDone,
    history: c.history.map((r) => ({ ...r })),
    rngState: c.rngState as Record<string, unknown>,
    weights: spec(c.weights),
    optimizer: spec(c.optimizer),
    ...(c.best
      ? { best: { epoch: c.best.epoch, valAcc: c.best.valAcc, weights: spec(c.best.weights) } }
      : {}),
  };
  await writeDirAtomically(dir, [
    [STATE_FILE, JSON.stringify(state)],
    [TENSORS_FILE, new Uint8Array(buf.buffer)],
  ]);
}

/** The settings of the checkpoint in `dir` (as given to {@link saveCheckpoint}), if there is one. */
export async function readCheckpointFingerprint(dir: string): Promise<string | undefined> {
  try {
    const raw = JSON.parse(await readFile(path.join(dir, STATE_FILE), 'utf8')) as unknown;
    const fp = (raw as { fingerprint?: unknown }).fingerprint;
    return typeof fp === 'string' ? fp : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads the checkpoint in `dir`, if there is one for the same settings.
 * @returns `undefined` when `dir` holds no checkpoint or one with another fingerprint.
 * @throws {Error} naming the folder when the checkpoint is there but damaged.
 */
export async function loadCheckpoint(
  dir: string,
  fingerprint: string,
): Promise<TrainCheckpoint | undefined> {
  await recoverInterruptedSwap(dir);
  let raw: string;
  try {
    raw = await readFile(path.join(dir, STATE_FILE), 'utf8');
  } catch {
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new Error(`damaged checkpoint in ${dir}: ${STATE_FILE}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const parsed = stateSchema.safeParse(json);
  if (!parsed.success) throw new Error(`damaged checkpoint in ${dir}: ${parsed.error.message}`);
  const s = parsed.data;
  if (s.fingerprint !== fingerprint) return undefined;
  const bytes = await readFile(path.join(dir, TENSORS_FILE));
  if (bytes.byteLength % 4 !== 0) {
    throw new Error(`damaged checkpoint in ${dir}: ${TENSORS_FILE} is not whole float32 values`);
  }
  // A copy: Buffer's byteOffset into the pool need not be 4-aligned.
  const all = new Float32Array(new Uint8Array(bytes).buffer);
  let at = 0;
  const take = (specs: readonly z.infer<typeof specSchema>[]): HostTensor[] =>
    specs.map((sp) => {
      const n = size(sp.shape);
      if (at + n > all.length)
        throw new Error(`damaged checkpoint in ${dir}: ${TENSORS_FILE} too short`);
      const values = all.slice(at, at + n);
      at += n;
      return { name: sp.name, shape: sp.shape, values };
    });
  const weights = take(s.weights);
  const optimizer = take(s.optimizer);
  const best = s.best
    ? { epoch: s.best.epoch, valAcc: s.best.valAcc, weights: take(s.best.weights) }
    : undefined;
  if (at !== all.length)
    throw new Error(`damaged checkpoint in ${dir}: ${TENSORS_FILE} has extra bytes`);
  return {
    epochsDone: s.epochsDone,
    history: s.history as unknown as EpochRecord[],
    rngState: s.rngState,
    weights,
    optimizer,
    ...(best ? { best } : {}),
  };
}
