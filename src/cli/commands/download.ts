import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import type { Config } from '../../config.ts';
import { DOWNLOADABLE_MODELS, downloadImagenetModel } from '../../ml/model-download.ts';
import { downloadDataset } from '../../trainer/datasets/download.ts';
import { DATASET_NAMES, type DatasetName } from '../../trainer/datasets/types.ts';

const KNOWN: readonly string[] = [...DATASET_NAMES, ...DOWNLOADABLE_MODELS];

/**
 * `download <name...>`: fetches official data set files, or a third-party model
 * (`mobilenet-imagenet`), and verifies their checksums.
 */
export function registerDownload(program: Command, config: Config): void {
  program
    .command('download')
    .description(
      `download official data set or model files and verify their checksums (${KNOWN.join(', ')})`,
    )
    .argument('<names...>', 'data set or model names')
    .option('--data-dir <dir>', 'data folder', undefined)
    .action(async (names: string[], flags: { dataDir?: string }) => {
      const unknown = names.filter((n) => !KNOWN.includes(n));
      if (unknown.length > 0)
        throw new Error(
          `unknown data set or model ${unknown.join(', ')}; known: ${KNOWN.join(', ')}`,
        );
      const dataDir = flags.dataDir ?? config.DATA_DIR;
      const bars = new MultiBar(
        { format: '{file} |{bar}| {percentage}% {value}/{total} bytes', hideCursor: true },
        Presets.shades_classic,
      );
      const byLabel = new Map<string, SingleBar>();
      /** One bar per data set file; one per model, showing its current file. */
      const show = (label: string, file: string, received: number, total: number | undefined) => {
        let bar = byLabel.get(label);
        if (!bar) {
          bar = bars.create(total ?? 0, 0, { file });
          byLabel.set(label, bar);
        }
        if (total) bar.setTotal(total);
        bar.update(received, { file });
      };
      try {
        for (const name of names) {
          if ((DOWNLOADABLE_MODELS as readonly string[]).includes(name)) {
            const res = await downloadImagenetModel(dataDir, {
              onProgress: (p) =>
                show(p.model, `${p.model}: ${p.file}`, p.receivedBytes, p.totalBytes),
            });
            bars.log(
              `${name}: model ${res.model} (${res.modelFiles} files) -> ${res.dir}; class names ${res.classes} -> ${res.classesFile}\n`,
            );
            continue;
          }
          const res = await downloadDataset(name as DatasetName, dataDir, {
            onProgress: (p) => show(p.file, p.file, p.receivedBytes, p.totalBytes),
          });
          bars.log(
            `${name}: ${res.files.map((f) => `${f.file} ${f.status}`).join(', ')} -> ${res.dir}\n`,
          );
        }
      } finally {
        bars.stop();
      }
    });
}
