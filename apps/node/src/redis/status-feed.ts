/**
 * Status changes across the cluster and a cache of status reads. Every node
 * publishes its pipelines' changes on one channel per cluster
 * (`<prefix>status`, JSON `{ pipelineId, status, from, nodeId, at }`) and
 * hears every node's, so a live feed on any node shows changes made on
 * another. Status reads go through `<prefix>status:<pipeline>` (short TTL);
 * a heard change drops that key, so a read after a change is fresh. Failures
 * go to `onFailure` and never to the caller: a publish is lost, a cache read
 * misses.
 */
import type { Redis } from 'ioredis';
import type { NodeLogger } from '../node/node-logger.js';
import { RedisUnavailableError } from './redis-errors.js';

/** A status change as published. */
export interface StatusMessage {
  readonly pipelineId: string;
  readonly status: string;
  readonly from: string;
  readonly nodeId: string;
  readonly at: string;
}

/** What `createStatusFeed` needs: a command client (fails fast) and a subscriber connection. */
export interface StatusFeedOptions {
  readonly client: Redis;
  readonly subscriber: Redis;
  readonly keyPrefix: string;
  readonly nodeId: string;
  readonly statusTtlMs: number;
  readonly logger: NodeLogger;
  readonly onFailure: (error: RedisUnavailableError) => void;
}

/** The feed of `createStatusFeed`. */
export interface StatusFeed {
  publish(message: Omit<StatusMessage, 'nodeId' | 'at'>): Promise<void>;
  /** Changes published by any node (this one included); returns the unsubscribe. */
  onStatus(listener: (message: StatusMessage) => void): () => void;
  /** The cached status of a pipeline, or `read()` (then cached) on a miss or when Redis is down. */
  cached<T>(pipelineId: string, read: () => Promise<T>): Promise<T>;
  close(): void;
}

/**
 * Subscribes and returns the feed.
 *
 * @example
 * ```ts
 * const feed = createStatusFeed({ client, subscriber, keyPrefix: 'dataflow:', nodeId, statusTtlMs: 5_000, logger, onFailure });
 * feed.onStatus((m) => sse.send(m));
 * await feed.publish({ pipelineId: 'orders', status: 'paused', from: 'running' });
 * ```
 */
export function createStatusFeed(options: StatusFeedOptions): StatusFeed {
  const { client, subscriber, keyPrefix, logger } = options;
  const channel = `${keyPrefix}status`;
  const cacheKey = (pipelineId: string) => `${keyPrefix}status:${pipelineId}`;
  const fail = (operation: string) => (error: unknown) => options.onFailure(new RedisUnavailableError(operation, error));
  const listeners = new Set<(message: StatusMessage) => void>();
  let closed = false;
  subscriber.on('message', (from: string, text: string) => {
    if (from !== channel) return;
    const message = parseStatus(text);
    if (message === undefined) {
      logger.debug(`redis: ignored a message on ${channel} that is not a status change`);
      return;
    }
    client.del(cacheKey(message.pipelineId)).catch(fail('drop cached status'));
    for (const listener of listeners) listener(message);
  });
  const subscribe = (): void => {
    subscriber.subscribe(channel).catch((error: unknown) => {
      if (!closed) fail('subscribe')(error);
    });
  };
  subscribe();
  // Subscribed again on every reconnect, here, where its failure is handled: ioredis's own resubscription
  // (autoResubscribe, off on the features' subscriber) leaves an unhandled rejection when the link drops right after ready.
  subscriber.on('ready', () => {
    if (!closed) subscribe();
  });
  return {
    publish: async (message) => {
      const full: StatusMessage = { ...message, nodeId: options.nodeId, at: new Date().toISOString() };
      await client.publish(channel, JSON.stringify(full)).catch(fail('publish status'));
    },
    onStatus: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    cached: async <T>(pipelineId: string, read: () => Promise<T>): Promise<T> => {
      const cached = await client.get(cacheKey(pipelineId)).catch((error: unknown) => {
        fail('read cached status')(error);
        return null;
      });
      if (cached !== null) return JSON.parse(cached) as T;
      const value = await read();
      await client.set(cacheKey(pipelineId), JSON.stringify(value), 'PX', options.statusTtlMs).catch(fail('cache status'));
      return value;
    },
    close: () => {
      closed = true;
      listeners.clear();
    },
  };
}

/** A published status change, or undefined when `text` is not one (another publisher on the channel). */
export function parseStatus(text: string): StatusMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined; // not JSON: the caller logs the ignored message
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const m = value as Record<string, unknown>;
  return (['pipelineId', 'status', 'from', 'nodeId', 'at'] as const).every((f) => typeof m[f] === 'string') ? (value as StatusMessage) : undefined;
}
