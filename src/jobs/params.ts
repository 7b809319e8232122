/** The parameters of a `/retrain` job, as stored in `training_runs.params_json`. */
import type { JsonObject } from '../db/training-run-repository.ts';

/** What an instructor asked for; absent values take the model's recipe defaults. */
export interface RetrainParams {
  readonly epochs?: number;
  readonly batch?: number;
  readonly lr?: number;
  /** Promote even when the new version is less accurate than the served one. */
  readonly force?: boolean;
  /** `platform:userId` of who asked, or `cli`. */
  readonly requester?: string;
  /** The requester's display name when the chat gave one (the web chat's ids are random). */
  readonly requesterName?: string;
  /** issue 16: `class`: fine-tune the served version on the class's labelled photos. */
  readonly with?: 'class';
}

const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;

/** Reads stored params back (unknown keys ignored). */
export function retrainParamsOf(p: JsonObject): RetrainParams {
  const epochs = num(p.epochs);
  const batch = num(p.batch);
  const lr = num(p.lr);
  return {
    ...(epochs === undefined ? {} : { epochs }),
    ...(batch === undefined ? {} : { batch }),
    ...(lr === undefined ? {} : { lr }),
    ...(p.force === true ? { force: true } : {}),
    ...(typeof p.requester === 'string' ? { requester: p.requester } : {}),
    ...(typeof p.requesterName === 'string' ? { requesterName: p.requesterName } : {}),
    ...(p.with === 'class' ? { with: 'class' as const } : {}),
  };
}
