/**
 * mmgrid's Grafana dashboards, as typed code. scripts/gen-dashboards.mjs builds this project and
 * writes each dashboard to deploy/grafana/dashboards/<file>, where Grafana provisions it from.
 *
 *   import { DASHBOARDS } from './index.js';
 *   for (const { file, dashboard } of DASHBOARDS) writeFileSync(file, JSON.stringify(dashboard, null, 2));
 */
import { gridOverview } from './dashboards/grid-overview.js';
import { jobsAndStages } from './dashboards/jobs-and-stages.js';
import { workersAndGpus } from './dashboards/workers-and-gpus.js';
import type { Dashboard } from './grafana-model.js';

export interface DashboardFile {
  /** File name under deploy/grafana/dashboards. */
  readonly file: string;
  readonly dashboard: Dashboard;
}

export const DASHBOARDS: readonly DashboardFile[] = [
  { file: 'grid-overview.json', dashboard: gridOverview },
  { file: 'jobs-and-stages.json', dashboard: jobsAndStages },
  { file: 'workers-and-gpus.json', dashboard: workersAndGpus },
];

export type { Dashboard } from './grafana-model.js';
