import { describe, expect, it } from 'vitest';
import { escapeFormula, parseExportFilters } from '../../../src/core/class-export.ts';
import {
  CONFIDENT,
  effectiveLabel,
  labelKeyboard,
  needsReview,
  parseButtonData,
  trainingLabel,
} from '../../../src/core/labels.ts';
import type { LabelledSubmission, StoredLabel } from '../../../src/core/ports.ts';
import { splitByStudent, studentFolds } from '../../../src/trainer/class-finetune.ts';

let nextId = 1;
function label(l: Partial<StoredLabel>): StoredLabel {
  return {
    id: String(nextId++),
    submissionId: '1',
    label: '4',
    by: { platform: 'telegram', userId: '1' },
    role: 'student',
    source: 'corrected',
    createdAt: new Date(),
    ...l,
  };
}

function photo(confidence: number, labels: StoredLabel[], predicted = '7'): LabelledSubmission {
  return {
    id: '1',
    platform: 'telegram',
    userId: '1',
    chatId: '-1',
    messageId: '5',
    command: 'predict',
    imageSha256: 'a',
    imagePath: 'images/a.png',
    imageBytes: 10,
    imageWidth: 28,
    imageHeight: 28,
    modelId: 'lenet-mnist',
    modelVersion: 'v',
    predictedClass: predicted,
    confidence,
    topK: null,
    latencyMs: 1,
    errorCode: null,
    createdAt: new Date(),
    userName: 'Ann',
    labels,
  };
}

describe('label rules', () => {
  it("lets the latest instructor label win over a later student's", () => {
    const rows = [
      label({ role: 'instructor', source: 'instructor', label: '1' }),
      label({ role: 'admin', source: 'instructor', label: '2' }),
      label({ role: 'student', source: 'corrected', label: '3' }),
    ];
    expect(effectiveLabel(rows)).toMatchObject({ label: '2', reviewed: true });
    expect(effectiveLabel([])).toBeUndefined();
  });

  it('trains on instructor labels and confident confirmations only', () => {
    const confirmed = label({ source: 'confirmed', label: '7' });
    expect(trainingLabel(photo(CONFIDENT, [confirmed]))).toBe('7');
    expect(trainingLabel(photo(CONFIDENT - 0.01, [confirmed]))).toBeUndefined();
    expect(
      trainingLabel(photo(0.99, [label({ source: 'corrected', label: '1' })])),
    ).toBeUndefined();
    expect(
      trainingLabel(photo(0.2, [label({ role: 'instructor', source: 'instructor', label: '1' })])),
    ).toBe('1');
    expect(
      trainingLabel(
        photo(0.99, [label({ role: 'instructor', source: 'instructor', label: null })]),
      ),
    ).toBeUndefined();
  });

  it('queues corrected or unconfident photos for review until an instructor labels them', () => {
    expect(needsReview(photo(0.99, []))).toBe(false);
    expect(needsReview(photo(0.5, []))).toBe(true);
    expect(needsReview(photo(0.99, [label({ source: 'corrected' })]))).toBe(true);
    expect(
      needsReview(
        photo(0.5, [
          label({ source: 'corrected' }),
          label({ role: 'instructor', source: 'instructor' }),
        ]),
      ),
    ).toBe(false);
  });
});

describe('buttons and export helpers', () => {
  it('keeps callback data within 64 bytes and parses it back', () => {
    const kb = labelKeyboard('123456789', [...'0123456789'], '✓')!;
    expect(kb.flat()).toHaveLength(11);
    expect(parseButtonData(kb[0]![0]!.data)).toEqual({ prefix: 'l', id: '123456789', choice: 'y' });
    expect(labelKeyboard('9'.repeat(70), [...'0123456789'], '✓')).toBeUndefined();
    expect(parseButtonData('l:1:2:3')).toBeUndefined();
    expect(parseButtonData('garbage')).toBeUndefined();
  });

  it('escapes spreadsheet formulas but keeps plain numbers', () => {
    expect(escapeFormula('=HYPERLINK("x")')).toBe('\'=HYPERLINK("x")');
    expect(escapeFormula('+1+2')).toBe("'+1+2");
    expect(escapeFormula('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(escapeFormula('-100777')).toBe('-100777');
    expect(escapeFormula('-0.5')).toBe('-0.5');
    expect(escapeFormula('-x')).toBe("'-x");
    expect(escapeFormula('Ann')).toBe('Ann');
  });

  it('parses export filters, the to day included', () => {
    const f = parseExportFilters(['chat=all', 'from=2026-01-02', 'to=2026-01-03', 'oops']);
    expect(f.chat).toBe('all');
    expect(f.from?.toISOString()).toBe('2026-01-02T00:00:00.000Z');
    expect(f.to?.toISOString()).toBe('2026-01-04T00:00:00.000Z');
    expect(f.rest).toEqual(['oops']);
  });
});

describe('splits by student', () => {
  const students = ['a', 'a', 'a', 'b', 'b', 'c', 'c', 'c', 'c', 'd'];

  it("puts all of a student's photos on one side", () => {
    const { train, heldOut, heldOutStudents } = splitByStudent(students, 0.3, 1);
    expect(train.length + heldOut.length).toBe(students.length);
    expect(heldOut.length).toBeGreaterThanOrEqual(3);
    for (const s of heldOutStudents) {
      expect(train.some((i) => students[i] === s)).toBe(false);
    }
    expect(() => splitByStudent(['a', 'a'], 0.5, 1)).toThrow(/two students/);
  });

  it('deals every student into exactly one fold', () => {
    const folds = studentFolds(students, 2, 3);
    expect(folds.flat().sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(() => studentFolds(students, 5, 1)).toThrow(/at least 5 students/);
  });
});
