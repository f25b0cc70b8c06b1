#!/usr/bin/env bash
# GPU check: a whole grid on this machine runs one PyTorch task on the GPU through an exec
# backend, as a GPU owner would set it up.
#
# It starts a private redis-server, a coordinator and a worker (from the built packages) whose
# worker.yaml declares
#
#   exec.torch-matmul: python3 torch_task.py {input} {params.size}
#
# submits a job with that step (requires: { gpu: true }), and prints the result: the GPU the
# task ran on, timing and a checksum. Offline; a few minutes at most.
#
#   test/gpu/run.sh                      # from a built checkout (npx tsc -b)
#   NODE=/opt/node/bin/node MMGRID_REPO=/srv/mmgrid test/gpu/run.sh
#
# Environment (all optional):
#   NODE          node executable (default: node on PATH)
#   MMGRID_REPO   the built mmgrid checkout or bundle (default: two folders above this script);
#                 it needs packages/{coordinator,worker,cli}/lib/bin.js with their node_modules
#   REDIS_SERVER  redis-server executable (default: redis-server on PATH)
#   PYTHON        python with PyTorch (default: python3 on PATH)
#   SIZE          matrix side (default: 8192)
#   ALLOW_CPU=1   accept a run without CUDA (the step then does not require a GPU); without it,
#                 no usable GPU is a failure (exit 1)
#   KEEP=1        keep the work folder (logs, worker.yaml, job.yaml, result.json)
#   TIMEOUT_SEC   how long the job may take (default: 300)
#
# Exit status: 0 when the task ran on a CUDA device (or on the CPU with ALLOW_CPU=1), 1 when
# it did not, 2 when something this check needs is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${MMGRID_REPO:-$here/../..}" && pwd)"
NODE="${NODE:-node}"
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
PYTHON="${PYTHON:-python3}"
SIZE="${SIZE:-8192}"
ALLOW_CPU="${ALLOW_CPU:-0}"
TIMEOUT_SEC="${TIMEOUT_SEC:-300}"

say() { printf 'gpu-check: %s\n' "$*" >&2; }
missing() {
  say "$*"
  exit 2
}

# --- what the check needs -------------------------------------------------------------
node_bin="$(command -v "$NODE" || true)"
[ -n "$node_bin" ] || missing "node is not found (NODE=$NODE): install Node.js 20.19 or later, or set NODE to its path"
"$node_bin" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
  missing "$node_bin is Node.js $("$node_bin" --version); mmgrid needs 20.19 or later"
redis_bin="$(command -v "$REDIS_SERVER" || true)"
[ -n "$redis_bin" ] || missing "redis-server is not found (REDIS_SERVER=$REDIS_SERVER): install it (apt-get install redis-server) or set REDIS_SERVER to its path"
python_bin="$(command -v "$PYTHON" || true)"
[ -n "$python_bin" ] || missing "python is not found (PYTHON=$PYTHON): set PYTHON to a python with PyTorch"
for pkg in coordinator worker cli; do
  [ -f "$REPO/packages/$pkg/lib/bin.js" ] || missing "$REPO/packages/$pkg/lib/bin.js is missing: build the packages first (cd $REPO && npx tsc -b), or set MMGRID_REPO to a built checkout"
done
mmgrid=("$node_bin" "$REPO/packages/cli/lib/bin.js")

gpu_seen=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  gpu_seen=1
  say "nvidia-smi: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -n 1)"
elif [ "$ALLOW_CPU" = 1 ]; then
  say "no GPU found by nvidia-smi; ALLOW_CPU=1: the step will not require one"
else
  say "no GPU found by nvidia-smi (the worker finds GPUs with it); the task would wait for a GPU worker forever. ALLOW_CPU=1 runs the check without one"
  exit 1
fi
torch_line="$("$python_bin" -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())' 2>/dev/null || true)"
if [ -n "$torch_line" ]; then
  say "PyTorch (version, CUDA, CUDA available): $torch_line"
elif [ "$ALLOW_CPU" = 1 ]; then
  say "PyTorch is not installed for $python_bin; ALLOW_CPU=1: torch_task.py falls back to NumPy"
else
  missing "PyTorch is not installed for $python_bin: pip install torch, or set PYTHON to a python that has it"
fi

# --- a private grid ---------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/mmgrid-gpu-check.XXXXXX")"
pids=()
finish() {
  local status=$?
  # Workers drain first, Redis goes last; each is a process this script started.
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${pids[i]}" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    for log in worker coordinator redis; do
      [ -f "$work/$log.log" ] && { say "--- last lines of $log.log ---"; tail -n 25 "$work/$log.log" >&2; }
    done
  fi
  if [ "${KEEP:-0}" = 1 ]; then say "work folder kept: $work"; else rm -rf "$work"; fi
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM

free_port() { "$python_bin" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Waits until something listens on 127.0.0.1:$1 (at most $2 seconds) while process $3 lives.
wait_port() {
  local deadline=$((SECONDS + $2))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || { say "$4 exited before it listened on port $1"; exit 1; }
    [ "$SECONDS" -lt "$deadline" ] || { say "$4 did not listen on port $1 within $2 s"; exit 1; }
    sleep 0.2
  done
}

redis_port="$(free_port)"
"$redis_bin" --port "$redis_port" --bind 127.0.0.1 --dir "$work" --save '' --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port "$redis_port" 20 "${pids[-1]}" redis-server

coordinator_port="$(free_port)"
"$node_bin" "$REPO/packages/coordinator/lib/bin.js" --listen "127.0.0.1:$coordinator_port" --redis "redis://127.0.0.1:$redis_port" \
  --blob-dir "$work/blobs" --id gpu-check >"$work/coordinator.log" 2>&1 &
pids+=($!)
wait_port "$coordinator_port" 60 "${pids[-1]}" coordinator
export MMGRID_COORDINATOR="127.0.0.1:$coordinator_port"

# JSON strings are YAML strings: paths with any characters stay one argument.
json() { "$python_bin" -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }
cat >"$work/worker.yaml" <<EOF
name: gpu-check
stateDir: $(json "$work/worker")
# One task at a time on the GPU (exec kinds otherwise get the default of 2 per CPU core).
slots: { "exec.torch-matmul": 1 }
backends:
  exec:
    - kind: exec.torch-matmul
      command: [$(json "$python_bin"), torch_task.py, "{input}", "{params.size}"]
      cwd: $(json "$here")
      env:
        ALLOW_CPU: $(json "$ALLOW_CPU")
      timeoutSec: $TIMEOUT_SEC
      description: a PyTorch matrix multiply on the GPU
EOF
"$node_bin" "$REPO/packages/worker/lib/bin.js" --config "$work/worker.yaml" >"$work/worker.log" 2>&1 &
pids+=($!)
worker_pid="${pids[-1]}"
deadline=$((SECONDS + 60))
until grep -q 'connected to coordinator' "$work/worker.log"; do
  kill -0 "$worker_pid" 2>/dev/null || { say "the worker exited before it connected"; exit 1; }
  [ "$SECONDS" -lt "$deadline" ] || { say "the worker did not connect within 60 s"; exit 1; }
  sleep 0.2
done
if grep -q 'is left out' "$work/worker.log"; then
  say "the worker left the exec backend out:"
  grep 'is left out' "$work/worker.log" | "$python_bin" -c 'import json, sys; [print("  " + json.loads(l).get("msg", l)) for l in sys.stdin]' >&2 || true
  exit 1
fi
"$python_bin" - "$work/worker.log" >&2 <<'EOF'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    try:
        msg = json.loads(line).get("msg", "")
    except ValueError:
        continue
    if msg.startswith("mmgrid worker "):
        print("gpu-check: " + msg)
EOF

# --- the job ------------------------------------------------------------------------------
printf 'mmgrid gpu check %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$work/seed.txt"
requires=""
[ "$gpu_seen" = 1 ] && requires="    requires: { gpu: true }"
cat >"$work/job.yaml" <<EOF
inputs:
  seed: seed.txt
steps:
  matmul:
    kind: exec.torch-matmul
    input: seed
    params: { size: $SIZE }
$requires
EOF
say "submitting exec.torch-matmul (size $SIZE$([ "$gpu_seen" = 1 ] && printf ', requires a GPU'))"
set +e
timeout "$((TIMEOUT_SEC + 60))" "${mmgrid[@]}" submit -f "$work/job.yaml" --wait --json -q >"$work/result.json" 2>"$work/submit.err"
submitted=$?
set -e
[ -s "$work/submit.err" ] && cat "$work/submit.err" >&2
[ -s "$work/result.json" ] || { say "mmgrid submit printed no result (exit $submitted)"; exit 1; }

"$python_bin" - "$work/result.json" "$ALLOW_CPU" <<'EOF'
import json, sys
job = json.load(open(sys.argv[1], encoding="utf-8"))
allow_cpu = sys.argv[2] == "1"
task = next((t for t in job.get("tasks", []) if t.get("label") == "matmul"), {})
print(f"job {job.get('id')}: {job.get('state')}; task {task.get('id')} ran on worker {task.get('workerName')} "
      f"({task.get('worker')}), {task.get('attempts')} attempt(s)")
if job.get("state") != "completed":
    error = job.get("error") or task.get("error") or {}
    print(f"FAILED: {error.get('code')}: {error.get('message')}")
    sys.exit(1)
doc = (job.get("result") or {}).get("doc") or {}
out = next((i["outputs"].get("matmul") for i in doc.get("inputs", []) if "matmul" in i.get("outputs", {})), None)
if out is None:
    print("FAILED: the result holds no matmul output")
    sys.exit(1)
print(json.dumps(out, indent=2))
print(f"device: {out.get('device')}  gpu: {out.get('gpu')}  capability: {out.get('capability')}  "
      f"size: {out.get('size')}  reps: {out.get('reps')}  seconds: {out.get('seconds')}  "
      f"TFLOP/s: {out.get('tflops')}  checksum: {out.get('checksum')}  maxAbsError: {out.get('maxAbsError')}")
print(f"uploaded files: {[f['name'] for f in out.get('files', [])]}")
if not str(out.get("device", "")).startswith("cuda"):
    if allow_cpu:
        print("NOTE: ran on the CPU (ALLOW_CPU=1): " + str(out.get("note")))
    else:
        print("FAILED: the task did not run on a CUDA device")
        sys.exit(1)
EOF
