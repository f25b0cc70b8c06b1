import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A Lua script run by its SHA (EVALSHA), loaded on first use or after a Redis restart. */
export class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: readonly (string | Buffer)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
        return redis.eval(this.source, keys.length, ...keys, ...args);
      }
      throw err;
    }
  }
}

/**
 * Lua scripts for mmgrid's own records. Each keeps a record, its event stream and the
 * change notification in one atomic step, so a watcher never sees a state without its event.
 */

/**
 * Lua that leaves out of \`record\` the fields that have their default (as packTaskRecord does
 * in job-store.ts), before it is stored again.
 */
const TASK_RECORD_DEFAULTS_LUA = `
for k, v in pairs({attempts = 0, workerId = '', workerName = '', leaseId = '', fencingToken = 0, startedAt = 0, finishedAt = 0, nextAttemptAt = 0, generation = 0, commits = 0}) do
  if record[k] == v then record[k] = nil end
end
if record['error'] == cjson.null then record['error'] = nil end
`;

/**
 * Lua that makes room in a tenant's live-jobs set (\`liveKey\`) when it is full: drops the
 * oldest members whose job has ended or is gone (\`jobPrefix\` .. id is a job's record), so a
 * job that left the set other than through FINISH_JOB (its record deleted by hand) does not
 * hold a place for ever. Only the 100 oldest are looked at, so a refusal stays cheap. Expects
 * locals liveKey and jobPrefix.
 */
const PRUNE_LIVE_LUA = `
for _, id in ipairs(redis.call('ZRANGE', liveKey, 0, 99)) do
  local s = redis.call('HGET', jobPrefix .. id, 'state')
  if not s or s == 'completed' or s == 'failed' or s == 'cancelled' then redis.call('ZREM', liveKey, id) end
end
`;

/**
 * How many jobs a tenant has live, after making room when its set is full: a quick look
 * before a submission's inputs are probed (CREATE_JOB makes the check that counts).
 */
export const COUNT_LIVE_JOBS = new LuaScript(`
-- KEYS: tenantLive
-- ARGV: maxLive, jobKeyPrefix
local liveKey, jobPrefix, maxLive = KEYS[1], ARGV[2], tonumber(ARGV[1])
if redis.call('ZCARD', liveKey) >= maxLive then
  ${PRUNE_LIVE_LUA}
end
return redis.call('ZCARD', liveKey)
`);

/**
 * Create a job with its task records and first event (idempotent on job id and key), and add
 * it to its tenant's live jobs, unless the tenant has maxLive of them already: then nothing is
 * written and the answer is {0, live}. Checking and adding in one step holds the quota exactly
 * however many replicas submit at once.
 */
export const CREATE_JOB = new LuaScript(`
-- KEYS: job, tasks, events, jobs, tenantJobs, accepting, tenantLive, [idem]
-- ARGV: jobId, createdAt, jobFields(json), taskRecords(json), event, channel, idemTtlSec, maxLive, jobKeyPrefix
if #KEYS == 8 then
  local existing = redis.call('GET', KEYS[8])
  if existing then return existing end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return ARGV[1] end
local liveKey, jobPrefix, maxLive = KEYS[7], ARGV[9], tonumber(ARGV[8])
if redis.call('ZCARD', liveKey) >= maxLive then
  ${PRUNE_LIVE_LUA}
  local live = redis.call('ZCARD', liveKey)
  if live >= maxLive then return {0, live} end
end
local fields = cjson.decode(ARGV[3])
for k, v in pairs(fields) do redis.call('HSET', KEYS[1], k, v) end
local tasks = cjson.decode(ARGV[4])
for k, v in pairs(tasks) do redis.call('HSET', KEYS[2], k, v) end
redis.call('XADD', KEYS[3], '*', 'e', ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[6], ARGV[2], ARGV[1])
redis.call('ZADD', liveKey, ARGV[2], ARGV[1])
if #KEYS == 8 then redis.call('SET', KEYS[8], ARGV[1], 'EX', ARGV[7]) end
redis.call('PUBLISH', ARGV[6], ARGV[1])
return ARGV[1]
`);

/**
 * Merge a patch into a task record, append its event, and mark the job running on first
 * dispatch. Returns 0 when nothing changed (-1 when asked to change nothing once the job has
 * ended, and it has), else {1, readyAt, previousState, kind}: the
 * record's readyAt before the patch (0 when none), so a dispatch learns when its task became
 * ready without another read, and the state it left, so exactly one call (of any replica)
 * sees a task end.
 */
export const UPDATE_TASK = new LuaScript(`
-- KEYS: job, tasks, events
-- ARGV: jobId, taskId, patch(json), event, runningEvent ('' for none), now, channel, maxEvents, onlyIfLive ('1' or ''), onlyIfJobLive ('1' or '')
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
-- A dispatch checks that its job is still live in the same step that marks its task running.
if ARGV[10] == '1' then
  local jobState = redis.call('HGET', KEYS[1], 'state')
  if jobState == 'completed' or jobState == 'failed' or jobState == 'cancelled' then return -1 end
end
local raw = redis.call('HGET', KEYS[2], ARGV[2])
local record = raw and cjson.decode(raw) or {}
-- A repair from a possibly stale read never overwrites a record that has already ended.
if ARGV[9] == '1' and (record['state'] == 'succeeded' or record['state'] == 'failed' or record['state'] == 'cancelled') then return 0 end
local readyAt = tonumber(record['readyAt']) or 0
local previous = record['state'] or ''
local patch = cjson.decode(ARGV[3])
-- Count commits: a second one for the same task would be a bug the fault suite looks for.
if patch['state'] == 'succeeded' and record['state'] ~= 'succeeded' then
  record['commits'] = (record['commits'] or 0) + 1
elseif patch['state'] == 'succeeded' and record['leaseId'] ~= patch['leaseId'] then
  record['commits'] = (record['commits'] or 0) + 1
end
for k, v in pairs(patch) do record[k] = v end
${TASK_RECORD_DEFAULTS_LUA}
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(record))
if ARGV[4] ~= '' then redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'e', ARGV[4]) end
if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'state') == 'queued' then
  redis.call('HSET', KEYS[1], 'state', 'running', 'updatedAt', ARGV[6])
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'e', ARGV[5])
end
redis.call('PUBLISH', ARGV[7], ARGV[1])
return {1, readyAt, previous, record['kind'] or ''}
`);

/**
 * Move a job to a terminal state once; later calls change nothing and return 0. The call that
 * ends it gets {1, pipeline, tenant, runStartedAt} (when this run began: its submission, or
 * its last RetryJob), so exactly one replica counts the job's end and its duration. The job
 * leaves its tenant's live jobs (whose key is built from the tenant in the job's record:
 * liveBefore .. tenant .. liveAfter), which frees its place in the tenant's quota.
 */
export const FINISH_JOB = new LuaScript(`
-- KEYS: job, tasks, events, carried
-- ARGV: jobId, state, fields(json), event, now, retentionMs, channel, liveBefore, liveAfter
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -1 end
local job = redis.call('HMGET', KEYS[1], 'pipeline', 'tenant', 'createdAt', 'retriedAt')
redis.call('ZREM', ARGV[8] .. (job[2] or '') .. ARGV[9], ARGV[1])
if state == 'completed' or state == 'failed' or state == 'cancelled' then return 0 end
for k, v in pairs(cjson.decode(ARGV[3])) do redis.call('HSET', KEYS[1], k, v) end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updatedAt', ARGV[5], 'finishedAt', ARGV[5])
redis.call('XADD', KEYS[3], '*', 'e', ARGV[4])
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
redis.call('PUBLISH', ARGV[7], ARGV[1])
return {1, job[1] or '', job[2] or '', job[4] or job[3] or '0'}
`);

/**
 * Starts another run of an ended (not cancelled) job: state back to queued, records reset, the
 * job live again in its tenant's quota. Returns 0 when the job had not ended (or was
 * cancelled), {0, live} when its tenant has maxLive live jobs already (nothing changes then).
 */
export const RETRY_JOB = new LuaScript(`
-- KEYS: job, tasks, events, carried, accepting, tenantLive
-- ARGV: jobId, generation, rerun(json), taskRecords(json), event, now, channel, maxLive, jobKeyPrefix
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'completed' and state ~= 'failed' then return 0 end
local liveKey, jobPrefix, maxLive = KEYS[6], ARGV[9], tonumber(ARGV[8])
if redis.call('ZCARD', liveKey) >= maxLive then
  ${PRUNE_LIVE_LUA}
  local live = redis.call('ZCARD', liveKey)
  if live >= maxLive then return {0, live} end
end
redis.call('HSET', KEYS[1], 'state', 'queued', 'generation', ARGV[2], 'rerun', ARGV[3], 'updatedAt', ARGV[6], 'finishedAt', '0', 'retriedAt', ARGV[6])
redis.call('HDEL', KEYS[1], 'result', 'error')
for taskId, json in pairs(cjson.decode(ARGV[4])) do
  local raw = redis.call('HGET', KEYS[2], taskId)
  local record = raw and cjson.decode(raw) or {}
  for k, v in pairs(cjson.decode(json)) do record[k] = v end
  ${TASK_RECORD_DEFAULTS_LUA}
  redis.call('HSET', KEYS[2], taskId, cjson.encode(record))
  -- The kept outcome of a task that runs again would be stale.
  redis.call('HDEL', KEYS[4], taskId)
end
redis.call('XADD', KEYS[3], '*', 'e', ARGV[5])
-- A running job is kept; finished ones expire.
for i = 1, 4 do redis.call('PERSIST', KEYS[i]) end
redis.call('ZADD', KEYS[5], ARGV[6], ARGV[1])
redis.call('ZADD', liveKey, ARGV[6], ARGV[1])
redis.call('PUBLISH', ARGV[7], ARGV[1])
return 1
`);

/**
 * Takes one submission from a tenant's token bucket (its rate limit, shared by every replica).
 * The bucket holds up to \`burst\` tokens and refills at \`rate\` a second, by Redis's own
 * clock so that replicas with different clocks agree. Returns {1, 0} when a token was taken,
 * {0, retryAfterMs} when none is left: when the next one will be there.
 */
export const TAKE_SUBMIT_TOKEN = new LuaScript(`
-- KEYS: bucket
-- ARGV: ratePerSec, burst
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(held[1]), tonumber(held[2])
if not tokens or not at then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
-- Floats kept as strings: a number returned from Lua or stored by HSET would be cut to an integer.
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', now)
-- A full bucket is the same as none: let it go once it would be full again.
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
if taken == 1 then return {1, 0} end
return {0, math.ceil((1 - tokens) * 1000 / rate)}
`);

/** Gives back a token TAKE_SUBMIT_TOKEN took, for a submission that was refused after all. */
export const RETURN_SUBMIT_TOKEN = new LuaScript(`
-- KEYS: bucket
-- ARGV: burst
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
if not tokens then return 0 end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', math.min(tonumber(ARGV[1]), tokens + 1)))
return 1
`);
