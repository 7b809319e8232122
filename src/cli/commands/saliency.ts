import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import seedrandom from 'seedrandom';
import sharp from 'sharp';
import type { Config } from '../../config.ts';
import { UserError } from '../../errors.ts';
import { explainImage } from '../../explain/explain-image.ts';
import { SMOOTH_GRAD_DEFAULTS, type SmoothGradOptions } from '../../explain/saliency.ts';
import { COLORMAPS } from '../../imaging/colormap.ts';
import { renderMapGrid, type GridCell } from '../../imaging/overlay.ts';
import { initBackend } from '../../ml/backend.ts';
import { IMAGENET_MODEL_ID } from '../../ml/imagenet.ts';
import { ModelRegistry } from '../../ml/registry.ts';
import { loadDataset } from '../../trainer/datasets/load.ts';
import { parseIntOption } from '../options.ts';
import {
  defaultExplainModel,
  explainFile,
  explanationJson,
  outName,
  parseAlpha,
  parseColormap,
  type ExplainFlags,
} from './gradcam.ts';

interface SaliencyFlags extends ExplainFlags {
  smooth?: number | true;
  cifar?: number | true;
  seed: number;
}

function smoothOf(flag: number | true | undefined): SmoothGradOptions | undefined {
  if (flag === undefined) return undefined;
  return flag === true ? SMOOTH_GRAD_DEFAULTS : { ...SMOOTH_GRAD_DEFAULTS, samples: flag };
}

/**
 * The course task: `count` random CIFAR-10 test images through the ImageNet model, their
 * saliency maps in one PNG grid (images above, maps below).
 */
async function cifarGrid(flags: SaliencyFlags, count: number, config: Config): Promise<void> {
  await initBackend({ backend: config.TFJS_BACKEND });
  const registry = ModelRegistry.fromConfig(config);
  try {
    const loaded = await registry.get(flags.model ?? (await defaultExplainModel(registry, config)));
    const test = await loadDataset('cifar-10', 'test', config.DATA_DIR, {
      sharedDataDir: config.CNN_SHARED_DATA,
    });
    const rng = seedrandom(String(flags.seed));
    const picked = new Set<number>();
    while (picked.size < Math.min(count, test.count)) picked.add(Math.floor(rng() * test.count));
    const smooth = smoothOf(flags.smooth);
    const cells: GridCell[] = [];
    const size = test.height * test.width * test.channels;
    for (const i of picked) {
      const png = await sharp(test.images.subarray(i * size, (i + 1) * size), {
        raw: { width: test.width, height: test.height, channels: 3 },
      })
        .png()
        .toBuffer();
      const e = await explainImage(
        loaded,
        png,
        { maxBytes: config.MAX_IMAGE_BYTES, maxPixels: config.MAX_IMAGE_PIXELS },
        {
          method: 'saliency',
          faithfulness: false,
          seed: flags.seed,
          ...(smooth ? { smoothGrad: smooth } : {}),
        },
      );
      const truth = test.classNames[test.labels[i] ?? 0] ?? '?';
      if (flags.json)
        console.log(
          JSON.stringify({
            index: i,
            trueClass: truth,
            ...explanationJson(`cifar-10 test #${i}`, e),
          }),
        );
      cells.push({
        image: e.image,
        // The map at the model input's resolution: finer than the 32x32 image.
        map: e.rawMap,
        title: [`#${i} ${truth}`, `${e.label} ${(e.confidence * 100).toFixed(1)}%`],
      });
    }
    const out = flags.out ?? 'saliency-cifar.png';
    await writeFile(
      out,
      await renderMapGrid(cells, {
        colormap: flags.colormap,
        title: `${smooth ? 'SmoothGrad' : 'Saliency'} maps, ${loaded.meta.id} on CIFAR-10 test images (true class; model's answer)`,
      }),
    );
    if (!flags.json) console.log(`→ ${out}`);
  } finally {
    await registry.dispose();
  }
}

const optionalInt = (v: string): number => parseIntOption(v);

/**
 * `saliency [image]`: the saliency map (Simonyan et al. 2014; SmoothGrad with `--smooth`) of an
 * image as an overlay PNG, or with `--cifar [n]` the course task's grid of CIFAR-10 images.
 */
export function registerSaliency(program: Command, config: Config): void {
  program
    .command('saliency')
    .description(
      'saliency map: which pixels change the class score most (overlay PNG), or --cifar: the course grid',
    )
    .argument('[image]', 'image file')
    .option(
      '--model <id>',
      `model id (default: ${IMAGENET_MODEL_ID} when installed, else ${config.DEFAULT_MODEL})`,
    )
    .option('--class <index|name>', 'class to explain (default: the top prediction)')
    .option(
      '--smooth [samples]',
      `SmoothGrad: average over noisy copies (default ${SMOOTH_GRAD_DEFAULTS.samples})`,
      optionalInt,
    )
    .option(
      '--cifar [count]',
      'random CIFAR-10 test images (default 5) through the model, one PNG grid',
      optionalInt,
    )
    .option('--seed <n>', 'random seed for --cifar and --smooth', parseIntOption, 1)
    .option('--colormap <name>', `colour map: ${COLORMAPS.join(', ')}`, parseColormap, 'turbo')
    .option('--alpha <0..1>', 'opacity of the map over the photo', parseAlpha, 0.5)
    .option(
      '--out <file.png>',
      'where the PNG goes (default: <image>-saliency.png, or saliency-cifar.png)',
    )
    .option('--json', 'print JSON: class, confidence, peak, faithfulness', false)
    .action(async (file: string | undefined, flags: SaliencyFlags) => {
      if (flags.cifar !== undefined) {
        await cifarGrid(flags, flags.cifar === true ? 5 : flags.cifar, config);
        return;
      }
      if (file === undefined) {
        throw new UserError('argument.invalid', 'give an image, or --cifar', {
          value: '',
          usage: 'saliency <image> | saliency --cifar [count]',
        });
      }
      const smooth = smoothOf(flags.smooth);
      await explainFile(
        file,
        flags,
        {
          method: 'saliency',
          seed: flags.seed,
          ...(smooth ? { smoothGrad: { ...smooth, seed: flags.seed } } : {}),
        },
        config,
        outName(file, smooth ? 'smoothgrad' : 'saliency'),
      );
    });
}
