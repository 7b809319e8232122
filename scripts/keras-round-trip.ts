/**
 * Every installed course model through `export-keras` and back, in both layouts: file size, write
 * and read time, and the largest difference of the predictions on random inputs (the issue's
 * bar: 1e-5). Prints a table and, last, one JSON line. `npx tsx scripts/keras-round-trip.ts [ids]`
 */
import * as tf from '@tensorflow/tfjs';
import Table from 'cli-table3';
import { initBackend } from '../src/ml/backend.ts';
import { readKerasModel } from '../src/ml/keras/read-keras.ts';
import { writeKerasModel } from '../src/ml/keras/write-keras.ts';
import { ModelRegistry } from '../src/ml/registry.ts';

await initBackend();
const registry = new ModelRegistry('models');
const ids = process.argv.slice(2).length
  ? process.argv.slice(2)
  : (await registry.list()).map((m) => m.id).filter((id) => id !== 'mobilenet-imagenet');
const rows: Record<string, string | number>[] = [];
for (const id of ids) {
  const { model } = await registry.get(id);
  for (const format of ['keras', 'h5'] as const) {
    const t0 = performance.now();
    const bytes = await writeKerasModel(model, format);
    const t1 = performance.now();
    const back = await readKerasModel(bytes);
    const t2 = performance.now();
    const diff = tf.tidy(() => {
      const x = tf.randomUniform(
        [8, ...(model.inputs[0]!.shape.slice(1) as number[])],
        0,
        1,
        'float32',
        1,
      );
      return tf.max(
        tf.abs(tf.sub(model.predict(x) as tf.Tensor, back.model.predict(x) as tf.Tensor)),
      );
    });
    const maxDiff = (await diff.data())[0] ?? NaN;
    diff.dispose();
    back.model.dispose();
    rows.push({
      model: id,
      format,
      bytes: bytes.length,
      writeMs: Math.round(t1 - t0),
      readMs: Math.round(t2 - t1),
      maxDiff,
      ok: maxDiff <= 1e-5 ? 'yes' : 'NO',
    });
  }
}
await registry.dispose();
const table = new Table({ head: Object.keys(rows[0] ?? {}) });
for (const r of rows) table.push(Object.values(r).map(String));
console.log(table.toString());
console.log(JSON.stringify({ backend: tf.getBackend(), rows }));
