import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import {
  clearSecrets,
  registerSecrets,
  scrubSecrets,
  secretsOfConfig,
  serializeError,
} from '../../src/secrets.ts';

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, stream };
}

afterEach(() => clearSecrets());

describe('scrubSecrets', () => {
  it('masks registered secrets in plain, URL-encoded and JSON-escaped form', () => {
    registerSecrets(['p@ss"word/1', 'tiny']);
    expect(scrubSecrets('a p@ss"word/1 b')).toBe('a [secret] b');
    expect(scrubSecrets(`x=${encodeURIComponent('p@ss"word/1')}`)).toBe('x=[secret]');
    expect(scrubSecrets(JSON.stringify({ m: 'p@ss"word/1' }))).toBe('{"m":"[secret]"}');
    expect(scrubSecrets('tiny stays')).toBe('tiny stays'); // too short to be a secret
  });

  it('masks URL passwords, Telegram and Discord tokens even when not registered', () => {
    expect(scrubSecrets('postgresql://lab:hunter22@db:5432/lab')).toBe(
      'postgresql://lab:[secret]@db:5432/lab',
    );
    expect(scrubSecrets('redis://:s3cret@127.0.0.1:6379')).toBe('redis://:[secret]@127.0.0.1:6379');
    expect(
      scrubSecrets(
        'GET https://api.telegram.org/bot123456789:AAH7x-kd9_ffQwertyuiopasdfghjklzx/getMe',
      ),
    ).toBe('GET https://api.telegram.org/bot[secret]/getMe');
    expect(
      scrubSecrets('token MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GAbcDe.abcdefghijklmnopqrstuvwxyz012345'),
    ).toBe('token [secret]');
    // JSON stays JSON: the URL pattern does not run across string boundaries.
    const line = JSON.stringify({ a: 'http://x:1', b: 'y@z' });
    expect(scrubSecrets(line)).toBe(line);
  });
});

describe('secretsOfConfig', () => {
  it('finds tokens, secrets and URL passwords, also in a URL that does not parse', () => {
    const found = secretsOfConfig({
      TELEGRAM_BOT_TOKEN: '1:abc',
      TELEGRAM_WEBHOOK_SECRET: 'hook-secret',
      DATABASE_URL: 'postgresql://lab:p%40ss@db:99999999/lab',
      REDIS_URL: 'redis://:redispw@127.0.0.1:6379',
      DATA_DIR: '/srv/data',
    });
    expect(found).toEqual(
      expect.arrayContaining(['1:abc', 'hook-secret', 'p%40ss', 'p@ss', 'redispw']),
    );
    expect(found).not.toContain('/srv/data');
  });

  it('is applied by loadConfig, before anything parses the database URL', () => {
    loadConfig({ DATABASE_URL: 'postgresql://lab:Secret-9z@db:99999999/lab' });
    expect(() => new URL('postgresql://lab:Secret-9z@db:99999999/lab')).toThrow();
    expect(scrubSecrets('input "Secret-9z"')).toBe('input "[secret]"');
  });
});

describe('serializeError', () => {
  it('keeps name, code, message and nested causes, and drops every other field', () => {
    registerSecrets(['tok-123456:secret']);
    const inner = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
      code: 'ECONNREFUSED',
      syscall: 'connect',
      port: 1,
      options: { headers: { authorization: 'Bot tok-123456:secret' } },
    });
    const fetchError = Object.assign(
      new Error('request to http://x/bottok-123456:secret/getUpdates failed', { cause: inner }),
      { type: 'system' },
    );
    // grammY's HttpError keeps the fetch error under `error`.
    const http = Object.assign(new Error("Network request for 'getUpdates' failed!"), {
      name: 'HttpError',
      error: fetchError,
    });
    const out = serializeError(http);
    const text = JSON.stringify(out);
    expect(text).not.toContain('tok-123456:secret');
    expect(out).toMatchObject({
      type: 'HttpError',
      message: "Network request for 'getUpdates' failed!",
      errors: [
        {
          message: 'request to http://x/bot[secret]/getUpdates failed',
          cause: { code: 'ECONNREFUSED', syscall: 'connect', port: 1 },
        },
      ],
    });
    expect(text).not.toContain('authorization');
  });

  it('drops the input of ERR_INVALID_URL, where a malformed DATABASE_URL sits whole', () => {
    let error: unknown;
    try {
      new URL('postgresql://lab:unregistered-pw@db:99999999/lab');
    } catch (e) {
      error = e;
    }
    expect((error as { input?: string }).input).toContain('unregistered-pw');
    const out = serializeError(error);
    expect(out).toMatchObject({ type: 'TypeError', code: 'ERR_INVALID_URL' });
    expect(JSON.stringify(out)).not.toContain('unregistered-pw');
  });

  it('is what the logger uses for err, and the logger scrubs whole lines', () => {
    registerSecrets(['webhook-secret-abc']);
    const { lines, stream } = capture();
    const log = createLogger(stream, 'info');
    log.error({ err: new Error('bad webhook-secret-abc'), url: 'x webhook-secret-abc' }, 'oops');
    log.warn({ cause: new AggregateError([new Error('a webhook-secret-abc')]) }, 'many');
    log.info('message with webhook-secret-abc inside');
    expect(lines).toHaveLength(3);
    expect(lines.join('')).not.toContain('webhook-secret-abc');
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
      err: { type: 'Error', message: 'bad [secret]' },
      url: 'x [secret]',
    });
    expect(JSON.parse(lines[1] ?? '{}')).toMatchObject({
      cause: { type: 'AggregateError', errors: [{ message: 'a [secret]' }] },
    });
  });
});
