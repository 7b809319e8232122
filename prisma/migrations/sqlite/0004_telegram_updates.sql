-- issue 15: Telegram updates stored before they are confirmed to Telegram, marked answered once
-- handled; a restart handles the unanswered ones. max(update_id) + 1 is the polling offset.
CREATE TABLE "telegram_updates" (
    "update_id" BIGINT NOT NULL PRIMARY KEY,
    "payload" TEXT NOT NULL,
    "received_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "answered_at" DATETIME
);
CREATE INDEX "telegram_updates_answered_at_idx" ON "telegram_updates"("answered_at");
