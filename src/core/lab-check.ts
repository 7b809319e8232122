/**
 * The lab check of a student's saved Keras model, platform-neutral: read the file (never running
 * code in it), check it against the task's requirements, record it, answer with the report
 * (table image and text), then test it on the task's data set off the chat's hot path (one
 * evaluation at a time, in the background, with a message when it starts and the figures,
 * confusion matrix and Grad-CAM beside the course's model when it ends).
 */
import { createHash } from 'node:crypto';
import type * as tf from '@tensorflow/tfjs';
import type { Logger } from 'pino';
import { UserError } from '../errors.ts';
import { explainInput } from '../explain/explain-image.ts';
import { renderConfusionMatrix } from '../imaging/confusion.ts';
import { renderMapGrid, type GridCell } from '../imaging/overlay.ts';
import { renderTable, type TableInput } from '../imaging/table.ts';
import {
  DEFAULT_KERAS_LIMITS,
  readKerasModel,
  type KerasLimits,
  type KerasModel,
} from '../ml/keras/read-keras.ts';
import { accuracyResult, checkModel, type RequirementResult } from '../ml/lab/check-model.ts';
import { evaluateClassifier, type Evaluation, type LabelledImages } from '../ml/lab/evaluate.ts';
import { labTask, labTasks, type LabTask } from '../ml/lab/lab-task.ts';
import type { LoadedModel } from '../ml/registry.ts';
import { architectureStats, type ArchitectureStats } from '../ml/stats.ts';
import { formatShape, layerTableBody } from './commands/arch.ts';
import type { ChatContext } from './context.ts';
import { formatNumber, type Language, type Translate } from './i18n.ts';
import {
  evaluationLines,
  reportTable,
  reportText,
  resultLines,
  type CheckedFile,
} from './lab-report.ts';
import type { LabSubmissionLog } from './ports.ts';
import type { Platform } from './context.ts';
import { createTaskQueue } from './queue.ts';

/** Where the lab's official test sets come from (the data folder; see `main.ts`). */
export interface LabTestSets {
  /** The test split of `dataset`, or null when it is not downloaded. */
  load(dataset: LabTask['dataset']): Promise<LabelledImages | null>;
}

/** What a checked file gave. */
export interface LabCheckOutcome {
  readonly task: LabTask;
  readonly read: KerasModel;
  readonly results: RequirementResult[];
  readonly stats: ArchitectureStats;
  readonly file: CheckedFile;
}

/**
 * Reads and checks a model file against a task. The caller disposes `read.model`.
 * @throws {UserError} `lab.unknown_task`, or the reader's `keras.*` refusals.
 */
export async function checkKerasFile(
  bytes: Uint8Array,
  taskId: string,
  fileName: string,
  limits: KerasLimits = DEFAULT_KERAS_LIMITS,
): Promise<LabCheckOutcome> {
  const task = labTask(taskId);
  const read = await readKerasModel(bytes, limits);
  try {
    const stats = architectureStats(read.model);
    return {
      task,
      read,
      results: checkModel(read.graph, task),
      stats,
      file: {
        fileName,
        kerasVersion: read.kerasVersion,
        style: read.graph.style,
        params: stats.params.total,
        macs: stats.macs,
      },
    };
  } catch (e) {
    read.model.dispose();
    throw e;
  }
}

/** The student's model's layer table, as `/arch` lays it out. */
export function studentArchTable(
  stats: ArchitectureStats,
  t: Translate,
  lang: Language,
  name: string,
): TableInput {
  return { title: `${name}: ${formatShape(stats.inputShape)}`, ...layerTableBody(stats, t, lang) };
}

/** The task list for usage texts: `alexnet, lenet, ...`. */
export function taskList(): string {
  return [...labTasks().keys()].join(', ');
}

/** What {@link runLabCheck} needs from the core's services. */
export interface LabCheckServices {
  readonly labSubmissions?: LabSubmissionLog;
  readonly images: { save(sha256: string, bytes: Uint8Array): Promise<string | null> };
  readonly models: { get(id: string): Promise<LoadedModel> };
  readonly labTestSets?: LabTestSets;
  readonly logger: Logger;
}

/** The message context {@link runLabCheck} answers in. */
export interface LabCheckContext {
  readonly platform: Platform;
  readonly user: ChatContext['user'];
  readonly chat: ChatContext['chat'];
  readonly image?: ChatContext['image'];
  readonly literal?: ChatContext['literal'];
  readonly lang: Language;
  readonly t: Translate;
  reply(text: string): Promise<void>;
  replyImage(png: Uint8Array, caption: string): Promise<void>;
}

/** One evaluation at a time: a test-set pass takes seconds to minutes of CPU. */
const evaluations = createTaskQueue(1);
const running = new Set<Promise<void>>();

/** Resolves when every background evaluation started so far has answered (tests, shutdown). */
export async function labEvaluationsIdle(): Promise<void> {
  while (running.size) await Promise.all([...running]);
}

/** How many of the test images Grad-CAM is shown on. */
const GRADCAM_IMAGES = 3;

/**
 * `/check <task>` with a model file: checks, records, answers, and starts the test-set run.
 * @throws {UserError} `keras.missing` (no file), `keras.too_large`, `lab.unknown_task`, the
 *   reader's `keras.*` refusals.
 */
export async function runLabCheck(
  ctx: LabCheckContext,
  services: LabCheckServices,
  taskId: string,
  limits: KerasLimits = DEFAULT_KERAS_LIMITS,
): Promise<void> {
  const started = performance.now();
  const task = labTask(taskId);
  const ref = ctx.image;
  if (!ref) throw new UserError('keras.missing', 'no model file attached or replied to');
  const tooLarge = (bytes: number): UserError =>
    new UserError('keras.too_large', `the file has ${bytes} bytes`, {
      limit: `${Math.round(limits.maxFileBytes / 2 ** 20)} MB`,
    });
  if (ref.declaredBytes !== undefined && ref.declaredBytes > limits.maxFileBytes)
    throw tooLarge(ref.declaredBytes);
  const bytes = await ref.fetch();
  if (bytes.length > limits.maxFileBytes) throw tooLarge(bytes.length);
  const outcome = await checkKerasFile(bytes, task.id, ref.fileName ?? 'model', limits);
  let handedOff = false;
  try {
    const { results, file, read, stats } = outcome;
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const filePath = await services.images.save(sha256, bytes).catch((e: unknown) => {
      services.logger.warn({ err: e }, 'lab check: the model file could not be stored');
      return null;
    });
    const passed = results.filter((r) => r.ok).length;
    const row = await services.labSubmissions?.record({
      platform: ctx.platform,
      userId: ctx.user.id,
      chatId: ctx.chat.id,
      task: task.id,
      fileName: ref.fileName ?? null,
      fileSha256: sha256,
      filePath,
      fileBytes: bytes.length,
      format: read.format,
      kerasVersion: read.kerasVersion,
      requirements: results,
      passed,
      total: results.length,
      testAccuracy: null,
      params: stats.params.total,
      macs: stats.macs,
      latencyMs: performance.now() - started,
    });
    await ctx.replyImage(
      await renderTable(reportTable(task, file, results, ctx.t, ctx.lang)),
      ctx.t('lab.summary', { passed, total: results.length }),
    );
    await ctx.reply(reportText(task, file, results, ctx.t, ctx.lang, ctx.literal));
    await ctx.replyImage(
      await renderTable(studentArchTable(stats, ctx.t, ctx.lang, file.fileName)),
      `${ctx.literal?.(file.fileName) ?? file.fileName}: ${formatNumber(stats.params.total, ctx.lang)}`,
    );
    const testSet = services.labTestSets ? await services.labTestSets.load(task.dataset) : null;
    if (!testSet) {
      await ctx.reply(
        ctx.t('lab.eval.missing', {
          dataset: task.dataset,
          command: `bin/cnn-classroom download ${task.dataset}`,
        }),
      );
      return;
    }
    await ctx.reply(
      ctx.t('lab.eval.started', {
        passed,
        total: results.length,
        dataset: task.dataset,
        count: formatNumber(testSet.count, ctx.lang),
      }),
    );
    handedOff = true;
    const job = evaluations
      .run(() => testAndExplain(ctx, services, task, read.model, testSet, row?.id, results))
      .catch((e: unknown) => services.logger.error({ err: e }, 'lab evaluation failed'))
      .finally(() => {
        read.model.dispose();
        running.delete(job);
      });
    running.add(job);
  } finally {
    if (!handedOff) outcome.read.model.dispose();
  }
}

async function testAndExplain(
  ctx: LabCheckContext,
  services: LabCheckServices,
  task: LabTask,
  model: tf.LayersModel,
  testSet: LabelledImages,
  rowId: string | undefined,
  results: readonly RequirementResult[],
): Promise<void> {
  const want = model.inputs[0]?.shape.slice(1) ?? [];
  const have = [testSet.height, testSet.width, testSet.channels];
  if (want.length !== 3 || want.some((d, i) => d !== have[i])) {
    const reason = ctx.t('lab.eval.input_mismatch', {
      found: want.join('×'),
      expected: have.join('×'),
    });
    await ctx.reply(ctx.t('lab.eval.failed', { dataset: task.dataset, reason }));
    return;
  }
  const e: Evaluation = await evaluateClassifier(model, testSet);
  if (rowId !== undefined) await services.labSubmissions?.setTestAccuracy(rowId, e.accuracy);
  const bar = accuracyResult(task, e.accuracy);
  const lines = [
    ...evaluationLines(
      { ...e, dataset: task.dataset, classNames: testSet.classNames },
      ctx.t,
      ctx.lang,
    ),
    ...(bar ? resultLines([bar], ctx.t) : []),
  ];
  const png = await renderConfusionMatrix({
    counts: e.confusion,
    classNames: testSet.classNames,
    title: ctx.t('lab.confusion.title', { dataset: task.dataset }),
  });
  await ctx.replyImage(png, lines.join('\n'));
  const passed = results.filter((r) => r.ok).length + (bar?.ok ? 1 : 0);
  services.logger.info({ task: task.id, accuracy: e.accuracy, passed }, 'lab evaluation done');
  await gradCamBeside(ctx, services, task, model, testSet).catch((err: unknown) =>
    services.logger.warn({ err }, 'lab Grad-CAM failed'),
  );
}

/** Grad-CAM of the student's model (upper row) and the course's (lower row) on test images. */
async function gradCamBeside(
  ctx: LabCheckContext,
  services: LabCheckServices,
  task: LabTask,
  model: tf.LayersModel,
  testSet: LabelledImages,
): Promise<void> {
  const reference = await services.models.get(task.reference);
  const student: LoadedModel = {
    meta: { ...reference.meta, id: 'student' },
    model,
    dir: '',
    version: 'student',
  };
  const pixels = testSet.height * testSet.width * testSet.channels;
  const cells: GridCell[] = [];
  const lower: GridCell[] = [];
  for (let i = 0; i < Math.min(GRADCAM_IMAGES, testSet.count); i++) {
    const raw = testSet.images.subarray(i * pixels, (i + 1) * pixels);
    const input = {
      data: Float32Array.from(raw, (v) => v / 255),
      width: testSet.width,
      height: testSet.height,
      channels: testSet.channels as 1 | 3,
    };
    const truth = testSet.classNames[testSet.labels[i] ?? 0] ?? '';
    for (const [loaded, row] of [
      [student, cells],
      [reference, lower],
    ] as const) {
      const x = await explainInput(loaded, input, { method: 'gradcam' });
      row.push({ image: x.image, map: x.map, title: [`${truth} → ${x.predicted.label}`] });
    }
  }
  const caption = ctx.t('lab.gradcam.caption', { count: cells.length, reference: task.reference });
  await ctx.replyImage(await renderMapGrid(cells, { title: ctx.t('lab.you') }), caption);
  await ctx.replyImage(await renderMapGrid(lower, { title: task.reference }), task.reference);
}
