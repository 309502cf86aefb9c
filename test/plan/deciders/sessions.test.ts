/** Which sessions are the fleet's: the proofs every decider that ends or moves a session relies on. */
import { describe, expect, it } from 'vitest';
import {
  claimSession,
  findOrphans,
  movedSession,
  orphanSockets,
} from '../../../src/plan/deciders/sessions.js';
import { agent, fleet, HOME, observedBuilder, SOCKET } from '../../helpers/builders.js';
import { CTX } from '../../helpers/planning.js';

describe('claimSession', () => {
  it('needs both proofs: one of the allowed sockets, and this home’s marker', () => {
    const o = observedBuilder()
      .session(SOCKET, 'a1')
      .session('other', 'a1')
      .session('mine-too', 'a1', { owner: '/elsewhere' })
      .build();
    const c = claimSession('a1', new Set([SOCKET, 'mine-too']), o);
    expect(c.socketName).toBe(SOCKET);
    expect(c.foreign).toEqual([
      "session a1 on socket mine-too is not the fleet's (it does not carry the fleet's marker); left alone",
      "session a1 on socket other is not the fleet's (not a socket it uses or used for a1); left alone",
    ]);
  });
});

describe('orphanSockets and findOrphans', () => {
  it('the sockets an agent used: its env file’s and the recorded ones; else the fleet’s own', () => {
    const desired = fleet([agent('a1')]);
    const o = observedBuilder().envFile('old', 'MOSAIC_TMUX_SOCKET=s1\n').build();
    o.state.sessionSockets = { old: ['s2'] };
    expect([...orphanSockets('old', desired, o, CTX)].sort()).toEqual(['s1', 's2']);
    expect([...orphanSockets('never', desired, o, CTX)]).toEqual([SOCKET]);
    expect(findOrphans(desired, o, CTX)).toEqual([
      { agent: 'old', unit: null, session: null, socketName: null, envFile: `${HOME}/fleet/agents/old.env` },
    ]);
  });
});

describe('movedSession', () => {
  it('the fleet’s live session of the agent on a socket it used before, while none runs on its own', () => {
    const a1 = agent('a1', { socketName: 'new-sock' });
    const desired = fleet([a1]);
    const o = observedBuilder().session(SOCKET, 'a1').build();
    o.state.sessionSockets = { a1: [SOCKET, 'new-sock'] };
    expect(movedSession(a1, desired, o, CTX)).toBe(SOCKET);
    const both = observedBuilder(o).session('new-sock', 'a1').build();
    expect(movedSession(a1, desired, both, CTX)).toBeNull();
    const foreign = observedBuilder().session(SOCKET, 'a1', { owner: null }).build();
    foreign.state.sessionSockets = { a1: [SOCKET] };
    expect(movedSession(a1, desired, foreign, CTX)).toBeNull();
  });
});
