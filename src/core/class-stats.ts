/**
 * issue 16: class statistics from the label rows: photos per student and how many they confirmed
 * or corrected, accuracy on labelled photos by model version, and a confusion matrix. Pure: the
 * `/stats` command reads the rows and renders what this computes.
 */
import { effectiveLabel, studentLabel } from './labels.ts';
import type { LabelledSubmission } from './ports.ts';

/** One student's line. */
export interface StudentStats {
  readonly key: string;
  readonly name: string;
  readonly photos: number;
  /** Photos whose latest student label is a ✓. */
  readonly confirmed: number;
  /** Photos whose latest student label is a correction. */
  readonly corrected: number;
}

/** Accuracy of one model version on the labelled photos it answered. */
export interface VersionAccuracy {
  readonly modelId: string;
  readonly version: string;
  readonly correct: number;
  readonly total: number;
}

/** Everything `/stats` shows. */
export interface ClassStats {
  readonly total: number;
  /** Photos with an effective label (instructor exclusions not counted). */
  readonly labelled: number;
  readonly students: readonly StudentStats[];
  readonly accuracy: readonly VersionAccuracy[];
  /** `matrix[true][predicted]` over labelled photos whose label and prediction are classes. */
  readonly matrix: number[][];
  /** The first submission of each off-diagonal cell, keyed `"<true>,<predicted>"`. */
  readonly examples: ReadonlyMap<string, LabelledSubmission>;
}

/**
 * Computes the statistics of classified photos.
 * @param classNames the classes of the confusion matrix (the digit model's).
 */
export function classStats(
  rows: readonly LabelledSubmission[],
  classNames: readonly string[],
): ClassStats {
  const students = new Map<
    string,
    { name: string; photos: number; confirmed: number; corrected: number }
  >();
  const versions = new Map<
    string,
    { modelId: string; version: string; correct: number; total: number }
  >();
  const matrix = classNames.map(() => classNames.map(() => 0));
  const examples = new Map<string, LabelledSubmission>();
  let labelled = 0;
  for (const s of rows) {
    const key = `${s.platform}:${s.userId}`;
    const st = students.get(key) ?? {
      name: s.userName ?? key,
      photos: 0,
      confirmed: 0,
      corrected: 0,
    };
    st.photos++;
    const own = studentLabel(s.labels);
    if (own?.source === 'confirmed') st.confirmed++;
    if (own?.source === 'corrected') st.corrected++;
    students.set(key, st);

    const label = effectiveLabel(s.labels)?.label;
    if (label === undefined || label === null) continue;
    labelled++;
    const vKey = `${s.modelId ?? '?'}\u0000${s.modelVersion ?? '?'}`;
    const v = versions.get(vKey) ?? {
      modelId: s.modelId ?? '?',
      version: s.modelVersion ?? '?',
      correct: 0,
      total: 0,
    };
    v.total++;
    if (s.predictedClass === label) v.correct++;
    versions.set(vKey, v);
    const i = classNames.indexOf(label);
    const j = s.predictedClass === null ? -1 : classNames.indexOf(s.predictedClass);
    if (i < 0 || j < 0) continue;
    matrix[i]![j]!++;
    if (i !== j && !examples.has(`${i},${j}`)) examples.set(`${i},${j}`, s);
  }
  return {
    total: rows.length,
    labelled,
    students: [...students.entries()]
      .map(([key, v]) => ({ key, ...v }))
      .sort((a, b) => b.photos - a.photos || a.name.localeCompare(b.name)),
    accuracy: [...versions.values()].sort(
      (a, b) => a.modelId.localeCompare(b.modelId) || a.version.localeCompare(b.version),
    ),
    matrix,
    examples,
  };
}
