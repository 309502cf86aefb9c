import { describe, expect, it } from 'vitest';
import { journalEntry, type JournalAction } from '../../src/apply/journal.js';

const act = (outcome: JournalAction['outcome']): JournalAction => ({
  kind: 'restart',
  target: 'a',
  message: 'restarted a',
  reason: 'r',
  outcome,
});

describe('journalEntry: the one shape of a journal entry', () => {
  it('is ok when every action was done, with the counts', () => {
    const e = journalEntry('fleet send a', new Date(1000), new Date(2000), 7, [act('done'), act('done')]);
    expect(e).toEqual({
      format_version: 1,
      started_at: '1970-01-01T00:00:01.000Z',
      finished_at: '1970-01-01T00:00:02.000Z',
      command: 'fleet send a',
      pid: 7,
      result: 'ok',
      summary: { done: 2, failed: 0, not_run: 0 },
      actions: [act('done'), act('done')],
    });
  });

  it('failed when an action failed; the actions not run after it are counted', () => {
    const e = journalEntry('fleet reconcile', new Date(0), new Date(0), 1, [
      act('done'),
      act('failed'),
      act('not-run'),
    ]);
    expect(e.result).toBe('failed');
    expect(e.summary).toEqual({ done: 1, failed: 1, not_run: 1 });
  });
});
