CREATE TABLE `kept_images` (
	`image` text PRIMARY KEY NOT NULL,
	`image_id` text NOT NULL,
	`client_id` text NOT NULL,
	`agent` text NOT NULL,
	`hostname` text NOT NULL,
	`profile` text NOT NULL,
	`size_bytes` integer NOT NULL,
	`created_at` text NOT NULL,
	`expires_at` text
);
--> statement-breakpoint
CREATE INDEX `kept_images_client` ON `kept_images` (`client_id`);