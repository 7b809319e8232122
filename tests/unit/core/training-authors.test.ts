/**
 * Who made a version / asked for a job, as `/versions` and `/jobs` show it: found trying the
 * trainer, the shipped version 0 showed the stored `shipped` as its author (in Russian too).
 */
import { describe, expect, it } from 'vitest';
import { translator } from '../../../src/core/i18n.ts';
import { literalText } from '../../../src/adapters/discord/message-text.ts';
import {
  jobLine,
  jobStatusText,
  NAME_MAX,
  versionLine,
  type JobView,
  type VersionView,
} from '../../../src/core/training.ts';
import { queuedJob } from '../../fixtures/job-view.ts';

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

const webJob: JobView = queuedJob({ requester: 'web:wQ2x9fLk0aZ1bC3dE4fG' });

describe('the web chat operator in /jobs and /versions', () => {
  it('shows the name they chatted under, not the random id', () => {
    const named = { ...webJob, requesterName: 'Anna Petrova' };
    expect(jobLine(named, translator('en'), 'en', 0)).toBe(
      '#3 lenet-mnist · queued · epochs=1 · by Anna Petrova · —',
    );
    const version = { ...shipped, version: '1', createdBy: webJob.requester, served: false };
    expect(
      versionLine({ ...version, createdByName: 'Anna Petrova' }, translator('ru'), 'ru'),
    ).toContain(' · Anna Petrova · ');
  });

  it('without a name (or the web chat stand-in "web"), a localized label', () => {
    expect(jobLine(webJob, translator('en'), 'en', 0)).toContain(' · by web chat operator · ');
    expect(jobLine({ ...webJob, requesterName: 'web' }, translator('ru'), 'ru', 0)).toContain(
      ' · запросил(а) оператор веб-чата · ',
    );
    const version = { ...shipped, version: '1', createdBy: webJob.requester, served: false };
    const line = versionLine(version, translator('ru'), 'ru');
    expect(line).toContain(' · оператор веб-чата · ');
    expect(line).not.toContain('wQ2x9fLk0aZ1bC3dE4fG');
  });

  it('Telegram, Discord and the CLI keep their stored ids without a name', () => {
    expect(jobLine({ ...webJob, requester: 'telegram:42' }, translator('en'), 'en', 0)).toContain(
      ' · by telegram:42 · ',
    );
  });
});

describe('jobStatusText of a queued job', () => {
  it('promises to update the message only where it is an edited message', () => {
    const job = { ...webJob, requester: 'cli' };
    expect(jobStatusText(job, translator('en'), 'en', 2)).toBe(
      "Job 3: lenet-mnist, epochs=1. Place in the queue: 2. I'll update this message as it trains.",
    );
    expect(jobStatusText(job, translator('en'), 'en', 2, { editable: false })).toBe(
      'Job 3: lenet-mnist, epochs=1. Place in the queue: 2.',
    );
    expect(jobStatusText(job, translator('ru'), 'ru', 2, { editable: false })).toBe(
      'Задача 3: lenet-mnist, epochs=1. Место в очереди: 2.',
    );
  });
});

describe('Telegram and Discord users in /jobs and /versions', () => {
  const en = translator('en');
  const ru = translator('ru');
  const tgJob: JobView = { ...webJob, requester: 'telegram:201', requesterName: 'Irina Petrova' };
  const dcId = 'discord:300000000000000201';

  it('a Telegram user by the name they asked under, not telegram:<id>', () => {
    expect(jobLine(tgJob, en, 'en', 0)).toBe(
      '#3 lenet-mnist · queued · epochs=1 · by Irina Petrova · —',
    );
    const version = { ...shipped, version: '1', createdBy: 'telegram:201', served: false };
    const line = versionLine({ ...version, createdByName: 'Irina Petrova' }, ru, 'ru');
    expect(line).toMatch(/^· v1 · точность 98,76\s?% · 2026-12-01 10:20 · Irina Petrova · —$/);
  });

  it('a Discord user by their display name, not discord:<id>', () => {
    const job = { ...webJob, requester: dcId, requesterName: 'Irina' };
    expect(jobLine(job, ru, 'ru', 0, literalText)).toContain(' · запросил(а) Irina · ');
    const version = { ...shipped, version: '2', createdBy: dcId, createdByName: 'Irina' };
    const line = versionLine(version, en, 'en', literalText);
    expect(line).toContain(' · Irina · ');
    expect(line).not.toContain('300000000000000201');
  });

  it('markup in a name shows literally; a long or multi-line name stays one short line', () => {
    const name = '<b>x</b> *_[y](z)';
    // Telegram replies are plain text (no parse_mode): the name goes as it is
    expect(jobLine({ ...tgJob, requesterName: name }, en, 'en', 0)).toContain(
      ' · by <b>x</b> *_[y](z) · ',
    );
    // Discord renders Markdown in every message: its adapter escapes it
    const job = { ...webJob, requester: dcId, requesterName: name };
    expect(jobLine(job, en, 'en', 0, literalText)).toContain(' · by <b>x</b> \\*\\_\\[y](z) · ');
    const long = `${'Анна-Мария '.repeat(4)}\nПетрова`;
    const line = jobLine({ ...tgJob, requesterName: long }, en, 'en', 0);
    expect(line.split('\n')).toHaveLength(1);
    const shown = /· by (.*) · —$/.exec(line)?.[1] ?? '';
    expect([...shown]).toHaveLength(NAME_MAX);
    expect(shown).toBe('Анна-Мария Анна-Мария Анна-Мари…');
  });

  it('an old job or version without a name (or a name that is just the id) keeps platform:id', () => {
    const old: JobView = { ...webJob, requester: 'telegram:201' };
    // in one listing, the old job beside a new one by the same user
    expect([old, tgJob].map((j) => /· by (.*) · —$/.exec(jobLine(j, en, 'en', 0))?.[1])).toEqual([
      'telegram:201',
      'Irina Petrova',
    ]);
    expect(jobLine({ ...old, requesterName: '201' }, en, 'en', 0)).toContain(
      ' · by telegram:201 · ',
    );
    const version = { ...shipped, version: '1', createdBy: dcId, served: false };
    expect(versionLine(version, en, 'en', literalText)).toContain(` · ${dcId} · `);
    expect(jobLine({ ...old, requester: 'cli', requesterName: 'x' }, en, 'en', 0)).toContain(
      ' · by cli · ',
    );
  });
});
