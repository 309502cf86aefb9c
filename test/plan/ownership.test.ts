/**
 * Ownership of sessions: the planner ends (kill-session) only a session it can prove is the fleet's: on a socket
 * the fleet uses or used for that agent (its env file, the sockets recorded in the state file, or, when neither
 * names one, the fleet's current sockets) and carrying the fleet's marker (`@mosaic-fleet-home` = this home).
 * Any other session of that name is reported in the plan's warnings and left alone.
 */
import { describe, expect, it } from 'vitest';
import type { KillSessionAction } from '../../src/model/plan.js';
import { agent, fleet, HOME, observedBuilder, SOCKET } from '../helpers/builders.js';
import { ENV_PATH, lines, planFor } from '../helpers/planning.js';

const unitOf = (name: string) => `mosaic-agent@${name}.service`;
const kills = (p: ReturnType<typeof planFor>) =>
  p.actions.filter((a): a is KillSessionAction => a.kind === 'kill-session');

/** The fleet keeps `coder0` on the named socket; `a1` was removed from the manifest. */
const onlyCoder = fleet([agent('coder0')]);

describe('planner: ownership of sessions', () => {
  it('the reported bug: after the env file is archived, a1 on the default server is never killed', () => {
    // Second `reconcile --prune`: a1's unit is known but inactive and disabled, its env file archived, its own
    // session gone with its unit's stop. An unrelated `a1` lives on the default tmux server (the operator's).
    const observed = observedBuilder()
      .unit(unitOf('coder0'))
      .session(SOCKET, 'coder0')
      .unit(unitOf('a1'), { active: 'inactive', fileState: 'disabled' })
      .session('', 'a1', { owner: null })
      .build();
    const p = planFor(onlyCoder, observed, { prune: true });
    expect(kills(p)).toEqual([]);
    // Even carrying this home's marker, the default server is no socket this fleet uses or used for a1.
    const marked = observedBuilder(observed).withoutSession('', 'a1').session('', 'a1').build();
    expect(kills(planFor(onlyCoder, marked, { prune: true }))).toEqual([]);
    expect(planFor(onlyCoder, marked, { prune: true }).warnings).toEqual([
      "session a1 on the default socket is not the fleet's (not a socket it uses or used for a1); left alone",
    ]);
  });

  it('a same-named session without the marker, on the socket its env file names, is reported and left alone', () => {
    const observed = observedBuilder()
      .envFile('a1', `MOSAIC_AGENT_NAME=a1\nMOSAIC_TMUX_SOCKET=${SOCKET}\n`)
      .session(SOCKET, 'a1', { owner: null })
      .build();
    const p = planFor(onlyCoder, observed, { prune: true });
    expect(kills(p)).toEqual([]);
    expect(p.warnings).toContain(
      `session a1 on socket ${SOCKET} is not the fleet's (it does not carry the fleet's marker); left alone`,
    );
    // Its env file is still archived: that file is the fleet's.
    expect(lines(p).map((l) => l.kind)).toContain('archive-file');
  });

  it("another home's marker is not this fleet's", () => {
    const observed = observedBuilder()
      .envFile('a1', `MOSAIC_TMUX_SOCKET=${SOCKET}\n`)
      .session(SOCKET, 'a1', { owner: '/home/someone-else/.config/mosaic' })
      .build();
    expect(kills(planFor(onlyCoder, observed, { prune: true }))).toEqual([]);
  });

  it('a marked session on the socket its env file names is killed, and the action carries the marker to re-check', () => {
    const observed = observedBuilder()
      .envFile('a1', `MOSAIC_TMUX_SOCKET=${SOCKET}\n`)
      .session(SOCKET, 'a1')
      .session('', 'a1', { owner: null })
      .build();
    const p = planFor(onlyCoder, observed, { prune: true });
    expect(kills(p)).toEqual([
      {
        kind: 'kill-session',
        agent: 'a1',
        socketName: SOCKET,
        session: 'a1',
        reason: 'no manifest names this agent',
        owner: HOME,
      },
    ]);
    expect(p.warnings).toEqual([
      "session a1 on the default socket is not the fleet's (not a socket it uses or used for a1); left alone",
    ]);
  });

  it('the sockets recorded in the state file find a session whose env file and unit are gone', () => {
    const observed = observedBuilder().session('old-socket', 'a1').build();
    observed.state.sessionSockets = { a1: ['old-socket'] };
    const p = planFor(onlyCoder, observed, { prune: true });
    expect(p.orphans).toEqual([]);
    expect(kills(p).map((k) => `${k.socketName}:${k.session}`)).toEqual(['old-socket:a1']);
    // Without --prune it is listed as an orphan, not acted on.
    expect(planFor(onlyCoder, observed).orphans).toEqual([
      { agent: 'a1', unit: null, session: 'a1', socketName: 'old-socket', envFile: null },
    ]);
  });

  it('with no env file and no record, only the sockets the fleet uses now are candidates (never the default)', () => {
    const observed = observedBuilder()
      .unit(unitOf('a1'), { active: 'inactive', fileState: 'disabled' })
      .session(SOCKET, 'a1')
      .session('', 'a1')
      .build();
    const p = planFor(onlyCoder, observed, { prune: true });
    expect(kills(p).map((k) => `${k.socketName}:${k.session}`)).toEqual([`${SOCKET}:a1`]);
  });

  it('an active unit ends its own session: no kill, no report', () => {
    const observed = observedBuilder()
      .unit(unitOf('a1'))
      .envFile('a1', `MOSAIC_TMUX_SOCKET=${SOCKET}\n`)
      .session(SOCKET, 'a1', { owner: null })
      .build();
    const p = planFor(onlyCoder, observed, { prune: true });
    expect(kills(p)).toEqual([]);
    expect(p.warnings).toEqual([]);
  });

  it("a disabled agent's session is ended only when it carries the marker", () => {
    const disabled = fleet([agent('coder0'), agent('old', { enabled: false })]);
    const unmarked = observedBuilder()
      .unit(unitOf('old'), { active: 'inactive', fileState: 'disabled' })
      .session(SOCKET, 'old', { owner: null })
      .build();
    const p = planFor(disabled, unmarked);
    expect(kills(p)).toEqual([]);
    expect(p.warnings).toContain(
      `session old on socket ${SOCKET} is not the fleet's (it does not carry the fleet's marker); left alone`,
    );
    const marked = observedBuilder(unmarked).withoutSession(SOCKET, 'old').session(SOCKET, 'old').build();
    expect(kills(planFor(disabled, marked))).toHaveLength(1);
  });

  it('without --prune nothing is reported about sessions that are not the fleet’s', () => {
    const observed = observedBuilder()
      .envFile('a1', `MOSAIC_TMUX_SOCKET=${SOCKET}\n`)
      .session(SOCKET, 'a1', { owner: null })
      .build();
    const p = planFor(onlyCoder, observed);
    expect(p.warnings).toEqual([]);
    expect(p.orphans).toEqual([
      { agent: 'a1', unit: null, session: null, socketName: null, envFile: ENV_PATH('a1') },
    ]);
  });
});
