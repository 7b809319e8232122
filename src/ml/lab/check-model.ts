/**
 * Checks a student's model (its {@link KerasGraph}) against a lab task's requirements: each one
 * passes or fails with a machine-readable reason (a code, its values, and for layer mismatches the
 * expected and found layers), which the chat and the CLI put into the student's language.
 */
import type { GraphLayer, KerasGraph } from '../keras/keras-graph.ts';
import { traceShapes } from '../keras/keras-shapes.ts';
import type { LabTask, LayerStep, Op, Requirement } from './lab-task.ts';

/** The kind of a requirement (`input_shape`, `layers`...), plus `accuracy` from the test run. */
export type RequirementKind = Requirement['kind'] | 'accuracy';

/** A layer of the student's model as a step of the sequence, with the layer's name. */
export interface FoundStep extends LayerStep {
  readonly layer: string;
}

/** The outcome of one requirement. */
export interface RequirementResult {
  readonly kind: RequirementKind;
  readonly ok: boolean;
  /**
   * Why: `ok`, or `input_shape`, `sequential`, `collapse`, `mismatch`, `layer_differs`,
   * `layer_missing`, `layer_extra`, `count_low`, `count_high`, `no_add`, `blocks_count`,
   * `block_pattern`, `block_groups`, `outputs_units`, `outputs_activation`, `accuracy_low`.
   */
  readonly code: string;
  /** Values for the message (layer names, shapes as `32×32×3`, counts). */
  readonly params: Readonly<Record<string, string | number>>;
  /** The layer the requirement expects (layer sequences). */
  readonly expected?: LayerStep;
  /** The student's layer found in its place. */
  readonly found?: FoundStep;
}

/** Formats a shape as `32×32×3`. */
export function shapeText(shape: readonly number[]): string {
  return shape.join('×');
}

const OP_OF: Readonly<Partial<Record<GraphLayer['className'], Op>>> = {
  Conv2D: 'conv',
  DepthwiseConv2D: 'depthwise',
  SeparableConv2D: 'separable',
  MaxPooling2D: 'maxpool',
  AveragePooling2D: 'avgpool',
  GlobalAveragePooling2D: 'gap',
  GlobalMaxPooling2D: 'gmp',
  Dense: 'dense',
  Dropout: 'dropout',
  Add: 'add',
  Concatenate: 'concat',
};

/** The layers that count in sequences (convolutions, poolings, dense, dropout, merges), in order. */
export function stepsOf(graph: KerasGraph): FoundStep[] {
  const steps: FoundStep[] = [];
  for (const l of graph.layers) {
    const op = OP_OF[l.className];
    if (!op) continue;
    const s = l.settings;
    const step: { -readonly [K in keyof FoundStep]: FoundStep[K] } = { op, layer: l.name };
    if (s.filters !== undefined) step.filters = s.filters;
    if (s.kernel_size) step.kernel = s.kernel_size[0];
    if (s.pool_size) step.pool = s.pool_size[0];
    if (s.strides) step.stride = s.strides[0];
    if (s.padding) step.padding = s.padding;
    if (s.units !== undefined) step.units = s.units;
    if (s.rate !== undefined) step.rate = s.rate;
    steps.push(step);
  }
  return steps;
}

const STEP_FIELDS = ['filters', 'kernel', 'stride', 'padding', 'pool', 'units', 'rate'] as const;

/** Whether `found` is the layer `expected` asks for (fields the requirement leaves out are free). */
export function stepMatches(expected: LayerStep, found: LayerStep): boolean {
  if (expected.op !== found.op) return false;
  return STEP_FIELDS.every((f) => expected[f] === undefined || expected[f] === found[f]);
}

function ok(
  kind: RequirementKind,
  params: Record<string, string | number> = {},
): RequirementResult {
  return { kind, ok: true, code: 'ok', params };
}

function fail(
  kind: RequirementKind,
  code: string,
  params: Record<string, string | number>,
  steps: { expected?: LayerStep; found?: FoundStep } = {},
): RequirementResult {
  return { kind, ok: false, code, params, ...steps };
}

function compareSequence(
  kind: RequirementKind,
  expected: readonly LayerStep[],
  found: readonly FoundStep[],
  offset: number,
  exact: boolean,
): RequirementResult {
  for (const [i, want] of expected.entries()) {
    const got = found[i];
    if (!got)
      return fail(
        kind,
        'layer_missing',
        { index: offset + i + 1, count: found.length },
        { expected: want },
      );
    if (!stepMatches(want, got)) {
      return fail(
        kind,
        'layer_differs',
        { index: offset + i + 1, layer: got.layer },
        { expected: want, found: got },
      );
    }
  }
  const extra = found[expected.length];
  if (exact && extra)
    return fail(
      kind,
      'layer_extra',
      { layer: extra.layer, index: expected.length + 1 },
      { found: extra },
    );
  return ok(kind, { count: expected.length });
}

function consumers(graph: KerasGraph): Map<string, number> {
  const n = new Map<string, number>();
  for (const l of graph.layers)
    for (const r of l.inbound) n.set(r.layer, (n.get(r.layer) ?? 0) + 1);
  for (const r of graph.outputs) n.set(r.layer, (n.get(r.layer) ?? 0) + 1);
  return n;
}

/** The convolutions on the branch that ends in `start`, walking back to where the branch forked. */
function branchConvs(graph: KerasGraph, start: string, uses: Map<string, number>): GraphLayer[] {
  const byName = new Map(graph.layers.map((l) => [l.name, l]));
  const convs: GraphLayer[] = [];
  let cur = byName.get(start);
  while (
    cur &&
    cur.className !== 'InputLayer' &&
    cur.className !== 'Add' &&
    cur.className !== 'Concatenate'
  ) {
    if (cur.className === 'Conv2D') convs.unshift(cur);
    const prev = cur.inbound[0] ? byName.get(cur.inbound[0].layer) : undefined;
    if (!prev || (uses.get(prev.name) ?? 0) > 1) break;
    cur = prev;
  }
  return convs;
}

function residualBlocks(
  graph: KerasGraph,
  req: Extract<Requirement, { kind: 'residual_blocks' }>,
): RequirementResult {
  const adds = graph.layers.filter((l) => l.className === 'Add');
  if (adds.length === 0)
    return fail('residual_blocks', 'no_add', { expected: req.blocks, found: 0 });
  const uses = consumers(graph);
  const channels: number[] = [];
  const want = req.pattern.map((k) => `${k}×${k}`).join(' → ');
  for (const add of adds) {
    const branches = add.inbound.map((r) => branchConvs(graph, r.layer, uses));
    const residual = branches.reduce((a, b) => (b.length > a.length ? b : a), []);
    const kernels = residual.map((c) => c.settings.kernel_size?.[0] ?? 0);
    if (kernels.length !== req.pattern.length || kernels.some((k, i) => k !== req.pattern[i])) {
      return fail('residual_blocks', 'block_pattern', {
        layer: add.name,
        expected: want,
        found: kernels.length ? kernels.map((k) => `${k}×${k}`).join(' → ') : '—',
      });
    }
    channels.push(residual[residual.length - 1]?.settings.filters ?? 0);
  }
  if (adds.length !== req.blocks) {
    return fail('residual_blocks', 'blocks_count', { expected: req.blocks, found: adds.length });
  }
  const groups: number[] = [];
  channels.forEach((c, i) => {
    if (i > 0 && c === channels[i - 1]) groups[groups.length - 1]! += 1;
    else groups.push(1);
  });
  if (groups.join(',') !== req.groups.join(',')) {
    return fail('residual_blocks', 'block_groups', {
      expected: req.groups.join(', '),
      found: groups.join(', '),
    });
  }
  return ok('residual_blocks', { blocks: adds.length, pattern: want, groups: groups.join(', ') });
}

/** Depthwise separable convolutions: SeparableConv2D, or DepthwiseConv2D then a 1×1 Conv2D. */
function separableCount(graph: KerasGraph): number {
  const byName = new Map(graph.layers.map((l) => [l.name, l]));
  let n = 0;
  for (const l of graph.layers) {
    if (l.className === 'SeparableConv2D') n += 1;
    if (l.className !== 'Conv2D' || l.settings.kernel_size?.[0] !== 1) continue;
    let cur = l.inbound[0] ? byName.get(l.inbound[0].layer) : undefined;
    while (cur && ['BatchNormalization', 'ReLU', 'Activation', 'Dropout'].includes(cur.className)) {
      cur = cur.inbound[0] ? byName.get(cur.inbound[0].layer) : undefined;
    }
    if (cur?.className === 'DepthwiseConv2D') n += 1;
  }
  return n;
}

function count(graph: KerasGraph, op: Op): number {
  if (op === 'separable') return separableCount(graph);
  if (op === 'depthwise') {
    return graph.layers.filter(
      (l) => l.className === 'DepthwiseConv2D' || l.className === 'SeparableConv2D',
    ).length;
  }
  return stepsOf(graph).filter((s) => s.op === op).length;
}

function outputActivation(graph: KerasGraph, name: string): string {
  const layer = graph.layers.find((l) => l.name === name);
  if (!layer) return 'linear';
  if (layer.className === 'Softmax') return 'softmax';
  if (layer.settings.activation) return layer.settings.activation;
  return layer.className.toLowerCase();
}

function checkOne(graph: KerasGraph, task: LabTask, req: Requirement): RequirementResult {
  const steps = stepsOf(graph);
  const input = graph.layers.find((l) => l.name === graph.inputs[0]?.layer)?.settings.shape ?? [];
  switch (req.kind) {
    case 'input_shape': {
      const same = input.length === 3 && input.every((d, i) => d === task.inputShape[i]);
      const params = { expected: shapeText(task.inputShape), found: shapeText(input) };
      return same ? ok(req.kind, params) : fail(req.kind, 'input_shape', params);
    }
    case 'functional_api':
      return graph.style === 'functional' ? ok(req.kind) : fail(req.kind, 'sequential', {});
    case 'shapes_valid': {
      const trace = traceShapes(graph, task.inputShape);
      const at = shapeText(task.inputShape);
      const f = trace.failure;
      if (!f) return ok(req.kind, { at });
      return fail(req.kind, f.reason, {
        at,
        layer: f.layer,
        className: f.className,
        input: shapeText(f.input),
        output: f.output ? shapeText(f.output) : '',
      });
    }
    case 'layers':
      return compareSequence(req.kind, req.sequence, steps, 0, true);
    case 'layers_prefix':
      return compareSequence(req.kind, req.sequence, steps, 0, false);
    case 'layers_suffix': {
      const offset = Math.max(0, steps.length - req.sequence.length);
      return compareSequence(req.kind, req.sequence, steps.slice(offset), offset, false);
    }
    case 'residual_blocks':
      return residualBlocks(graph, req);
    case 'count': {
      const n = count(graph, req.op);
      if (req.min !== undefined && n < req.min) {
        return fail(req.kind, 'count_low', { op: req.op, expected: req.min, found: n });
      }
      if (req.max !== undefined && n > req.max) {
        return fail(req.kind, 'count_high', { op: req.op, expected: req.max, found: n });
      }
      return ok(req.kind, { op: req.op, found: n });
    }
    case 'outputs': {
      const out = graph.outputs[0]?.layer ?? '';
      const shape = traceShapes(graph).shapes.get(out);
      const act = outputActivation(graph, out);
      if (graph.outputs.length !== 1 || !shape || shape.length !== 1 || shape[0] !== req.units) {
        return fail(req.kind, 'outputs_units', {
          expected: req.units,
          found: shape ? shapeText(shape) : '?',
          layer: out,
        });
      }
      if (act !== 'softmax') {
        return fail(req.kind, 'outputs_activation', {
          layer: out,
          found: act,
          expected: req.units,
        });
      }
      return ok(req.kind, { expected: req.units, layer: out });
    }
  }
}

/**
 * Checks `graph` against every requirement of `task`, in the task's order.
 *
 * @example
 * const results = checkModel(graph, labTask('alexnet'));
 * results.filter((r) => !r.ok); // [{kind: 'layers', code: 'layer_differs', ...}]
 */
export function checkModel(graph: KerasGraph, task: LabTask): RequirementResult[] {
  return task.requirements.map((req) => checkOne(graph, task, req));
}

/** The `accuracy` requirement for a measured top-1 accuracy (fraction) against the task's bar. */
export function accuracyResult(task: LabTask, accuracy: number): RequirementResult | undefined {
  if (task.accuracyBar === undefined) return undefined;
  const params = {
    accuracy: Math.round(accuracy * 1000) / 10,
    bar: Math.round(task.accuracyBar * 1000) / 10,
  };
  return accuracy > task.accuracyBar
    ? ok('accuracy', params)
    : fail('accuracy', 'accuracy_low', params);
}
