import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { escapeXml } from '../../../src/imaging/svg.ts';

describe('escapeXml', () => {
  it('turns markup characters into character references', () => {
    expect(escapeXml(`cats & dogs <3 "x" 'y' >`)).toBe(
      'cats &#38; dogs &#60;3 &#34;x&#34; &#39;y&#39; &#62;',
    );
  });

  it('keeps an SVG with a hostile label renderable', async () => {
    const label = '</text><script>alert(1)</script>&';
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><text x="1" y="15">${escapeXml(label)}</text></svg>`;
    const png = await sharp(Buffer.from(svg)).png().toBuffer();
    expect((await sharp(png).metadata()).width).toBe(40);
  });
});
