#!/usr/bin/env node
// Writes the Grafana dashboards, typed code in deploy/grafana/src, as JSON into
// deploy/grafana/dashboards. It type-checks and builds that code first (tsc -b, which builds
// @mmgrid/core too), so a dashboard that names a metric or label the catalog lacks stops here.
// It then copies them into the Helm chart (scripts/sync-chart-files.mjs). With --check, writes
// nothing and fails if the committed JSON differs from what the code makes.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const project = path.join(root, 'deploy/grafana');
const outDir = path.join(project, 'dashboards');
const check = process.argv.includes('--check');

try {
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-b', project], { stdio: 'inherit' });
} catch {
  console.error('deploy/grafana does not compile (see above): the dashboards were not generated');
  process.exit(1);
}

const { DASHBOARDS } = await import(pathToFileURL(path.join(project, 'lib/index.js')).href);

/** File name → JSON text, as committed: two-space indents and a final newline. */
const fresh = new Map(DASHBOARDS.map(({ file, dashboard }) => [file, `${JSON.stringify(dashboard, null, 2)}\n`]));
if (fresh.size !== DASHBOARDS.length) throw new Error('two dashboards have the same file name');
const uids = DASHBOARDS.map(({ dashboard }) => dashboard.uid);
if (new Set(uids).size !== uids.length) throw new Error(`two dashboards have the same uid (${uids.join(', ')})`);

const committed = existsSync(outDir) ? readdirSync(outDir).filter((f) => f.endsWith('.json')) : [];

if (!check) {
  mkdirSync(outDir, { recursive: true });
  for (const f of committed) if (!fresh.has(f)) rmSync(path.join(outDir, f));
  for (const [f, text] of fresh) writeFileSync(path.join(outDir, f), text);
  console.log(`generated ${fresh.size} dashboards in ${path.relative(root, outDir)}`);
  // The Helm chart ships copies of the dashboards (it can read only files inside itself).
  execFileSync(process.execPath, [path.join(root, 'scripts/sync-chart-files.mjs')], { stdio: 'inherit' });
} else {
  const stale = [];
  for (const f of new Set([...fresh.keys(), ...committed])) {
    const file = path.join(outDir, f);
    const current = existsSync(file) ? readFileSync(file, 'utf8') : null;
    if (current !== (fresh.get(f) ?? null)) stale.push(f);
  }
  if (stale.length > 0) {
    console.error(`the dashboards in deploy/grafana/dashboards are out of date with deploy/grafana/src (${stale.join(', ')}). Run: pnpm dashboards`);
    process.exit(1);
  }
  console.log('dashboards are current');
}
