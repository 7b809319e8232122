/**
 * Regenerates COMPARISON.md and its charts (docs/comparison/*.png) from the shipped models:
 * `npm run comparison`. Accuracy, epochs and training time come from each model's meta.json and
 * history.json; parameters and MACs from `src/ml/stats.ts`; speed is measured here, now, every
 * model in the same run on the same backend (ms/image at batch 1, the time of 1,000 images).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, PROJECT_ROOT } from '../src/config.ts';
import { renderLearningCurves, type CurveRun } from '../src/imaging/curves.ts';
import { renderVegaLite } from '../src/imaging/chart.ts';
import { initBackend } from '../src/ml/backend.ts';
import { ModelRegistry } from '../src/ml/registry.ts';
import { profileModel, type ModelProfile } from '../src/ml/stats.ts';

const OUT_DIR = path.join(PROJECT_ROOT, 'docs', 'comparison');
const OUT_MD = path.join(PROJECT_ROOT, 'COMPARISON.md');

const pct = (x: number | undefined) => (x === undefined ? 'n/a' : `${(x * 100).toFixed(2)}%`);
const int = (n: number) => n.toLocaleString('en-US');
const mb = (b: number) => `${(b / 1e6).toFixed(2)} MB`;
const millions = (n: number) => `${(n / 1e6).toFixed(2)}M`;

async function history(dir: string): Promise<CurveRun['history']> {
  try {
    return JSON.parse(
      await readFile(path.join(dir, 'history.json'), 'utf8'),
    ) as CurveRun['history'];
  } catch {
    return [];
  }
}

function row(p: ModelProfile): string {
  const t = p.meta.training;
  const q = p.meta.quantization;
  return [
    `\`${p.meta.id}\``,
    p.meta.dataset,
    pct(p.meta.testAccuracy) + (q ? ` (${q.dtype}; float32 ${pct(q.float32TestAccuracy)})` : ''),
    int(p.stats.params.total),
    millions(p.stats.macs),
    mb(p.weightFileBytes),
    p.latency.msPerImage.toFixed(2),
    int(Math.round(p.latency.imagesPerSecond)),
    ((1000 / p.latency.imagesPerSecond) * 1000).toFixed(0),
    // A warm-started run (`train --init-from`) adds to its starting model's: "30 + 8".
    t
      ? `${t.initFrom?.epochs !== undefined ? `${t.initFrom.epochs} + ` : ''}${t.epochs}${t.keptEpoch && t.keptEpoch !== t.epochs ? ` (kept ${t.keptEpoch})` : ''}`
      : 'n/a',
    t
      ? `${t.initFrom?.seconds !== undefined ? `${(t.initFrom.seconds / 60).toFixed(0)} + ` : ''}${(t.seconds / 60).toFixed(0)} min`
      : 'n/a',
  ].join(' | ');
}

const HEADER =
  '| model | data set | test accuracy | parameters | MACs/image | weights on disk | ms/image (batch 1) | images/s (1,000) | ms for 1,000 images | epochs | training time |\n' +
  '|---|---|---|---|---|---|---|---|---|---|---|';

/** Each model's `train` command as recorded in its meta.json, as Markdown list items. */
const commands = (ps: readonly ModelProfile[]) =>
  ps.map((p) => {
    const t = p.meta.training;
    const first = t?.initFrom?.command;
    const last = `\`${t?.command ?? `${p.meta.id}: not recorded`}\``;
    return first ? `- \`${first}\`, then ${last}` : `- ${last}`;
  });

const table = (ps: readonly ModelProfile[]) =>
  [HEADER, ...ps.map((p) => `| ${row(p)} |`)].join('\n');

/** Bars of one figure per model, for the "same depth" comparisons. */
async function bars(ps: readonly ModelProfile[], title: string): Promise<Buffer> {
  const values = ps.flatMap((p) => [
    { model: p.meta.id, figure: 'test accuracy, %', value: (p.meta.testAccuracy ?? 0) * 100 },
    { model: p.meta.id, figure: 'parameters, thousands', value: p.stats.params.total / 1000 },
    { model: p.meta.id, figure: 'MACs per image, millions', value: p.stats.macs / 1e6 },
    { model: p.meta.id, figure: 'ms for 1,000 images', value: 1e6 / p.latency.imagesPerSecond },
  ]);
  return renderVegaLite({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    title,
    data: { values },
    facet: { column: { field: 'figure', type: 'nominal', title: null, sort: null } },
    spec: {
      width: 160,
      height: 200,
      mark: { type: 'bar' },
      encoding: {
        x: { field: 'model', type: 'nominal', title: null, axis: { labelAngle: -30 } },
        y: { field: 'value', type: 'quantitative', title: null },
        color: { field: 'model', type: 'nominal', legend: null },
      },
    },
    resolve: { scale: { y: 'independent' } },
  });
}

async function main(registry: ModelRegistry): Promise<void> {
  const backend = await initBackend({ backend: loadConfig().TFJS_BACKEND });
  const profiles: ModelProfile[] = [];
  const histories = new Map<string, CurveRun['history']>();
  const skipped: string[] = [];
  for (const meta of await registry.list()) {
    try {
      const loaded = await registry.get(meta.id);
      console.error(`measuring ${meta.id}...`);
      profiles.push(await profileModel(loaded, { batch1Runs: 30, throughputBatch: 1000 }));
      histories.set(meta.id, await history(loaded.dir));
    } catch (e) {
      console.error(`skipped ${meta.id}: ${(e as Error).message}`);
      skipped.push(`\`${meta.id}\` (${(e as Error).message})`);
    }
  }
  const byId = (id: string) => profiles.find((p) => p.meta.id === id);
  await mkdir(OUT_DIR, { recursive: true });
  const charts: string[] = [];
  const pair = async (a: string, b: string, file: string, title: string) => {
    const pa = byId(a);
    const pb = byId(b);
    if (!pa || !pb) return undefined;
    await writeFile(
      path.join(OUT_DIR, `${file}-curves.png`),
      await renderLearningCurves(
        [
          { label: a, history: histories.get(a) ?? [] },
          { label: b, history: histories.get(b) ?? [] },
        ],
        `${title}: learning curves`,
      ),
    );
    await writeFile(path.join(OUT_DIR, `${file}-figures.png`), await bars([pa, pb], title));
    charts.push(file);
    return [pa, pb] as const;
  };
  const resnet = await pair(
    'resnet18-cifar10',
    'plaincnn18-cifar10',
    'resnet-vs-plain',
    'ResNet-18 vs plain CNN-18 (CIFAR-10)',
  );
  const mobile = await pair(
    'mobilenet-fashion',
    'plaincnn-fashion',
    'mobilenet-vs-plain',
    'MobileNet-like vs plain CNN (Fashion-MNIST)',
  );

  const lines: string[] = [
    '# Model comparison',
    '',
    `Regenerated by \`npm run comparison\` (scripts/comparison.ts) on ${new Date().toISOString().slice(0, 10)}:`,
    `${os.cpus().length} CPU cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), TF.js backend \`${backend.name}\`.`,
    'Test accuracy is measured on the full test set of each data set by `train` and',
    'read from `models/<id>/meta.json` (for quantized weights, of the weights shipped); parameters and MACs are counted by `src/ml/stats.ts`',
    '(MACs = multiply-accumulates of convolutions and dense layers for one image; FLOPs = 2 x MACs);',
    'speed is measured in this run, every model one after another on the same backend: the median',
    'of 30 single-image predictions, and one batch of 1,000 images.',
    '',
    '## All models',
    '',
    table(profiles),
    '',
  ];
  if (resnet) {
    const [r, p] = resnet;
    const gap = ((r.meta.testAccuracy ?? 0) - (p.meta.testAccuracy ?? 0)) * 100;
    lines.push(
      '## ResNet-18 vs a plain CNN of the same depth (course task 3)',
      '',
      'Both have the stem Conv 64@7x7/2 + MaxPool 3x3/2, four stages of two bottleneck blocks',
      '(1x1 > 3x3 > 1x1, batch norm) and global average pooling; the plain twin has the same convs',
      'without any shortcut (so also without the three 1x1 projections). The `train` commands',
      'that made them (from their meta.json):',
      '',
      ...commands([r, p]),
      '',
      table([r, p]),
      '',
      `Test accuracy difference, ResNet minus plain: ${gap >= 0 ? '+' : ''}${gap.toFixed(2)} points.`,
      '',
      '![learning curves](docs/comparison/resnet-vs-plain-curves.png)',
      '',
      '![figures](docs/comparison/resnet-vs-plain-figures.png)',
      '',
    );
  }
  if (mobile) {
    const [m, p] = mobile;
    lines.push(
      '## MobileNet-like vs a plain CNN of the same depth (course task 4)',
      '',
      'Same stem, five blocks of the same widths and strides; each MobileNet block is a depthwise',
      '3x3 conv + BN + ReLU6 and a pointwise 1x1 conv + BN + ReLU6, each plain block one 3x3 conv',
      '+ BN + ReLU6. Parameters and the time for 1,000 images below come from this one run.',
      'The `train` commands that made them:',
      '',
      ...commands([m, p]),
      '',
      table([m, p]),
      '',
      `Parameters: the plain CNN has ${(p.stats.params.total / m.stats.params.total).toFixed(1)}x as many;`,
      `MACs: ${(p.stats.macs / m.stats.macs).toFixed(1)}x; time for 1,000 images: plain ${(1e6 / p.latency.imagesPerSecond).toFixed(0)} ms,`,
      `MobileNet-like ${(1e6 / m.latency.imagesPerSecond).toFixed(0)} ms.`,
      '',
      '![learning curves](docs/comparison/mobilenet-vs-plain-curves.png)',
      '',
      '![figures](docs/comparison/mobilenet-vs-plain-figures.png)',
      '',
    );
  }
  if (skipped.length > 0) lines.push(`Not measured: ${skipped.join('; ')}.`, '');
  await writeFile(OUT_MD, lines.join('\n'));
  console.error(`wrote ${path.relative(PROJECT_ROOT, OUT_MD)} and ${charts.length * 2} charts`);
}

// The shipped models only (not a third-party ImageNet model found in a data folder).
const registry = new ModelRegistry(loadConfig().MODELS_DIR);
try {
  await main(registry);
} finally {
  await registry.dispose();
}
