import { readFileSync } from 'node:fs';
import type { WasmBackendLike } from './wasm-heap.ts';

// tsconfig's libs (ES2023, no DOM) and @types/node 20 leave WebAssembly's JS API undeclared.
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: object };
}
const WebAssemblyApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The C functions of `wasm/heap-kernels.c`; pointers are byte offsets into the backend's heap. */
interface HeapKernelExports {
  sum_rows(x: number, rows: number, c: number, out: number, acc: number): void;
  broadcast_rows(
    op: number,
    a: number,
    rows: number,
    c: number,
    v: number,
    out: number,
    vFirst: number,
  ): void;
}

/** The binary ops of {@link HeapKernels.broadcastRows}, numbered as `broadcast_rows` takes them. */
export const BROADCAST_OPS = { add: 0, sub: 1, mul: 2, div: 3 } as const;
export type BroadcastOp = keyof typeof BROADCAST_OPS;

/**
 * Memory-bound float32 kernels compiled from `wasm/heap-kernels.c` to WebAssembly SIMD, running
 * in place on tfjs-backend-wasm's heap: the module imports the backend's own
 * `WebAssembly.Memory`, so tensors are read and written where they live (the GEMM module of
 * `wasm-gemm.ts` has its own memory and copies operands in). All offsets are byte offsets of
 * float32 data on that heap (`dataIdMap.get(dataId).memoryOffset`).
 */
export class HeapKernels {
  private readonly exports: HeapKernelExports;
  private readonly malloc: (bytes: number) => number;
  private readonly free: (at: number) => void;

  /**
   * @param memory the backend's `WebAssembly.Memory` (`backend.wasm.asm.memory`)
   * @param malloc the backend's allocator (`backend.wasm._malloc`, bytes to a byte offset)
   * @param free its `_free`
   */
  constructor(
    bytes: Uint8Array,
    memory: object,
    malloc: (bytes: number) => number,
    free: (at: number) => void,
  ) {
    this.malloc = malloc;
    this.free = free;
    const instance = new WebAssemblyApi.Instance(new WebAssemblyApi.Module(bytes), {
      env: { memory },
    });
    this.exports = instance.exports as unknown as HeapKernelExports;
  }

  /**
   * `out[j] = Σ_{r < rows} x[r·c + j]` for `j < c`: the sum over every axis but the last of a
   * row-major `[rows, c]` float32 array (per-channel sums of an NHWC tensor). Float32 SIMD lanes
   * over blocks of 256 rows, the blocks' partial sums in float64 (scratch of `8c` bytes, taken
   * from and returned to the backend's allocator), so the error does not grow with the rows as
   * a float32 running sum's does.
   */
  sumRows(x: number, rows: number, c: number, out: number): void {
    const acc = this.malloc(8 * c);
    try {
      this.exports.sum_rows(x, rows, c, out, acc);
    } finally {
      this.free(acc);
    }
  }

  /**
   * `out[r·c + j] = a[r·c + j] op v[j]` (or `v[j] op a[r·c + j]` when `vFirst`): a binary op with
   * `v` (`c` floats) broadcast along every axis but the last; element by element in IEEE single
   * precision, so bit for bit what the backend's own kernels give.
   */
  broadcastRows(
    op: BroadcastOp,
    a: number,
    rows: number,
    c: number,
    v: number,
    out: number,
    vFirst: boolean,
  ): void {
    this.exports.broadcast_rows(BROADCAST_OPS[op], a, rows, c, v, out, vFirst ? 1 : 0);
  }
}

/** The parts of tfjs-backend-wasm's Emscripten module past {@link WasmBackendLike}'s. */
interface WasmModuleWithMemory {
  readonly asm?: { readonly memory?: unknown };
  readonly _malloc?: (bytes: number) => number;
  readonly _free?: (at: number) => void;
}

let bytes: Uint8Array | undefined;
const modules = new WeakMap<object, HeapKernels | null>();

/**
 * The in-place kernels for this wasm backend (one instance per backend, compiled on first use
 * from the committed `heap-kernels.wasm`), or undefined when the backend's memory is not
 * reachable (another tfjs-backend-wasm build), in which case callers use the backend's kernels.
 */
export function heapKernels(backend: WasmBackendLike): HeapKernels | undefined {
  let kernels = modules.get(backend);
  if (kernels === undefined) {
    const module = backend.wasm as WasmModuleWithMemory;
    const memory = module.asm?.memory;
    const { _malloc: malloc, _free: free } = module;
    const isMemory =
      memory instanceof
      (globalThis as unknown as { WebAssembly: { Memory: new () => object } }).WebAssembly.Memory;
    bytes ??= readFileSync(new URL('./heap-kernels.wasm', import.meta.url));
    kernels =
      isMemory && malloc !== undefined && free !== undefined
        ? new HeapKernels(bytes, memory as object, malloc, free)
        : null;
    modules.set(backend, kernels);
  }
  return kernels ?? undefined;
}
