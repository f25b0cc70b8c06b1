/**
 * Submits files to an mmgrid coordinator, follows the job and saves its result.
 *
 *   node --import tsx test/examples/submit-and-watch.ts ADDRESS FILE... [--prompt TEXT] [--out DIR] [--token TOKEN]
 *
 * Progress and events go to stderr, the result's summary to stdout. Exits 0 when the job
 * completed, 1 with the error's code (UNAVAILABLE, JOB_FAILED…) when something failed, 2 for
 * a bad command line.
 */
import { parseArgs } from 'node:util';
import { isMmgridError, MmgridClient, type JobEventView } from '@mmgrid/client';

function describeEvent(event: JobEventView): string {
  switch (event.type) {
    case 'job':
      return `job ${event.state}${event.error ? `: ${event.error.message}` : ''}`;
    case 'task':
      return `task ${event.taskId} ${event.state}`;
    case 'progress':
      return `task ${event.taskId} ${Math.round(event.fraction * 100)}% ${event.message}`;
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { prompt: { type: 'string' }, out: { type: 'string', default: 'result' }, token: { type: 'string' } },
  });
  const [address, ...files] = positionals;
  if (address === undefined || files.length === 0) {
    process.stderr.write('usage: submit-and-watch ADDRESS FILE... [--prompt TEXT] [--out DIR] [--token TOKEN]\n');
    return 2;
  }

  const client = new MmgridClient({ address, ...(values.token !== undefined ? { token: values.token } : {}) });
  try {
    const job = await client.submit(
      files.map((file) => ({ path: file })),
      {
        ...(values.prompt !== undefined ? { prompt: values.prompt } : {}),
        onUploadProgress: (name, doneBytes, totalBytes) => {
          if (doneBytes === totalBytes) process.stderr.write(`uploaded ${name} (${totalBytes} bytes)\n`);
        },
      },
    );
    process.stderr.write(`submitted job ${job.id} (${job.tasks.length} tasks)\n`);

    for await (const event of client.watch(job.id)) {
      process.stderr.write(`${describeEvent(event)}\n`);
    }

    const result = await client.result(job.id);
    process.stdout.write(`${result.summary}\n`);
    if (result.partial) process.stderr.write(`partial result: ${Math.round(result.coverage * 100)}% of the inputs were read\n`);
    const saved = await client.saveResult(job.id, values.out, {
      onFile: (file) => process.stderr.write(`saved ${file.path} (${file.size} bytes)\n`),
    });
    process.stderr.write(`saved ${saved.length} files in ${values.out}\n`);
    return 0;
  } catch (err) {
    if (isMmgridError(err)) {
      process.stderr.write(`${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    client.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
