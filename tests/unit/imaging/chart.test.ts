import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { renderProbabilityChart } from '../../../src/imaging/chart.ts';

const names = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

describe('renderProbabilityChart', () => {
  it('renders a PNG with the predicted bar in the highlight colour', async () => {
    const probs = [0, 0, 0, 0.9, 0.1, 0, 0, 0, 0, 0];
    const png = await renderProbabilityChart({
      probabilities: probs,
      classNames: names,
      predicted: 3,
    });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect(info.width).toBeGreaterThan(400);
    let highlight = 0;
    let other = 0;
    for (let i = 0; i < data.length; i += info.channels) {
      const [r, g, b] = [data[i]!, data[i + 1]!, data[i + 2]!];
      if (r === 0x1f && g === 0x4f && b === 0xd1) highlight++;
      if (r === 0x87 && g === 0xce && b === 0xeb) other++;
    }
    // The 0.9 bar is about nine times the 0.1 bar.
    expect(highlight).toBeGreaterThan(5 * other);
    expect(other).toBeGreaterThan(0);
  });

  it('puts the model input beside the chart', async () => {
    const input = {
      data: new Float32Array(784).fill(1),
      width: 28,
      height: 28,
      channels: 1 as const,
    };
    const without = await sharp(
      await renderProbabilityChart({ probabilities: [1, 0], classNames: ['a', 'b'], predicted: 0 }),
    ).metadata();
    const withInput = await sharp(
      await renderProbabilityChart({
        probabilities: [1, 0],
        classNames: ['a', 'b'],
        predicted: 0,
        input,
      }),
    ).metadata();
    expect(withInput.width).toBeGreaterThan(without.width + 100);
    expect(withInput.height).toBe(without.height);
  });
});
