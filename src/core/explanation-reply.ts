/**
 * What `/gradcam` and `/saliency` share: their arguments, and the reply (the overlay and the text
 * saying which parts matter) to an explanation made by the explainer service (`explainer.ts`).
 */
import type { Explanation, ExplainMethod, ExplainOptions } from '../explain/explain-image.ts';
import { parseClassTarget } from '../explain/targets.ts';
import type { ColormapName } from '../imaging/colormap.ts';
import { renderOverlay } from '../imaging/overlay.ts';
import { UserError } from '../errors.ts';
import { splitArgs, type ParseResult } from './args.ts';
import type { CommandContext, CoreServices } from './command.ts';
import { formatPercent, type Language, type MessageKey, type Translate } from './i18n.ts';

/** What `/gradcam` and `/saliency` were asked for. */
export interface ExplainArgs {
  readonly model?: string;
  readonly method?: ExplainMethod;
  /** SmoothGrad (`/saliency smooth`). */
  readonly smooth?: boolean;
  /** The class, as typed (index or name); undefined for the top prediction. */
  readonly classQuery?: string;
}

const METHOD_WORDS: Readonly<Record<string, ExplainMethod>> = {
  gradcam: 'gradcam',
  'grad-cam': 'gradcam',
  'gradcam++': 'gradcam++',
  'grad-cam++': 'gradcam++',
  gradcampp: 'gradcam++',
  '++': 'gradcam++',
};

/** Model ids name their data set last (`lenet-mnist`, `resnet18-cifar10`, `mobilenet-imagenet`). */
const MODEL_ID_FORM = /^[a-z0-9]+(?:-[a-z0-9]+)*-(?:mnist|fashion|cifar10|imagenet)$/;

/**
 * Parses `/gradcam [model] [class] [method]` (`allowClass`) or `/saliency [model] [smooth]`.
 * Words are recognised by what they are: an installed model id, a method name, `smooth`; the
 * remaining words are the class (an index, or a name of several words).
 *
 * @returns `argument.invalid` for a word `/saliency` does not know; `model.unknown` when the first
 *   word has the form of a model id but no such model is installed.
 * @example
 * parseExplainArgs('mobilenet-imagenet great grey owl gradcam++', ['mobilenet-imagenet'], true);
 * // { ok: true, value: { model: 'mobilenet-imagenet', method: 'gradcam++', classQuery: 'great grey owl' } }
 */
export function parseExplainArgs(
  raw: string,
  knownModels: readonly string[],
  allowClass: boolean,
): ParseResult<ExplainArgs> {
  let model: string | undefined;
  let method: ExplainMethod | undefined;
  let smooth = false;
  const rest: string[] = [];
  const words = splitArgs(raw);
  const first = words[0]?.toLowerCase();
  // A model id of the zoo's form that is not installed: say so, rather than read it as a class.
  if (first !== undefined && !knownModels.includes(first) && MODEL_ID_FORM.test(first)) {
    return {
      ok: false,
      error: new UserError('model.unknown', `unknown model "${first}"`, {
        model: first,
        known: knownModels.join(', '),
      }),
    };
  }
  for (const word of words) {
    const w = word.toLowerCase();
    if (model === undefined && knownModels.includes(w)) model = w;
    else if (allowClass && method === undefined && METHOD_WORDS[w]) method = METHOD_WORDS[w];
    else if (!allowClass && (w === 'smooth' || w === 'smoothgrad')) smooth = true;
    else rest.push(word);
  }
  if (rest.length > 0 && !allowClass) {
    const usage = '/saliency [model] [smooth]';
    return {
      ok: false,
      error: new UserError(
        'argument.invalid',
        `cannot parse "${rest.join(' ')}"; usage: ${usage}`,
        {
          value: rest.join(' '),
          usage,
        },
      ),
    };
  }
  return {
    ok: true,
    value: {
      ...(model === undefined ? {} : { model }),
      ...(method === undefined ? {} : { method }),
      ...(smooth ? { smooth } : {}),
      ...(rest.length > 0 ? { classQuery: rest.join(' ') } : {}),
    },
  };
}

/** The name of a method, localized where it is not a proper name (SmoothGrad told apart). */
export function methodName(method: ExplainMethod, smooth: boolean, t: Translate): string {
  if (method === 'gradcam') return 'Grad-CAM';
  if (method === 'gradcam++') return 'Grad-CAM++';
  return t(smooth ? 'explain.method.smoothgrad' : 'explain.method.saliency');
}

/** The caption line of an explanation: model, class, confidence, method, layer. */
export function explanationCaption(
  e: Explanation,
  method: string,
  t: Translate,
  lang: Language,
): string {
  const params = {
    model: e.model,
    label: e.label,
    confidence: formatPercent(e.confidence, lang),
    method,
  };
  return e.layer === undefined
    ? t('explain.caption', params)
    : t('explain.caption_layer', { ...params, layer: e.layer });
}

/**
 * "Which parts matter", in words: where the heat is (the three ninths of the picture holding
 * most of it, and the main hot area's box), and the blur check's figures with a verdict.
 */
export function explanationText(
  e: Explanation,
  method: string,
  t: Translate,
  lang: Language,
): string {
  const pct = (v: number): string => formatPercent(v, lang, 0);
  const lines = [explanationCaption(e, method, t, lang)];
  if (e.classIndex !== e.predicted.classIndex) {
    lines.push(
      t('explain.not_top', {
        label: e.predicted.label,
        confidence: formatPercent(e.predicted.confidence, lang),
      }),
    );
  }
  if (e.note) {
    lines.push(t(`explain.note.${e.note}`));
    return lines.join('\n');
  }
  const top = e.thirds
    .map((share, i) => ({ share, i }))
    .sort((a, b) => b.share - a.share)
    .slice(0, 3)
    .map(({ share, i }) => `${t(`explain.region.${i}` as MessageKey)} ${pct(share)}`);
  lines.push(t('explain.where', { list: top.join(', ') }));
  if (e.blob) {
    lines.push(
      t('explain.blob', {
        x0: e.blob.x,
        x1: e.blob.x + e.blob.width - 1,
        y0: e.blob.y,
        y1: e.blob.y + e.blob.height - 1,
        area: pct(e.blob.area),
        mass: pct(e.blob.mass),
      }),
    );
  }
  if (e.space === 'model-input') {
    lines.push(
      t(e.preprocess === 'fashion-gray' ? 'explain.garment_space' : 'explain.digit_space'),
    );
  }
  const f = e.faithfulness;
  if (f) {
    lines.push(
      t('explain.faithfulness', {
        label: e.label,
        base: formatPercent(f.baseline, lang),
        hot: formatPercent(f.hotConfidence, lang),
        random: formatPercent(f.randomConfidence, lang),
      }),
    );
    // A saturated softmax barely moves whatever is blurred: then the check says nothing.
    const saturated = f.baseline >= 0.99 && Math.min(f.hotConfidence, f.randomConfidence) >= 0.99;
    // Five points of probability: below that the difference is within the random draws' spread.
    const verdict = f.hotDrop > f.randomDrop + 0.05 ? 'explain.faithful' : 'explain.unfaithful';
    lines.push(t(saturated ? 'explain.saturated' : verdict));
  }
  return lines.join('\n');
}

/** The overlay image of an explanation, its caption drawn in `lang`. */
export function renderExplanation(
  e: Explanation,
  method: string,
  t: Translate,
  lang: Language,
  style: { readonly colormap?: ColormapName; readonly alpha?: number } = {},
): Promise<Buffer> {
  return renderOverlay({
    image: e.image,
    map: e.map,
    ...style,
    caption: [
      `${e.label} (${formatPercent(e.confidence, lang)})`,
      `${e.model} · ${method}${e.layer ? ` · ${e.layer}` : ''}`,
    ],
    labels: { low: t('explain.low'), high: t('explain.high') },
  });
}

/**
 * Runs an explanation command: resolves the model, explains the image, and replies with the
 * overlay and its explanation text. Shared by `/gradcam` and `/saliency`.
 */
export async function runExplanation(
  ctx: CommandContext,
  services: CoreServices,
  args: ExplainArgs,
  options: Omit<ExplainOptions, 'target'>,
): Promise<void> {
  const modelId = args.model ?? ctx.storedChat.defaultModel ?? services.defaultModel;
  ctx.submission.modelId = modelId;
  const image = await ctx.loadImage();
  ctx.showAction('upload_photo');
  // The version answering now; a promotion landing during the explanation is not told apart.
  ctx.submission.modelVersion = services.models.servedVersion(modelId);
  const e = await services.explainer.explain(modelId, image.bytes, {
    ...options,
    target: parseClassTarget(args.classQuery),
  });
  Object.assign(ctx.submission, {
    predictedClass: e.predicted.label,
    confidence: e.predicted.confidence,
    topK: [
      {
        classIndex: e.predicted.classIndex,
        label: e.predicted.label,
        probability: e.predicted.confidence,
      },
    ],
  });
  const method = methodName(e.method, options.smoothGrad !== undefined, ctx.t);
  const png = await renderExplanation(e, method, ctx.t, ctx.lang);
  const text = explanationText(e, method, ctx.t, ctx.lang);
  // A photo caption holds 1024 characters (Telegram); the full text follows when longer.
  if (text.length <= 1024) await ctx.replyImage(png, text);
  else {
    await ctx.replyImage(png, explanationCaption(e, method, ctx.t, ctx.lang));
    await ctx.reply(text);
  }
}
