/**
 * Which Mosaic home rendered the fleet's units in a unit directory. Two homes pointed at one unit directory
 * would fight over the same files: the template names one home's env files, the holder one home's tools, the
 * convergence units one home's reconciler. A home never rewrites, stops or archives units another home
 * rendered. Pure.
 */
import type { Observed } from '../model/observed.js';
import { AGENT_TEMPLATE_UNIT, CONVERGENCE_UNITS, HOLDER_UNIT } from '../base/names.js';

const HOME_OF: ReadonlyArray<[string, RegExp]> = [
  [AGENT_TEMPLATE_UNIT, /^EnvironmentFile=-?"?(\/.*?)\/fleet\/agents\/%i\.env"?\s*$/m],
  [HOLDER_UNIT, /^ExecStart=[-@:+!]*"?(\/.*?)\/tools\/fleet\/ensure-holder-session\.sh/m],
  ...CONVERGENCE_UNITS.map((u): [string, RegExp] => [u, /\s--home\s+"?(\/[^"\s]*)"?/]),
];

export interface ForeignUnit {
  unit: string;
  home: string;
}

/** Units in the observed unit directory that name a Mosaic home other than this one. */
export function foreignUnits(observed: Observed): ForeignUnit[] {
  const out: ForeignUnit[] = [];
  for (const [unit, pattern] of HOME_OF) {
    const content = observed.files[`${observed.paths.unitDir}/${unit}`]?.content;
    if (content == null) continue;
    const home = pattern.exec(content)?.[1];
    if (home !== undefined && home !== observed.paths.mosaicHome) out.push({ unit, home });
  }
  return out;
}
