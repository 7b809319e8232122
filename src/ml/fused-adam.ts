import * as tf from '@tensorflow/tfjs';
import {
  ADAM_UPDATE,
  adamUpdateAvailable,
  registerAdamUpdateKernels,
} from './kernels/adam-update.ts';

type Gradients = Parameters<tf.AdamOptimizer['applyGradients']>[0];

/** The state of tfjs-core 4.22's `AdamOptimizer` (private there) that the fused step updates. */
interface AdamState {
  readonly learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly accBeta1: tf.Variable;
  readonly accBeta2: tf.Variable;
  readonly accumulatedFirstMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  readonly accumulatedSecondMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
}

/**
 * Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015) with one fused
 * kernel per variable ({@link ADAM_UPDATE}: moments, bias correction and update in one pass over
 * the parameters) instead of tfjs-core's eleven elementwise kernels, where that kernel runs (wasm,
 * cpu: `adamUpdateAvailable`); elsewhere exactly tfjs-core's `AdamOptimizer`. Same state, same
 * `getWeights`/`setWeights`, same serialization (class name `Adam`), and bit for bit the same
 * float32 results (tested against `tf.train.adam` on both backends).
 */
export class FusedAdamOptimizer extends tf.AdamOptimizer {
  override applyGradients(variableGradients: Gradients): void {
    if (!adamUpdateAvailable()) {
      super.applyGradients(variableGradients);
      return;
    }
    const state = this as unknown as AdamState;
    const names = Array.isArray(variableGradients)
      ? variableGradients.map((v) => v.name)
      : Object.keys(variableGradients);
    tf.tidy(() => {
      const f = Math.fround;
      const base = {
        beta1: state.beta1,
        oneMinusBeta1: f(1 - state.beta1),
        beta2: state.beta2,
        oneMinusBeta2: f(1 - state.beta2),
        correction1: f(1 - (state.accBeta1.dataSync()[0] ?? NaN)),
        correction2: f(1 - (state.accBeta2.dataSync()[0] ?? NaN)),
        epsilon: state.epsilon,
        negLearningRate: -state.learningRate,
      };
      names.forEach((name, i) => {
        const value = tf.engine().registeredVariables[name];
        if (value === undefined) {
          throw new Error(`Adam: no variable named ${name}`);
        }
        const first = (state.accumulatedFirstMoment[i] ??= {
          originalName: `${name}/m`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        });
        const second = (state.accumulatedSecondMoment[i] ??= {
          originalName: `${name}/v`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        });
        const gradient = Array.isArray(variableGradients)
          ? variableGradients[i]?.tensor
          : variableGradients[name];
        if (gradient == null) {
          return;
        }
        const [p, m, v] = tf
          .engine()
          .runKernel<tf.Tensor[]>(
            ADAM_UPDATE,
            { value, m: first.variable, v: second.variable, gradient },
            base,
          );
        first.variable.assign(m!);
        second.variable.assign(v!);
        value.assign(p!);
      });
      state.accBeta1.assign(tf.mul(state.accBeta1, state.beta1));
      state.accBeta2.assign(tf.mul(state.accBeta2, state.beta2));
    });
    this.incrementIterations();
  }
}

/**
 * An Adam optimizer with the fused update where the backend has it ({@link FusedAdamOptimizer});
 * defaults as `tf.train.adam` (β₁ 0.9, β₂ 0.999, ε the backend's).
 */
export function createAdam(learningRate: number): tf.AdamOptimizer {
  registerAdamUpdateKernels();
  return new FusedAdamOptimizer(learningRate, 0.9, 0.999);
}
