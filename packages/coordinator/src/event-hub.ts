import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';
import type { Logger } from './logger.js';

/** Messages every replica receives. */
export type ControlMessage =
  | { readonly type: 'cancel-job'; readonly jobId: string }
  | { readonly type: 'worker-connected'; readonly workerId: string; readonly sessionId: string }
  | { readonly type: 'queues-added' }
  /** A token was revoked: drop it from caches, disconnect the workers that use it. */
  | { readonly type: 'token-revoked'; readonly tokenId: string }
  /**
   * A worker's verification record changed on another replica (it was quarantined, or an
   * operator released it): the replica it is connected to reads the record again.
   */
  | { readonly type: 'worker-trust-changed'; readonly workerId: string };

export interface ControlHandler {
  onControl(message: ControlMessage): void;
  /** A task queue may have tasks ready. */
  onWake(queue: string): void;
  /** The subscription was re-established: notices may have been lost meanwhile. */
  onResubscribed(): void;
}

/**
 * Tells watchers on this replica that a job has new events, whichever replica wrote them: the
 * scripts that append events publish the job id, and one subscriber connection fans it out.
 */
export class EventHub {
  private readonly listeners = new Map<string, Set<() => void>>();
  private subscriber: Redis | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly logger: Logger,
  ) {}

  async start(control: ControlHandler): Promise<void> {
    const sub = this.redis.duplicate();
    this.subscriber = sub;
    const controlChannel = this.keys.controlChannel();
    const wakeChannel = this.keys.wakeChannel();
    sub.on('message', (channel: string, payload: string) => {
      if (channel === wakeChannel) {
        for (const queue of payload.split('\n')) control.onWake(queue);
        return;
      }
      if (channel !== controlChannel) return this.wakeWatchers(payload);
      try {
        control.onControl(JSON.parse(payload) as ControlMessage);
      } catch (err) {
        this.logger.warn({ err: String(err) }, 'bad control message');
      }
    });
    sub.on('error', (err: Error) => this.logger.warn({ err: err.message }, 'event subscriber error'));
    // After a reconnect ioredis re-subscribes; wake everyone so nothing missed in between is lost.
    let subscribed = false;
    sub.on('ready', () => {
      for (const jobId of this.listeners.keys()) this.wakeWatchers(jobId);
      if (subscribed) control.onResubscribed();
    });
    await sub.subscribe(this.keys.eventsChannel(), controlChannel, wakeChannel);
    subscribed = true;
  }

  /** Calls `listener` whenever the job may have new events. Returns the unsubscribe function. */
  listen(jobId: string, listener: () => void): () => void {
    let set = this.listeners.get(jobId);
    if (!set) {
      set = new Set();
      this.listeners.set(jobId, set);
    }
    set.add(listener);
    return () => {
      const s = this.listeners.get(jobId);
      if (!s) return;
      s.delete(listener);
      if (s.size === 0) this.listeners.delete(jobId);
    };
  }

  /** Sends a control message to every replica, this one included. */
  async broadcast(message: ControlMessage): Promise<void> {
    await this.redis.publish(this.keys.controlChannel(), JSON.stringify(message));
  }

  /** Tells every replica's dispatchers that these queues may have tasks ready. */
  async wake(queues: readonly string[]): Promise<void> {
    await this.redis.publish(this.keys.wakeChannel(), queues.join('\n'));
  }

  private wakeWatchers(jobId: string): void {
    const set = this.listeners.get(jobId);
    if (set) for (const l of [...set]) l();
  }

  close(): void {
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }
}
