ALTER TABLE `clients` ADD `device_prefix64` text;--> statement-breakpoint
CREATE INDEX `clients_mac` ON `clients` (`mac`);--> statement-breakpoint
CREATE INDEX `clients_device_prefix64` ON `clients` (`device_prefix64`);