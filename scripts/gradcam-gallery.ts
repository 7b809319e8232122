/**
 * Renders a Grad-CAM gallery of three ImageNet classes from the demo photos, for the course's
 * task 5: for each photo, Grad-CAM and Grad-CAM++ of its labelled class on `mobilenet-imagenet`,
 * one overlay PNG each, and a summary line (answer, where the heat is, the blur check).
 *
 *   npx tsx scripts/gradcam-gallery.ts <out-dir> [--photos <dir>] [--classes 101,21,23]
 *
 * The photos default to `$CNN_SHARED_DATA/imagenet/photos/imagenet_samples`, whose file names
 * start with the ImageNet class index (`101.67.JPEG`). They are third-party images: keep the
 * gallery out of the repository.
 */
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.ts';
import { explanationText, methodName, renderExplanation } from '../src/core/explanation-reply.ts';
import { translator } from '../src/core/i18n.ts';
import { explainImage } from '../src/explain/explain-image.ts';
import { initBackend } from '../src/ml/backend.ts';
import { IMAGENET_MODEL_ID } from '../src/ml/imagenet.ts';
import { ModelRegistry } from '../src/ml/registry.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { photos: { type: 'string' }, classes: { type: 'string' } },
});
const outDir = positionals[0];
if (!outDir) {
  console.error(
    'usage: npx tsx scripts/gradcam-gallery.ts <out-dir> [--photos <dir>] [--classes 101,21,23]',
  );
  process.exit(2);
}
const config = loadConfig();
const photos =
  values.photos ??
  path.join(config.CNN_SHARED_DATA ?? config.DATA_DIR, 'imagenet', 'photos', 'imagenet_samples');
const files = (await readdir(photos)).filter((f) => /^\d+\./.test(f)).sort();
const classOf = (f: string): number => Number(f.split('.')[0]);
const wanted = values.classes
  ? values.classes.split(',').map(Number)
  : [...new Set(files.map(classOf))].slice(0, 3);

await initBackend({ backend: config.TFJS_BACKEND });
const registry = ModelRegistry.fromConfig(config);
const loaded = await registry.get(IMAGENET_MODEL_ID);
const limits = { maxBytes: config.MAX_IMAGE_BYTES, maxPixels: config.MAX_IMAGE_PIXELS };
const t = translator('en');
await mkdir(outDir, { recursive: true });
for (const file of files.filter((f) => wanted.includes(classOf(f)))) {
  const bytes = await readFile(path.join(photos, file));
  for (const method of ['gradcam', 'gradcam++'] as const) {
    const e = await explainImage(loaded, bytes, limits, {
      method,
      target: { kind: 'index', index: classOf(file) },
    });
    const name = methodName(method, false, t);
    const out = path.join(
      outDir,
      `${path.parse(file).name}-${method === 'gradcam' ? 'gradcam' : 'gradcampp'}.png`,
    );
    await writeFile(out, await renderExplanation(e, name, t, 'en'));
    console.log(`${file}\n${explanationText(e, name, t, 'en')}\n→ ${out}\n`);
  }
}
await registry.dispose();
