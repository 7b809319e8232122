import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { parseUserTarget } from '../../../src/core/args.ts';
import type { Command } from '../../../src/core/command.ts';
import { commands } from '../../../src/core/commands/index.ts';
import { effectiveRole, hasRole, requireRole } from '../../../src/core/roles.ts';
import { fakeContext, makeCore } from './helpers.ts';

const envs: ReturnType<typeof makeCore>[] = [];
afterAll(async () => {
  for (const e of envs) await e.registry.dispose();
});

/** A command only instructors may run, answering "ok". */
const secret: Command = {
  name: 'secret',
  description: { en: 'instructors only', ru: 'только преподавателям' },
  role: 'instructor',
  async execute(ctx) {
    await ctx.reply('ok');
  },
};

function setup(admins = [{ platform: 'telegram' as const, userId: '1' }]) {
  const lines: string[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }),
  );
  const env = makeCore({
    commands: [...commands, secret],
    overrides: { admins, logger },
  });
  envs.push(env);
  return { ...env, lines };
}

const tg = (userId: string, text: string, extra: Parameters<typeof fakeContext>[0] = {}) =>
  fakeContext({
    platform: 'telegram',
    user: { id: userId, name: `User ${userId}`, languageCode: 'en' },
    chat: { id: '-100', type: 'group', title: 'lab' },
    text,
    ...extra,
  });

describe('roles', () => {
  it('orders student < instructor < admin', () => {
    expect(hasRole('admin', 'instructor')).toBe(true);
    expect(hasRole('instructor', 'admin')).toBe(false);
    expect(hasRole('student', 'student')).toBe(true);
    expect(effectiveRole('student', 'telegram', '1', [{ platform: 'telegram', userId: '1' }])).toBe(
      'admin',
    );
    // The same id on another platform is another person.
    expect(effectiveRole('student', 'discord', '1', [{ platform: 'telegram', userId: '1' }])).toBe(
      'student',
    );
    expect(() => requireRole({ role: 'student' }, 'instructor', 'retrain')).toThrow(
      expect.objectContaining({ id: 'role.required' }),
    );
  });

  it('finds the user by id, <@id> mention, resolved mention or reply', () => {
    expect(parseUserTarget('12345 instructor', {})).toEqual({
      ok: true,
      value: { target: { userId: '12345' }, rest: ['instructor'] },
    });
    expect(parseUserTarget('<@!987> instructor', {})).toEqual({
      ok: true,
      value: { target: { userId: '987' }, rest: ['instructor'] },
    });
    expect(parseUserTarget('@ann instructor', { mentions: [{ id: '55', name: 'Ann' }] })).toEqual({
      ok: true,
      value: { target: { userId: '55', name: 'Ann' }, rest: ['instructor'] },
    });
    expect(parseUserTarget('instructor', { replyTo: { id: '77', name: 'Bo' } })).toEqual({
      ok: true,
      value: { target: { userId: '77', name: 'Bo' }, rest: ['instructor'] },
    });
    const r = parseUserTarget('@someone instructor', {});
    expect(r.ok ? undefined : r.error.id).toBe('user.unknown');
  });

  it('an admin from ADMINS grants and revokes the instructor role; the role reaches commands', async () => {
    const { core, store } = setup();
    const before = tg('2', '/secret');
    await core.handle(before.ctx);
    expect(before.out.texts[0]).toMatch(/^Sorry, \/secret is for instructors only/);

    const grant = tg('1', '/grant instructor', { replyTo: { id: '2', name: 'Boris' } });
    await core.handle(grant.ctx);
    expect(grant.out.texts).toEqual(['User 2 is now an instructor.']);
    expect((await store.users.find({ platform: 'telegram', userId: '2' }))?.role).toBe(
      'instructor',
    );

    const after = tg('2', '/secret');
    await core.handle(after.ctx);
    expect(after.out.texts).toEqual(['ok']);

    const revoke = tg('1', '/revoke 2');
    await core.handle(revoke.ctx);
    expect(revoke.out.texts).toEqual(['User 2 is a student again.']);
    const again = tg('2', '/secret');
    await core.handle(again.ctx);
    expect(again.out.texts[0]).toMatch(/instructors only/);
  });

  it('grants by id a user who has not written yet, and refuses non-admins politely, with a log line', async () => {
    const { core, store, lines } = setup();
    const byId = tg('1', '/grant 424242 instructor');
    await core.handle(byId.ctx);
    expect(byId.out.texts).toEqual(['424242 is now an instructor.']);
    expect((await store.users.find({ platform: 'telegram', userId: '424242' }))?.role).toBe(
      'instructor',
    );
    // An instructor is not an admin, and a group's own admin status counts for nothing.
    const { ctx, out } = tg('424242', '/grant 5 instructor', { language: 'ru' });
    await core.handle({ ...ctx, user: { ...ctx.user, languageCode: 'ru' } });
    expect(out.texts[0]).toMatch(/^Извините, \/grant доступна только роли «администратор»/);
    expect(lines.join('')).toContain('refused: role required');
    expect(store.submissions.rows.at(-1)).toEqual(
      expect.objectContaining({ command: 'grant', errorCode: 'role.required' }),
    );
  });

  it('/help shows students their commands and instructors theirs too', async () => {
    const { core } = setup();
    const student = tg('9', '/help');
    await core.handle(student.ctx);
    expect(student.out.texts[0]).toContain('/predict');
    expect(student.out.texts[0]).not.toContain('/secret');
    expect(student.out.texts[0]).not.toContain('/grant');
    expect(student.out.texts[0]).not.toContain('/retrain');
    const admin = tg('1', '/help');
    await core.handle(admin.ctx);
    expect(admin.out.texts[0]).toContain('Instructor commands:\n/');
    expect(admin.out.texts[0]).toContain('\n/secret: instructors only');
    expect(admin.out.texts[0]).toContain('Admin commands:\n/grant');
  });

  it("refuses a student's /submissions with its own advice and a log line, and lists it only to instructors", async () => {
    const { core, store, lines } = setup();
    const { ctx, out } = tg('9', '/submissions lenet');
    await core.handle(ctx);
    expect(out.texts).toEqual([
      '/submissions is for instructors. Your own attempts are listed in /history.',
    ]);
    expect(lines.join('')).toContain('refused: role required');
    expect(store.submissions.rows.at(-1)).toEqual(
      expect.objectContaining({ command: 'submissions', errorCode: 'lab.instructors_only' }),
    );
    const line = "/submissions [task]: students' lab checks: the latest and the best per task";
    const student = tg('9', '/help');
    await core.handle(student.ctx);
    expect(student.out.texts[0]).not.toContain('/submissions');
    const admin = tg('1', '/help');
    await core.handle(admin.ctx);
    const instructors = (admin.out.texts[0] ?? '')
      .split('Instructor commands:\n')[1]
      ?.split('Admin commands:')[0];
    expect(instructors).toContain(line);
  });

  it('the web operator (vouched for by the adapter) is admin; other web users are students', async () => {
    const { core } = setup([]);
    const op = fakeContext({ text: '/grant student2 instructor', operator: true });
    await core.handle(op.ctx);
    expect(op.out.texts[0]).toMatch(/^I can't tell whom you mean/);
    const op2 = fakeContext({ text: '/grant 77 instructor', operator: true });
    await core.handle(op2.ctx);
    expect(op2.out.texts).toEqual(['77 is now an instructor.']);
    const other = fakeContext({ text: '/grant 78 instructor' });
    await core.handle(other.ctx);
    expect(other.out.texts[0]).toMatch(/^Sorry, \/grant is for admins only/);
  });
});
