-- Issue 19: images kept past IMAGE_RETENTION_DAYS (`cnn-classroom images keep`), by SHA-256.
CREATE TABLE "kept_images" (
    "sha256" TEXT NOT NULL PRIMARY KEY,
    "note" TEXT,
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
