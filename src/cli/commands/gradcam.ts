import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { Config } from '../../config.ts';
import { explanationText, methodName, renderExplanation } from '../../core/explanation-reply.ts';
import { UserError } from '../../errors.ts';
import { translator } from '../../core/i18n.ts';
import type { Explanation, ExplainOptions } from '../../explain/explain-image.ts';
import { explainImage } from '../../explain/explain-image.ts';
import { parseClassTarget } from '../../explain/targets.ts';
import { COLORMAPS, isColormap, type ColormapName } from '../../imaging/colormap.ts';
import { initBackend } from '../../ml/backend.ts';
import { IMAGENET_MODEL_ID } from '../../ml/imagenet.ts';
import { ModelRegistry } from '../../ml/registry.ts';

/** The flags `gradcam` and `saliency` share. */
export interface ExplainFlags {
  model?: string;
  class?: string;
  colormap: ColormapName;
  alpha: number;
  out?: string;
  json: boolean;
}

/** commander parser for `--colormap`. */
export function parseColormap(value: string): ColormapName {
  if (!isColormap(value)) throw new InvalidArgumentError(`expected one of ${COLORMAPS.join(', ')}`);
  return value;
}

/** commander parser for `--alpha`: a number in [0, 1]. */
export function parseAlpha(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1)
    throw new InvalidArgumentError('expected a number in [0, 1]');
  return n;
}

/** The model explained when `--model` is absent: MobileNet when installed, else the default. */
export async function defaultExplainModel(
  registry: ModelRegistry,
  config: Config,
): Promise<string> {
  const ids = (await registry.list()).map((m) => m.id);
  return ids.includes(IMAGENET_MODEL_ID) ? IMAGENET_MODEL_ID : config.DEFAULT_MODEL;
}

/**
 * The `--json` object of an explanation. `size` is the size the positions (`peak`, `blob`) are
 * in: the photo's, upright, or the model input's (`space`); `mapSize` is the size of the map and
 * of the overlay written, which for a photo over 1,024 pixels on a side is the photo scaled to
 * fit 1,024. `peak` is `null` for an all-zero map (`note` says why).
 */
export function explanationJson(file: string, e: Explanation): Record<string, unknown> {
  return {
    file,
    model: e.model,
    method: e.method,
    layer: e.layer ?? null,
    classIndex: e.classIndex,
    label: e.label,
    className: e.className,
    confidence: e.confidence,
    predicted: e.predicted,
    peak: e.peak ?? null,
    space: e.space,
    size: e.original,
    mapSize: { width: e.map.width, height: e.map.height },
    blob: e.blob ?? null,
    thirds: e.thirds,
    faithfulness: e.faithfulness ?? null,
    note: e.note ?? null,
    ms: e.ms,
  };
}

/**
 * Explains one image file and prints the result (text or `--json`); writes the overlay.
 * Shared by `gradcam` and `saliency`.
 */
export async function explainFile(
  file: string,
  flags: ExplainFlags,
  options: Omit<ExplainOptions, 'target'>,
  config: Config,
  defaultOut: string,
): Promise<void> {
  await initBackend({ backend: config.TFJS_BACKEND });
  const registry = ModelRegistry.fromConfig(config);
  try {
    const loaded = await registry.get(flags.model ?? (await defaultExplainModel(registry, config)));
    const limits = { maxBytes: config.MAX_IMAGE_BYTES, maxPixels: config.MAX_IMAGE_PIXELS };
    const s = await stat(file);
    if (s.size > limits.maxBytes) {
      throw new UserError(
        'image.too_large_bytes',
        `file is ${s.size} bytes, the limit is ${limits.maxBytes}`,
      );
    }
    const e = await explainImage(loaded, await readFile(file), limits, {
      ...options,
      target: parseClassTarget(flags.class),
    });
    const t = translator('en');
    const method = methodName(e.method, options.smoothGrad !== undefined, t);
    const out = flags.out ?? defaultOut;
    const png = await renderExplanation(e, method, t, 'en', {
      colormap: flags.colormap,
      alpha: flags.alpha,
    });
    await writeFile(out, png);
    if (flags.json) console.log(JSON.stringify({ ...explanationJson(file, e), out }));
    else console.log(`${explanationText(e, method, t, 'en')}\n→ ${out}`);
  } finally {
    await registry.dispose();
  }
}

/** `<name>-<suffix>.png` in the current folder. */
export function outName(file: string, suffix: string): string {
  return `${path.parse(file).name}-${suffix}.png`;
}

/**
 * `gradcam <image>`: Grad-CAM or Grad-CAM++ of one image, written as an overlay PNG, with the
 * explanation in words (or `--json`).
 */
export function registerGradcam(program: Command, config: Config): void {
  program
    .command('gradcam')
    .description('Grad-CAM: which parts of an image the network used for its answer (overlay PNG)')
    .argument('<image>', 'image file')
    .option(
      '--model <id>',
      `model id (default: ${IMAGENET_MODEL_ID} when installed, else ${config.DEFAULT_MODEL})`,
    )
    .option(
      '--layer <name>',
      'layer to explain (default: the last convolutional layer on every path to the output)',
    )
    .option('--class <index|name>', 'class to explain (default: the top prediction)')
    .option(
      '--method <method>',
      'gradcam or gradcam++',
      (v: string) => {
        if (v !== 'gradcam' && v !== 'gradcam++')
          throw new InvalidArgumentError('expected gradcam or gradcam++');
        return v;
      },
      'gradcam',
    )
    .option('--colormap <name>', `colour map: ${COLORMAPS.join(', ')}`, parseColormap, 'turbo')
    .option('--alpha <0..1>', 'opacity of the heat map over the photo', parseAlpha, 0.5)
    .option('--out <file.png>', 'where the overlay goes (default: <image>-gradcam.png here)')
    .option('--json', 'print one JSON object: class, confidence, layer, peak, faithfulness', false)
    .action(
      async (
        file: string,
        flags: ExplainFlags & { layer?: string; method: 'gradcam' | 'gradcam++' },
      ) => {
        await explainFile(
          file,
          flags,
          { method: flags.method, ...(flags.layer === undefined ? {} : { layer: flags.layer }) },
          config,
          outName(file, flags.method === 'gradcam' ? 'gradcam' : 'gradcampp'),
        );
      },
    );
}
