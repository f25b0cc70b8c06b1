import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface FakeGpu {
  readonly name: string;
  readonly memoryMiB: number;
  readonly computeCapability: string;
}

/**
 * Writes an executable that answers like `nvidia-smi` for the GPUs given: the CSV query the
 * worker makes, and the banner with the CUDA version. The worker is pointed at it with
 * --nvidia-smi, as if the machine had those GPUs.
 */
export async function writeFakeNvidiaSmi(dir: string, gpus: readonly FakeGpu[]): Promise<string> {
  await mkdir(dir, { recursive: true });
  const rows = gpus
    .map((g, i) => `${i}, GPU-00000000-0000-0000-0000-${String(i).padStart(12, '0')}, ${g.name}, ${g.memoryMiB}, 512, ${g.memoryMiB - 512}, 3, 40, 55.5, ${g.computeCapability}, 550.54.15`)
    .join('\n');
  const script = `#!/bin/sh
case "$1" in
  --query-gpu=*) cat <<'CSV'
${rows}
CSV
  ;;
  *) echo "| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4 |" ;;
esac
`;
  const file = path.join(dir, 'nvidia-smi');
  await writeFile(file, script);
  await chmod(file, 0o755);
  return file;
}
