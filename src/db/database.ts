import { logger } from '../logger.ts';
import { createChatRepository, type ChatRepository } from './chat-repository.ts';
import {
  createDbClient,
  resolveDatabaseTarget,
  type DatabaseConfig,
  type DatabaseProvider,
} from './client.ts';
import { createImageRetention, type ImageRetention } from './image-retention.ts';
import { createImageStore, type ImageStore } from './image-store.ts';
import { createLabelRepository, type LabelRepository } from './label-repository.ts';
import { migrate } from './migrate.ts';
import {
  createModelVersionRepository,
  type ModelVersionRepository,
} from './model-version-repository.ts';
import { createSubmissionRepository, type SubmissionRepository } from './submission-repository.ts';
import { createTrainingRunRepository, type TrainingRuns } from './training-run-repository.ts';
import {
  createTelegramUpdateRepository,
  type TelegramUpdateRepository,
} from './telegram-update-repository.ts';
import {
  createLabSubmissionRepository,
  type LabSubmissionRepository,
} from './lab-submission-repository.ts';
import { createUserRepository, type UserRepository } from './user-repository.ts';

/** Everything the rest of the application stores, behind one interface for both providers. */
export interface Database {
  readonly provider: DatabaseProvider;
  readonly users: UserRepository;
  readonly chats: ChatRepository;
  readonly submissions: SubmissionRepository;
  /** Photos on disk under `<DATA_DIR>/images`, addressed by SHA-256. */
  readonly images: ImageStore;
  readonly modelVersions: ModelVersionRepository;
  readonly trainingRuns: TrainingRuns;
  /** Per-user image quota, kept images and expiry of the rest (issue 19). */
  readonly imageRetention: ImageRetention;
  /** Telegram updates received and answered: the durable polling offset (issue 15). */
  readonly telegramUpdates: TelegramUpdateRepository;
  /** Students' Keras models checked against the lab's tasks (issue 18). */
  readonly labSubmissions: LabSubmissionRepository;
  /** issue 16: labels of submissions' photos. */
  readonly labels: LabelRepository;
  /** Closes the connections; the object is unusable afterwards. */
  close(): Promise<void>;
}

/**
 * Opens the configured database (SQLite `<DATA_DIR>/cnn-classroom.db` unless `DATABASE_URL` names
 * a PostgreSQL database), applies pending migrations, and returns the repositories.
 *
 * @example
 * const db = await openDatabase(loadConfig());
 * const user = await db.users.upsertFromPlatform({ platform: 'telegram', platformId: '42' });
 * await db.close();
 */
export async function openDatabase(config: DatabaseConfig): Promise<Database> {
  const target = resolveDatabaseTarget(config);
  await migrate(target);
  const client = createDbClient(target);
  logger.debug({ provider: target.provider }, 'database open');
  const { prisma } = client;
  const images = createImageStore(config.DATA_DIR);
  return {
    provider: target.provider,
    users: createUserRepository(prisma),
    chats: createChatRepository(prisma),
    submissions: createSubmissionRepository(prisma),
    images,
    imageRetention: createImageRetention(prisma, images),
    modelVersions: createModelVersionRepository(prisma),
    trainingRuns: createTrainingRunRepository(prisma, target.provider),
    telegramUpdates: createTelegramUpdateRepository(prisma),
    labSubmissions: createLabSubmissionRepository(prisma),
    labels: createLabelRepository(prisma),
    close: () => client.close(),
  };
}
