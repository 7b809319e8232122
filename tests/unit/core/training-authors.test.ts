/**
 * Who made a version / asked for a job, as `/versions` and `/jobs` show it: found trying the
 * trainer, the shipped version 0 showed the stored `shipped` as its author (in Russian too).
 */
import { describe, expect, it } from 'vitest';
import { translator } from '../../../src/core/i18n.ts';
import { versionLine, type VersionView } from '../../../src/core/training.ts';

const shipped: VersionView = {
  modelId: 'lenet-mnist',
  version: '0',
  testAccuracy: 0.9876,
  createdAt: new Date('2026-12-01T10:20:00Z'),
  createdBy: 'shipped',
  params: null,
  jobId: null,
  parentVersion: null,
  served: true,
};

describe('versionLine: the author', () => {
  it('names the shipped version 0 in the chat language, not by its stored value', () => {
    const ru = versionLine(shipped, translator('ru'), 'ru');
    const en = versionLine(shipped, translator('en'), 'en');
    expect(ru).not.toMatch(/shipped/);
    expect(ru).toContain(' · поставляется с ботом · ');
    expect(en).toContain(' · shipped with the bot · ');
    // the phrase is the author now, not repeated as the parameters
    expect(en.split('shipped with the bot')).toHaveLength(2);
  });
});
