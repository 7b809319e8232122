import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { translator } from '../../../../src/core/i18n.ts';
import { resultDetail } from '../../../../src/core/lab-report.ts';
import { initBackend } from '../../../../src/ml/backend.ts';
import { buildAlexNet } from '../../../../src/ml/architectures/alexnet.ts';
import { parseModelConfig } from '../../../../src/ml/keras/keras-config.ts';
import type { KerasGraph } from '../../../../src/ml/keras/keras-graph.ts';
import { readKerasGraph } from '../../../../src/ml/keras/read-keras.ts';
import { writeKerasModel } from '../../../../src/ml/keras/write-keras.ts';
import { checkModel, type RequirementResult } from '../../../../src/ml/lab/check-model.ts';
import { labTask, labTasks } from '../../../../src/ml/lab/lab-task.ts';
import {
  buildAlexNetLike,
  buildSequentialLeNet,
  sequentialFile,
} from '../../../fixtures/keras-models.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

/** The graph of a shipped model, from its model.json (no weights needed for the checks). */
function shippedGraph(id: string): KerasGraph {
  const json = JSON.parse(readFileSync(`models/${id}/model.json`, 'utf8')) as {
    modelTopology: { model_config?: unknown };
  };
  return parseModelConfig(json.modelTopology.model_config ?? json.modelTopology);
}

function failures(results: readonly RequirementResult[]): RequirementResult[] {
  return results.filter((r) => !r.ok);
}

const en = translator('en');
const ru = translator('ru');

describe('lab task specs', () => {
  it('has the six tasks of the lab, each with its data set and reference model', () => {
    const tasks = labTasks();
    expect([...tasks.keys()].sort()).toEqual([
      'alexnet',
      'lenet',
      'mobilenet',
      'plaincnn',
      'plaincnn18',
      'resnet18',
    ]);
    expect(tasks.get('alexnet')).toMatchObject({
      dataset: 'cifar-10',
      inputShape: [32, 32, 3],
      accuracyBar: 0.65,
    });
    expect(() => labTask('vgg16')).toThrow(/unknown lab task/);
  });

  for (const [task, model] of [
    ['lenet', 'lenet-mnist'],
    ['alexnet', 'alexnet-cifar10'],
    ['resnet18', 'resnet18-cifar10'],
    ['plaincnn18', 'plaincnn18-cifar10'],
    ['mobilenet', 'mobilenet-fashion'],
    ['plaincnn', 'plaincnn-fashion'],
  ] as const) {
    it(`passes the course's ${model} on task ${task}`, () => {
      expect(failures(checkModel(shippedGraph(model), labTask(task)))).toEqual([]);
    });
  }

  it("fails MobileNet's task for the plain CNN and the plain CNN's for MobileNet", () => {
    const mob = failures(checkModel(shippedGraph('plaincnn-fashion'), labTask('mobilenet')));
    expect(mob.map((r) => [r.code, r.params.found])).toEqual([['count_low', 0]]);
    const plain = failures(checkModel(shippedGraph('mobilenet-fashion'), labTask('plaincnn')));
    expect(plain.map((r) => [r.code, r.params.found])).toEqual([['count_high', 5]]);
    expect(resultDetail(plain[0]!, en)).toBe('expected at most 0 depthwise convolutions, found 5');
  });
});

describe('checking AlexNet files', () => {
  it('passes every requirement on the exported reference AlexNet', async () => {
    const model = buildAlexNet();
    const { graph } = await readKerasGraph(await writeKerasModel(model, 'keras'));
    model.dispose();
    const results = checkModel(graph, labTask('alexnet'));
    expect(results.map((r) => r.kind)).toEqual([
      'input_shape',
      'functional_api',
      'shapes_valid',
      'layers',
      'outputs',
    ]);
    expect(failures(results)).toEqual([]);
  }, 60_000);

  it('fails a first convolution of 64 filters 3×3 stride 1, with the reason in English and Russian', async () => {
    const model = buildAlexNetLike({ first: { filters: 64, kernel: 3, stride: 1 }, dense: 32 });
    const { graph } = await readKerasGraph(await writeKerasModel(model, 'h5'));
    model.dispose();
    const failed = failures(checkModel(graph, labTask('alexnet')));
    expect(failed.map((r) => r.kind)).toEqual(['layers']);
    expect(resultDetail(failed[0]!, en)).toBe(
      'conv1 (layer 1): expected Conv2D 96 filters 11×11 stride 4, found Conv2D 64 filters 3×3 stride 1',
    );
    expect(resultDetail(failed[0]!, ru)).toBe(
      'conv1 (слой 1): ожидалось Conv2D 96 фильтров 11×11 шаг 4, найдено Conv2D 64 фильтров 3×3 шаг 1',
    );
  });

  it('reports the input shape and the layer where 32×32 inputs collapse for a 227×227 AlexNet', async () => {
    const model = buildAlexNetLike({ input: 227, padding: 'valid', dense: 32 });
    const { graph } = await readKerasGraph(await writeKerasModel(model, 'keras'));
    model.dispose();
    const byKind = new Map(checkModel(graph, labTask('alexnet')).map((r) => [r.kind, r]));
    expect(resultDetail(byKind.get('input_shape')!, en)).toBe('expected 32×32×3, found 227×227×3');
    const shapes = byKind.get('shapes_valid')!;
    expect(shapes).toMatchObject({
      ok: false,
      code: 'collapse',
      params: { layer: 'pool2', input: '2×2×256', output: '0×0×256' },
    });
    expect(resultDetail(shapes, en)).toContain(
      'layer pool2 (MaxPooling2D) gets 2×2×256 and would output 0×0×256',
    );
  });
});

describe('functional API and residual blocks', () => {
  it('fails the functional-API requirement for a Sequential model and passes the rest', async () => {
    const { graph } = await readKerasGraph(await sequentialFile(buildSequentialLeNet(), 'keras'));
    const failed = failures(checkModel(graph, labTask('lenet')));
    expect(failed.map((r) => [r.kind, r.code])).toEqual([['functional_api', 'sequential']]);
    expect(resultDetail(failed[0]!, en)).toContain('keras.Input');
  });

  it('fails ResNet-18 without the Add, saying so', () => {
    const g = shippedGraph('resnet18-cifar10');
    // each Add replaced by its residual branch: the same network without shortcuts
    const replaced = new Map(
      g.layers.filter((l) => l.className === 'Add').map((l) => [l.name, l.inbound[0]!]),
    );
    const noAdd: KerasGraph = {
      ...g,
      layers: g.layers
        .filter((l) => !replaced.has(l.name))
        .map((l) => ({ ...l, inbound: l.inbound.map((r) => replaced.get(r.layer) ?? r) })),
    };
    const failed = failures(checkModel(noAdd, labTask('resnet18')));
    expect(failed.map((r) => [r.kind, r.code])).toEqual([['residual_blocks', 'no_add']]);
    expect(resultDetail(failed[0]!, en)).toBe(
      'no residual connection (Add layer): expected 8 blocks whose input is added to their output',
    );
  });

  it('fails blocks that are not 1×1 → 3×3 → 1×1 bottlenecks, naming the block', () => {
    const g = shippedGraph('resnet18-cifar10');
    const layers = g.layers.map((l) =>
      l.name === 'stage2_block1_reduce'
        ? { ...l, settings: { ...l.settings, kernel_size: [3, 3] as const } }
        : l,
    );
    const failed = failures(checkModel({ ...g, layers }, labTask('resnet18')));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      code: 'block_pattern',
      params: { expected: '1×1 → 3×3 → 1×1', found: '3×3 → 3×3 → 1×1' },
    });
  });
});
