/**
 * issue 16: `labels import <dir>` and `labels export --out <dir>`: the class's labelled photos
 * in and out of the `image_dataset_from_directory` layout (`0/`, `1/`, ... one folder per class).
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { createPrismaPersistence } from '../../adapters/persistence/prisma-persistence.ts';
import type { Config } from '../../config.ts';
import { buildClassExport } from '../../core/class-export.ts';
import type { ClassDataFilter, Platform } from '../../core/index.ts';
import { openDatabase, type Database } from '../../db/database.ts';
import { isUserError } from '../../errors.ts';
import { sniffFormat } from '../../imaging/decode.ts';
import { initBackend } from '../../ml/backend.ts';
import { classifyImage } from '../../ml/classify.ts';
import { ModelRegistry, SHIPPED_VERSION, type LoadedModel } from '../../ml/registry.ts';
import { watchServedVersions } from '../../jobs/served-watcher.ts';
import { logger } from '../../logger.ts';

/** The platform name of users created by an import (the students the photos came from). */
export const IMPORT_PLATFORM = 'import';
/** The `submissions.command` of imported photos. */
export const IMPORT_COMMAND = 'import';

const EXTENSIONS: Readonly<Record<string, string>> = {
  jpeg: 'jpg',
  png: 'png',
  webp: 'webp',
  gif: 'gif',
  tiff: 'tiff',
  bmp: 'bmp',
  avif: 'avif',
  heic: 'heic',
};

/** What {@link importLabelledFolder} did. */
export interface ImportSummary {
  /** Photos stored with an instructor label. */
  readonly imported: number;
  /** Photos already imported before (same bytes): left alone. */
  readonly duplicates: number;
  /** Photos the model's preprocessing refused: stored as refused submissions, without a label. */
  readonly refused: readonly { readonly file: string; readonly reason: string }[];
  /** Files that are no image the bot reads. */
  readonly ignored: readonly string[];
  readonly perClass: Readonly<Record<string, number>>;
}

/**
 * Imports a folder of class photos in the `image_dataset_from_directory` layout as instructor
 * labels: each photo is stored, classified by the model (so statistics see what it answers), and
 * labelled with its folder's name. The student of a photo is the folder's name, or the first
 * group of `studentPattern` matched against the file name.
 *
 * @throws {Error} when `dir` has no sub-folder named after a class of the model.
 */
export async function importLabelledFolder(
  db: Database,
  loaded: LoadedModel,
  dir: string,
  options: {
    readonly studentPattern?: RegExp;
    readonly limits: { readonly maxBytes: number; readonly maxPixels: number };
    /** The model version `loaded` is, recorded on each submission row (default `0`, the shipped one). */
    readonly version?: string;
  },
): Promise<ImportSummary> {
  const entries = await readdir(dir, { withFileTypes: true });
  const classes = entries
    .filter((e) => e.isDirectory() && loaded.meta.classNames.includes(e.name))
    .map((e) => e.name)
    .sort();
  if (classes.length === 0) {
    throw new Error(
      `${dir} has no folder named after a class of ${loaded.meta.id} (${loaded.meta.classNames.join(', ')})`,
    );
  }
  const version = options.version ?? SHIPPED_VERSION;
  let imported = 0;
  let duplicates = 0;
  const refused: { file: string; reason: string }[] = [];
  const ignored: string[] = [];
  const perClass: Record<string, number> = {};
  for (const label of classes) {
    const files = (await readdir(path.join(dir, label), { withFileTypes: true }))
      .filter((f) => f.isFile() || f.isSymbolicLink())
      .map((f) => f.name)
      .sort();
    for (const name of files) {
      const rel = `${label}/${name}`;
      const bytes = new Uint8Array(await readFile(path.join(dir, label, name)));
      const ext = EXTENSIONS[sniffFormat(bytes)];
      if (ext === undefined) {
        ignored.push(rel);
        continue;
      }
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      if ((await db.labels.findByImage(sha256, IMPORT_COMMAND)) !== undefined) {
        duplicates++;
        continue;
      }
      const student = options.studentPattern?.exec(name)?.[1] ?? path.basename(path.resolve(dir));
      const user = await db.users.upsertFromPlatform({
        platform: IMPORT_PLATFORM,
        platformId: student,
        name: student,
      });
      const stored = await db.images.put(bytes, ext);
      const base = {
        userId: user.id,
        platformMessageId: rel,
        command: IMPORT_COMMAND,
        image: { sha256, path: stored.relativePath, bytes: bytes.length },
      };
      try {
        const r = await classifyImage(loaded, bytes, options.limits, 3);
        const sub = await db.submissions.recordSuccess({
          ...base,
          model: { id: loaded.meta.id, version },
          predictedClass: r.label,
          confidence: r.confidence,
          topK: r.topK,
        });
        await db.labels.add({
          submissionId: sub.id,
          label,
          userId: null,
          role: 'instructor',
          source: 'instructor',
        });
        imported++;
        perClass[label] = (perClass[label] ?? 0) + 1;
      } catch (e) {
        if (!isUserError(e)) throw e;
        await db.submissions.recordRejection({ ...base, errorCode: e.id });
        refused.push({ file: rel, reason: e.id });
      }
    }
  }
  return { imported, duplicates, refused, ignored, perClass };
}

/** A `YYYY-MM-DD` day, or an error naming the option. */
function day(value: string, option: string): Date {
  const d = new Date(`${value}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(d.getTime())) {
    throw new Error(`${option} must be a day as YYYY-MM-DD, got "${value}"`);
  }
  return d;
}

/** Registers `labels import` and `labels export`. */
export function registerLabels(program: Command, config: Config): void {
  const labels = program
    .command('labels')
    .description("the class's labelled photos: import a folder, export photos and a CSV");

  labels
    .command('import')
    .description(
      'import a folder of photos in the image_dataset_from_directory layout (0/ … 9/) as instructor labels',
    )
    .argument('<dir>', 'folder with one sub-folder per class')
    .option('--model <id>', 'the model that classifies them', config.DEFAULT_MODEL)
    .option(
      '--student-pattern <regex>',
      'the student of a photo: the first group this matches in its file name (default: the folder name)',
    )
    .option('--json', 'print the summary as JSON')
    .action(
      async (dir: string, flags: { model: string; studentPattern?: string; json?: boolean }) => {
        await initBackend();
        const registry = ModelRegistry.fromConfig(config);
        const db = await openDatabase(config);
        try {
          // Classify with the version the bot serves (a promoted one too), as the chat would.
          const watcher = watchServedVersions(db.modelVersions, registry, logger, 60_000, {
            modelsDir: config.MODELS_DIR,
            dataDir: config.DATA_DIR,
          });
          await watcher.sync();
          await watcher.stop();
          const loaded = await registry.get(flags.model);
          const summary = await importLabelledFolder(db, loaded, dir, {
            version: registry.servedVersion(flags.model),
            ...(flags.studentPattern ? { studentPattern: new RegExp(flags.studentPattern) } : {}),
            limits: { maxBytes: config.MAX_IMAGE_BYTES, maxPixels: config.MAX_IMAGE_PIXELS },
          });
          if (flags.json) console.log(JSON.stringify(summary, null, 2));
          else {
            console.log(
              `imported ${summary.imported} labelled photos (${Object.entries(summary.perClass)
                .map(([k, v]) => `${k}: ${v}`)
                .join(
                  ', ',
                )}); ${summary.duplicates} already imported; ${summary.refused.length} refused by the preprocessing; ${summary.ignored.length} not images`,
            );
            for (const r of summary.refused) console.log(`  refused ${r.file}: ${r.reason}`);
          }
        } finally {
          await db.close();
          await registry.dispose();
        }
      },
    );

  labels
    .command('export')
    .description(
      'write the labelled photos in folders 0/ … 9/ and submissions.csv of every submission',
    )
    .requiredOption('--out <dir>', 'the folder to write (created)')
    .option('--chat <platform:id>', 'only this chat, e.g. telegram:-100123')
    .option('--from <YYYY-MM-DD>', 'from this day on (UTC)')
    .option('--to <YYYY-MM-DD>', 'up to and including this day (UTC)')
    .option('--json', 'print the summary as JSON')
    .action(
      async (flags: { out: string; chat?: string; from?: string; to?: string; json?: boolean }) => {
        const filter: ClassDataFilter = {};
        const f = filter as { platform?: Platform; chatId?: string; from?: Date; to?: Date };
        if (flags.chat) {
          const m = /^(telegram|discord|web):(.+)$/.exec(flags.chat);
          if (!m) throw new Error(`--chat must be platform:id, got "${flags.chat}"`);
          f.platform = m[1] as Platform;
          f.chatId = m[2]!;
        }
        if (flags.from) f.from = day(flags.from, '--from');
        if (flags.to) f.to = new Date(day(flags.to, '--to').getTime() + 86_400_000);
        const db = await openDatabase(config);
        try {
          const x = await buildClassExport(createPrismaPersistence(db).classData, filter);
          for (const [name, bytes] of x.files) {
            const file = path.join(flags.out, ...name.split('/'));
            await mkdir(path.dirname(file), { recursive: true });
            await writeFile(file, bytes);
          }
          const summary = { out: flags.out, photos: x.photos, rows: x.rows };
          console.log(
            flags.json
              ? JSON.stringify(summary)
              : `wrote ${x.photos} labelled photos and ${x.rows} submissions (submissions.csv) to ${flags.out}`,
          );
        } finally {
          await db.close();
        }
      },
    );
}
