-- issue 14 follow-up: a trainer worker on another machine shares only the database with the bot.
-- A trained version's files travel in the database (the bot materializes the folder from them),
-- and a with=class job's photos travel with the job (deleted when it ends, or with the photo).
CREATE TABLE "model_version_files" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "model_version_id" INTEGER NOT NULL,
    -- Path inside the version's folder, `/`-separated: `model.json`, `group1-shard1of1.bin`...
    "name" TEXT NOT NULL,
    "sha256" TEXT NOT NULL,
    "size" INTEGER NOT NULL,
    "bytes" BLOB NOT NULL,
    CONSTRAINT "model_version_files_model_version_id_fkey" FOREIGN KEY ("model_version_id") REFERENCES "model_versions" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "model_version_files_model_version_id_name_key" ON "model_version_files"("model_version_id", "name");

CREATE TABLE "training_run_photos" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "run_id" INTEGER NOT NULL,
    "submission_id" INTEGER NOT NULL,
    -- The photo's training label (a class name) and its student (`platform:userId`).
    "label" TEXT NOT NULL,
    "student" TEXT NOT NULL,
    "sha256" TEXT NOT NULL,
    "bytes" BLOB NOT NULL,
    CONSTRAINT "training_run_photos_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "training_runs" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "training_run_photos_submission_id_fkey" FOREIGN KEY ("submission_id") REFERENCES "submissions" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX "training_run_photos_run_id_idx" ON "training_run_photos"("run_id", "id");
CREATE INDEX "training_run_photos_sha256_idx" ON "training_run_photos"("sha256");
CREATE INDEX "training_run_photos_submission_id_idx" ON "training_run_photos"("submission_id");
