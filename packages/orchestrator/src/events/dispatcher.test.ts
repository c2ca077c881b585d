import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { EventOutcome, LeaseEvent } from '@unionize/protocol';
import { currentContext, withRequestId, type RequestContext } from '../context/request-context.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import { MemoryStore } from '../store/memory-store.js';
import type { AppliedMark, EventRecord } from '../store/types.js';
import { EventDispatcher } from './dispatcher.js';

const event = (over: Partial<LeaseEvent> = {}): LeaseEvent => ({
  eventId: randomUUID(), server: 'devnet', role: 'device', action: 'del', duid: `00:01:${Math.floor(Math.random() * 256).toString(16)}`, iaid: '1',
  address: 'fd00:1::1000', hostname: null, mac: null, interface: null, expiresAt: null, seenAt: '2026-01-01T00:00:00.000Z', ...over,
});

/** A memory store that records its journal commits and holds each sync until the test releases it. */
class RecordingStore extends MemoryStore {
  readonly commits: Array<{ events: string[]; marks: string[] }> = [];
  readonly syncs: Array<{ release: () => void; fail: (error: Error) => void }> = [];
  failCommit: Error | undefined;

  override async writeJournal(events: readonly EventRecord[], applied: readonly AppliedMark[]): Promise<{ duplicate: boolean }[]> {
    if (this.failCommit) throw this.failCommit;
    this.commits.push({ events: events.map((e) => e.eventId), marks: applied.map((m) => m.eventId) });
    return super.writeJournal(events, applied);
  }

  override syncJournal(): Promise<void> {
    return new Promise((resolve, reject) => this.syncs.push({ release: resolve, fail: reject }));
  }

  /** Release every sync asked for so far, and let their continuations run. */
  async releaseSyncs(): Promise<void> {
    for (const sync of this.syncs.splice(0)) sync.release();
    await new Promise((r) => setImmediate(r));
  }
}

function setup() {
  const store = new RecordingStore({});
  const applied: Array<{ eventId: string; requestId: string | undefined; startedAt: number | undefined }> = [];
  const lifecycle = {
    applyEvent: async (_clientId: string, e: LeaseEvent) => {
      applied.push({ eventId: e.eventId, requestId: currentContext()?.requestId, startedAt: currentContext()?.startedAt });
      return { kind: 'ignored', reason: 'release for an unknown client' } satisfies EventOutcome;
    },
    converge: async () => undefined,
  } as unknown as Lifecycle;
  const dispatcher = new EventDispatcher({ store, lifecycle, clock: { now: () => new Date('2026-01-01T00:00:01Z') }, log: pino({ level: 'silent' }), concurrency: 4 });
  return { store, applied, dispatcher };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('EventDispatcher group commit', () => {
  it('journals the events of one turn in one commit and one sync, and answers none before that sync', async () => {
    const t = setup();
    const events = [event(), event(), event()];
    let answered = 0;
    const answers = events.map((e) => t.dispatcher.journal(e).then((a) => (answered++, a)));
    expect(t.store.commits).toEqual([]);
    await turn();
    expect(t.store.commits).toEqual([{ events: events.map((e) => e.eventId), marks: [] }]);
    expect(t.store.syncs).toHaveLength(1);
    // Committed, not yet on disk: no answer, nothing applied.
    await turn();
    expect(answered).toBe(0);
    expect(t.applied).toEqual([]);
    await t.store.releaseSyncs();
    expect((await Promise.all(answers)).map((a) => [a.eventId, a.duplicate])).toEqual(events.map((e) => [e.eventId, false]));
    await t.store.releaseSyncs();
    await t.dispatcher.idle();
    expect(t.applied.map((a) => a.eventId)).toEqual(events.map((e) => e.eventId));
  });

  it('marks applied events in the next commit, and idle() waits for it', async () => {
    const t = setup();
    const e = event();
    const answer = t.dispatcher.journal(e);
    await turn();
    await t.store.releaseSyncs();
    await answer;
    await t.dispatcher.idle();
    expect(t.store.commits.at(-1)).toEqual({ events: [], marks: [e.eventId] });
    expect((await t.store.recentEvents(1))[0]).toMatchObject({ eventId: e.eventId, outcome: 'ignored: release for an unknown client', outcomeKind: 'ignored', appliedAt: '2026-01-01T00:00:01.000Z' });
  });

  it('answers a repeat in the same turn or a later one as a duplicate, and applies the event once', async () => {
    const t = setup();
    const e = event();
    const first = [t.dispatcher.journal(e), t.dispatcher.journal({ ...e })];
    await turn();
    await t.store.releaseSyncs();
    expect((await Promise.all(first)).map((a) => a.duplicate)).toEqual([false, true]);
    const again = t.dispatcher.journal({ ...e });
    await turn();
    await t.store.releaseSyncs();
    expect((await again).duplicate).toBe(true);
    await t.store.releaseSyncs();
    await t.dispatcher.idle();
    expect(t.applied.map((a) => a.eventId)).toEqual([e.eventId]);
  });

  it('rejects every event of a commit that failed, and queues none', async () => {
    const t = setup();
    t.store.failCommit = new Error('disk I/O error');
    const answers = [t.dispatcher.journal(event()), t.dispatcher.journal(event())].map((p) => p.then(() => 'ok', (error: Error) => error.message));
    await turn();
    expect(await Promise.all(answers)).toEqual(['disk I/O error', 'disk I/O error']);
    t.store.failCommit = undefined;
    await t.dispatcher.idle();
    expect(t.applied).toEqual([]);
    expect(await t.store.recentEvents(10)).toEqual([]);
  });

  it('rejects the events of a failed sync (not known to be on disk) but applies them: they are in the journal', async () => {
    const t = setup();
    const e = event();
    const answer = t.dispatcher.journal(e).then(() => 'ok', (error: Error) => error.message);
    await turn();
    t.store.syncs.shift()!.fail(new Error('EIO'));
    expect(await answer).toBe('EIO');
    await t.store.releaseSyncs();
    await t.dispatcher.idle();
    expect(t.applied.map((a) => a.eventId)).toEqual([e.eventId]);
  });

  it("applies each event as work of its eventId, continuing the context (the time) of the request that posted it", async () => {
    const t = setup();
    const [a, b] = [event(), event()];
    const posted: RequestContext[] = [];
    const post = (id: string, e: LeaseEvent) =>
      withRequestId(id, () => {
        posted.push(currentContext()!);
        return t.dispatcher.journal(e);
      });
    const answers = [post('req-a', a), post('req-b', b)];
    await turn();
    await t.store.releaseSyncs();
    await Promise.all(answers);
    await t.store.releaseSyncs();
    await t.dispatcher.idle();
    expect(posted[0]!.startedAt).not.toBe(posted[1]!.startedAt);
    expect(t.applied).toEqual([
      { eventId: a.eventId, requestId: a.eventId, startedAt: posted[0]!.startedAt },
      { eventId: b.eventId, requestId: b.eventId, startedAt: posted[1]!.startedAt },
    ]);
  });
});
