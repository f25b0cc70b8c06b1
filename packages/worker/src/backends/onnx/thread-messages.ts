import type { FloatTensor, OnnxDevice, SessionInfo } from './onnx-session.js';

/**
 * Messages between the worker and its ONNX Runtime thread. The thread holds one session;
 * requests are answered in any order, matched by `id`.
 */
export type ToThread =
  | { readonly type: 'open'; readonly id: number; readonly model: string; readonly device: OnnxDevice }
  | { readonly type: 'run'; readonly id: number; readonly input: string; readonly tensor: FloatTensor; readonly output: string }
  | { readonly type: 'close'; readonly id: number };

export type FromThread =
  | { readonly type: 'opened'; readonly id: number; readonly info: SessionInfo }
  | { readonly type: 'ran'; readonly id: number; readonly tensor: FloatTensor }
  | { readonly type: 'closed'; readonly id: number }
  /** `unavailable`: the model cannot be used here (a BackendUnavailableError); else a failed run. */
  | { readonly type: 'failed'; readonly id: number; readonly message: string; readonly unavailable: boolean };
