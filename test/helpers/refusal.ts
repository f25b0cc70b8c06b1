import { MmgridClientError } from '@mmgrid/client';

/** The error a client call was refused with; fails the test if the call succeeded. */
export async function refusal(promise: Promise<unknown>): Promise<MmgridClientError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof MmgridClientError) return err;
    throw err;
  }
  throw new Error('expected the call to be refused');
}
