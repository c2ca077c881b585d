CREATE TABLE `address_pool` (
	`offset` integer PRIMARY KEY NOT NULL,
	`client_id` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `address_pool_client_id_unique` ON `address_pool` (`client_id`);--> statement-breakpoint
CREATE TABLE `agents` (
	`name` text PRIMARY KEY NOT NULL,
	`url` text NOT NULL,
	`healthy` integer NOT NULL,
	`checked_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `client_transitions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`client_id` text NOT NULL,
	`from_state` text NOT NULL,
	`to_state` text NOT NULL,
	`reason` text NOT NULL,
	`at` text NOT NULL,
	FOREIGN KEY (`client_id`) REFERENCES `clients`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `client_transitions_client` ON `client_transitions` (`client_id`,`id`);--> statement-breakpoint
CREATE TABLE `clients` (
	`id` text PRIMARY KEY NOT NULL,
	`server` text NOT NULL,
	`role` text NOT NULL,
	`duid` text NOT NULL,
	`iaid` text NOT NULL,
	`address` text NOT NULL,
	`hostname` text,
	`mac` text,
	`state` text NOT NULL,
	`desired` text NOT NULL,
	`state_reason` text NOT NULL,
	`expires_at` text,
	`first_seen` text NOT NULL,
	`last_seen` text NOT NULL,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `clients_key` ON `clients` (`server`,`duid`,`iaid`);--> statement-breakpoint
CREATE INDEX `clients_state` ON `clients` (`state`);--> statement-breakpoint
CREATE TABLE `dhcp_servers` (
	`name` text PRIMARY KEY NOT NULL,
	`role` text NOT NULL,
	`first_seen` text NOT NULL,
	`last_seen` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `events` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`event_id` text NOT NULL,
	`client_id` text NOT NULL,
	`received_at` text NOT NULL,
	`payload` text NOT NULL,
	`applied_at` text,
	`outcome` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `events_event_id_unique` ON `events` (`event_id`);--> statement-breakpoint
CREATE INDEX `events_unapplied` ON `events` (`applied_at`,`seq`);--> statement-breakpoint
CREATE INDEX `events_client` ON `events` (`client_id`,`seq`);--> statement-breakpoint
CREATE TABLE `instances` (
	`client_id` text PRIMARY KEY NOT NULL,
	`agent` text NOT NULL,
	`container_name` text NOT NULL,
	`container_id` text NOT NULL,
	`address` text NOT NULL,
	`mac` text NOT NULL,
	`image` text NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`client_id`) REFERENCES `clients`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `instances_container_name_unique` ON `instances` (`container_name`);