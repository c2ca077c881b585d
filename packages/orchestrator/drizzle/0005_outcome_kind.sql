ALTER TABLE `events` ADD `outcome_kind` text;--> statement-breakpoint
-- Events applied before the column existed: their kind, once, from the words outcomeText made for them then.
UPDATE `events` SET `outcome_kind` = CASE
  WHEN `outcome` = 'provisioned' THEN 'provisioned'
  WHEN `outcome` = 'deprovisioned' THEN 'deprovisioned'
  WHEN `outcome` LIKE 'refreshed (%' THEN 'refreshed'
  WHEN `outcome` LIKE 'refused (%' THEN 'refused'
  WHEN `outcome` LIKE 'ignored: %' THEN 'ignored'
  WHEN `outcome` LIKE 'cooling down until %' THEN 'cooling'
  WHEN `outcome` LIKE 'bound %' THEN 'bound'
  WHEN `outcome` LIKE 'instance lease of %' THEN 'released'
  WHEN `outcome` LIKE 'failed: %' THEN 'failed'
END WHERE `outcome` IS NOT NULL;
