-- Issue 19: images kept past IMAGE_RETENTION_DAYS (`cnn-classroom images keep`), by SHA-256.
CREATE TABLE "kept_images" (
    "sha256" TEXT NOT NULL,
    "note" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "kept_images_pkey" PRIMARY KEY ("sha256")
);
