/**
 * `fleet ps [--json]`: load the manifests, observe, judge each agent, print. A report, read-only: it issues only
 * `read` commands and writes no file. Exit 0 whatever the agents' health (unhealthy agents are the news it
 * carries); exit 1 only when it cannot report: bad manifests (thrown, turned into one message by main), or
 * systemd/tmux unreachable (the report is still printed, with the problem, and the problem goes to stderr).
 */
import type { GlobalOptions } from '../options.js';
import { createRunner, type Runner } from '../exec.js';
import { psReport, unjudgedAgents } from '../engine/status.js';
import { resolvePaths } from '../paths.js';
import { renderPsTable, shortCommand, type PsReport } from '../render/ps.js';
import { PS_FORMAT_VERSION, renderPsJson } from '../render/ps-json.js';
import { ManifestError } from '../errors.js';

export interface PsOptions extends GlobalOptions {
  json: boolean;
  /** Only these agents (all when empty or absent); an unknown name is an error. */
  agents?: string[];
}

/**
 * The manifests are invalid: say so, and still show what of this fleet runs (every agent with a unit, an env file
 * or a recorded session), without judging it against manifests that cannot be read. Exit 1.
 */
async function psWithoutManifests(o: PsOptions, runner: Runner, error: ManifestError): Promise<number> {
  const rows = await unjudgedAgents(resolvePaths(o), runner);
  process.stderr.write(`${error.message}\n`);
  if (o.json) {
    const doc = {
      format_version: PS_FORMAT_VERSION,
      manifest_errors: error.message.split('\n'),
      running: rows,
    };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    const lines = [
      'The manifests are invalid (above); what of this fleet is here, not judged against them:',
      ...(rows.length === 0 ? ['  (no unit, env file or session of this fleet)'] : []),
      ...rows.map(
        (r) =>
          `  ${r.name}  unit ${r.unit ?? '-'}  session ${r.session ? `yes on ${r.socket === '' ? 'the default socket' : (r.socket ?? '?')}` : '-'}` +
          `${r.pane_pid === null ? '' : `  pid ${r.pane_pid}`}${r.command === null ? '' : `  ${shortCommand(r.command)}`}`,
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return 1;
}

export async function psCommand(o: PsOptions, runner: Runner = createRunner()): Promise<number> {
  let report: PsReport;
  try {
    report = await psReport(o, runner);
  } catch (error) {
    if (error instanceof ManifestError && (o.agents ?? []).length === 0)
      return psWithoutManifests(o, runner, error);
    throw error;
  }
  if (o.json) {
    process.stdout.write(renderPsJson(report));
  } else {
    const color = process.stdout.isTTY === true && (process.env.NO_COLOR ?? '') === '';
    process.stdout.write(renderPsTable(report, { color }));
  }
  // Unhealthy agents are what the report is for: exit 0. But a report that could not see systemd or tmux is
  // not an answer to "what runs?" (DOMAIN.md section 6): say so on stderr too, and exit 1.
  const blind = report.problems.filter(
    (p) => p.kind === 'tmux-unavailable' || p.kind === 'systemd-unreachable',
  );
  for (const p of blind) process.stderr.write(`fleet: ${p.message}\n`);
  return blind.length > 0 ? 1 : 0;
}
