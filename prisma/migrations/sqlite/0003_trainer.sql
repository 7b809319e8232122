-- issue 14: the training-job queue (leases, heartbeats, progress, where to report) and model
-- versions (lineage, metrics, data set fingerprint) with the served version as one row per model.
ALTER TABLE "training_runs" ADD COLUMN "lease_owner" TEXT;
ALTER TABLE "training_runs" ADD COLUMN "lease_expires_at" DATETIME;
ALTER TABLE "training_runs" ADD COLUMN "heartbeat_at" DATETIME;
ALTER TABLE "training_runs" ADD COLUMN "attempts" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "training_runs" ADD COLUMN "cancel_requested" BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE "training_runs" ADD COLUMN "progress_json" TEXT;
ALTER TABLE "training_runs" ADD COLUMN "notify_json" TEXT;
ALTER TABLE "training_runs" ADD COLUMN "version" TEXT;
ALTER TABLE "training_runs" ADD COLUMN "backend" TEXT;
ALTER TABLE "training_runs" ADD COLUMN "device" TEXT;
CREATE INDEX "training_runs_status_id_idx" ON "training_runs"("status", "id");

ALTER TABLE "model_versions" ADD COLUMN "job_id" INTEGER;
ALTER TABLE "model_versions" ADD COLUMN "parent_version" TEXT;
ALTER TABLE "model_versions" ADD COLUMN "metrics_json" TEXT;
ALTER TABLE "model_versions" ADD COLUMN "dataset_fingerprint" TEXT;
ALTER TABLE "model_versions" ADD COLUMN "params_json" TEXT;
ALTER TABLE "model_versions" ADD COLUMN "created_by" TEXT;

CREATE TABLE "served_models" (
    "model_id" TEXT NOT NULL PRIMARY KEY,
    "version" TEXT NOT NULL,
    "updated_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO "served_models" ("model_id", "version")
    SELECT "model_id", "version" FROM "model_versions" WHERE "active";
