import type { BackendsConfig } from '../worker-config.js';
import { BackendUnavailableError, type Backend, type BackendCheck, type BackendContext } from './backend.js';
import { TranscribeBackend } from './builtin/audio-transcribe.js';
import { createExecBackend } from './exec/exec-backend.js';
import { createKserveBackend } from './kserve/kserve-backend.js';
import { createOnnxBackend } from './onnx/onnx-backend.js';
import { createChatBackend } from './openai-chat/chat-backend.js';
import { causeOf } from './http.js';

/** The backends a worker config's `backends:` section describes, in its order. */
export function createBackends(config: BackendsConfig, ctx: BackendContext): Backend[] {
  return [
    ...config.transcribe.map((c) => new TranscribeBackend(c)),
    ...config.chat.map((c) => createChatBackend(c, ctx)),
    ...config.onnx.map((c) => createOnnxBackend(c, ctx)),
    ...config.kserve.map((c) => createKserveBackend(c, ctx)),
    ...config.exec.map((c) => createExecBackend(c, ctx)),
  ];
}

export interface CheckedBackends {
  readonly ready: readonly { readonly backend: Backend; readonly check: BackendCheck }[];
  readonly failed: readonly { readonly backend: Backend; readonly reason: string }[];
}

/** Checks every backend at once, each within `timeoutMs`; none throws. */
export async function checkBackends(backends: readonly Backend[], timeoutMs = 10_000): Promise<CheckedBackends> {
  const results = await Promise.all(
    backends.map(async (backend) => {
      try {
        return { backend, check: await backend.check(AbortSignal.timeout(timeoutMs)) };
      } catch (err) {
        return { backend, reason: err instanceof BackendUnavailableError ? err.message : causeOf(err) };
      }
    }),
  );
  const ready: { backend: Backend; check: BackendCheck }[] = [];
  const failed: { backend: Backend; reason: string }[] = [];
  // A worker runs each kind with one server: a later backend for a kind already served is left out.
  const servedBy = new Map<string, Backend>();
  for (const r of results) {
    if (!('check' in r)) {
      failed.push({ backend: r.backend, reason: r.reason });
      continue;
    }
    const taken = r.backend.kinds.find((k) => servedBy.has(k));
    if (taken !== undefined) {
      failed.push({ backend: r.backend, reason: `${taken} is already served by backend ${servedBy.get(taken)?.name ?? '?'}; a worker runs each kind with one server (run another worker for this one)` });
      continue;
    }
    for (const k of r.backend.kinds) servedBy.set(k, r.backend);
    ready.push({ backend: r.backend, check: r.check });
  }
  return { ready, failed };
}
