ALTER TABLE `agents` ADD `unhealthy_since` text;--> statement-breakpoint
ALTER TABLE `agents` ADD `draining` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `clients` ADD `profile` text;--> statement-breakpoint
ALTER TABLE `clients` ADD `ttl_expires_at` text;--> statement-breakpoint
ALTER TABLE `clients` ADD `cooldown_until` text;--> statement-breakpoint
CREATE INDEX `instances_mac` ON `instances` (`mac`);--> statement-breakpoint
CREATE INDEX `instances_agent` ON `instances` (`agent`);