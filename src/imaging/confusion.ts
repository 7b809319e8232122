/**
 * A confusion matrix as a PNG heat map (Vega-Lite): rows are the true classes, columns the
 * predicted ones, each cell the share of its row (the row's recall on the diagonal) with the
 * count written in it.
 */
import type * as vl from 'vega-lite';
import { renderVegaLite } from './chart.ts';

/** What {@link renderConfusionMatrix} draws. */
export interface ConfusionInput {
  /** `matrix[true][predicted]` counts. */
  readonly matrix: readonly (readonly number[])[];
  readonly classNames: readonly string[];
  readonly title: string;
  /** Axis titles. */
  readonly trueLabel: string;
  readonly predictedLabel: string;
}

/**
 * Renders the matrix.
 * @returns PNG bytes.
 */
export async function renderConfusionMatrix(input: ConfusionInput): Promise<Buffer> {
  const values = input.matrix.flatMap((row, i) => {
    const sum = row.reduce((a, b) => a + b, 0);
    return row.map((count, j) => ({
      truth: input.classNames[i] ?? String(i),
      predicted: input.classNames[j] ?? String(j),
      count,
      share: sum === 0 ? 0 : count / sum,
    }));
  });
  const order = [...input.classNames];
  const spec: vl.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: input.title,
    width: 36 * order.length,
    height: 36 * order.length,
    data: { values },
    encoding: {
      y: { field: 'truth', type: 'nominal', sort: order, title: input.trueLabel },
      x: {
        field: 'predicted',
        type: 'nominal',
        sort: order,
        title: input.predictedLabel,
        axis: { labelAngle: -45 },
      },
    },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: {
            field: 'share',
            type: 'quantitative',
            scale: { scheme: 'blues', domain: [0, 1] },
            legend: null,
          },
        },
      },
      {
        mark: { type: 'text', fontSize: 9 },
        encoding: {
          text: { field: 'count', type: 'quantitative' },
          color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: 'black' },
        },
      },
    ],
  };
  return renderVegaLite(spec);
}
