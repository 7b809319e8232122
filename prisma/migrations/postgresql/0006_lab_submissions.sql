-- issue 18: students' Keras models checked against the lab's tasks.
CREATE TABLE "lab_submissions" (
    "id" SERIAL NOT NULL,
    "user_id" INTEGER NOT NULL,
    "chat_id" INTEGER,
    "task" TEXT NOT NULL,
    "file_name" TEXT,
    "file_sha256" TEXT NOT NULL,
    "file_path" TEXT,
    "file_bytes" INTEGER NOT NULL,
    "format" TEXT NOT NULL CHECK ("format" IN ('keras', 'h5')),
    "keras_version" TEXT,
    "requirements_json" TEXT NOT NULL,
    "passed" INTEGER NOT NULL,
    "total" INTEGER NOT NULL,
    "test_accuracy" DOUBLE PRECISION,
    "params" INTEGER NOT NULL,
    "macs" DOUBLE PRECISION NOT NULL,
    "latency_ms" INTEGER NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "lab_submissions_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "lab_submissions_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "lab_submissions_chat_id_fkey" FOREIGN KEY ("chat_id") REFERENCES "chats" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE INDEX "lab_submissions_user_id_created_at_idx" ON "lab_submissions"("user_id", "created_at");
CREATE INDEX "lab_submissions_task_created_at_idx" ON "lab_submissions"("task", "created_at");
