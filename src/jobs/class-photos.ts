/**
 * issue 16: the class's labelled photos a `with=class` job trains on, read from the database
 * through the core's `ClassData` port by the documented training-label rule (`trainingLabel`:
 * instructor labels, students' ✓ of confident answers, corrections only after review).
 */
import { trainingLabel } from '../core/labels.ts';
import type { ClassData, LabelledSubmission } from '../core/ports.ts';
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
 * label and their student (`platform:userId`, the unit of the held-out split).
 */
export async function classPhotos(
  data: ClassData,
  classNames: readonly string[],
): Promise<ClassPhoto[]> {
  const photos: ClassPhoto[] = [];
  for (const { row, index } of trainingRows(await data.list(), classNames)) {
    photos.push({
      id: row.id,
      bytes: await data.readImage(row.imagePath),
      label: index,
      student: `${row.platform}:${row.userId}`,
    });
  }
  return photos;
}
