import { describe, expect, it } from 'vitest';
import { HandoffChannel } from '../../src/lease/handoff.js';
import { sleep } from '../../src/internal/index.js';
import { TokenBucket } from '../../src/lease/token-bucket.js';

describe('HandoffChannel (rendezvous)', () => {
  it('completes a send only when a receiver takes it', async () => {
    const ch = new HandoffChannel('lease x');
    let sent = false;
    const send = ch.send(0xabcn, 5_000).then(() => {
      sent = true;
    });
    await sleep(5);
    expect(sent).toBe(false);
    expect(await ch.receive()).toBe(0xabcn);
    await send;
    expect(sent).toBe(true);
  });

  it('hands a waiting receiver the next send', async () => {
    const ch = new HandoffChannel('lease x');
    const got = ch.receive();
    await ch.send(5n, 5_000);
    expect(await got).toBe(5n);
  });

  it('times out a send nobody takes', async () => {
    const ch = new HandoffChannel('lease x');
    await expect(ch.send(1n, 20)).rejects.toMatchObject({ code: 'ERR_LEASE_HANDOFF_TIMEOUT' });
    // The timed-out request is gone: a later receiver does not get it.
    const ac = new AbortController();
    const r = ch.receive(ac.signal);
    ac.abort(new Error('nothing'));
    await expect(r).rejects.toThrow('nothing');
  });

  it('fails pending and future operations on close', async () => {
    const ch = new HandoffChannel('lease x');
    const r = ch.receive();
    ch.close();
    await expect(r).rejects.toMatchObject({ code: 'ERR_LEASE_CLOSED' });
    await expect(ch.send(1n, 1000)).rejects.toMatchObject({ code: 'ERR_LEASE_CLOSED' });
  });
});

describe('TokenBucket', () => {
  it('lets a burst through, then spaces requests by the interval', async () => {
    let t = 0;
    const bucket = new TokenBucket(2, 1000, () => t);
    await bucket.take();
    await bucket.take();
    const ac = new AbortController();
    const third = bucket.take(ac.signal);
    ac.abort(new Error('limited'));
    await expect(third).rejects.toThrow('limited'); // it had to wait for a token
    t += 1000;
    await bucket.take(); // one token refilled after an interval
  });
});

describe('sleep', () => {
  it('chains timers for delays beyond setTimeout range and aborts cleanly', async () => {
    const ac = new AbortController();
    const p = sleep(Date.UTC(3000, 0, 1), ac.signal);
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
  });
});
