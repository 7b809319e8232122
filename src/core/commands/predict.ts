import type { Classification } from '../../ml/classify.ts';
import type { ModelMeta } from '../../ml/model-meta.ts';
import { parsePredictArgs, unwrap } from '../args.ts';
import type { Command } from '../command.ts';
import { formatPercent, type Language, type Translate } from '../i18n.ts';
import { isDigitModel, labelKeyboard } from '../labels.ts';

/**
 * The caption of a prediction: model, label and confidence; the top classes; and, when the model
 * is not confident, a note saying so (for digit models: "this does not look like a digit").
 */
export function predictionCaption(
  meta: Pick<ModelMeta, 'id' | 'preprocess'>,
  r: Pick<Classification, 'label' | 'confidence' | 'topK' | 'confident'>,
  t: Translate,
  lang: Language,
): string {
  const lines = [
    t('predict.caption', {
      model: meta.id,
      label: r.label,
      confidence: formatPercent(r.confidence, lang),
    }),
    t('predict.top', {
      count: r.topK.length,
      list: r.topK.map((c) => `${c.label} ${formatPercent(c.probability, lang)}`).join(', '),
    }),
  ];
  if (!r.confident) {
    lines.push(
      t(
        meta.preprocess === 'mnist-digit' ? 'predict.not_confident_digit' : 'predict.not_confident',
      ),
    );
  }
  return lines.join('\n');
}

/**
 * `/predict [model]`: classifies the attached or replied-to image and answers with the
 * probability chart (the preprocessed input beside it) and a caption. A bare photo runs this
 * with no argument: the chat's default model.
 */
export default {
  name: 'predict',
  description: {
    en: 'classify the attached or replied-to photo',
    ru: 'распознать прикреплённое фото или фото из сообщения, на которое вы отвечаете',
  },
  usage: {
    en: '[model] (with a photo, or as a reply to one)',
    ru: '[модель] (с фото или ответом на сообщение с фото)',
  },
  example: '/predict lenet-mnist',
  options: [
    {
      name: 'image',
      type: 'image',
      required: true,
      description: { en: 'the photo to classify', ru: 'фото, которое нужно распознать' },
    },
    {
      name: 'model',
      type: 'string',
      description: { en: 'model id (see /models)', ru: 'модель (см. /models)' },
    },
  ],
  logsSubmission: true,
  async execute(ctx, services) {
    const known = (await services.models.list()).map((m) => m.id);
    const args = unwrap(parsePredictArgs(ctx.args, known));
    const modelId = args.model ?? ctx.storedChat.defaultModel ?? services.defaultModel;
    ctx.submission.modelId = modelId;
    // A rejected photo records the version that would have answered it.
    ctx.submission.modelVersion = services.models.servedVersion(modelId);
    const image = await ctx.loadImage();
    ctx.showAction('upload_photo');
    const { meta, version, result } = await services.classifier.classify(modelId, image.bytes);
    Object.assign(ctx.submission, {
      modelVersion: version,
      predictedClass: result.label,
      confidence: result.confidence,
      topK: result.topK.map(({ classIndex, label, probability }) => ({
        classIndex,
        label,
        probability,
      })),
    });
    const chart = await services.renderChart({
      probabilities: result.probabilities,
      classNames: meta.classNames,
      predicted: result.classIndex,
      input: result.input,
      title: ctx.t('chart.title', {
        label: result.label,
        confidence: formatPercent(result.confidence, ctx.lang),
      }),
      xTitle: ctx.t('chart.x'),
      yTitle: ctx.t('chart.y'),
    });
    // issue 16: confirm or correct in one tap, under every digit prediction.
    const buttons = isDigitModel(meta)
      ? labelKeyboard(ctx.messageId, meta.classNames, ctx.t('label.confirm_button'))
      : undefined;
    await ctx.replyImage(
      chart,
      predictionCaption(meta, result, ctx.t, ctx.lang),
      buttons ? { buttons } : undefined,
    );
  },
} satisfies Command;
