/**
 * issue 16: the class's photos and submissions as files: the labelled photos in the
 * `image_dataset_from_directory` layout (`0/`, `1/`, ... one folder per class) and a CSV of every
 * submission. `/export` zips them; `bin/cnn-classroom labels export` writes them to a folder.
 *
 * Why csv-stringify: RFC 4180 quoting, headers and per-type casts (formula escaping, see
 * {@link escapeFormula}) without hand-written quoting rules. Why fflate: a small, dependency-free zip writer that runs in memory.
 */
import { stringify } from 'csv-stringify/sync';
import { zipSync } from 'fflate';
import { effectiveLabel, trainingLabel } from './labels.ts';
import type { ClassData, ClassDataFilter, LabelledSubmission } from './ports.ts';

/** The CSV's columns, in order. */
export const EXPORT_CSV_COLUMNS = [
  'submission_id',
  'created_at',
  'platform',
  'user_id',
  'user_name',
  'chat_id',
  'message_id',
  'command',
  'model_id',
  'model_version',
  'predicted_class',
  'confidence',
  'label',
  'label_source',
  'label_role',
  'training_label',
  'error_code',
  'file',
] as const;

/** The CSV file's name in the export. */
export const EXPORT_CSV_NAME = 'submissions.csv';

/** The files of an export, by `/`-separated relative path. */
export interface ClassExport {
  readonly files: Map<string, Uint8Array>;
  /** Labelled photos written (each also a CSV row's `file`). */
  readonly photos: number;
  /** Submissions in the CSV. */
  readonly rows: number;
}

/** The extension of a stored image path (`images/ab/cd/<sha>.jpg` -> `jpg`). */
function extensionOf(imagePath: string): string {
  return /\.([a-z0-9]{1,5})$/.exec(imagePath)?.[1] ?? 'bin';
}

/**
 * Spreadsheet formula injection (OWASP "CSV injection"): a text cell starting with `=`, `+`,
 * `-`, `@`, tab or CR gets a leading `'`, so that a name a student chose is not run as a
 * formula. A plain number stays as it is (Telegram group ids are negative). csv-stringify's own
 * `escape_formulas` would also quote those ids, hence this cast.
 */
export function escapeFormula(value: string): string {
  return /^[=+\-@\t\r]/.test(value) && !/^[-+]?\d+(\.\d+)?$/.test(value) ? `'${value}` : value;
}

/** A submission's CSV row. */
function csvRow(s: LabelledSubmission, file: string | undefined): Record<string, unknown> {
  const e = effectiveLabel(s.labels);
  return {
    submission_id: s.id,
    created_at: s.createdAt.toISOString(),
    platform: s.platform,
    user_id: s.userId,
    user_name: s.userName ?? '',
    chat_id: s.chatId,
    message_id: s.messageId,
    command: s.command,
    model_id: s.modelId ?? '',
    model_version: s.modelVersion ?? '',
    predicted_class: s.predictedClass ?? '',
    confidence: s.confidence ?? '',
    label: e?.label ?? '',
    label_source: e ? (e.label === null ? 'excluded' : e.row.source) : '',
    label_role: e?.row.role ?? '',
    training_label: trainingLabel(s) ?? '',
    error_code: s.errorCode ?? '',
    file: file ?? '',
  };
}

/**
 * Reads the class's data through the port: every submission that matches the filter as a CSV
 * row, and every photo with a training label (see `labels.ts`) as `<label>/<id>.<ext>`.
 * A photo whose bytes are gone (retention) is listed in the CSV without a file.
 */
export async function buildClassExport(
  data: ClassData,
  filter: ClassDataFilter = {},
): Promise<ClassExport> {
  const all = await data.listAll(filter);
  const files = new Map<string, Uint8Array>();
  const records: Record<string, unknown>[] = [];
  let photos = 0;
  for (const s of all) {
    const label = trainingLabel(s);
    let file: string | undefined;
    if (label !== undefined && s.imagePath !== null) {
      try {
        const bytes = await data.readImage(s.imagePath);
        file = `${label}/${s.id}.${extensionOf(s.imagePath)}`;
        files.set(file, bytes);
        photos++;
      } catch {
        file = undefined;
      }
    }
    records.push(csvRow(s, file));
  }
  const csv = stringify(records, {
    header: true,
    columns: [...EXPORT_CSV_COLUMNS],
    cast: { string: escapeFormula },
    record_delimiter: 'windows',
  });
  files.set(EXPORT_CSV_NAME, new TextEncoder().encode(csv));
  return { files, photos, rows: all.length };
}

/** The export as one zip archive (photos stored, not recompressed; the CSV deflated). */
export function zipClassExport(x: ClassExport): Uint8Array {
  const entries: Record<string, [Uint8Array, { level: 0 | 6 }]> = {};
  for (const [name, bytes] of x.files) {
    entries[name] = [bytes, { level: name.endsWith('.csv') ? 6 : 0 }];
  }
  return zipSync(entries);
}

/**
 * Parses export filters: `chat=here|all`, `from=YYYY-MM-DD`, `to=YYYY-MM-DD` (the `to` day
 * included). Unknown words are returned in `rest` for the caller to refuse.
 */
export function parseExportFilters(words: readonly string[]): {
  chat?: string;
  from?: Date;
  to?: Date;
  rest: string[];
} {
  const out: { chat?: string; from?: Date; to?: Date; rest: string[] } = { rest: [] };
  for (const w of words) {
    const m = /^(chat|from|to)=(.+)$/i.exec(w);
    const key = m?.[1]?.toLowerCase();
    const value = m?.[2] ?? '';
    if (key === 'chat') out.chat = value;
    else if ((key === 'from' || key === 'to') && /^\d{4}-\d{2}-\d{2}$/.test(value)) {
      const day = new Date(`${value}T00:00:00Z`);
      if (Number.isNaN(day.getTime())) out.rest.push(w);
      else if (key === 'from') out.from = day;
      else out.to = new Date(day.getTime() + 86_400_000);
    } else out.rest.push(w);
  }
  return out;
}
