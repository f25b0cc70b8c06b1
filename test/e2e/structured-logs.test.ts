// The coordinator's and the workers' logs, as an operator's log collector reads them: one JSON
// object per line, and every line about a job or a task names it (jobId, and taskId for a task),
// so `jq 'select(.jobId == "…")'` over all processes' logs tells a job's whole story.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';

interface LogLine {
  readonly level: number;
  readonly time: number;
  readonly name: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** Fields that only a line about a particular task carries. */
const TASK_FIELDS = ['lease', 'taskRef', 'fencingToken', 'attempt'];

function parseLog(text: string, file: string): LogLine[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new Error(`${file}:${i + 1} is not a JSON line: ${line}`);
      }
      return parsed as LogLine;
    });
}

describe('structured logs', () => {
  let tg: TestGrid;
  const lines = new Map<string, LogLine[]>();

  beforeAll(async () => {
    tg = await startTestGrid({ workers: 2, replicas: 2, env: { MMGRID_LOG_LEVEL: 'debug' } });
    // One job whose tasks fail once and are retried, one that succeeds, one cancelled while queued.
    const retried = await tg.client.submit([], { pipeline: 'selftest', params: { tasks: '4', taskMs: '50', failAttempts: '1' } });
    const plain = await tg.client.submit([], { pipeline: 'selftest', params: { tasks: '2', taskMs: '20' } });
    const slow = await tg.client.submit([], { pipeline: 'selftest', params: { tasks: '12', taskMs: '400' } });
    await tg.client.cancel(slow.id, 'checking the logs');
    expect((await tg.client.waitForJob(retried.id)).state).toBe('completed');
    expect((await tg.client.waitForJob(plain.id)).state).toBe('completed');
    for (const name of ['coordinator', 'coordinator-2', 'worker-1', 'worker-2']) lines.set(name, parseLog(await tg.log(name), `${name}.log`));
  }, 120_000);

  afterAll(async () => {
    await tg?.stop();
  });

  it('are one JSON object per line, with a level, a time, the process and a message', () => {
    for (const [name, log] of lines) {
      expect(log.length, name).toBeGreaterThan(0);
      for (const line of log) {
        expect(typeof line.level, `${name}: ${JSON.stringify(line)}`).toBe('number');
        expect(typeof line.time).toBe('number');
        expect(line.name).toBe(name.startsWith('worker') ? 'worker' : 'coordinator');
        expect(typeof line.msg).toBe('string');
      }
    }
  });

  it('name the job and the task on every line about a task', () => {
    const about = [...lines.entries()].flatMap(([name, log]) => log.filter((l) => TASK_FIELDS.some((f) => f in l) || /\btask\b/i.test(l.msg)).map((l) => ({ name, l })));
    // The workers log each task's start (debug), success and failure; the retries make failures.
    expect(about.filter(({ l }) => l.msg === 'task succeeded').length).toBeGreaterThanOrEqual(6);
    expect(about.filter(({ l }) => l.msg.startsWith('task failed')).length).toBeGreaterThanOrEqual(4);
    for (const { name, l } of about) {
      expect(typeof l['jobId'], `${name}: ${JSON.stringify(l)}`).toBe('string');
      expect(typeof l['taskId'], `${name}: ${JSON.stringify(l)}`).toBe('string');
    }
  });

  it('name the job on every line about a job', () => {
    const about = [...lines.entries()].flatMap(([name, log]) => log.filter((l) => /\bjob\b/i.test(l.msg)).map((l) => ({ name, l })));
    expect(about.length).toBeGreaterThan(0);
    for (const { name, l } of about) expect(typeof l['jobId'], `${name}: ${JSON.stringify(l)}`).toBe('string');
  });
});
