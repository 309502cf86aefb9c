import { describe, expect, it } from 'vitest';
import {
  agentNameFromUnit,
  agentUnitName,
  exactPane,
  exactSession,
  exactWindow,
  socketArgs,
} from '../../src/base/names.js';

describe('names', () => {
  it('maps agents to unit instances and back', () => {
    expect(agentUnitName('coder0')).toBe('mosaic-agent@coder0.service');
    expect(agentNameFromUnit('mosaic-agent@coder0.service')).toBe('coder0');
    expect(agentNameFromUnit(agentUnitName('a.b-c_d'))).toBe('a.b-c_d');
    expect(agentNameFromUnit('mosaic-agent@.service')).toBeNull();
    expect(agentNameFromUnit('mosaic-tmux-holder.service')).toBeNull();
    expect(agentNameFromUnit('mosaic-agent@coder0.timer')).toBeNull();
  });

  it('applies the socket rule: -L only for a named socket', () => {
    expect(socketArgs('')).toEqual([]);
    expect(socketArgs('mosaic-fleet')).toEqual(['-L', 'mosaic-fleet']);
  });

  it('builds exact tmux targets', () => {
    expect(exactSession('coder1')).toBe('=coder1');
    expect(exactWindow('coder1')).toBe('=coder1:');
    expect(exactPane('coder1')).toBe('=coder1:0.0');
  });
});
