CREATE TABLE `bans` (
	`kind` text NOT NULL,
	`value` text NOT NULL,
	`since` text NOT NULL,
	`until` text,
	PRIMARY KEY(`kind`, `value`)
);
