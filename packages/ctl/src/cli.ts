import { Command, Option } from 'commander';
import { OrchestratorClient } from './client.js';
import { CtlError } from './errors.js';
import { exportClient } from './export.js';
import { runMigrate } from './migrate.js';
import { init, initReport, normaliseSan } from './init.js';
import { listPeerKeys, retirePeerKey, rotatePeerKey } from './keys.js';
import { hookSpoolPlace, listRejected, resendRejected } from './rejected.js';
import { DEFAULT_CONFIG, resolveConnection, resolveKeysDir, type ConnectionFlags } from './settings.js';
import { formatTable } from './table.js';
import {
  agentListSchema, leadershipSchema, banAddedSchema, banListSchema, banRemovedSchema, clientDetailSchema, clientListSchema, deprovisionQueuedSchema, eventListSchema, instanceListSchema, keptListSchema,
  MAX_SHARE_SECONDS, parseBanTarget, restoreQueuedSchema, serverListSchema, shareCreatedSchema, type EventView,
} from '@unionize/protocol';
import { parseDuration } from './duration.js';
import { EVENT_HEADERS, agentsTable, statusTable, bansTable, clientDetail, clientsTable, eventRow, eventsTable, findClient, instancesTable, keptTable, rejectedTable, serversTable } from './views.js';
import { DEFAULT_HOOK_CONFIG } from '@unionize/protocol/hook-spool';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** For `events --follow`: resolves after `ms`; tests make it end the loop. */
  sleep?(ms: number): Promise<void>;
}

interface GlobalOptions extends ConnectionFlags {
  json?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** orchestratorctl's commands; main.ts runs it, tests call `parseAsync` with their own Io. */
export function buildProgram(io: Io): Command {
  const program = new Command('orchestratorctl')
    .description("The orchestrator's operator tool: list and inspect clients, containers, agents and events; force a deprovision; ban devices; list and resend the events the hook set aside; make and rotate the keys and certificates.")
    .option('-c, --config <file>', `the orchestrator's config, for its URL, keys directory and certificate (default ${DEFAULT_CONFIG})`)
    .option('--url <url>', 'the orchestrator, e.g. https://[fd00:2::1]:8443, or a pair\'s, separated by commas (tried in turn); overrides the config')
    .option('--key-file <file>', "an operator's key file (mode 600; default operator.keys in the config's [auth] keys_dir)")
    .option('--keys-dir <dir>', "the peers' key files, for keys and for the operator's key (default the config's [auth] keys_dir)")
    .option('--ca <file>', "verify the orchestrator's certificate against this CA")
    .option('--pin <sha256/...>', "verify the orchestrator's certificate by its SHA-256 pin")
    .option('--json', 'print JSON instead of tables')
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.out(s.replace(/\n$/, '')), writeErr: (s) => io.err(s.replace(/\n$/, '')) });

  const globals = () => program.opts<GlobalOptions>();
  const print = (json: unknown, table: () => string) => io.out(globals().json ? JSON.stringify(json, null, 2) : table());

  async function withClient<T>(fn: (client: OrchestratorClient) => Promise<T>): Promise<T> {
    const client = new OrchestratorClient(resolveConnection(globals()));
    try {
      return await fn(client);
    } finally {
      await client.close();
    }
  }

  async function resolveClientId(client: OrchestratorClient, query: string): Promise<string> {
    if (/^[0-9a-f]{20}$/.test(query)) return query;
    const { clients } = await client.call('GET', '/v1/clients', clientListSchema);
    const found = findClient(query, clients);
    if (!found) throw new CtlError(`no client matches ${JSON.stringify(query)} (by id, id prefix, hostname, address, DUID or container)`);
    if ('ambiguous' in found) {
      throw new CtlError(`${found.ambiguous.length} clients match ${JSON.stringify(query)}: ${found.ambiguous.map((c) => `${c.id} (${c.hostname ?? c.address}, ${c.state})`).join(', ')}; give the id`);
    }
    return found.id;
  }

  program
    .command('status')
    .description('each orchestrator (both of a pair: --url A,B or [pair] urls): which leads, which stands by, which cannot be reached')
    .action(async () => {
      const connection = resolveConnection(globals());
      const rows = await Promise.all(connection.urls.map(async (url) => {
        const one = new OrchestratorClient({ ...connection, urls: [url] });
        try {
          return { url, ...(await one.call('GET', '/v1/leadership', leadershipSchema)) };
        } catch (error) {
          return { url, unreachable: error instanceof Error ? error.message : String(error) };
        } finally {
          await one.close();
        }
      }));
      print({ orchestrators: rows }, () => statusTable(rows));
      if (!rows.some((row) => 'role' in row && row.role !== 'standby')) {
        throw new CtlError(`no orchestrator leads now (of ${connection.urls.join(', ')}): a standby takes the lead within [pair] retry_ms of the leader's end`);
      }
    });

  program
    .command('clients')
    .description('every client (device lease) with its state and container')
    .option('-a, --all', 'include clients that are gone')
    .action((options: { all?: boolean }) =>
      withClient(async (client) => {
        const { clients } = await client.call('GET', '/v1/clients', clientListSchema);
        const shown = options.all ? clients : clients.filter((c) => c.state !== 'gone');
        print({ clients: shown }, () => (shown.length ? clientsTable(shown) : `no clients${options.all ? '' : ' (but gone ones: --all)'}`));
      }),
    );

  program
    .command('instances')
    .description('every container the orchestrator has recorded')
    .action(() =>
      withClient(async (client) => {
        const { instances } = await client.call('GET', '/v1/instances', instanceListSchema);
        print({ instances }, () => (instances.length ? instancesTable(instances) : 'no instances'));
      }),
    );

  program
    .command('kept')
    .description("containers kept as images when their lease ended (profiles' keep = true)")
    .action(() =>
      withClient(async (client) => {
        const { kept } = await client.call('GET', '/v1/kept', keptListSchema);
        print({ kept }, () => (kept.length ? keptTable(kept) : 'no kept images'));
      }),
    );

  program
    .command('agents')
    .description('the unionize agents, their health and load')
    .action(() =>
      withClient(async (client) => {
        const { agents } = await client.call('GET', '/v1/agents', agentListSchema);
        print({ agents }, () => agentsTable(agents));
      }),
    );

  program
    .command('servers')
    .description('the DHCP servers that have sent lease events')
    .action(() =>
      withClient(async (client) => {
        const { servers } = await client.call('GET', '/v1/servers', serverListSchema);
        print({ servers }, () => (servers.length ? serversTable(servers) : 'no DHCP server has sent an event yet'));
      }),
    );

  program
    .command('events')
    .description('the latest lease events, oldest first; --follow keeps printing them as they are applied')
    .addOption(new Option('-n, --limit <n>', 'how many').default('20').argParser((v) => {
      if (!/^[0-9]{1,4}$/.test(v) || Number(v) < 1 || Number(v) > 1000) throw new CtlError('--limit must be 1..1000', 2);
      return v;
    }))
    .option('-f, --follow', 'keep polling and print each event once it is applied (Ctrl-C to stop)')
    .option('--interval <seconds>', 'how often --follow polls', '1')
    .action((options: { limit: string; follow?: boolean; interval: string }) =>
      withClient(async (client) => {
        const fetchEvents = async (limit: number) => (await client.call('GET', `/v1/events?limit=${limit}`, eventListSchema)).events.reverse();
        const first = await fetchEvents(Number(options.limit));
        if (!options.follow) return print({ events: first }, () => (first.length ? eventsTable(first) : 'no events'));
        const line = (e: EventView) => (globals().json ? JSON.stringify(e) : formatTable(EVENT_HEADERS, [eventRow(e)]).split('\n')[1]!);
        if (!globals().json) io.out(formatTable(EVENT_HEADERS, []));
        const printed = new Set<string>();
        for (const e of first) {
          io.out(line(e));
          if (e.appliedAt) printed.add(e.eventId);
        }
        const interval = Math.max(0.2, Number(options.interval) || 1) * 1000;
        const sleep = io.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
        const pending = new Set(first.filter((e) => !e.appliedAt).map((e) => e.eventId));
        for (;;) {
          await sleep(interval);
          for (const e of await fetchEvents(1000)) {
            if (printed.has(e.eventId) || !e.appliedAt) continue;
            printed.add(e.eventId);
            // Printed when applied, with its outcome; one already shown as queued is shown again, applied.
            pending.delete(e.eventId);
            io.out(line(e));
          }
        }
      }),
    );

  program
    .command('show')
    .description('one client in full, with its life-cycle transitions')
    .argument('<client>', 'id, id prefix, hostname, device address, DUID or container name')
    .action((query: string) =>
      withClient(async (client) => {
        const id = await resolveClientId(client, query);
        const detail = await client.call('GET', `/v1/clients/${id}`, clientDetailSchema);
        print(detail, () => clientDetail(detail));
      }),
    );

  program
    .command('deprovision')
    .description("remove a client's container now (it comes back on the device's next lease event)")
    .argument('<client>', 'id, id prefix, hostname, device address, DUID or container name')
    .action((query: string) =>
      withClient(async (client) => {
        const id = await resolveClientId(client, query);
        const answer = await client.call('DELETE', `/v1/clients/${id}`, deprovisionQueuedSchema);
        print(answer, () => `client ${id}: deprovisioning queued (orchestratorctl show ${id} to follow it)`);
      }),
    );

  program
    .command('export')
    .description("the client's live container, or else its newest kept image, as a docker save tarball (gzip): docker load -i FILE")
    .argument('<client>', 'id, id prefix, hostname, device address, DUID or container name')
    .option('-o, --output <file>', 'write it here (else to standard output)')
    .action((query: string, options: { output?: string }) =>
      withClient(async (client) => {
        const id = await resolveClientId(client, query);
        const { file, bytes } = await exportClient(client, id, options.output);
        if (file) print({ clientId: id, file, bytes }, () => `client ${id}: ${bytes} bytes written to ${file}`);
      }),
    );

  program
    .command('restore')
    .description("make the device's container again from its newest kept image (what runs now is removed, unkept); the device must hold a lease")
    .argument('<client>', 'id, id prefix, hostname, device address, DUID or container name')
    .action((query: string) =>
      withClient(async (client) => {
        const id = await resolveClientId(client, query);
        const answer = await client.call('POST', `/v1/clients/${id}/restore`, restoreQueuedSchema);
        print(answer, () => `client ${id}: being restored from ${answer.image}`);
      }),
    );

  program
    .command('share')
    .description("a one-time download link of the client's export (its live container, or else its newest kept image), for the visitor: it serves once, until it expires ([share] dir)")
    .argument('<client>', 'id, id prefix, hostname, device address, DUID or container name')
    .option('--for <duration>', 'the link expires after this long (30m, 12h, 7d, 2w; at most [share] max_days)', '7d')
    .action((query: string, options: { for: string }) => {
      const seconds = parseDuration(options.for, MAX_SHARE_SECONDS);
      return withClient(async (client) => {
        const id = await resolveClientId(client, query);
        if (!globals().json) io.err(`client ${id}: spooling its export on the orchestrator (the link works once it is whole)…`);
        // Answered when the export is spooled: as long as a docker save of it takes.
        const link = await client.call('POST', `/v1/clients/${id}/shares`, shareCreatedSchema, { seconds }, { timeoutMs: 60 * 60_000 });
        print(link, () => `${link.url}\n  ${link.filename}, ${link.sizeBytes} bytes; serves once, until ${link.expiresAt}`);
      });
    });

  // The hook's spool on this host (no orchestrator needed): rejected.ts.
  type SpoolFlags = { hookConfig?: string; spool?: string };
  const spoolOptions = (command: Command) =>
    command
      .option('--hook-config <file>', `the flusher's hook.ini, for [spool] dir (default $ORCHESTRATOR_HOOK_CONFIG, else ${DEFAULT_HOOK_CONFIG})`)
      .option('--spool <dir>', "the hook's spool directory (instead of the hook.ini's)");
  const hook = program
    .command('hook')
    .description("on the host where dnsmasq runs the hook: list the events its flusher set aside in <spool>/rejected/, and resend them");
  spoolOptions(hook.command('rejected'))
    .description('what the flusher set aside (refused for good by the orchestrator, or not a call): file, event, when and why')
    .action((options: SpoolFlags) => {
      const place = hookSpoolPlace(options);
      const entries = listRejected(place);
      print({ spool: place.dir, rejected: entries }, () => (entries.length ? rejectedTable(entries) : `nothing set aside in ${place.dir}/rejected`));
    });
  spoolOptions(hook.command('resend'))
    .description('move set-aside calls back into the spool, each to its own place in the order (its name), for the flusher to deliver again with the hook\'s key')
    .argument('[names...]', 'file names as `hook rejected` lists them')
    .option('--all', 'every set-aside call (what the flusher would set aside again stays)')
    .addHelpText('after', `
A resent call keeps its name, and names order the spool: it is delivered
before every newer call still spooled, which keep their order. Events the
flusher delivered while it was set aside are not undone: if a newer event of
the same client (DUID, IAID) went through meanwhile, the orchestrator applies
the resent one after it (orchestratorctl show CLIENT to check).`)
    .action((names: string[], options: SpoolFlags & { all?: boolean }) => {
      if (options.all && names.length > 0) throw new CtlError('give names or --all, not both', 2);
      const place = hookSpoolPlace(options);
      const result = resendRejected(place, options.all ? 'all' : names);
      print({ spool: place.dir, ...result }, () =>
        [
          result.resent.length ? `resent ${result.resent.length} into ${place.dir}: ${result.resent.join(', ')}` : 'nothing resent',
          ...result.skipped.map((s) => `left in rejected/: ${s.name}: ${s.why}`),
        ].join('\n'),
      );
    });


  /** The MAC or DUID an operator typed, checked before anything is sent. */
  const banTarget = (text: string) => {
    const parsed = parseBanTarget(text);
    if (!parsed.ok) throw new CtlError(parsed.error, 2);
    return text.trim().toLowerCase();
  };

  program
    .command('ban')
    .description("ban a device: its containers are removed now, it gets no new one, and dnsmasq no longer answers it (with [pinning] hostsdir)")
    .argument('<device>', 'its MAC (six bytes, e.g. 52:54:00:12:34:56) or DUID (colon-separated hex; id:DUID for one of six bytes)')
    .option('--for <duration>', 'end the ban after this long (90s, 30m, 12h, 7d, 2w, 1h30m); without it, it lasts until unban')
    .action((device: string, options: { for?: string }) => {
      const target = banTarget(device);
      const seconds = options.for === undefined ? undefined : parseDuration(options.for);
      return withClient(async (client) => {
        const answer = await client.call('POST', '/v1/bans', banAddedSchema, { target, ...(seconds === undefined ? {} : { seconds }) });
        const until = answer.ban.until ? `until ${answer.ban.until}` : 'until unbanned';
        print(answer, () => `${answer.ban.kind.toUpperCase()} ${answer.ban.target} banned ${until}; containers being removed: ${answer.removing}`);
      });
    });

  program
    .command('unban')
    .description('lift the ban of a device')
    .argument('<device>', 'its MAC or DUID, as banned')
    .action((device: string) => {
      const target = banTarget(device);
      return withClient(async (client) => {
        // Validated (hex digits and colons, `id:` before a six-byte DUID): sent as it is, since signed paths carry no %-escapes.
        const answer = await client.call('DELETE', `/v1/bans/${target}`, banRemovedSchema);
        print(answer, () => `${answer.target} unbanned: it gets a container again on its next lease`);
      });
    });

  program
    .command('bans')
    .description('the banned devices, and when each ban ends')
    .action(() =>
      withClient(async (client) => {
        const { bans } = await client.call('GET', '/v1/bans', banListSchema);
        print({ bans }, () => (bans.length ? bansTable(bans) : 'no device is banned'));
      }),
    );

  program
    .command('init')
    .description("make each peer's key (keys/), the dashboard and metrics tokens, a CA and both daemons' certificates in DIR; print the config lines and pins")
    .requiredOption('-d, --dir <dir>', 'where to write them (made mode 700)')
    .option('--orchestrator-san <san>', "the orchestrator's address or name as the hook and tools reach it (repeat; ::1, 127.0.0.1 and localhost are always in)", collect, [])
    .option('--unionize-san <san>', "the docker host's address or name as the orchestrator reaches it (repeat)", collect, [])
    .option('--agent <name>', 'an [agents.NAME] the orchestrator will have: each gets its own key (repeat; default dock1)', collect, [])
    .option('--days <n>', 'server certificates are valid this many days', '825')
    .option('--openssl <path>', 'the openssl binary', 'openssl')
    .action(async (options: { dir: string; orchestratorSan: string[]; unionizeSan: string[]; agent: string[]; days: string; openssl: string }) => {
      const result = await init({
        dir: options.dir,
        agents: options.agent,
        orchestratorSans: options.orchestratorSan,
        unionizeSans: options.unionizeSan,
        days: Number(options.days),
        openssl: options.openssl,
      });
      const sans = {
        orchestrator: [...new Set(['DNS:localhost', 'IP:::1', 'IP:127.0.0.1', ...options.orchestratorSan.map(normaliseSan)])],
        unionize: options.unionizeSan.map(normaliseSan),
      };
      print({ ...result, sans }, () => initReport(result, sans).trimEnd());
    });

  const keys = program
    .command('keys')
    .description("each peer's signing keys in the keys directory: list them, rotate one with no downtime (rotate, copy, retire)");

  keys
    .command('list')
    .description('the peers, their key ids, and which key signs')
    .action(() => {
      const peers = listPeerKeys(resolveKeysDir(globals()));
      const view = peers.map((p) => ({ peer: p.peer, file: p.file, signing: p.keys[0]!.id, accepted: p.keys.map((k) => k.id) }));
      print({ peers: view }, () =>
        view.length ? formatTable(['PEER', 'SIGNS WITH', 'ALSO ACCEPTED', 'FILE'], view.map((p) => [p.peer, p.signing, p.accepted.slice(1).join(' ') || '-', p.file])) : 'no key files');
    });

  keys
    .command('rotate')
    .description("add PEER's next key at the end of its file: verifiers accept it at once, signers go on with the current one until `keys retire`")
    .argument('<peer>', 'hook, operator or agent-NAME')
    .action((peer: string) => {
      const { file, added, keys: now } = rotatePeerKey(resolveKeysDir(globals()), peer);
      print({ peer, file, added: added.id, keys: now.map((k) => k.id) }, () => `${peer}: added ${added.id} to ${file} (accepted now; ${now[0]!.id} still signs)
next: ${rotateAdvice(peer)}; then orchestratorctl keys retire ${peer}`);
    });

  keys
    .command('retire')
    .description("remove PEER's first key, so its next one signs (after `keys rotate` and once every verifier holds the next key)")
    .argument('<peer>', 'hook, operator or agent-NAME')
    .action((peer: string) => {
      const { file, retired, keys: now } = retirePeerKey(resolveKeysDir(globals()), peer);
      print({ peer, file, retired: retired.id, keys: now.map((k) => k.id) }, () => `${peer}: retired ${retired.id}; ${now[0]!.id} signs now (${file})${peer.startsWith('agent-') ? `\ncopy ${file} to that docker host's [auth] key_file again` : ''}`);
    });

  program
    .command('migrate')
    .description("copy a SQLite store's whole state into PostgreSQL for an orchestrator pair, in one transaction, with a count check (run the orchestrator's `migrate`; README, The orchestrator pair)")
    .requiredOption('--from <sqlite:PATH>', 'the SQLite store, e.g. sqlite:/var/lib/orchestrator/state.db (stop its orchestrator first for the final copy)')
    .requiredOption('--to <url>', 'the PostgreSQL database, postgres://USER@HOST/DATABASE, with no password in it')
    .option('--password-file <file>', 'its password, alone in a file of mode 600')
    .option('--dry-run', 'read, count and check the target; write nothing')
    .action(async (options: { from: string; to: string; passwordFile?: string; dryRun?: boolean }) => {
      const args = ['--from', options.from, '--to', options.to, ...(options.passwordFile ? ['--password-file', options.passwordFile] : []), ...(options.dryRun ? ['--dry-run'] : []), ...(globals().json ? ['--json'] : [])];
      const code = await runMigrate(args);
      if (code !== 0) throw new CtlError(`migrate failed (exit ${code}): see above`, code === 2 ? 2 : 1);
    });

  return program;
}

/** Where a peer's next key must be before its first one is retired. */
function rotateAdvice(peer: string): string {
  if (peer.startsWith('agent-')) return `copy the file to the docker host's [auth] key_file (unionize reads it again when it changes)`;
  if (peer === 'hook') {
    return "if the hook runs on another host, copy the file to its [orchestrator] key_file and retire the old key in that copy first (orchestratorctl --keys-dir DIR keys retire hook there), so it signs with the next one; the orchestrator reads this file again when it changes";
  }
  return 'copy the file to every operator host that signs with its own copy (the orchestrator reads this one again when it changes)';
}
