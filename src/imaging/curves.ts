import type * as vl from 'vega-lite';
import { renderVegaLite } from './chart.ts';

/** One training run's per-epoch figures, as `history.json` holds them. */
export interface CurveRun {
  /** Legend label, e.g. the model id. */
  readonly label: string;
  readonly history: readonly {
    readonly epoch: number;
    readonly loss: number;
    readonly acc: number;
    readonly valLoss: number;
    readonly valAcc: number;
  }[];
}

/**
 * Draws learning curves as Keras users plot `history.history`: loss and accuracy per epoch, the
 * training figures dashed and the validation figures solid, one colour per run, so that two runs
 * (ResNet and its plain twin) compare side by side.
 * @returns PNG bytes, about 1000x380 pixels.
 */
export async function renderLearningCurves(
  runs: readonly CurveRun[],
  title?: string,
): Promise<Buffer> {
  const values = runs
    .flatMap((run) =>
      run.history.flatMap((r) => [
        { run: run.label, epoch: r.epoch, split: 'train', metric: 'loss', value: r.loss },
        { run: run.label, epoch: r.epoch, split: 'validation', metric: 'loss', value: r.valLoss },
        { run: run.label, epoch: r.epoch, split: 'train', metric: 'accuracy', value: r.acc },
        {
          run: run.label,
          epoch: r.epoch,
          split: 'validation',
          metric: 'accuracy',
          value: r.valAcc,
        },
      ]),
    )
    .filter((v) => Number.isFinite(v.value));
  const spec: vl.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    title: { text: title ?? '', subtitle: 'validation solid, training dashed' },
    data: { values },
    facet: {
      column: { field: 'metric', type: 'nominal', sort: ['loss', 'accuracy'], title: null },
    },
    spec: {
      width: 420,
      height: 260,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1 }, title: 'epoch' },
        y: { field: 'value', type: 'quantitative', scale: { zero: false }, title: null },
        color: { field: 'run', type: 'nominal', title: 'model' },
        // Vega draws no visible symbol for a dash legend here; the subtitle says it instead.
        strokeDash: {
          field: 'split',
          type: 'nominal',
          sort: ['validation', 'train'],
          legend: null,
        },
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
  return renderVegaLite(spec);
}
