-- issue 16: the class teaches the bot. Labels are rows, never updated or deleted: the effective
-- label of a submission is computed from them (the latest instructor row wins over students').
ALTER TABLE "chats" ADD COLUMN "default_model" TEXT;

CREATE TABLE "labels" (
    "id" SERIAL NOT NULL,
    "submission_id" INTEGER NOT NULL,
    -- The class label (a digit); NULL only for an instructor's "exclude from training".
    "label" TEXT,
    "user_id" INTEGER,
    "role" TEXT NOT NULL CHECK ("role" IN ('student', 'instructor', 'admin')),
    "source" TEXT NOT NULL CHECK ("source" IN ('confirmed', 'corrected', 'instructor')),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "labels_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "labels_submission_id_idx" ON "labels"("submission_id", "id");
CREATE INDEX "submissions_chat_id_platform_message_id_idx" ON "submissions"("chat_id", "platform_message_id");
ALTER TABLE "labels" ADD CONSTRAINT "labels_submission_id_fkey" FOREIGN KEY ("submission_id") REFERENCES "submissions"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "labels" ADD CONSTRAINT "labels_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;
