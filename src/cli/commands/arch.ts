import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Config } from '../../config.ts';
import { archTable } from '../../core/commands/arch.ts';
import { translator } from '../../core/i18n.ts';
import { renderTable } from '../../imaging/table.ts';
import { initBackend } from '../../ml/backend.ts';
import { ModelRegistry, type LoadedModel } from '../../ml/registry.ts';
import { profileModel, type LatencyOptions, type ModelProfile } from '../../ml/stats.ts';
import { notTrainedHint, printJsonError } from '../model-errors.ts';
import { parseIntOption } from '../options.ts';
import { formatTextTable } from '../text-table.ts';

/** The flags `arch` and `compare` share. */
export interface ProfileFlags {
  json: boolean;
  png?: string;
  runs: number;
  batch: number;
}

/** The latency options the flags ask for. */
export function latencyOptions(flags: ProfileFlags): LatencyOptions {
  return { batch1Runs: flags.runs, throughputBatch: flags.batch };
}

/** Adds `--json`, `--png`, `--runs` and `--batch` to a command. */
export function profileOptions(command: Command): Command {
  return command
    .option('--json', 'print one JSON object instead of the table', false)
    .option('--png <file.png>', 'also write the table as a PNG image (as the chat bot sends it)')
    .option('--runs <n>', 'timed runs of one image (the median is reported)', parseIntOption, 20)
    .option('--batch <n>', 'images in the throughput measurement', parseIntOption, 1000);
}

/** The `arch --json` object: the model, its statistics, weight files and measured speed. */
export function profileJson(p: ModelProfile): Record<string, unknown> {
  const { layers, ...totals } = p.stats;
  return {
    model: p.meta.id,
    architecture: p.meta.architecture,
    dataset: p.meta.dataset,
    ...totals,
    weightFileBytes: p.weightFileBytes,
    latency: p.latency,
    layers,
  };
}

/**
 * `arch <model>`: the layer table of an installed model (Keras' `model.summary()` with MACs),
 * its totals (parameters, MACs, FLOPs, weight and activation memory) and its speed measured on
 * this machine's backend; `--json` for the figures, `--png` for the chat's image. A model that
 * is not installed but `train` knows is answered with the command that trains it; with `--json`,
 * a model that cannot be loaded is `{"error":{"code","message"}}` on stdout, exit status 1.
 */
export function registerArch(program: Command, config: Config): void {
  profileOptions(
    program
      .command('arch')
      .description('layers, parameters, MACs, memory and measured speed of an installed model')
      .argument('<model>', 'model id (see the models folder)'),
  ).action(async (id: string, flags: ProfileFlags) => {
    await initBackend({ backend: config.TFJS_BACKEND });
    const registry = ModelRegistry.fromConfig(config);
    try {
      let loaded: LoadedModel;
      try {
        loaded = await registry.get(id);
      } catch (e) {
        const reported = notTrainedHint(e);
        if (flags.json) {
          printJsonError(reported);
          return;
        }
        throw reported;
      }
      const profile = await profileModel(loaded, latencyOptions(flags));
      const table = archTable(profile, translator('en'), 'en');
      if (flags.png) await writeFile(flags.png, await renderTable(table));
      if (flags.json) console.log(JSON.stringify(profileJson(profile)));
      else console.log(formatTextTable(table) + (flags.png ? `\n→ ${flags.png}` : ''));
    } finally {
      await registry.dispose();
    }
  });
}
