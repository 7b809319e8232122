/** One 8-connected component of a binary mask. */
export interface Component {
  /** Label in the label image (1-based). */
  readonly label: number;
  area: number;
  /** Sum of the weights of its pixels (ink darkness), for "strongest component" choices. */
  mass: number;
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
  /** Pixels on the outermost rows and columns of the image. */
  edgeContact: number;
}

/** Labels and per-component statistics of a binary mask. */
export interface Labelling {
  /** 0 for background, else the component's label. */
  readonly labels: Int32Array;
  readonly components: Component[];
}

/**
 * Labels the 8-connected components of `mask` (non-zero = foreground) by flood fill with an
 * explicit stack, collecting area, weighted mass, bounding box and contact with the image edge.
 */
export function labelComponents(
  mask: Uint8Array,
  width: number,
  height: number,
  weight?: Float32Array,
): Labelling {
  const labels = new Int32Array(width * height);
  const components: Component[] = [];
  const stack = new Int32Array(width * height);
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || labels[start]) continue;
    const label = components.length + 1;
    const c: Component = {
      label,
      area: 0,
      mass: 0,
      minX: width,
      minY: height,
      maxX: -1,
      maxY: -1,
      edgeContact: 0,
    };
    let top = 0;
    stack[top++] = start;
    labels[start] = label;
    while (top > 0) {
      const i = stack[--top] ?? 0;
      const x = i % width;
      const y = (i - x) / width;
      c.area++;
      c.mass += weight ? (weight[i] ?? 0) : 1;
      if (x < c.minX) c.minX = x;
      if (x > c.maxX) c.maxX = x;
      if (y < c.minY) c.minY = y;
      if (y > c.maxY) c.maxY = y;
      if (x === 0 || y === 0 || x === width - 1 || y === height - 1) c.edgeContact++;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= width) continue;
          const j = yy * width + xx;
          if (mask[j] && !labels[j]) {
            labels[j] = label;
            stack[top++] = j;
          }
        }
      }
    }
    components.push(c);
  }
  return { labels, components };
}
