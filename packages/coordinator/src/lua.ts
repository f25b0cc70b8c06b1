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

/** Create a job with its task records and first event (idempotent on job id and key). */
export const CREATE_JOB = new LuaScript(`
-- KEYS: job, tasks, events, jobs, tenantJobs, accepting, [idem]
-- ARGV: jobId, createdAt, jobFields(json), taskRecords(json), event, channel, idemTtlSec
if #KEYS == 7 then
  local existing = redis.call('GET', KEYS[7])
  if existing then return existing end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return ARGV[1] end
local fields = cjson.decode(ARGV[3])
for k, v in pairs(fields) do redis.call('HSET', KEYS[1], k, v) end
local tasks = cjson.decode(ARGV[4])
for k, v in pairs(tasks) do redis.call('HSET', KEYS[2], k, v) end
redis.call('XADD', KEYS[3], '*', 'e', ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[6], ARGV[2], ARGV[1])
if #KEYS == 7 then redis.call('SET', KEYS[7], ARGV[1], 'EX', ARGV[7]) end
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
 * its last RetryJob), so exactly one replica counts the job's end and its duration.
 */
export const FINISH_JOB = new LuaScript(`
-- KEYS: job, tasks, events, carried
-- ARGV: jobId, state, fields(json), event, now, retentionMs, channel
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -1 end
if state == 'completed' or state == 'failed' or state == 'cancelled' then return 0 end
local job = redis.call('HMGET', KEYS[1], 'pipeline', 'tenant', 'createdAt', 'retriedAt')
for k, v in pairs(cjson.decode(ARGV[3])) do redis.call('HSET', KEYS[1], k, v) end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updatedAt', ARGV[5], 'finishedAt', ARGV[5])
redis.call('XADD', KEYS[3], '*', 'e', ARGV[4])
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
redis.call('PUBLISH', ARGV[7], ARGV[1])
return {1, job[1] or '', job[2] or '', job[4] or job[3] or '0'}
`);

/** Starts another run of an ended (not cancelled) job: state back to queued, records reset. */
export const RETRY_JOB = new LuaScript(`
-- KEYS: job, tasks, events, carried, accepting
-- ARGV: jobId, generation, rerun(json), taskRecords(json), event, now, channel
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'completed' and state ~= 'failed' then return 0 end
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
redis.call('PUBLISH', ARGV[7], ARGV[1])
return 1
`);
