/**
 * The Redis key layout of mmgrid's own records (BullMQ keeps its queues under the same prefix).
 *
 *   {p}:job:{id}            hash   the job record (state, spec, plan, result)
 *   {p}:job:{id}:tasks      hash   task id → task record JSON (state, attempts, worker, error)
 *   {p}:job:{id}:events     stream the job's events, protobuf-encoded JobEvent in field "e"
 *   {p}:jobs                zset   every job id by creation time
 *   {p}:tenant:{t}:jobs     zset   a tenant's job ids by creation time
 *   {p}:idem:{t}:{key}      string idempotency key → job id
 *   {p}:accepting           zset   jobs stored but whose tasks may not be queued yet, by time
 *   {p}:fence               string the grid-wide fencing counter
 *   {p}:workers             hash   worker id → worker view JSON (for fleet views across replicas)
 *   {p}:queues              hash   task queue name → its kind, tenant and requirements
 *   {p}:wake                channel  queue names that may have tasks ready (pub/sub)
 *   {p}:job:{id}:carried    hash   task id → outcome kept from before a retry
 *   {p}:events              channel  job ids whose events changed (pub/sub)
 *   {p}:control             channel  control messages to every replica (JSON, see event-hub.ts)
 *   {p}:tokens              hash   token id → token record JSON (its SHA-256, role, tenant, name, times)
 *   {p}:token-hashes        hash   SHA-256 of a token → token id (the token itself is never stored)
 *   {p}:tenant:{t}:blobs    set    SHA-256s of the blobs tenant t uploaded or was given as results
 *   {p}:tenant:{t}:live     zset   tenant t's jobs not yet ended (queued or running), by creation
 *                                  time: its quota of live jobs (CREATE_JOB adds, FINISH_JOB removes)
 *   {p}:tenant:{t}:submits  hash   tenant t's submission token bucket (tokens, at): its rate limit
 *   {p}:job:{id}:verify:{task} hash worker id → candidate result JSON (result verification)
 *   {p}:trust:{worker}      hash   a worker's verification record: agreed, disagreed, quarantinedAt
 */
export class Keys {
  constructor(readonly prefix: string) {}

  job(id: string): string {
    return `${this.prefix}:job:${id}`;
  }
  tasks(id: string): string {
    return `${this.prefix}:job:${id}:tasks`;
  }
  events(id: string): string {
    return `${this.prefix}:job:${id}:events`;
  }
  jobs(): string {
    return `${this.prefix}:jobs`;
  }
  tenantJobs(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}:jobs`;
  }
  accepting(): string {
    return `${this.prefix}:accepting`;
  }
  idempotency(tenant: string, key: string): string {
    return `${this.prefix}:idem:${tenant}:${key}`;
  }
  fence(): string {
    return `${this.prefix}:fence`;
  }
  workers(): string {
    return `${this.prefix}:workers`;
  }
  queues(): string {
    return `${this.prefix}:queues`;
  }
  wakeChannel(): string {
    return `${this.prefix}:wake`;
  }
  carried(id: string): string {
    return `${this.prefix}:job:${id}:carried`;
  }
  eventsChannel(): string {
    return `${this.prefix}:events`;
  }
  controlChannel(): string {
    return `${this.prefix}:control`;
  }
  tokens(): string {
    return `${this.prefix}:tokens`;
  }
  tokenHashes(): string {
    return `${this.prefix}:token-hashes`;
  }
  tenantBlobs(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}:blobs`;
  }
  tenantLive(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}:live`;
  }
  /**
   * The parts around the tenant in tenantLive's key, for FINISH_JOB, which learns a job's
   * tenant from the job's record.
   */
  tenantLiveParts(): readonly [before: string, after: string] {
    return [`${this.prefix}:tenant:`, ':live'];
  }
  tenantSubmits(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}:submits`;
  }
  candidates(jobId: string, taskId: string): string {
    return `${this.prefix}:job:${jobId}:verify:${taskId}`;
  }
  trust(workerId: string): string {
    return `${this.prefix}:trust:${workerId}`;
  }
}
