import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDependencies, formatViolation } from '../../../scripts/check-deps.ts';

let root: string;

/** Writes `files` (path -> source) under a fresh `root`. */
async function tree(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(root, 'tree-'));
  for (const [file, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), text);
  }
  return dir;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'check-deps-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('the dependency rules (npm run deps)', () => {
  it('hold for the project as it is', async () => {
    expect(await checkDependencies()).toEqual([]);
  }, 120_000);

  it('fail on deliberately broken rules, naming the rule, the file and the import', async () => {
    const dir = await tree({
      'src/ml/maths.ts': "import { reply } from '../core/reply.ts';\nexport const m = reply;\n",
      'src/core/reply.ts':
        "import { train } from '../trainer/train.ts';\nexport const reply = train;\n",
      'src/trainer/train.ts':
        "import { main } from '../cli/main.ts';\nexport const train = main;\n",
      'src/cli/main.ts': 'export const main = 1;\n',
      'src/imaging/draw.ts':
        "import { pixels } from '../explain/map.ts';\nexport const draw = pixels;\n",
      'src/explain/map.ts':
        "import { draw } from '../imaging/draw.ts';\nexport const pixels = 1;\nexport const d = draw;\n",
    });

    const violations = await checkDependencies(dir, ['src']);
    const lines = violations.map(formatViolation);

    expect(violations.map((v) => [v.rule, v.from, v.to]).sort()).toEqual(
      [
        ['core-not-to-adapters-trainer-jobs', 'src/core/reply.ts', 'src/trainer/train.ts'],
        ['maths-not-to-core-adapters-db-trainer', 'src/ml/maths.ts', 'src/core/reply.ts'],
        ['no-cycle-between-top-level-folders', 'src/explain', 'src/imaging'],
        ['no-cycle-between-top-level-folders', 'src/imaging', 'src/explain'],
        ['nothing-to-cli', 'src/trainer/train.ts', 'src/cli/main.ts'],
      ].sort(),
    );
    expect(lines).toContain(
      "error maths-not-to-core-adapters-db-trainer: src/ml/maths.ts imports '../core/reply.ts' (src/core/reply.ts)\n" +
        '  ml/, explain/ and imaging/ are maths and rendering, and inference/ runs them in worker threads: they know no commands, platforms, database or training jobs.',
    );
  }, 120_000);
});
