import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../../config.ts';
import { isUserError, UserError } from '../../errors.ts';
import { renderProbabilityChart } from '../../imaging/chart.ts';
import { logger } from '../../logger.ts';
import { initBackend } from '../../ml/backend.ts';
import { classifyImage, type Classification } from '../../ml/classify.ts';
import { ModelRegistry, type LoadedModel } from '../../ml/registry.ts';
import { notTrainedHint, printJsonError } from '../model-errors.ts';
import { parseIntOption } from '../options.ts';

interface PredictFlags {
  model: string;
  json: boolean;
  chart?: string;
  top: number;
}

const IMAGE_EXT = /\.(png|jpe?g|jfif|webp|gif|tiff?|bmp|avif|heic)$/i;

/**
 * Expands folders (one level, image extensions only) and keeps files as given.
 * @throws {UserError} `argument.invalid` for a folder that holds no image file.
 */
export async function expandInputs(inputs: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const p of inputs) {
    const s = await stat(p).catch(() => undefined);
    if (s?.isDirectory()) {
      const names = (await readdir(p)).filter((n) => IMAGE_EXT.test(n)).sort();
      if (names.length === 0) {
        throw new UserError(
          'argument.invalid',
          `the folder ${p} holds no image file (${IMAGE_EXT.source})`,
        );
      }
      files.push(...names.map((n) => path.join(p, n)));
    } else files.push(p);
  }
  return files;
}

/** Where the chart of `file` goes: `out` itself for one input, else `out` with the file's name added. */
export function chartPath(out: string, file: string, many: boolean): string {
  if (!many) return out;
  const ext = path.extname(out) || '.png';
  return `${out.slice(0, out.length - path.extname(out).length)}-${path.parse(file).name}${ext}`;
}

function describe(file: string, r: Classification): string {
  const top = r.topK.map((t) => `${t.label} ${(t.probability * 100).toFixed(1)}%`).join(', ');
  const note = r.confident ? '' : `  (not confident: ${r.reasons.join(', ')})`;
  return `${file}: ${r.label} (${(r.confidence * 100).toFixed(1)}%)  top: ${top}${note}`;
}

/**
 * `predict <image...>`: classifies images or folders of images with one model. A `--model` that
 * is not installed but `train` knows is answered with the command that trains it; with `--json`,
 * a model that cannot be loaded is one `{"error":{"code","message"}}` line, exit status 1.
 */
export function registerPredict(program: Command, config: Config): void {
  program
    .command('predict')
    .description(
      'classify images (files or folders) with a model; exit status 0 only when every input succeeded',
    )
    .argument('<images...>', 'image files or folders')
    .option('--model <id>', "model id (default: DEFAULT_MODEL, the bot's)", config.DEFAULT_MODEL)
    .option('--json', 'one JSON object per input per line', false)
    .option(
      '--chart <out.png>',
      'write the probability bar chart (several inputs: one file each, named after the input)',
    )
    .option('--top <k>', 'how many classes topK holds', parseIntOption, 5)
    .action(async (inputs: string[], flags: PredictFlags) => {
      await initBackend({ backend: config.TFJS_BACKEND });
      const registry = ModelRegistry.fromConfig(config);
      let loaded: LoadedModel;
      try {
        loaded = await registry.get(flags.model);
      } catch (e) {
        await registry.dispose();
        const reported = notTrainedHint(e);
        if (flags.json) {
          printJsonError(reported);
          return;
        }
        throw reported;
      }
      const files = await expandInputs(inputs);
      const limits = { maxBytes: config.MAX_IMAGE_BYTES, maxPixels: config.MAX_IMAGE_PIXELS };
      let failures = 0;
      for (const file of files) {
        try {
          const s = await stat(file);
          if (s.size > limits.maxBytes) {
            // Read nothing of a file that is too big anyway.
            throw new UserError(
              'image.too_large_bytes',
              `file is ${s.size} bytes, the limit is ${limits.maxBytes}`,
            );
          }
          const bytes = await readFile(file);
          const r = await classifyImage(loaded, bytes, limits, flags.top);
          if (flags.json) {
            console.log(
              JSON.stringify({
                file,
                model: r.model,
                label: r.label,
                classIndex: r.classIndex,
                confidence: r.confidence,
                topK: r.topK,
                confident: r.confident,
              }),
            );
          } else console.log(describe(file, r));
          if (flags.chart) {
            const out = chartPath(flags.chart, file, files.length > 1);
            const png = await renderProbabilityChart({
              probabilities: r.probabilities,
              classNames: loaded.meta.classNames,
              predicted: r.classIndex,
              input: r.input,
              title: `${path.basename(file)}: ${r.label} (${(r.confidence * 100).toFixed(1)}%)${r.confident ? '' : ` (${r.reasons.join(', ')})`}`,
            });
            // The prediction stands; a chart that cannot be written is the output's fault.
            await writeFile(out, png).catch((err: unknown) => {
              failures++;
              console.error(`${out}: cannot write the chart: ${(err as Error).message}`);
            });
          }
        } catch (e) {
          failures++;
          const code = isUserError(e)
            ? e.id
            : (e as NodeJS.ErrnoException).code === 'ENOENT'
              ? 'file.not_found'
              : 'internal';
          const message = (e as Error).message;
          logger.info({ file, code }, 'prediction failed');
          if (flags.json) console.log(JSON.stringify({ file, error: { code, message } }));
          else console.error(`${file}: error ${code}: ${message}`);
        }
      }
      await registry.dispose();
      process.exitCode = failures === 0 ? 0 : 1;
    });
}
