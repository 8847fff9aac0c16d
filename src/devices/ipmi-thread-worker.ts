// An IPMI thread: runs the IpmiDevices (sessions, SOL, steal policy) of its
// share of the IPMI consoles on a UDP socket of its own, and posts what they
// say to the main thread in batches gathered over 10 ms. A console just typed
// at skips the batch: its output is posted alone, ahead of the fleet's output
// gathered so far (which the main thread would otherwise log first), or, if
// something of its own already waits in the batch, with the batch at once. At
// 1,000 consoles a batch per event-loop turn woke the main thread ~700 times a
// second, and each wake-up took the CPU from the IPMI thread that posted it.
// The main thread keeps the logs and the clients. See ipmi-threads.ts for the other side.

import { workerData } from 'node:worker_threads';
import type { DeviceHandler } from './device.js';
import { useFence } from '../util/fence.js';
import type { SessionRecordEntry } from '../ipmi/session-record.js';
import { IpmiDevice } from './ipmi.js';
import { noIpmiCounts, sharedTransport, type IpmiCounts } from '../ipmi/transport.js';
import { Batcher, poolThread, type Encoded } from '../util/worker-pool.js';
import {
  decodeToIpmiThread,
  encodeFromIpmiThread,
  type FromIpmiThreadWire,
  type IpmiThreadBatch,
  type IpmiThreadEvent,
  type ToIpmiThread,
  type ToIpmiThreadWire,
  THREAD_KEY,
} from './ipmi-thread-messages.js';

/** how long after a keystroke a console's output skips the batch */
const TYPED_MS = 2000;
/** how long other output gathers before it is posted: fewer wake-ups of the main thread */
const BATCH_MS = 10;
/** the thread's IPMI counts (retransmissions, session setups) go out at most this long after they changed */
const COUNTS_MS = 1000;

class IpmiThread {
  private readonly devices = new Map<number, IpmiDevice>();
  private readonly batch: IpmiThreadBatch = new Batcher(() => this.flush(), BATCH_MS);
  /** consoles with a control event in this batch: their `held` state is sent at the end of it */
  private touched = new Set<number>();
  /** when each console was last typed at (ms, monotonic): its output is posted at once for a while */
  private readonly typedAt = new Map<number, number>();
  /** the IPMI counts last posted */
  private told: IpmiCounts = noIpmiCounts();
  /** a typed-at console's output posted on its own */
  private readonly express: IpmiThreadBatch = new Batcher(() => {});

  constructor(private readonly post: (m: Encoded<FromIpmiThreadWire>) => void) {
    // counts that changed with no batch to ride on (a retransmission on a quiet console)
    setInterval(() => {
      if (this.countsChanged()) this.batch.schedule();
    }, COUNTS_MS).unref();
  }

  private countsChanged(): boolean {
    const s = sharedTransport().stats;
    const t = this.told;
    return s.retransmissions !== t.retransmissions || s.setups !== t.setups || s.setupFailures !== t.setupFailures;
  }

  receive(m: ToIpmiThread): void {
    if (m.t === 'add') {
      const onSessions = m.tellSessions ? (list: SessionRecordEntry[]) => this.control(m.id, { k: 'sessions', list }) : undefined;
      this.devices.set(m.id, new IpmiDevice(m.spec, { consoleName: m.consoleName, steal: m.steal, earlier: m.earlier, onSessions }));
      return;
    }
    const dev = this.devices.get(m.id);
    if (!dev) return;
    switch (m.t) {
      case 'connect':
        return dev.connect(this.handler(m.id));
      case 'write':
        this.typedAt.set(m.id, performance.now());
        dev.write(m.data);
        if (m.ack !== undefined) this.control(m.id, { k: 'drained', upTo: m.ack });
        return;
      case 'break':
        return dev.sendBreak();
      case 'force':
        return this.answer(m.id, m.req, dev.force(m.by));
      case 'close':
        this.typedAt.delete(m.id);
        return this.answer(m.id, m.req, dev.close());
      case 'remove':
        this.typedAt.delete(m.id);
        this.devices.delete(m.id);
        return;
    }
  }

  private handler(id: number): DeviceHandler {
    return {
      onData: (data) => {
        // an echo should not wait for the batch, nor behind it (alone only if nothing of its own
        // waits there: per-console order)
        const t = this.typedAt.get(id);
        const typed = t !== undefined && performance.now() - t < TYPED_MS;
        if (typed && !this.batch.has(id)) {
          encodeFromIpmiThread(this.express, id, { k: 'data', data });
          this.post(this.express.take());
          return;
        }
        encodeFromIpmiThread(this.batch, id, { k: 'data', data });
        if (typed) this.flush();
        else this.batch.schedule();
      },
      onUp: () => this.control(id, { k: 'up' }),
      onDown: (reason) => this.control(id, { k: 'down', reason }),
      onReady: () => {},
      onNotice: (text) => this.control(id, { k: 'notice', text }),
    };
  }

  private control(id: number, ev: Exclude<IpmiThreadEvent, { k: 'data' }>): void {
    encodeFromIpmiThread(this.batch, id, ev);
    // (a force or close done may have changed the SOL counts too)
    if (ev.k !== 'drained') this.touched.add(id);
    this.batch.schedule();
  }

  private answer(id: number, req: number, p: Promise<void>): void {
    p.then(
      () => this.control(id, { k: 'done', req, error: null }),
      (e: unknown) => this.control(id, { k: 'done', req, error: (e as Error).message }),
    );
  }

  private flush(): void {
    // the state after this batch's notices (a takeover's notice comes before its state change)
    for (const id of this.touched) {
      const dev = this.devices.get(id);
      if (dev) encodeFromIpmiThread(this.batch, id, { k: 'held', since: dev.status().heldElsewhereSince, sol: dev.solCounts() });
    }
    this.touched = new Set();
    if (this.countsChanged()) {
      const { retransmissions, setups, setupFailures } = sharedTransport().stats;
      this.told = { retransmissions, setups, setupFailures };
      encodeFromIpmiThread(this.batch, THREAD_KEY, { k: 'counts', counts: { ...this.told } });
    }
    if (this.batch.size > 0) this.post(this.batch.take());
  }
}

useFence((workerData as { fence: SharedArrayBuffer }).fence);
const thread: IpmiThread = new IpmiThread(poolThread<ToIpmiThreadWire, FromIpmiThreadWire>((w) => thread.receive(decodeToIpmiThread(w))));
