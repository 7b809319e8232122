import type { Command } from '../command.ts';
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
  role: 'instructor',
  async execute(ctx, services) {
    await showNextReview(ctx, services);
  },
} satisfies Command;
