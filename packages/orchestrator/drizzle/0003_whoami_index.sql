ALTER TABLE `clients` ADD `device_address` text;--> statement-breakpoint
CREATE INDEX `clients_device_address` ON `clients` (`device_address`);