import { MAX_PEER_REQUEST_BYTES } from '../raft-transport/peer-transport';
import {
  MAX_RESTORE_ENTRY_BYTES,
  RestoreRefusedError,
  assertRestoreFits,
} from './restore-from-backup';

describe('assertRestoreFits', () => {
  it('lets a restore command through up to what one peer request carries', () => {
    expect(MAX_RESTORE_ENTRY_BYTES).toBeLessThan(MAX_PEER_REQUEST_BYTES);
    expect(() => assertRestoreFits(MAX_RESTORE_ENTRY_BYTES, 2_000_000)).not.toThrow();
  });

  it('refuses a larger one with restore/too-large, saying how large it is', () => {
    let thrown: unknown;
    try {
      assertRestoreFits(2_000, 8, 1_000);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(RestoreRefusedError);
    expect(thrown).toMatchObject({ code: 'restore/too-large' });
    expect((thrown as Error).message).toMatch(/2000 bytes \(8 partitions\).*1000 bytes/);
  });
});
