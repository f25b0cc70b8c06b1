// test/helpers/prometheus.ts, which the dashboard tests against a running grid use: a real
// Prometheus on a free port, here scraping another Prometheus.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir, writeIn } from '../helpers/files.js';
import { eventually } from '../helpers/process.js';
import { PrometheusQueryError, startPrometheus, type LocalPrometheus } from '../helpers/prometheus.js';

describe('a private Prometheus for tests', () => {
  let scraped: LocalPrometheus;
  let scraper: LocalPrometheus;
  let dir: string;

  beforeAll(async () => {
    dir = await tempDir('mmgrid-prometheus-rules-');
    const rules = await writeIn(dir, 'rules.yml', 'groups:\n  - name: test\n    rules:\n      - alert: TargetDown\n        expr: up == 0\n');
    scraped = await startPrometheus({ scrape: {} });
    scraper = await startPrometheus({ scrape: { prometheus: [scraped.address] }, scrapeIntervalMs: 1000, ruleFiles: [rules] });
  });

  afterAll(async () => {
    await scraper?.stop();
    await scraped?.stop();
    await removeDir(dir);
  });

  it('scrapes its targets every second and answers queries about them', async () => {
    await scraper.waitUntilScraped();
    expect(await scraper.targets()).toEqual([{ job: 'prometheus', instance: scraped.address, health: 'up', lastError: '' }]);
    expect(await scraper.query('up')).toEqual([{ metric: { __name__: 'up', job: 'prometheus', instance: scraped.address }, value: 1 }]);
    const [build] = await scraper.query('prometheus_build_info{job="prometheus"}');
    expect(build?.metric.version).toMatch(/^\d+\.\d+\./);
  });

  it("answers a variable's label_values as Grafana asks for them", async () => {
    await scraper.waitUntilScraped();
    expect(await scraper.labelValues('job', 'up')).toEqual(['prometheus']);
    expect(await scraper.labelValues('job', 'up{job="nothing"}')).toEqual([]);
  });

  it('loads the rule files it is given and says how their evaluation went', async () => {
    await eventually(async () => (await scraper.rules()).every((r) => r.health !== 'unknown'), 'the rule has been evaluated');
    expect(await scraper.rules()).toEqual([{ name: 'TargetDown', query: 'up == 0', health: 'ok', lastError: '' }]);
  });

  it('answers a scalar as one sample without labels', async () => {
    expect(await scraper.query('scalar(vector(42))')).toEqual([{ metric: {}, value: 42 }]);
  });

  it('rejects a query Prometheus cannot parse, saying why', async () => {
    const err: unknown = await scraper.query('sum(rate(up[1m])').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PrometheusQueryError);
    expect((err as PrometheusQueryError).errorType).toBe('bad_data');
    expect((err as PrometheusQueryError).message).toMatch(/^Prometheus refused sum\(rate\(up\[1m\]\): bad_data: /);
  });

  it('stops, and leaves neither a process nor its folder behind', async () => {
    const extra = await startPrometheus({ scrape: {} });
    await extra.stop();
    expect(extra.process.exitCode !== null || extra.process.signalCode !== null).toBe(true);
    expect(existsSync(extra.dir)).toBe(false);
    await expect(fetch(`${extra.url}/-/ready`)).rejects.toThrow();
  });
});
