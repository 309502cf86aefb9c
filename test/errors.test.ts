/** The one translation of a write the disk refused (src/errors.ts); the real full disk is test/apply/full-disk. */
import { describe, expect, it } from 'vitest';
import { StorageError, storageError, UserError } from '../src/errors.js';

const errno = (code: string): NodeJS.ErrnoException =>
  Object.assign(new Error(`${code}: something, write`), { code });

describe('storageError', () => {
  it('turns ENOSPC, EDQUOT and EROFS into one line naming the file and the errno', () => {
    for (const [code, words] of [
      ['ENOSPC', 'no space left on device'],
      ['EDQUOT', 'disk quota exceeded'],
      ['EROFS', 'read-only file system'],
    ] as const) {
      const e = storageError(errno(code), '/h/fleet/agents/a.env');
      expect(e).toBeInstanceOf(StorageError);
      expect(e).toBeInstanceOf(UserError);
      expect((e as Error).message).toBe(
        `cannot write /h/fleet/agents/a.env: ${code} (${words}); free space (or make it writable) and run again`,
      );
      expect((e as Error).message).not.toContain('\n');
    }
  });

  it('leaves any other error, and one already translated, as it is', () => {
    const other = errno('EACCES');
    expect(storageError(other, '/x')).toBe(other);
    const done = new StorageError('/first', 'ENOSPC');
    expect(storageError(done, '/second')).toBe(done);
  });
});
