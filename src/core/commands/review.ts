import type { Command } from '../command.ts';
import { requireInstructor } from '../labelling.ts';
import { showNextReview } from '../review-queue.ts';

/**
 * issue 16: `/review` (instructors): the next corrected or low-confidence photo no instructor has
 * checked, with its preprocessed input, the prediction and the student's label, and buttons to
 * accept, relabel or exclude it. Each press shows the next one.
 */
export default {
  name: 'review',
  description: {
    en: 'instructors: check the photos students corrected or the model was unsure of',
    ru: 'преподавателям: проверить фото, исправленные студентами или сомнительные для модели',
  },
  async execute(ctx, services) {
    requireInstructor(ctx, 'review');
    await showNextReview(ctx, services);
  },
} satisfies Command;
