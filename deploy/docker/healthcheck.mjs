// The images' health check: GET /healthz on this process's metrics port, which answers 200
// while the coordinator (or worker) is healthy and 503 with the reason when it is not.
// node:20-slim has no curl or wget, so Node asks.
//
// The address ("HOST:PORT") comes from the variable the process itself reads: the worker's
// MMGRID_WORKER_METRICS_LISTEN, else the coordinator's MMGRID_METRICS_LISTEN (the images set
// them). A wildcard host is asked on the loopback address.
import { get } from 'node:http';

const name = process.env.MMGRID_WORKER_METRICS_LISTEN !== undefined ? 'MMGRID_WORKER_METRICS_LISTEN' : 'MMGRID_METRICS_LISTEN';
const listen = (process.env[name] ?? '').trim();
const match = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(listen);
if (!match) {
  console.error(`healthcheck: ${name} is "${listen}", not HOST:PORT: there is no /healthz to ask`);
  process.exit(1);
}
const host = match[1] ?? match[2] ?? '';
const loopback = host === '' || host === '0.0.0.0' || host === '::';
const req = get({ host: loopback ? '127.0.0.1' : host, port: Number(match[3]), path: '/healthz', timeout: 4000 }, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (chunk) => (body += chunk));
  res.on('end', () => {
    console.log(`${res.statusCode ?? '?'} ${body.trim()}`);
    process.exit(res.statusCode === 200 ? 0 : 1);
  });
});
req.on('timeout', () => req.destroy(new Error('no answer within 4 s')));
req.on('error', (err) => {
  console.error(`healthcheck: ${err.message}`);
  process.exit(1);
});
