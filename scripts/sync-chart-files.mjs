#!/usr/bin/env node
// Copies into the Helm chart (deploy/helm/mmgrid) the files it ships from elsewhere in deploy/:
// Helm reads only files inside the chart, and a chart must stay whole when packaged
// (`helm package`) or installed from a repository. The sources stay the only place to edit:
//
//   deploy/grafana/dashboards/*.json   → dashboards/            (generated: `pnpm dashboards`)
//   deploy/redis/redis.conf            → files/redis.conf       (the chart's internal Redis)
//   deploy/prometheus/alerts.yml       → files/alerts.yml       (the PrometheusRule)
//
// Run it after changing any of them. With --check, writes nothing and fails if a copy differs
// (test/e2e/deploy-config.test.ts checks the same).
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const chart = path.join(root, 'deploy/helm/mmgrid');
const check = process.argv.includes('--check');

/** Each folder copied whole (files of one extension), and each single file. */
const folders = [{ from: 'deploy/grafana/dashboards', to: 'dashboards', ext: '.json' }];
const files = [
  { from: 'deploy/redis/redis.conf', to: 'files/redis.conf' },
  { from: 'deploy/prometheus/alerts.yml', to: 'files/alerts.yml' },
];

const list = (dir, ext) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(ext)).sort() : []);

/** Source → copy pairs (paths relative to the repository and the chart), and copies without a source. */
const pairs = files.map(({ from, to }) => ({ from, to }));
const orphans = [];
for (const { from, to, ext } of folders) {
  const sources = list(path.join(root, from), ext);
  for (const f of sources) pairs.push({ from: `${from}/${f}`, to: `${to}/${f}` });
  for (const f of list(path.join(chart, to), ext)) if (!sources.includes(f)) orphans.push(`${to}/${f}`);
}

const differs = ({ from, to }) => {
  const copy = path.join(chart, to);
  return !existsSync(copy) || !readFileSync(copy).equals(readFileSync(path.join(root, from)));
};

if (check) {
  const stale = [...pairs.filter(differs).map((p) => p.to), ...orphans];
  if (stale.length > 0) {
    console.error(`deploy/helm/mmgrid is out of date (${stale.join(', ')}): run node scripts/sync-chart-files.mjs`);
    process.exit(1);
  }
  console.log('the chart\'s copies are up to date');
} else {
  for (const pair of pairs) {
    mkdirSync(path.dirname(path.join(chart, pair.to)), { recursive: true });
    copyFileSync(path.join(root, pair.from), path.join(chart, pair.to));
  }
  for (const f of orphans) rmSync(path.join(chart, f));
  console.log(`copied ${pairs.length} files into ${path.relative(root, chart)}${orphans.length > 0 ? `, removed ${orphans.join(', ')}` : ''}`);
}
