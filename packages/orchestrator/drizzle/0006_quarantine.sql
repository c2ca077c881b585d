CREATE TABLE `quarantine` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`source_table` text NOT NULL,
	`row_id` text NOT NULL,
	`row` text NOT NULL,
	`reason` text NOT NULL,
	`quarantined_at` text NOT NULL
);
