import { UserError } from '../../errors.ts';
import type { Command } from '../command.ts';
import { runLabCheck, taskList } from '../lab-check.ts';

/**
 * `/check <task>`: a student's saved Keras model (`.keras` or `.h5`, sent as a document with this
 * caption, or this command as a reply to the document) checked against a lab task: every
 * requirement ✓/✗ with the reason, the model's layer table, then its test-set accuracy, confusion
 * matrix and Grad-CAM beside the course's model. Recorded in `lab_submissions`.
 */
export default {
  name: 'check',
  description: {
    en: 'check your saved Keras model against a lab task',
    ru: 'проверить сохранённую модель Keras по заданию лабораторной',
  },
  usage: {
    en: '<task> (with your .keras or .h5 file, or as a reply to it)',
    ru: '<задание> (с файлом .keras или .h5 или ответом на него)',
  },
  example: '/check lenet',
  options: [
    {
      name: 'task',
      type: 'string',
      required: true,
      description: { en: `lab task: ${taskList()}`, ru: `задание: ${taskList()}` },
    },
    {
      name: 'model',
      type: 'image',
      required: true,
      description: { en: 'your model file (.keras or .h5)', ru: 'файл модели (.keras или .h5)' },
    },
  ],
  async execute(ctx, services) {
    const task = ctx.args.trim().split(/\s+/)[0] ?? '';
    if (task === '') {
      throw new UserError('lab.unknown_task', 'no task given', { task: '', known: taskList() });
    }
    ctx.showAction('typing');
    await runLabCheck(ctx, services, task);
  },
} satisfies Command;
