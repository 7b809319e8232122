import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EVAL_FONTS } from '../../../scripts/lib/eval-fonts.ts';
import { WORD_FONTS } from '../../../src/trainer/outliers.ts';

/** Every .ts file under `dir`, recursively. */
async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/**
 * The rendered handwriting set of `scripts/digit-eval.ts` measures writing the digit model has
 * never seen only while no training code draws with its fonts.
 */
describe('evaluation fonts stay out of training', () => {
  it('the word fonts of Outlier Exposure are none of the evaluation fonts', () => {
    expect(EVAL_FONTS.length).toBeGreaterThanOrEqual(10);
    const families = EVAL_FONTS.map((f) => f.family.toLowerCase());
    for (const w of WORD_FONTS) {
      for (const f of families) {
        expect(f.startsWith(w.toLowerCase())).toBe(false);
        expect(w.toLowerCase().startsWith(f)).toBe(false);
      }
    }
  });

  it('no source file under src/ names an evaluation font file or family', async () => {
    const files = await sources(path.resolve('src'));
    expect(files.length).toBeGreaterThan(50);
    const needles = EVAL_FONTS.flatMap((f) => [path.basename(f.file), f.family]);
    const hits: string[] = [];
    for (const file of files) {
      const text = (await readFile(file, 'utf8')).toLowerCase();
      for (const n of needles) if (text.includes(n.toLowerCase())) hits.push(`${file}: ${n}`);
    }
    expect(hits).toEqual([]);
  });
});
