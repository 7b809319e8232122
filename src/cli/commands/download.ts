import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import type { Config } from '../../config.ts';
import { downloadDataset } from '../../trainer/datasets/download.ts';
import { DATASET_NAMES, type DatasetName } from '../../trainer/datasets/types.ts';

/** `download <dataset...>`: fetches official data set files and verifies their checksums. */
export function registerDownload(program: Command, config: Config): void {
  program
    .command('download')
    .description(
      `download official data set files and verify their SHA-256 (${DATASET_NAMES.join(', ')})`,
    )
    .argument('<datasets...>', 'data set names')
    .option('--data-dir <dir>', 'data folder', undefined)
    .action(async (names: string[], flags: { dataDir?: string }) => {
      const unknown = names.filter((n) => !(DATASET_NAMES as readonly string[]).includes(n));
      if (unknown.length > 0)
        throw new Error(
          `unknown data set ${unknown.join(', ')}; known: ${DATASET_NAMES.join(', ')}`,
        );
      const bars = new MultiBar(
        { format: '{file} |{bar}| {percentage}% {value}/{total} bytes', hideCursor: true },
        Presets.shades_classic,
      );
      const byFile = new Map<string, SingleBar>();
      try {
        for (const name of names as DatasetName[]) {
          const res = await downloadDataset(name, flags.dataDir ?? config.DATA_DIR, {
            onProgress: (p) => {
              let bar = byFile.get(p.file);
              if (!bar) {
                bar = bars.create(p.totalBytes ?? 0, 0, { file: p.file });
                byFile.set(p.file, bar);
              }
              if (p.totalBytes) bar.setTotal(p.totalBytes);
              bar.update(p.receivedBytes);
            },
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
