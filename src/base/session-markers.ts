/**
 * What the fleet writes into tmux and reads back from it in its own format: the field separator of its
 * `-F` formats and the ownership marker on each agent session. Observation reads the markers with its
 * `list-panes`, apply checks one before it ends a session: both sides use these, so they cannot disagree.
 */

/**
 * Field separator. Printable on purpose: a tmux client without a UTF-8 locale (a systemd timer's environment,
 * `env -i`) prints control characters, tabs included, as `_`. Session names cannot hold `:`, the numeric fields
 * cannot hold `|`, and the free-text start command comes last, so a separator inside it cannot shift a field.
 */
export const SEP = '|:|';

/**
 * The fleet's ownership marker: a session option the start script sets in the same tmux command list that
 * creates an agent's session, holding the Mosaic home it belongs to. Read with one `list-sessions` in the same
 * tmux call as `list-panes` (no extra spawn). The tag starts with `.`, which no session name can hold, so an
 * owner line is never taken for a pane line (and has far fewer fields than one).
 */
export const OWNER_OPTION = '@mosaic-fleet-home';
const OWNER_TAG = '.owner';
export const OWNER_FORMAT = `${OWNER_TAG}${SEP}#{session_name}${SEP}#{${OWNER_OPTION}}`;

/** Every session listed by `list-sessions -F OWNER_FORMAT`, with its marker ('' when it carries none). */
export function parseSessionMarkers(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    if (!line.startsWith(`${OWNER_TAG}${SEP}`)) continue;
    const [, session, ...rest] = line.split(SEP);
    if (session !== undefined && session !== '') out.set(session, rest.join(SEP));
  }
  return out;
}

/** Session -> marker, for the sessions that carry one. */
export function parseOwners(stdout: string): Record<string, string> {
  const owners: Record<string, string> = {};
  for (const [session, marker] of parseSessionMarkers(stdout)) if (marker !== '') owners[session] = marker;
  return owners;
}
