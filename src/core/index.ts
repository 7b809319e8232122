/**
 * The core's public API, for adapters and `main.ts`: what an adapter fills in
 * ({@link ChatContext}), how it hands it over ({@link Core.handle}), and how the core is built.
 * Commands, parsers and texts stay internal.
 */
export type {
  ButtonPress,
  ReplyButton,
  ReplyOptions,
  ChatAction,
  ChatContext,
  ChatInfo,
  ChatUser,
  ImageRef,
  IncomingCommand,
  Platform,
  SentMessageRef,
} from './context.ts';
export type * from './training.ts';
export { authorText, jobStatusText, formatDuration } from './training.ts';
export { translator } from './i18n.ts';
export { ROLES, type Role, type AdminKey } from './roles.ts';
export { PLATFORMS } from './context.ts';
export type { Core, CoreOptions } from './dispatcher.ts';
export { createCore } from './dispatcher.ts';
export type { Command, CommandOption, CoreServices, LocalizedText } from './command.ts';
export { commands } from './commands/index.ts';
export type { Language } from './i18n.ts';
export { LANGUAGES, clientLanguage } from './i18n.ts';
export type * from './ports.ts';
export { createMemoryStore } from './memory-store.ts';
export { buildCoreServices, profileAllInBackground, type CoreServiceParts } from './services.ts';
export { createClassifier, type Classifier, type ModelCatalog } from './classifier.ts';
export { createExplainer, type Explainer } from './explainer.ts';
export { createModelProfiler, type ModelProfiler } from './profiler.ts';
export { parseCommandText } from './parse-command.ts';
