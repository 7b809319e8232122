import sharp from 'sharp';
import { UserError } from '../errors.ts';

/**
 * Image containers this build decodes. Judged from the file's bytes (magic numbers), never from its
 * name or MIME type. BMP and HEIC (HEVC-coded HEIF) are recognised but refused as
 * `image.unsupported_format`: the prebuilt libvips has no decoder for them.
 */
export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'avif';

/**
 * Upper bounds checked before any pixel is decoded. Only `maxBytes` and `maxPixels` are required;
 * the rest default to {@link DECODE_BUDGET}.
 */
export interface ImageLimits {
  /** Largest accepted file, bytes. */
  readonly maxBytes: number;
  /**
   * Most pixels decoded (of the first frame). A JPEG larger than this is decoded shrunk on load
   * (1/2, 1/4 or 1/8 of each side, libjpeg's DCT scaling), so up to `8 * maxPixels` header pixels
   * are answered; other formats cannot shrink while decoding and are refused above it.
   */
  readonly maxPixels: number;
  /** Most bytes of decoded pixel data: pixels x channels x bytes per sample. */
  readonly maxDecodeBytes?: number;
  /** Most frames of an animation (only the first is decoded, but the decoder walks them all). */
  readonly maxFrames?: number;
  /** Largest ratio of the longer side to the shorter: a 1 x 40,000,000 strip is not a photo. */
  readonly maxAspect?: number;
  /** Most scans (SOS markers) of a JPEG: libjpeg makes a pass over the frame for each. */
  readonly maxJpegScans?: number;
}

/**
 * The defaults of the optional {@link ImageLimits}, and the shrink-on-load factor. Sizes are
 * chosen from what the models need: the largest model input is 224 px, Grad-CAM overlays are drawn
 * at most 1024 px, so the pixel cap (16 MP by default, `MAX_IMAGE_PIXELS`) is about 16 times the
 * largest overlay and never the limiting factor for a photo.
 */
export const DECODE_BUDGET = {
  /** 16-bit RGB at 16 MP, or 8-bit RGBA at 24 MP: bytes of decoded pixel data. */
  maxDecodeBytesPerPixel: 6,
  maxFrames: 1000,
  maxAspect: 25,
  /**
   * Progressive JPEG encoders write about 10 scans (libjpeg's default script), optimisers up to
   * 20-odd; every further scan costs a pass over the whole frame (issue 19: 3,000 scans, 10 s).
   */
  maxJpegScans: 40,
  /** The largest JPEG shrink-on-load factor (per side). */
  jpegShrink: 8,
  /** Channels an ordinary photo has: grey, grey + alpha, RGB, RGBA or CMYK. */
  maxChannels: 4,
} as const;

/** What the header says about an image, before decoding it. */
export interface ImageInfo {
  readonly format: ImageFormat;
  /** Stored width, before EXIF orientation. */
  readonly width: number;
  /** Stored height of one frame, before EXIF orientation. */
  readonly height: number;
  /** Frames in an animation (1 for a still image). */
  readonly pages: number;
  /** EXIF orientation tag, 1 (upright) when absent. */
  readonly orientation: number;
  readonly hasAlpha: boolean;
  /** Samples per pixel, alpha included (1 grey ... 4 RGBA or CMYK). */
  readonly channels: number;
  /** Bytes per sample: 1 (8-bit) or 2 (16-bit). */
  readonly bytesPerSample: number;
  /**
   * The JPEG shrink-on-load factor per side that decoding will use (1, or 2/4/8 for a JPEG over
   * `maxPixels`): the decoded image has at most `ceil(width / shrink) * ceil(height / shrink)`
   * pixels before any further resize.
   */
  readonly shrink: number;
}

/** How transparent pixels were flattened. */
export type Backdrop = 'opaque' | 'white' | 'black';

/** A decoded, upright, 8-bit sRGB image without alpha. */
export interface DecodedImage {
  readonly info: ImageInfo;
  /** Interleaved RGB, row-major, `width * height * 3` bytes. */
  readonly data: Uint8Array;
  /** Width after EXIF orientation and any down-scaling. */
  readonly width: number;
  readonly height: number;
  /**
   * `opaque` when the image had no meaningful transparency; otherwise the colour the
   * transparent area was filled with, chosen to contrast with the opaque (drawn) part.
   */
  readonly backdrop: Backdrop;
}

/** Options of {@link decodeImage}. */
export interface DecodeOptions {
  /**
   * Longest side of the result; larger images are shrunk (on load for JPEG, which is what makes
   * a 12-megapixel photo cheap). Smaller images are never enlarged. Default: no limit.
   */
  readonly maxSide?: number;
}

const ascii = (s: string): number[] => Array.from(s, (c) => c.charCodeAt(0));

function startsWith(bytes: Uint8Array, sig: readonly number[], at = 0): boolean {
  if (bytes.length < at + sig.length) return false;
  return sig.every((b, i) => bytes[at + i] === b);
}

function indexOfAscii(bytes: Uint8Array, s: string, within: number): number {
  const sig = ascii(s);
  const end = Math.min(bytes.length - sig.length, within);
  for (let i = 0; i <= end; i++) if (startsWith(bytes, sig, i)) return i;
  return -1;
}

type Sniffed = ImageFormat | 'pdf' | 'text' | 'bmp' | 'heic' | 'unknown';

const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIC_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1']);

/** ISO-BMFF (HEIF family): `....ftyp` then a major brand and compatible brands. */
function sniffHeif(bytes: Uint8Array): Sniffed | undefined {
  if (!startsWith(bytes, ascii('ftyp'), 4)) return undefined;
  const boxSize = Math.min(
    bytes.length,
    ((bytes[0] ?? 0) << 24) | ((bytes[1] ?? 0) << 16) | ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0),
  );
  const brands: string[] = [];
  for (let at = 8; at + 4 <= boxSize; at += 4) {
    if (at === 12) continue; // minor version, not a brand
    brands.push(String.fromCharCode(...bytes.subarray(at, at + 4)));
  }
  if (brands.some((b) => AVIF_BRANDS.has(b))) return 'avif';
  if (brands.some((b) => HEIC_BRANDS.has(b))) return 'heic';
  return 'unknown';
}

/**
 * True when the start of the file reads as text: valid UTF-8 (or UTF-16 with a byte-order mark)
 * with no control characters other than whitespace. SVG, HTML, JSON and plain text all land here.
 */
function looksLikeText(bytes: Uint8Array): boolean {
  if (startsWith(bytes, [0xfe, 0xff]) || startsWith(bytes, [0xff, 0xfe])) return true;
  const head = bytes.subarray(0, 4096);
  let text: string;
  try {
    // A multi-byte character cut by the 4 KiB window is not an error: drop up to 3 trailing bytes.
    text = new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(0, trimUtf8Tail(head)));
  } catch {
    return false;
  }
  if (text.length === 0) return false;
  let control = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0) ?? 0;
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d && c !== 0x0c) || c === 0x7f) control++;
  }
  return control === 0;
}

function trimUtf8Tail(b: Uint8Array): number {
  let end = b.length;
  // Walk back over continuation bytes to the last lead byte; drop the character if incomplete.
  for (let k = 1; k <= 3 && end - k >= 0; k++) {
    const byte = b[end - k] ?? 0;
    if ((byte & 0xc0) === 0x80) continue;
    if (byte >= 0xc0) {
      const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
      if (need > k) end -= k;
    }
    break;
  }
  return end;
}

/** Identifies a file from its first bytes. Exported for tests and the upload handlers. */
export function sniffFormat(bytes: Uint8Array): Sniffed {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a'))) return 'gif';
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return 'webp';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) {
    return 'tiff';
  }
  if (startsWith(bytes, ascii('BM')) && bytes.length >= 26) return 'bmp';
  const heif = sniffHeif(bytes);
  if (heif) return heif;
  // PDF readers accept the header anywhere in the first KiB (ISO 32000-1, annex H.3).
  if (indexOfAscii(bytes, '%PDF-', 1024) >= 0) return 'pdf';
  if (looksLikeText(bytes)) return 'text';
  return 'unknown';
}

/**
 * libvips messages that mean "the data stopped early". libspng's bare "read error" is one: on an
 * in-memory buffer the only failing read is one past the end.
 */
const TRUNCATION =
  /premature end|end of stream|unexpected end|truncat|not enough data|short read|EOF|incomplete|libspng read error/i;

/** Maps a libvips failure to the user-facing error. */
function decoderError(e: unknown, limits: ImageLimits): UserError {
  const message = e instanceof Error ? e.message : String(e);
  if (/pixel limit/i.test(message)) {
    return new UserError(
      'image.too_many_pixels',
      `the image has more than ${limits.maxPixels} pixels`,
      {
        maxPixels: limits.maxPixels,
      },
    );
  }
  return TRUNCATION.test(message)
    ? new UserError('image.truncated', `the image data ends early: ${message}`)
    : new UserError('image.corrupt', `the image cannot be decoded: ${message}`);
}

function sharpInput(bytes: Uint8Array, maxInputPixels: number): sharp.Sharp {
  return sharp(bytes, {
    // Belt and braces: the header checks below already refused anything larger.
    limitInputPixels: maxInputPixels,
    // A truncated file must fail rather than decode as a grey lower half.
    failOn: 'truncated',
    // Animations: first frame only.
    pages: 1,
    page: 0,
  });
}

/** JPEG markers without a length field: TEM, RST0-7, SOI, EOI. */
const isStandaloneMarker = (m: number): boolean => m === 0x01 || (m >= 0xd0 && m <= 0xd9);

/**
 * Counts a JPEG's scans (SOS markers) by walking its marker segments and skipping each scan's
 * entropy-coded data, without decoding anything. Stops counting past `stopAfter`.
 *
 * Follows ITU T.81 annex B: a segment is `FF xx` plus a big-endian length that includes itself;
 * inside entropy-coded data `FF 00` is a stuffed byte and `FF D0`-`FF D7` restart markers.
 */
export function countJpegScans(bytes: Uint8Array, stopAfter = Infinity): number {
  let scans = 0;
  let i = 2; // after SOI
  while (i + 1 < bytes.length && scans <= stopAfter) {
    if (bytes[i] !== 0xff) {
      i++; // garbage between segments: libjpeg skips it with a warning, so do we
      continue;
    }
    const marker = bytes[i + 1] ?? 0;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0xd9) break; // EOI
    if (isStandaloneMarker(marker) || marker === 0x00) {
      i += 2;
      continue;
    }
    const length = ((bytes[i + 2] ?? 0) << 8) | (bytes[i + 3] ?? 0);
    i += 2 + length;
    if (marker !== 0xda) continue;
    scans++;
    // Entropy-coded data runs to the next marker that is neither stuffing nor a restart.
    while (i + 1 < bytes.length) {
      if (bytes[i] === 0xff) {
        const next = bytes[i + 1] ?? 0;
        if (next !== 0x00 && !(next >= 0xd0 && next <= 0xd7) && next !== 0xff) break;
      }
      i++;
    }
  }
  return scans;
}

/** Bytes per sample of libvips' band formats that a photo may have; others are refused. */
const BYTES_PER_SAMPLE: Readonly<Record<string, number>> = {
  uchar: 1,
  char: 1,
  ushort: 2,
  short: 2,
};

/** Human names of the refused sample formats, for the message. */
const SAMPLE_FORMAT_NAMES: Readonly<Record<string, string>> = {
  uint: '32-bit integer',
  int: '32-bit integer',
  float: '32-bit float',
  double: '64-bit float',
  complex: 'complex',
  dpcomplex: 'complex',
};

/** The smallest JPEG shrink-on-load factor (1, 2, 4 or 8) that brings the image within the cap. */
function jpegShrink(width: number, height: number, maxPixels: number): number {
  for (let s = 1; s <= DECODE_BUDGET.jpegShrink; s *= 2) {
    if (Math.ceil(width / s) * Math.ceil(height / s) <= maxPixels) return s;
  }
  return 0;
}

/**
 * Checks an upload from its bytes and header only: no pixel is decoded, so a decompression bomb
 * (a 40,000 x 40,000 PNG, a 1000-band TIFF, a JPEG of thousands of scans) of a few kilobytes is
 * refused in milliseconds. The decode budget is the real cost of decoding: decoded pixels (after
 * any JPEG shrink-on-load) x channels x bytes per sample, the number of frames, the aspect ratio,
 * and for JPEG the number of scans.
 *
 * @throws {UserError} `image.empty`, `image.too_large_bytes`, `image.pdf`, `image.text`,
 *   `image.unsupported_format`, `image.too_many_scans`, `image.too_many_channels`,
 *   `image.unsupported_sample_format`, `image.too_many_frames`, `image.extreme_aspect`,
 *   `image.too_many_pixels`, `image.too_much_data`, `image.truncated`, `image.corrupt`.
 * @example
 * const info = await inspectImage(bytes, { maxBytes: 20e6, maxPixels: 16e6 });
 * info.format; // 'jpeg'
 */
export async function inspectImage(bytes: Uint8Array, limits: ImageLimits): Promise<ImageInfo> {
  if (bytes.length === 0) throw new UserError('image.empty', 'the file is empty');
  if (bytes.length > limits.maxBytes) {
    throw new UserError('image.too_large_bytes', `the file has ${bytes.length} bytes`, {
      bytes: bytes.length,
      maxBytes: limits.maxBytes,
    });
  }
  const sniffed = sniffFormat(bytes);
  switch (sniffed) {
    case 'pdf':
      throw new UserError('image.pdf', 'the file is a PDF document');
    case 'text':
      // SVG is text too: rendering it would mean running an XML parser and a renderer on
      // untrusted input (entities, external references, unbounded canvas) for little gain.
      throw new UserError('image.text', 'the file is text, not an image');
    case 'bmp':
    case 'heic':
    case 'unknown':
      throw new UserError('image.unsupported_format', `unsupported file type (${sniffed})`, {
        format: sniffed,
      });
    default:
      break;
  }
  if (sniffed === 'jpeg') {
    const maxScans = limits.maxJpegScans ?? DECODE_BUDGET.maxJpegScans;
    const scans = countJpegScans(bytes, maxScans);
    if (scans > maxScans) {
      throw new UserError('image.too_many_scans', `the JPEG has over ${maxScans} scans`, {
        scans: `${maxScans}+`,
        maxScans,
      });
    }
  }
  let meta: sharp.Metadata;
  try {
    // metadata() reads the header only; no pixel limit applies yet.
    meta = await sharpInput(bytes, 0).metadata();
  } catch (e) {
    throw decoderError(e, limits);
  }
  const width = meta.width;
  const height = meta.pageHeight ?? meta.height;
  if (!width || !height) throw new UserError('image.corrupt', 'the header has no dimensions');
  const size = { width, height };
  const channels = meta.channels ?? 3;
  if (channels > DECODE_BUDGET.maxChannels) {
    throw new UserError('image.too_many_channels', `the image has ${channels} channels`, {
      channels,
      ...size,
    });
  }
  const bytesPerSample = BYTES_PER_SAMPLE[meta.depth ?? 'uchar'];
  if (bytesPerSample === undefined) {
    const depth = meta.depth ?? 'unknown';
    throw new UserError('image.unsupported_sample_format', `the samples are ${depth}`, {
      sampleFormat: SAMPLE_FORMAT_NAMES[depth] ?? depth,
    });
  }
  const pages = meta.pages ?? 1;
  const maxFrames = limits.maxFrames ?? DECODE_BUDGET.maxFrames;
  if (pages > maxFrames) {
    throw new UserError('image.too_many_frames', `the animation has ${pages} frames`, {
      frames: pages,
      maxFrames,
    });
  }
  const maxAspect = limits.maxAspect ?? DECODE_BUDGET.maxAspect;
  if (Math.max(width, height) > maxAspect * Math.min(width, height)) {
    throw new UserError('image.extreme_aspect', `the image is ${width}x${height} pixels`, {
      ...size,
      maxAspect,
    });
  }
  const shrink = sniffed === 'jpeg' ? jpegShrink(width, height, limits.maxPixels) : 1;
  if (shrink === 0 || width * height > limits.maxPixels * (shrink === 1 ? 1 : 8)) {
    // The factor-8 JPEG still decodes every coefficient (a progressive one keeps them all in
    // memory): JPEGs are answered up to 8x the cap, e.g. 108 MP under the 16 MP default.
    throw new UserError('image.too_many_pixels', `the image is ${width}x${height} pixels`, {
      ...size,
      maxPixels: limits.maxPixels,
    });
  }
  const decodedPixels = Math.ceil(width / shrink) * Math.ceil(height / shrink);
  const decodeBytes = decodedPixels * channels * bytesPerSample;
  const maxDecodeBytes =
    limits.maxDecodeBytes ?? limits.maxPixels * DECODE_BUDGET.maxDecodeBytesPerPixel;
  if (decodeBytes > maxDecodeBytes) {
    throw new UserError('image.too_much_data', `decoding needs ${decodeBytes} bytes`, {
      megabytes: Math.ceil(decodeBytes / 1e6),
      maxMegabytes: Math.floor(maxDecodeBytes / 1e6),
    });
  }
  return {
    format: sniffed,
    width,
    height,
    pages,
    orientation: meta.orientation ?? 1,
    hasAlpha: meta.hasAlpha,
    channels,
    bytesPerSample,
    shrink,
  };
}

/** Share of (nearly) transparent pixels above which alpha is read as "the drawing's mask". */
const DRAWING_TRANSPARENT_SHARE = 0.2;

/**
 * Flattens RGBA onto a backdrop. A photo with a few transparent pixels goes on white, as viewers
 * show it. A drawing on a transparent canvas (a large transparent share) carries its ink in the
 * opaque part, whatever that part's colour: the backdrop is chosen to contrast with it, so a black
 * digit on transparent becomes black on white and a white one white on black.
 */
function flatten(rgba: Uint8Array, n: number): { rgb: Uint8Array; backdrop: Backdrop } {
  let transparent = 0;
  let inkWeight = 0;
  let inkLuma = 0;
  for (let i = 0; i < n; i++) {
    const a = rgba[i * 4 + 3] ?? 255;
    if (a < 128) transparent++;
    const w = a / 255;
    inkWeight += w;
    inkLuma +=
      w *
      (0.299 * (rgba[i * 4] ?? 0) +
        0.587 * (rgba[i * 4 + 1] ?? 0) +
        0.114 * (rgba[i * 4 + 2] ?? 0));
  }
  let backdrop: Backdrop = 'white';
  if (transparent === 0 && inkWeight >= n - 0.5) backdrop = 'opaque';
  else if (transparent / n >= DRAWING_TRANSPARENT_SHARE && inkWeight > 0) {
    backdrop = inkLuma / inkWeight >= 128 ? 'black' : 'white';
  }
  const bg = backdrop === 'black' ? 0 : 255;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const a = (rgba[i * 4 + 3] ?? 255) / 255;
    for (let c = 0; c < 3; c++) {
      rgb[i * 3 + c] = Math.round(a * (rgba[i * 4 + c] ?? 0) + (1 - a) * bg);
    }
  }
  return { rgb, backdrop };
}

/**
 * Decodes an upload into upright 8-bit sRGB: first frame of an animation, EXIF orientation
 * applied, 16-bit and CMYK and grey converted, transparency flattened (see {@link Backdrop}).
 * Runs {@link inspectImage} first, so every refusal happens before decoding. A pure function of
 * its arguments (bytes in, pixels out), so it can run in a worker thread.
 *
 * @throws {UserError} as {@link inspectImage}, plus `image.truncated` and `image.corrupt` for
 *   data that fails while decoding.
 * @example
 * const img = await decodeImage(bytes, limits, { maxSide: 1000 });
 * img.data.length === img.width * img.height * 3; // true
 */
export async function decodeImage(
  bytes: Uint8Array,
  limits: ImageLimits,
  options: DecodeOptions = {},
): Promise<DecodedImage> {
  const info = await inspectImage(bytes, limits);
  let pipeline = sharpInput(bytes, info.width * info.height).autoOrient();
  // A JPEG over the pixel cap must be shrunk while loading: asking for a longest side of at most
  // 1/shrink of the original makes sharp pick libjpeg's DCT scaling by that factor.
  const shrunkSide =
    info.shrink > 1 ? Math.floor(Math.max(info.width, info.height) / info.shrink) : Infinity;
  const maxSide = Math.min(options.maxSide ?? Infinity, shrunkSide);
  if (Number.isFinite(maxSide)) {
    pipeline = pipeline.resize({
      width: maxSide,
      height: maxSide,
      fit: 'inside',
      withoutEnlargement: true,
    });
  }
  pipeline = pipeline.toColourspace('srgb');
  pipeline = info.hasAlpha ? pipeline.ensureAlpha() : pipeline.removeAlpha();
  let raw: { data: Buffer; info: sharp.OutputInfo };
  try {
    raw = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw decoderError(e, limits);
  }
  const { width, height, channels } = raw.info;
  const n = width * height;
  if (channels === 4) {
    const { rgb, backdrop } = flatten(raw.data, n);
    return { info, data: rgb, width, height, backdrop };
  }
  if (channels !== 3) throw new UserError('image.corrupt', `unexpected ${channels} channels`);
  return {
    info,
    data: new Uint8Array(raw.data.buffer, raw.data.byteOffset, n * 3),
    width,
    height,
    backdrop: 'opaque',
  };
}
