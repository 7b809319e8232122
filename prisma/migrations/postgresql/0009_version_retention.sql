-- Model versions over a term: a version's files are stored in parts of at most 1 MiB, each in a
-- short transaction of its own (one 22 MB transaction held SQLite's write lock for about a
-- second: every submission waited), under a row that stays `pending` (invisible to every reader)
-- until its last part is in.
ALTER TABLE "model_versions" ADD COLUMN "pending" BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE "model_version_files" ADD COLUMN "part" INTEGER NOT NULL DEFAULT 0;
DROP INDEX "model_version_files_model_version_id_name_key";
CREATE UNIQUE INDEX "model_version_files_model_version_id_name_part_key" ON "model_version_files"("model_version_id", "name", "part");
