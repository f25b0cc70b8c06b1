#!/usr/bin/env node
// Generates typed TypeScript for the contract in proto/ into packages/proto/src/gen.
// With --check, generates into a temporary folder and fails if the committed code differs.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, existsSync, statSync, writeFileSync } from 'node:fs';
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
  for (const file of listFiles(target, '.ts')) zeroCopySerializers(file);
}

/**
 * ts-proto's gRPC serialisers copy every message: `Buffer.from(X.encode(value).finish())`,
 * where finish() already returns a fresh Buffer on Node. A blob moves as thousands of 256 KiB
 * messages, and that copy alone cost about 0.15 ms per MiB on each side (test/bench/blobs.ts),
 * so the serialisers are rewritten to hand that Buffer over (wrapping, never copying, a plain
 * Uint8Array should one ever come back).
 */
function zeroCopySerializers(file) {
  const text = readFileSync(file, 'utf8');
  const pattern = /Buffer\.from\((\w+)\.encode\(value\)\.finish\(\)\)/g;
  if (!pattern.test(text)) return;
  const helper = [
    '',
    '/** The bytes of an encoded message as a Buffer, without copying them (added by scripts/gen-proto.mjs). */',
    'function asBuffer(bytes: Uint8Array): Buffer {',
    '  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);',
    '}',
    '',
  ].join('\n');
  writeFileSync(file, text.replace(pattern, 'asBuffer($1.encode(value).finish())') + helper);
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
