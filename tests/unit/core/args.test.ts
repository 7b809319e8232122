import { describe, expect, it } from 'vitest';
import {
  parseLangArgs,
  parsePredictArgs,
  splitArgs,
  unwrap,
  type ParseResult,
} from '../../../src/core/args.ts';
import { UserError } from '../../../src/errors.ts';
import { parseCommandText } from '../../../src/core/parse-command.ts';

const errorId = <T>(r: ParseResult<T>): string | undefined => (r.ok ? undefined : r.error.id);

describe('splitArgs', () => {
  it('splits on any whitespace and gives [] for nothing', () => {
    expect(splitArgs('  a \t b\nc ')).toEqual(['a', 'b', 'c']);
    expect(splitArgs('   ')).toEqual([]);
  });
});

describe('parsePredictArgs', () => {
  const known = ['lenet-mnist', 'mobilenet-imagenet'];
  it('takes no argument as "the chat default"', () => {
    expect(parsePredictArgs('', known)).toEqual({ ok: true, value: {} });
  });
  it('accepts a known model in any letter case', () => {
    expect(parsePredictArgs(' LeNet-MNIST ', known)).toEqual({
      ok: true,
      value: { model: 'lenet-mnist' },
    });
  });
  it('refuses an unknown model with model.unknown listing the known ones', () => {
    const r = parsePredictArgs('mobilenet-imagenet', ['lenet-mnist']);
    expect(errorId(r)).toBe('model.unknown');
    if (!r.ok)
      expect(r.error.params).toEqual({ model: 'mobilenet-imagenet', known: 'lenet-mnist' });
  });
  it('refuses extra words with argument.invalid and the usage', () => {
    const r = parsePredictArgs('lenet-mnist please', known);
    expect(errorId(r)).toBe('argument.invalid');
    if (!r.ok) expect(r.error.params.usage).toBe('/predict [model]');
  });
  it('does not throw on any input', () => {
    for (const s of ['', ' ', '../../etc', '💥', 'a'.repeat(10_000)]) {
      expect(() => parsePredictArgs(s, known)).not.toThrow();
    }
  });
});

describe('parseLangArgs', () => {
  it.each([
    ['', { action: 'show' }],
    ['ru', { action: 'set', language: 'ru' }],
    ['EN', { action: 'set', language: 'en' }],
    [' auto ', { action: 'auto' }],
  ] as const)('reads %j', (raw, value) => {
    expect(parseLangArgs(raw)).toEqual({ ok: true, value });
  });
  it.each(['xx', 'de', 'ru en'])('refuses %j with argument.invalid', (raw) => {
    const r = parseLangArgs(raw);
    expect(errorId(r)).toBe('argument.invalid');
    if (!r.ok) expect(r.error.params.value).toBe(raw);
  });
});

describe('unwrap', () => {
  it('returns the value or throws the UserError', () => {
    expect(unwrap(parseLangArgs('ru'))).toEqual({ action: 'set', language: 'ru' });
    expect(() => unwrap(parseLangArgs('xx'))).toThrow(UserError);
  });
});

describe('parseCommandText', () => {
  it.each([
    ['/predict', { name: 'predict', args: '' }],
    ['/Predict@cnn_bot  lenet-mnist ', { name: 'predict', args: 'lenet-mnist' }],
    ['  /lang ru', { name: 'lang', args: 'ru' }],
    ['/help\nmore', { name: 'help', args: 'more' }],
  ] as const)('reads %j', (text, expected) => {
    expect(parseCommandText(text)).toEqual(expected);
  });
  it.each(['hello', '', '/', '/ predict', 'see /help'])('finds no command in %j', (text) => {
    expect(parseCommandText(text)).toBeUndefined();
  });
});
