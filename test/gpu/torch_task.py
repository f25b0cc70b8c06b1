#!/usr/bin/env python3
"""An mmgrid exec task: a square matrix multiply on the GPU with PyTorch.

Run by the worker's exec backend as

    python3 torch_task.py {input} {params.size}

The input's bytes seed the random matrices (so the checksum depends on the job's input),
`size` is the matrices' side. It follows the exec protocol:

- the result is one JSON object on the last line of stdout;
- `progress FRACTION MESSAGE` lines on stderr report progress; other stderr is for people;
- exit code 0: done; 75 (EX_TEMPFAIL): out of GPU memory, worth retrying (elsewhere);
  anything else: a failure retrying will not cure.

Without CUDA it multiplies on the CPU (a smaller matrix), prints its JSON with
"device": "cpu", and exits with 3 unless ALLOW_CPU=1. Without PyTorch at all it fails (exit 2),
unless ALLOW_CPU=1, where it uses NumPy (or plain Python) so the rest of the check can run.
It needs no network.
"""

import hashlib
import json
import os
import sys
import time

EX_TEMPFAIL = 75
EXIT_NO_CUDA = 3
CPU_MAX_SIZE = 1024


def progress(fraction, message):
    print(f"progress {fraction:.2f} {message}", file=sys.stderr, flush=True)


def fail(message, code):
    print(f"torch_task: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def write_sample(rows):
    """Writes the result's top-left corner to the task's output folder (uploaded by the worker)."""
    outdir = os.environ.get("MMGRID_OUTDIR")
    if outdir:
        with open(os.path.join(outdir, "corner.json"), "w", encoding="utf-8") as f:
            json.dump({"corner": rows}, f)


def without_torch(size, seed, result):
    """ALLOW_CPU=1 and no PyTorch: the same multiply with NumPy, or plain Python for a tiny one."""
    try:
        import numpy as np
    except ImportError:
        np = None
    if np is not None:
        rng = np.random.default_rng(seed)
        a = rng.random((size, size), dtype=np.float32)
        b = rng.random((size, size), dtype=np.float32)
        start = time.perf_counter()
        c = a @ b
        seconds = time.perf_counter() - start
        reference = a[:8].astype(np.float64) @ b[:, :8].astype(np.float64)
        result.update(backend="numpy " + np.__version__, checksum=float(c.astype(np.float64).sum()),
                      maxAbsError=float(np.abs(c[:8, :8] - reference).max()))
        write_sample(c[:4, :4].tolist())
    else:
        size = min(size, 64)
        import random
        rnd = random.Random(seed)
        a = [[rnd.random() for _ in range(size)] for _ in range(size)]
        b = [[rnd.random() for _ in range(size)] for _ in range(size)]
        start = time.perf_counter()
        c = [[sum(a[i][k] * b[k][j] for k in range(size)) for j in range(size)] for i in range(size)]
        seconds = time.perf_counter() - start
        result.update(backend="python", checksum=sum(map(sum, c)), maxAbsError=0.0)
        write_sample([row[:4] for row in c[:4]])
    result.update(size=size, reps=1, seconds=round(seconds, 6),
                  tflops=round(2 * size ** 3 / seconds / 1e12, 4) if seconds > 0 else None)
    return result


def main():
    if len(sys.argv) != 3:
        fail("usage: torch_task.py INPUT_FILE SIZE", 2)
    input_path, size_text = sys.argv[1], sys.argv[2]
    try:
        size = int(size_text)
    except ValueError:
        fail(f"size must be a whole number, not {size_text!r}", 2)
    if not 16 <= size <= 32768:
        fail(f"size must be from 16 to 32768, not {size}", 2)
    with open(input_path, "rb") as f:
        digest = hashlib.sha256(f.read()).digest()
    seed = int.from_bytes(digest[:8], "big")
    allow_cpu = os.environ.get("ALLOW_CPU") == "1"
    result = {
        "inputSha256": digest.hex(),
        "cudaVisibleDevices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "python": sys.version.split()[0],
    }

    progress(0.05, "importing torch")
    try:
        import torch
    except ImportError:
        if not allow_cpu:
            fail("PyTorch is not installed for " + sys.executable + " (pip install torch); "
                 "ALLOW_CPU=1 runs a CPU check without it", 2)
        result.update(device="cpu", gpu=None, torch=None,
                      note="PyTorch is not installed: multiplied on the CPU without it (ALLOW_CPU=1)")
        print(json.dumps(without_torch(min(size, CPU_MAX_SIZE), seed, result)))
        return 0

    cuda = torch.cuda.is_available()
    result.update(torch=torch.__version__, cudaVersion=torch.version.cuda)
    if cuda:
        device = torch.device("cuda", 0)
        props = torch.cuda.get_device_properties(device)
        result.update(device=str(device), gpu=props.name, capability=f"{props.major}.{props.minor}",
                      gpuMemoryGiB=round(props.total_memory / 1024 ** 3, 1), gpuCount=torch.cuda.device_count())
        # Full float32 precision, so the checksum does not depend on TF32 being on.
        torch.backends.cuda.matmul.allow_tf32 = False
    else:
        device = torch.device("cpu")
        size = min(size, CPU_MAX_SIZE)
        result.update(device="cpu", gpu=None,
                      note=f"CUDA is not available to PyTorch: multiplied on the CPU (size capped at {CPU_MAX_SIZE})")

    try:
        generator = torch.Generator().manual_seed(seed % (2 ** 63))
        a = torch.rand(size, size, generator=generator).to(device)
        b = torch.rand(size, size, generator=generator).to(device)
        progress(0.2, "warming up")
        (a @ b).sum().item()
        if cuda:
            torch.cuda.synchronize()
        reps = 10 if cuda else 1
        progress(0.4, f"multiplying {size}x{size} x{reps}")
        start = time.perf_counter()
        for _ in range(reps):
            c = a @ b
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        progress(0.8, "checking")
        reference = a[:8].cpu().double() @ b[:, :8].cpu().double()
        result.update(
            size=size,
            reps=reps,
            seconds=round(seconds, 6),
            tflops=round(2 * size ** 3 * reps / seconds / 1e12, 3),
            checksum=float(c.double().sum().item()),
            maxAbsError=float((c[:8, :8].cpu().double() - reference).abs().max().item()),
        )
        if cuda:
            result["peakMemoryMiB"] = round(torch.cuda.max_memory_allocated(device) / 1024 ** 2, 1)
        write_sample(c[:4, :4].cpu().tolist())
    except Exception as err:  # noqa: BLE001 - only out-of-memory is turned into an exit code
        oom = getattr(torch.cuda, "OutOfMemoryError", None)
        if (oom is not None and isinstance(err, oom)) or "out of memory" in str(err):
            # Another worker (or this one, later) may have the memory: the grid retries exit 75.
            fail(f"out of GPU memory for size {size}: {err}", EX_TEMPFAIL)
        raise

    print(json.dumps(result))
    progress(1, "done")
    if not cuda and not allow_cpu:
        fail("CUDA is not available to PyTorch (torch " + torch.__version__ + ", built for CUDA "
             + str(torch.version.cuda) + "); ALLOW_CPU=1 accepts a CPU run", EXIT_NO_CUDA)
    return 0


if __name__ == "__main__":
    sys.exit(main())
