-- Initial tables, PostgreSQL. Mirrors prisma/postgresql/schema.prisma.

CREATE TABLE "users" (
    "id" SERIAL NOT NULL,
    "platform" TEXT NOT NULL,
    "platform_id" TEXT NOT NULL,
    "name" TEXT,
    "language" TEXT,
    "language_override" TEXT,
    "role" TEXT NOT NULL DEFAULT 'student' CHECK ("role" IN ('student', 'instructor', 'admin')),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "users_platform_platform_id_key" ON "users"("platform", "platform_id");

CREATE TABLE "chats" (
    "id" SERIAL NOT NULL,
    "platform" TEXT NOT NULL,
    "platform_id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "title" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "chats_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "chats_platform_platform_id_key" ON "chats"("platform", "platform_id");

CREATE TABLE "submissions" (
    "id" SERIAL NOT NULL,
    "user_id" INTEGER NOT NULL,
    "chat_id" INTEGER,
    "platform_message_id" TEXT,
    "command" TEXT NOT NULL,
    "image_sha256" TEXT,
    "image_path" TEXT,
    "width" INTEGER,
    "height" INTEGER,
    "bytes" INTEGER,
    "model_id" TEXT,
    "model_version" TEXT,
    "predicted_class" TEXT,
    "confidence" DOUBLE PRECISION,
    "top_k_json" TEXT,
    "latency_ms" INTEGER,
    "error_code" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "submissions_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "submissions_user_id_created_at_idx" ON "submissions"("user_id", "created_at");
CREATE INDEX "submissions_image_sha256_idx" ON "submissions"("image_sha256");

CREATE TABLE "model_versions" (
    "id" SERIAL NOT NULL,
    "model_id" TEXT NOT NULL,
    "version" TEXT NOT NULL,
    "path" TEXT NOT NULL,
    "test_accuracy" DOUBLE PRECISION,
    "active" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "model_versions_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "model_versions_model_id_version_key" ON "model_versions"("model_id", "version");
-- At most one active version per model.
CREATE UNIQUE INDEX "model_versions_one_active_key" ON "model_versions"("model_id") WHERE "active";

CREATE TABLE "training_runs" (
    "id" SERIAL NOT NULL,
    "model_id" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'queued' CHECK ("status" IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    "requested_by" INTEGER,
    "started_at" TIMESTAMP(3),
    "finished_at" TIMESTAMP(3),
    "params_json" TEXT NOT NULL DEFAULT '{}',
    "metrics_json" TEXT,
    "error" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "training_runs_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "training_runs_model_id_created_at_idx" ON "training_runs"("model_id", "created_at");

ALTER TABLE "submissions" ADD CONSTRAINT "submissions_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "submissions" ADD CONSTRAINT "submissions_chat_id_fkey" FOREIGN KEY ("chat_id") REFERENCES "chats"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "training_runs" ADD CONSTRAINT "training_runs_requested_by_fkey" FOREIGN KEY ("requested_by") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;
