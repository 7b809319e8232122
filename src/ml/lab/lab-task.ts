/**
 * The lab's tasks as data: one JSON file per task in `tasks/` (`alexnet.json`, `resnet18.json`...),
 * each listing the requirements the lab text states (input shape, layer sequence, residual
 * blocks, depthwise separable convolutions, functional API, 10 outputs) and the test-set bar
 * where the lab gives one. A new task is a new file; this module validates them (zod).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { z } from 'zod';
import { UserError } from '../../errors.ts';

const TASKS_DIR = fileURLToPath(new URL('./tasks/', import.meta.url));

/** The kinds of layer a requirement can name; other layers (BatchNorm, ReLU...) are not counted. */
export const OPS = [
  'conv',
  'depthwise',
  'separable',
  'maxpool',
  'avgpool',
  'gap',
  'gmp',
  'dense',
  'dropout',
  'add',
  'concat',
] as const;

/** One of {@link OPS}. */
export type Op = (typeof OPS)[number];

const stepSchema = z.strictObject({
  op: z.enum(OPS),
  filters: z.number().int().positive().optional(),
  kernel: z.number().int().positive().optional(),
  stride: z.number().int().positive().optional(),
  padding: z.enum(['valid', 'same']).optional(),
  pool: z.number().int().positive().optional(),
  units: z.number().int().positive().optional(),
  rate: z.number().min(0).max(1).optional(),
});

/** A layer as a requirement describes it: the op and the settings that must match (others free). */
export type LayerStep = z.infer<typeof stepSchema>;

const requirementSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('input_shape') }),
  z.strictObject({ kind: z.literal('functional_api') }),
  z.strictObject({ kind: z.literal('shapes_valid') }),
  z.strictObject({ kind: z.literal('layers'), sequence: z.array(stepSchema).min(1) }),
  z.strictObject({ kind: z.literal('layers_prefix'), sequence: z.array(stepSchema).min(1) }),
  z.strictObject({ kind: z.literal('layers_suffix'), sequence: z.array(stepSchema).min(1) }),
  z.strictObject({
    kind: z.literal('residual_blocks'),
    blocks: z.number().int().positive(),
    pattern: z.array(z.number().int().positive()).min(1),
    groups: z.array(z.number().int().positive()).min(1),
  }),
  z.strictObject({
    kind: z.literal('count'),
    op: z.enum(OPS),
    min: z.number().int().min(0).optional(),
    max: z.number().int().min(0).optional(),
  }),
  z.strictObject({ kind: z.literal('outputs'), units: z.number().int().positive() }),
]);

/** One requirement of a task. */
export type Requirement = z.infer<typeof requirementSchema>;

const taskSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
  title: z.strictObject({ en: z.string(), ru: z.string() }),
  dataset: z.enum(['mnist', 'fashion-mnist', 'cifar-10']),
  /** The course model the student's is compared with (Grad-CAM beside it). */
  reference: z.string(),
  inputShape: z.tuple([
    z.number().int().positive(),
    z.number().int().positive(),
    z.number().int().positive(),
  ]),
  /** The lab's test accuracy bar, as a fraction (AlexNet: 0.65 for "> 65%"). */
  accuracyBar: z.number().min(0).max(1).optional(),
  requirements: z.array(requirementSchema).min(1),
});

/** A lab task. */
export type LabTask = z.infer<typeof taskSchema>;

let cache: ReadonlyMap<string, LabTask> | undefined;

/**
 * Every task in the tasks folder, by id (read and validated once).
 * @throws {Error} naming the file when a task file is not valid.
 */
export function labTasks(dir: string = TASKS_DIR): ReadonlyMap<string, LabTask> {
  if (cache && dir === TASKS_DIR) return cache;
  const tasks = new Map<string, LabTask>();
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const parsed = taskSchema.safeParse(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
    if (!parsed.success) throw new Error(`lab task ${file}: ${parsed.error.message}`);
    tasks.set(parsed.data.id, parsed.data);
  }
  if (dir === TASKS_DIR) cache = tasks;
  return tasks;
}

/**
 * The task `id`.
 * @throws {UserError} `lab.unknown_task`, listing the known ones.
 */
export function labTask(id: string): LabTask {
  const task = labTasks().get(id.toLowerCase());
  if (!task) {
    const known = [...labTasks().keys()].join(', ');
    throw new UserError('lab.unknown_task', `unknown lab task "${id}"; known: ${known}`, {
      task: id,
      known,
    });
  }
  return task;
}
