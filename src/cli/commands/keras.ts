import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../../config.ts';
import { translator, type Language } from '../../core/i18n.ts';
import { checkKerasFile } from '../../core/lab-check.ts';
import { evaluationLines, resultDetail, resultLines, reportHeader } from '../../core/lab-report.ts';
import { initBackend } from '../../ml/backend.ts';
import { modelDataDirs } from '../../ml/imagenet.ts';
import { writeKerasModel } from '../../ml/keras/write-keras.ts';
import { accuracyResult } from '../../ml/lab/check-model.ts';
import { evaluateClassifier } from '../../ml/lab/evaluate.ts';
import { ModelRegistry } from '../../ml/registry.ts';
import { createTestSets } from '../../trainer/datasets/test-sets.ts';
import { notTrainedHint, printJsonError } from '../model-errors.ts';

/**
 * `export-keras <model> --out x.keras [--h5]`: an installed model as a Keras 3 `.keras` file (or,
 * with `--h5`, the Keras 2 full-model HDF5 layout), for students to load in Python and compare.
 */
export function registerExportKeras(program: Command, config: Config): void {
  program
    .command('export-keras')
    .description('write an installed model as a Keras file (.keras for Keras 3, --h5 for Keras 2)')
    .argument('<model>', 'model id (see the models folder)')
    .requiredOption('--out <file>', 'the file to write, e.g. alexnet.keras')
    .option('--h5', 'write the Keras 2 HDF5 layout (model.save("x.h5")) instead of .keras', false)
    .action(async (id: string, flags: { out: string; h5: boolean }) => {
      await initBackend();
      const registry = ModelRegistry.fromConfig(config);
      try {
        const loaded = await registry.get(id).catch((e: unknown) => {
          throw notTrainedHint(e);
        });
        const bytes = await writeKerasModel(loaded.model, flags.h5 ? 'h5' : 'keras');
        await writeFile(flags.out, bytes);
        console.log(
          `${id} → ${flags.out} (${flags.h5 ? 'Keras 2 .h5' : 'Keras 3 .keras'}, ${bytes.length} bytes)`,
        );
      } finally {
        await registry.dispose();
      }
    });
}

/**
 * `check <file> --task <task> [--json] [--lang ru] [--no-test]`: a student's Keras model checked
 * against a lab task, as `/check` does in the chats: each requirement ✓/✗ with its reason, then
 * the test-set accuracy when the data set is downloaded. Exit status 1 when a requirement fails.
 */
export function registerCheck(program: Command, config: Config): void {
  program
    .command('check')
    .description("check a student's Keras model (.keras / .h5) against a lab task")
    .argument('<file>', 'the saved model')
    .requiredOption(
      '--task <task>',
      'lab task: alexnet, lenet, resnet18, plaincnn18, mobilenet, plaincnn',
    )
    .option('--json', 'print one JSON object', false)
    .option('--lang <lang>', 'language of the reasons: en or ru', 'en')
    .option('--no-test', 'skip the test-set evaluation')
    .option('--data-dir <dir>', 'where the data sets are (default DATA_DIR)')
    .action(
      async (
        file: string,
        flags: { task: string; json: boolean; lang: string; test: boolean; dataDir?: string },
      ) => {
        await initBackend();
        const lang: Language = flags.lang === 'ru' ? 'ru' : 'en';
        const t = translator(lang);
        let outcome;
        try {
          outcome = await checkKerasFile(await readFile(file), flags.task, path.basename(file));
        } catch (e) {
          if (flags.json) {
            printJsonError(e);
            return;
          }
          throw e;
        }
        const { task, read, results, file: checked } = outcome;
        try {
          let evaluation: Awaited<ReturnType<typeof evaluateClassifier>> | null = null;
          let missing = false;
          let classNames: readonly string[] = [];
          if (flags.test) {
            const dirs = flags.dataDir ? [flags.dataDir] : modelDataDirs(config);
            const set = await createTestSets(dirs).load(task.dataset);
            if (set) {
              evaluation = await evaluateClassifier(read.model, set);
              classNames = set.classNames;
            } else missing = true;
          }
          const bar = evaluation ? accuracyResult(task, evaluation.accuracy) : undefined;
          const all = bar ? [...results, bar] : results;
          const passed = all.filter((r) => r.ok).length;
          if (flags.json) {
            console.log(
              JSON.stringify({
                task: task.id,
                file: checked.fileName,
                format: read.format,
                kerasVersion: read.kerasVersion,
                style: read.graph.style,
                params: checked.params,
                macs: checked.macs,
                passed,
                total: all.length,
                requirements: all.map((r) => ({ ...r, text: resultDetail(r, t) })),
                test: evaluation
                  ? { dataset: task.dataset, ...evaluation }
                  : { dataset: task.dataset, skipped: !flags.test, missing },
              }),
            );
          } else {
            const lines = [...reportHeader(task, checked, t, lang), '', ...resultLines(all, t)];
            if (evaluation) {
              lines.push(
                '',
                ...evaluationLines({ ...evaluation, dataset: task.dataset, classNames }, t, lang),
              );
            } else if (missing) {
              lines.push(
                '',
                t('lab.eval.missing', {
                  dataset: task.dataset,
                  command: `bin/cnn-classroom download ${task.dataset}`,
                }),
              );
            }
            lines.push('', t('lab.summary', { passed, total: all.length }));
            console.log(lines.join('\n'));
          }
          if (passed < all.length) process.exitCode = 1;
        } finally {
          read.model.dispose();
        }
      },
    );
}
