import { performance } from 'node:perf_hooks';
import { ResponderBuilder, ServerInterceptingCall, ServerListenerBuilder, status, type ServerInterceptor } from '@grpc/grpc-js';
import { secondsSince, type Metrics } from './metrics.js';

/** "/mmgrid.v1.JobService/SubmitJob" → { service: "JobService", method: "SubmitJob" }. */
export function grpcMethodOf(path: string): { service: string; method: string } {
  const [, qualified = '', method = ''] = path.split('/');
  return { service: qualified.slice(qualified.lastIndexOf('.') + 1), method };
}

/** A status code's name ("OK", "NOT_FOUND"), or its number for one grpc-js does not know. */
function codeName(code: number): string {
  return (status as unknown as Record<number, string | undefined>)[code] ?? String(code);
}

/**
 * Counts every call of every service by its final status, in one place for the whole server:
 * the status a handler sends (a unary answer, a stream's end, an error), or CANCELLED for a
 * call the client (or a dropped connection) ended first. Unary calls are timed too, from
 * their arrival to their status. Handlers are not touched.
 */
export function grpcMetricsInterceptor(metrics: Metrics): ServerInterceptor {
  return (methodDescriptor, call) => {
    const { service, method } = grpcMethodOf(methodDescriptor.path);
    const unary = !methodDescriptor.requestStream && !methodDescriptor.responseStream;
    const start = performance.now();
    let ended = false;
    const end = (code: number): void => {
      if (ended) return;
      ended = true;
      metrics.grpcRequest(service, method, codeName(code), unary ? secondsSince(start) : undefined);
    };
    const responder = new ResponderBuilder()
      .withStart((next) => next(new ServerListenerBuilder().withOnCancel(() => end(status.CANCELLED)).build()))
      .withSendStatus((sent, next) => {
        end(sent.code);
        next(sent);
      })
      .build();
    return new ServerInterceptingCall(call, responder);
  };
}
