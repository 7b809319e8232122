/**
 * issue 16 end to end on Telegram: the real core over the shipped LeNet and a real SQLite
 * database, real grammY, and the fake Bot API server (inline keyboards, callback queries,
 * message edits, documents). Students confirm and correct in one tap; an instructor labels by
 * reply, walks the review queue, exports a zip, reads the statistics and sets the chat's model.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { strFromU8, unzipSync } from 'fflate';
import type { Message } from 'grammy/types';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPrismaPersistence } from '../../src/adapters/persistence/prisma-persistence.ts';
import { startTelegram, type RunningTelegram } from '../../src/adapters/telegram/start.ts';
import { loadConfig } from '../../src/config.ts';
import { EXPORT_CSV_COLUMNS } from '../../src/core/class-export.ts';
import { buildCoreServices, createCore, type Core } from '../../src/core/index.ts';
import { needsReview } from '../../src/core/labels.ts';
import type { Persistence } from '../../src/core/ports.ts';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { ModelRegistry } from '../../src/ml/registry.ts';
import {
  startFakeTelegram,
  type FakeTelegram,
  type SentMessage,
} from '../fakes/telegram-server.ts';
import { isPng, MODELS_DIR, QUICK_LATENCY, readImg } from '../unit/core/helpers.ts';

let tg: FakeTelegram;
let bot: RunningTelegram;
let core: Core;
let db: Database;
let persistence: Persistence;
let dbDir: string;
let registry: ModelRegistry;

const person = (id: number, first_name: string, language_code = 'en') => ({
  id,
  is_bot: false as const,
  first_name,
  language_code,
});
const ann = person(201, 'Ann');
const boris = person(202, 'Boris');
const prof = person(299, 'Prof');
const group = { id: -100777, type: 'supergroup' as const, title: 'CNN lab' };

/** The single answer to a message, once it arrives. */
async function answerTo(messageId: number): Promise<SentMessage> {
  await tg.waitFor(() => tg.repliesTo(messageId).length > 0);
  return tg.repliesTo(messageId)[0]!;
}

/** Every label row, oldest first. */
async function labelRows() {
  return (await db.labels.list()).flatMap((s) => s.labels).sort((a, b) => a.id - b.id);
}

/** Presses a button and waits until the query is answered; returns the answer. */
async function pressAndWait(from: typeof ann, sent: SentMessage, data: string) {
  const id = tg.press(from, sent, data);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const a = tg.answers.find((x) => x.callbackQueryId === id);
    if (a) return a;
    if (Date.now() > deadline) throw new Error(`query ${id} was never answered`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function buttonsOf(sent: SentMessage): { text: string; data: string }[] {
  return (sent.replyMarkup?.inline_keyboard ?? []).flat().map((b) => ({
    text: b.text,
    data: 'callback_data' in b ? (b.callback_data ?? '') : '',
  }));
}

/** RFC 4180 rows (quotes, doubled quotes, CRLF), enough to read the export back. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += c;
  }
  if (cell !== '' || row.length > 0) rows.push([...row, cell]);
  return rows;
}

beforeAll(async () => {
  await initBackend();
  tg = await startFakeTelegram();
  dbDir = await mkdtemp(path.join(os.tmpdir(), 'classdata-tg-'));
  db = await openDatabase({ DATA_DIR: dbDir });
  persistence = createPrismaPersistence(db);
  registry = new ModelRegistry(MODELS_DIR);
  const logger = pino({ level: 'silent' });
  core = createCore(
    buildCoreServices({
      config: {
        MAX_IMAGE_BYTES: 20_000_000,
        MAX_IMAGE_PIXELS: 40_000_000,
        DEFAULT_MODEL: 'lenet-mnist',
      },
      registry,
      persistence,
      logger,
      latency: QUICK_LATENCY,
    }),
    { rateLimit: false },
  );
  // The instructor exists with the instructor role (granting it is the trainer issue's /grant).
  const u = await db.users.upsertFromPlatform({
    platform: 'telegram',
    platformId: String(prof.id),
    name: 'Prof',
  });
  await db.users.setRole(u.id, 'instructor');
  bot = await startTelegram(
    loadConfig({ TELEGRAM_BOT_TOKEN: tg.token, TELEGRAM_API_ROOT: `${tg.apiRoot}/` }),
    core,
    logger,
  );
});

afterAll(async () => {
  await bot?.stop();
  await tg?.close();
  await registry?.dispose();
  await db?.close();
  if (dbDir) await rm(dbDir, { recursive: true, force: true });
});

describe('the class teaches the bot, on Telegram', () => {
  let annPhoto: Message;
  let annAnswer: SentMessage;

  it("puts ✓ and the digits 0-9 under a student's digit prediction", async () => {
    annPhoto = tg.send({ from: ann, chat: group, photo: await readImg('7.png') });
    annAnswer = await answerTo(annPhoto.message_id);
    expect(annAnswer.method).toBe('sendPhoto');
    expect(annAnswer.caption).toMatch(/^lenet-mnist: 7 /);
    const buttons = buttonsOf(annAnswer);
    expect(buttons.map((b) => b.text)).toEqual(['✓ right', ...'0123456789']);
    expect(buttons[0]!.data).toBe(`l:${annPhoto.message_id}:y`);
    expect(buttons.map((b) => b.data).slice(1)).toEqual(
      [...'0123456789'].map((d) => `l:${annPhoto.message_id}:${d}`),
    );
    for (const b of buttons) expect(Buffer.byteLength(b.data)).toBeLessThanOrEqual(64);
  });

  it("refuses another student's tap, answers it, and keeps the keyboard", async () => {
    const answer = await pressAndWait(boris, annAnswer, `l:${annPhoto.message_id}:3`);
    expect(answer.text).toBe(
      'This is not your photo: only its author or an instructor can label it.',
    );
    expect(await labelRows()).toEqual([]);
    expect(tg.edits.filter((e) => e.messageId === annAnswer.messageId)).toEqual([]);
  });

  it('writes one confirmed label row for ✓ and removes the keyboard with a note', async () => {
    const answer = await pressAndWait(ann, annAnswer, `l:${annPhoto.message_id}:y`);
    expect(answer.text).toBe('Saved: 7. Thank you!');
    const rows = await labelRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      label: '7',
      role: 'student',
      source: 'confirmed',
      userPlatformId: String(ann.id),
    });
    const edit = await vi.waitFor(() => {
      const found = tg.edits.find((e) => e.messageId === annAnswer.messageId);
      if (!found) throw new Error('no edit yet');
      return found;
    });
    expect(edit.method).toBe('editMessageCaption');
    expect(edit?.replyMarkup).toBeUndefined();
    expect(edit?.caption).toMatch(/\n\n✓ Ann confirmed: 7$/);
  });

  let borisPhoto: Message;
  let borisAnswer: SentMessage;

  it('writes one corrected label row for a digit that is not the prediction', async () => {
    borisPhoto = tg.send({ from: boris, chat: group, photo: await readImg('4.png') });
    borisAnswer = await answerTo(borisPhoto.message_id);
    expect(borisAnswer.caption).toMatch(/^lenet-mnist: 4 /);
    const before = (await labelRows()).length;
    const answer = await pressAndWait(boris, borisAnswer, `l:${borisPhoto.message_id}:9`);
    expect(answer.text).toBe('Saved: 9. Thank you!');
    const rows = await labelRows();
    expect(rows).toHaveLength(before + 1);
    expect(rows.at(-1)).toMatchObject({ label: '9', role: 'student', source: 'corrected' });
    const corrected = (await db.labels.list({ submissionId: rows.at(-1)!.submissionId }))[0]!;
    expect(corrected.platformMessageId).toBe(String(borisPhoto.message_id));
  });

  it("takes an instructor's /label sent as a reply to a student's photo, and the instructor wins", async () => {
    const cmd = tg.send({ from: prof, chat: group, text: '/label 7', replyTo: annPhoto });
    const reply = await answerTo(cmd.message_id);
    expect(reply.text).toBe('✎ Prof (instructor) labelled: 7');
    const rows = await labelRows();
    expect(rows.at(-1)).toMatchObject({
      label: '7',
      role: 'instructor',
      source: 'instructor',
      userPlatformId: String(prof.id),
    });
    // A student's /label on another student's photo is refused.
    const sneaky = tg.send({ from: boris, chat: group, text: '/label 1', replyTo: annPhoto });
    expect((await answerTo(sneaky.message_id)).text).toMatch(/^This is not your photo/);
    expect(await labelRows()).toHaveLength(rows.length);
  });

  it('walks the review queue: each press adds one instructor label and shows the next photo', async () => {
    const queued = (
      await persistence.classData.list({ platform: 'telegram', chatId: String(group.id) })
    ).filter(needsReview);
    // Boris's correction waits for review; Ann's photo has an instructor label and does not.
    expect(queued.map((s) => s.messageId)).toContain(String(borisPhoto.message_id));
    expect(queued.map((s) => s.messageId)).not.toContain(String(annPhoto.message_id));
    // A student cannot review.
    const denied = tg.send({ from: boris, chat: group, text: '/review' });
    expect((await answerTo(denied.message_id)).text).toBe(
      'Sorry, /review is for instructors only. If you teach this course, ask an admin to /grant you the instructor role.',
    );

    const cmd = tg.send({ from: prof, chat: group, text: '/review' });
    let shown = await answerTo(cmd.message_id);
    for (let i = 0; i < queued.length; i++) {
      const s = queued[i]!;
      expect(shown.method).toBe('sendPhoto');
      expect(isPng(shown.photo!)).toBe(true);
      expect(shown.caption).toMatch(
        new RegExp(`^Review #${s.id} \\(${queued.length - i} waiting\\)`),
      );
      const buttons = buttonsOf(shown);
      expect(buttons.map((b) => b.data)).toEqual([
        `r:${s.id}:a`,
        `r:${s.id}:x`,
        ...[...'0123456789'].map((d) => `r:${s.id}:${d}`),
      ]);
      // A student's press on a review button is refused.
      expect((await pressAndWait(boris, shown, `r:${s.id}:a`)).text).toBe(
        'Sorry, /review is for instructors only. If you teach this course, ask an admin to /grant you the instructor role.',
      );
      const before = (await labelRows()).length;
      const sentBefore = tg.sent.length;
      await pressAndWait(prof, shown, `r:${s.id}:a`);
      const rows = await labelRows();
      expect(rows).toHaveLength(before + 1);
      const student = s.labels.findLast((l) => l.role === 'student');
      expect(rows.at(-1)).toMatchObject({
        submissionId: Number(s.id),
        label: student?.label ?? s.predictedClass,
        source: 'instructor',
      });
      await tg.waitFor((sent) => sent.length > sentBefore);
      expect(tg.edits.find((e) => e.messageId === shown.messageId)?.caption).toMatch(
        /✓ Prof accepted/,
      );
      shown = tg.sent[sentBefore]!;
    }
    expect(shown.text).toBe('Nothing to review: no corrected or low-confidence photo is waiting.');
  });

  it('exports a zip with the folder layout and a CSV whose rows match the database', async () => {
    // One refused upload too, so that the CSV holds every submission, not only the photos.
    const pdf = tg.send({
      from: ann,
      chat: group,
      document: {
        bytes: Buffer.from('%PDF-1.4\n%%EOF\n'),
        fileName: 'a.pdf',
        mimeType: 'application/pdf',
      },
    });
    await answerTo(pdf.message_id);
    const cmd = tg.send({ from: prof, chat: group, text: '/export' });
    const doc = await answerTo(cmd.message_id);
    expect(doc.method).toBe('sendDocument');
    expect(doc.fileName).toMatch(/^class-\d{4}-\d{2}-\d{2}\.zip$/);
    const files = unzipSync(new Uint8Array(doc.document!));
    const names = Object.keys(files).sort();
    const rows = await db.labels.list();
    // Both photos now carry instructor labels: 7 (Ann's), 9 (Boris's, accepted in review).
    const expectedPhotos = rows
      .filter((r) => r.labels.some((l) => l.role === 'instructor' && l.label !== null))
      .map((r) => `${r.labels.findLast((l) => l.role === 'instructor')!.label}/${r.id}.png`);
    expect(names).toEqual([...expectedPhotos, 'submissions.csv'].sort());
    expect(
      names.filter((n) => n !== 'submissions.csv').every((n) => /^\d\/\d+\.png$/.test(n)),
    ).toBe(true);
    expect(doc.caption).toBe(
      `${expectedPhotos.length} labelled photos in folders 0–9 and ${rows.length} submissions in submissions.csv.`,
    );
    const csv = parseCsv(strFromU8(files['submissions.csv']!));
    expect(csv[0]).toEqual([...EXPORT_CSV_COLUMNS]);
    const body = csv
      .slice(1)
      .map((r) => Object.fromEntries(EXPORT_CSV_COLUMNS.map((c, i) => [c, r[i]])));
    expect(body.map((r) => r.submission_id)).toEqual(rows.map((r) => String(r.id)));
    for (const [i, r] of rows.entries()) {
      const row = body[i]!;
      expect(row.user_id).toBe(r.userPlatformId);
      expect(row.chat_id).toBe(String(group.id));
      expect(row.created_at).toBe(r.createdAt.toISOString());
      expect(row.model_id).toBe(r.modelId ?? '');
      expect(row.model_version).toBe(r.modelVersion ?? '');
      expect(row.predicted_class).toBe(r.predictedClass ?? '');
      expect(row.confidence).toBe(r.confidence === null ? '' : String(r.confidence));
      expect(row.error_code).toBe(r.errorCode ?? '');
      const instructor = r.labels.findLast((l) => l.role === 'instructor');
      expect(row.label).toBe(instructor?.label ?? r.labels.at(-1)?.label ?? '');
    }
    expect(body.at(-1)?.error_code).toBe('image.pdf');
    // The zip's photos are the stored bytes.
    const first = rows.find(
      (r) =>
        `${r.labels.findLast((l) => l.role === 'instructor')?.label}/${r.id}.png` ===
        expectedPhotos[0],
    );
    expect(Buffer.from(files[expectedPhotos[0]!]!)).toEqual(
      await db.images.read(first!.imageSha256!, 'png'),
    );
  });

  it('gives an instructor /stats with a confusion matrix image', async () => {
    const cmd = tg.send({ from: prof, chat: group, text: '/stats' });
    await tg.waitFor(() => tg.repliesTo(cmd.message_id).length >= 2);
    const [text, matrix] = tg.repliesTo(cmd.message_id);
    expect(text!.text).toMatch(/^Class statistics for this chat: 2 photos, 2 labelled\./);
    expect(text!.text).toContain('Ann: 1 photo, 100% confirmed, 0% corrected');
    expect(text!.text).toContain('Boris: 1 photo, 0% confirmed, 100% corrected');
    expect(text!.text).toMatch(/lenet-mnist \S+: 50% of 2/);
    expect(matrix!.method).toBe('sendPhoto');
    expect(isPng(matrix!.photo!)).toBe(true);
    expect(matrix!.caption).toMatch(/^Confusion matrix on 2 labelled photos/);
  });

  it("stores the chat's default model set by an instructor's /model, and refuses a student's", async () => {
    const denied = tg.send({ from: ann, chat: group, text: '/model lenet-mnist' });
    expect((await answerTo(denied.message_id)).text).toBe(
      'Sorry, /model is for instructors only. If you teach this course, ask an admin to /grant you the instructor role.',
    );
    const cmd = tg.send({ from: prof, chat: group, text: '/model LeNet-MNIST' });
    expect((await answerTo(cmd.message_id)).text).toBe(
      'From now on, bare photos in this chat are classified by lenet-mnist.',
    );
    expect((await db.chats.findByPlatform('telegram', String(group.id)))?.defaultModel).toBe(
      'lenet-mnist',
    );
    const show = tg.send({ from: ann, chat: group, text: '/model' });
    expect((await answerTo(show.message_id)).text).toBe(
      'Bare photos in this chat are classified by lenet-mnist.',
    );
    const reset = tg.send({ from: prof, chat: group, text: '/model default' });
    expect((await answerTo(reset.message_id)).text).toBe(
      'This chat uses the default model again: lenet-mnist.',
    );
    expect((await db.chats.findByPlatform('telegram', String(group.id)))?.defaultModel).toBeNull();
  });
});
