#!/usr/bin/env node
// Generates typed TypeScript for the contract in proto/ into packages/proto/src/gen.
// With --check, generates into a temporary folder and fails if the committed code differs.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const protoRoot = path.join(root, 'proto');
const outDir = path.join(root, 'packages/proto/src/gen');
const plugin = path.join(root, 'node_modules/.bin/protoc-gen-ts_proto');
const check = process.argv.includes('--check');

const options = [
  'outputServices=grpc-js',
  'esModuleInterop=true',
  'env=node',
  'forceLong=number',
  'oneof=unions',
  'useOptionals=messages',
  'importSuffix=.js',
  'outputTypeRegistry=false',
  'outputJsonMethods=false',
].join(',');

function listFiles(dir, ext) {
  const out = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) out.push(...listFiles(full, ext));
    else if (full.endsWith(ext)) out.push(full);
  }
  return out.sort();
}

function generate(target) {
  mkdirSync(target, { recursive: true });
  const protos = listFiles(protoRoot, '.proto').map((f) => path.relative(protoRoot, f));
  try {
    execFileSync(
      'protoc',
      [`--plugin=protoc-gen-ts_proto=${plugin}`, `--ts_proto_out=${target}`, `--ts_proto_opt=${options}`, `-I${protoRoot}`, ...protos],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
  } catch (err) {
    if (err && err.code === 'ENOENT') {
      console.error('protoc is not installed. Install it with: sudo apt-get install -y protobuf-compiler');
      process.exit(2);
    }
    throw err;
  }
}

if (!check) {
  rmSync(outDir, { recursive: true, force: true });
  generate(outDir);
  console.log(`generated ${listFiles(outDir, '.ts').length} files in ${path.relative(root, outDir)}`);
} else {
  const tmp = mkdtempSync(path.join(tmpdir(), 'mmgrid-gen-'));
  try {
    generate(tmp);
    const fresh = listFiles(tmp, '.ts').map((f) => path.relative(tmp, f));
    const committed = existsSync(outDir) ? listFiles(outDir, '.ts').map((f) => path.relative(outDir, f)) : [];
    const stale = [];
    for (const f of new Set([...fresh, ...committed])) {
      const a = existsSync(path.join(tmp, f)) ? readFileSync(path.join(tmp, f), 'utf8') : null;
      const b = existsSync(path.join(outDir, f)) ? readFileSync(path.join(outDir, f), 'utf8') : null;
      if (a !== b) stale.push(f);
    }
    if (stale.length > 0) {
      console.error(`generated code is out of date with proto/ (${stale.join(', ')}). Run: pnpm gen`);
      process.exit(1);
    }
    console.log('generated code is current');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
