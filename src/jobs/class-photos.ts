/**
 * issue 16: the class's labelled photos a `with=class` job trains on, read from the database
 * through the core's `ClassData` port by the documented training-label rule (`trainingLabel`:
 * instructor labels, students' ✓ of confident answers, corrections only after review).
 */
import { trainingLabel } from '../core/labels.ts';
import type { ClassData, LabelledSubmission } from '../core/ports.ts';
import type { RunPhoto } from '../db/training-run-repository.ts';
import type { ClassPhoto } from '../trainer/class-finetune.ts';

/** The submissions that train by default, with the class index of their training label. */
function trainingRows(
  rows: readonly LabelledSubmission[],
  classNames: readonly string[],
): { row: LabelledSubmission & { imagePath: string }; index: number }[] {
  const out: { row: LabelledSubmission & { imagePath: string }; index: number }[] = [];
  for (const s of rows) {
    const label = trainingLabel(s);
    const index = label === undefined ? -1 : classNames.indexOf(label);
    if (index < 0 || s.imagePath === null) continue;
    out.push({ row: { ...s, imagePath: s.imagePath }, index });
  }
  return out;
}

/**
 * How many of the class's photos train by default (before preprocessing, which may refuse a
 * few more): what `/retrain ... with=class` checks against `CLASS_MIN_PHOTOS` before queuing.
 */
export async function countClassPhotos(
  data: ClassData,
  classNames: readonly string[],
): Promise<number> {
  return trainingRows(await data.list(), classNames).length;
}

/**
 * The class's photos that train by default, with their stored bytes, the class index of their
 * label and their student (`platform:userId`, the unit of the held-out split). A photo whose
 * stored file cannot be read (deleted by retention, another machine's image store) is left out
 * and reported to `onUnreadable`, so one missing file does not fail the whole job; too few
 * photos left are refused later with the count needed, as for photos the preprocessing refuses.
 */
export async function classPhotos(
  data: ClassData,
  classNames: readonly string[],
  onUnreadable?: (submissionId: string, error: unknown) => void,
): Promise<ClassPhoto[]> {
  const photos: ClassPhoto[] = [];
  for (const { row, index } of trainingRows(await data.list(), classNames)) {
    let bytes: Uint8Array;
    try {
      bytes = await data.readImage(row.imagePath);
    } catch (e) {
      onUnreadable?.(row.id, e);
      continue;
    }
    photos.push({ id: row.id, bytes, label: index, student: `${row.platform}:${row.userId}` });
  }
  return photos;
}

/**
 * issue 14 follow-up: the class's photos that train by default, as attached to a `with=class`
 * job when it is queued (`training_runs.create({ photos })`): the bytes travel through the
 * database, so a worker on another machine, without the bot's image store, trains on exactly
 * what was labelled then.
 */
export async function classPhotosToAttach(
  data: ClassData,
  classNames: readonly string[],
  onUnreadable?: (submissionId: string, error: unknown) => void,
): Promise<RunPhoto[]> {
  return (await classPhotos(data, classNames, onUnreadable)).map((p) => ({
    submissionId: Number(p.id),
    label: classNames[p.label] ?? String(p.label),
    student: p.student,
    bytes: p.bytes,
  }));
}

/**
 * The photos attached to a job as the fine-tuning takes them: the class index of each label in
 * `classNames` (a label the model does not know is left out).
 */
export function attachedClassPhotos(
  photos: readonly RunPhoto[],
  classNames: readonly string[],
): ClassPhoto[] {
  const out: ClassPhoto[] = [];
  for (const p of photos) {
    const label = classNames.indexOf(p.label);
    if (label < 0) continue;
    out.push({ id: String(p.submissionId), bytes: p.bytes, label, student: p.student });
  }
  return out;
}
