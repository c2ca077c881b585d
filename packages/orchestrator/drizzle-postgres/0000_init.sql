CREATE TABLE "address_pool" (
	"offset" bigint PRIMARY KEY NOT NULL,
	"client_id" text NOT NULL,
	CONSTRAINT "address_pool_client_id_unique" UNIQUE("client_id")
);
--> statement-breakpoint
CREATE TABLE "agents" (
	"name" text PRIMARY KEY NOT NULL,
	"url" text NOT NULL,
	"healthy" boolean NOT NULL,
	"checked_at" text NOT NULL,
	"unhealthy_since" text,
	"draining" boolean DEFAULT false NOT NULL
);
--> statement-breakpoint
CREATE TABLE "bans" (
	"kind" text NOT NULL,
	"value" text NOT NULL,
	"since" text NOT NULL,
	"until" text,
	CONSTRAINT "bans_kind_value_pk" PRIMARY KEY("kind","value")
);
--> statement-breakpoint
CREATE TABLE "client_transitions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"client_id" text NOT NULL,
	"from_state" text NOT NULL,
	"to_state" text NOT NULL,
	"reason" text NOT NULL,
	"at" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "clients" (
	"id" text PRIMARY KEY NOT NULL,
	"server" text NOT NULL,
	"role" text NOT NULL,
	"duid" text NOT NULL,
	"iaid" text NOT NULL,
	"address" text NOT NULL,
	"hostname" text,
	"mac" text,
	"state" text NOT NULL,
	"desired" text NOT NULL,
	"state_reason" text NOT NULL,
	"expires_at" text,
	"profile" text,
	"ttl_expires_at" text,
	"cooldown_until" text,
	"first_seen" text NOT NULL,
	"last_seen" text NOT NULL,
	"updated_at" text NOT NULL,
	"device_prefix64" text,
	"device_address" text
);
--> statement-breakpoint
CREATE TABLE "dhcp_servers" (
	"name" text PRIMARY KEY NOT NULL,
	"role" text NOT NULL,
	"first_seen" text NOT NULL,
	"last_seen" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "events" (
	"seq" bigserial PRIMARY KEY NOT NULL,
	"event_id" text NOT NULL,
	"client_id" text NOT NULL,
	"received_at" text NOT NULL,
	"payload" text NOT NULL,
	"applied_at" text,
	"outcome" text,
	"outcome_kind" text,
	CONSTRAINT "events_event_id_unique" UNIQUE("event_id")
);
--> statement-breakpoint
CREATE TABLE "instances" (
	"client_id" text PRIMARY KEY NOT NULL,
	"agent" text NOT NULL,
	"container_name" text NOT NULL,
	"container_id" text NOT NULL,
	"address" text NOT NULL,
	"mac" text NOT NULL,
	"image" text NOT NULL,
	"created_at" text NOT NULL,
	CONSTRAINT "instances_container_name_unique" UNIQUE("container_name")
);
--> statement-breakpoint
CREATE TABLE "kept_images" (
	"image" text PRIMARY KEY NOT NULL,
	"image_id" text NOT NULL,
	"client_id" text NOT NULL,
	"agent" text NOT NULL,
	"hostname" text NOT NULL,
	"profile" text NOT NULL,
	"size_bytes" bigint NOT NULL,
	"created_at" text NOT NULL,
	"expires_at" text
);
--> statement-breakpoint
CREATE TABLE "leadership" (
	"id" integer PRIMARY KEY NOT NULL,
	"epoch" bigint NOT NULL,
	"holder" text NOT NULL,
	"url" text,
	"since" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "quarantine" (
	"id" serial PRIMARY KEY NOT NULL,
	"source_table" text NOT NULL,
	"row_id" text NOT NULL,
	"row" text NOT NULL,
	"reason" text NOT NULL,
	"quarantined_at" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "shares" (
	"token_hash" text PRIMARY KEY NOT NULL,
	"client_id" text NOT NULL,
	"filename" text NOT NULL,
	"size_bytes" bigint NOT NULL,
	"created_at" text NOT NULL,
	"expires_at" text NOT NULL,
	"used_at" text
);
--> statement-breakpoint
ALTER TABLE "client_transitions" ADD CONSTRAINT "client_transitions_client_id_clients_id_fk" FOREIGN KEY ("client_id") REFERENCES "public"."clients"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "instances" ADD CONSTRAINT "instances_client_id_clients_id_fk" FOREIGN KEY ("client_id") REFERENCES "public"."clients"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "client_transitions_client" ON "client_transitions" USING btree ("client_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "clients_key" ON "clients" USING btree ("server","duid","iaid");--> statement-breakpoint
CREATE INDEX "clients_state" ON "clients" USING btree ("state");--> statement-breakpoint
CREATE INDEX "clients_mac" ON "clients" USING btree ("mac");--> statement-breakpoint
CREATE INDEX "clients_device_address" ON "clients" USING btree ("device_address");--> statement-breakpoint
CREATE INDEX "clients_device_prefix64" ON "clients" USING btree ("device_prefix64");--> statement-breakpoint
CREATE INDEX "events_unapplied" ON "events" USING btree ("applied_at","seq");--> statement-breakpoint
CREATE INDEX "instances_mac" ON "instances" USING btree ("mac");--> statement-breakpoint
CREATE INDEX "instances_agent" ON "instances" USING btree ("agent");--> statement-breakpoint
CREATE INDEX "kept_images_client" ON "kept_images" USING btree ("client_id");