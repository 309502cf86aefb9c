/**
 * What `fleet validate` checks: the given manifests loaded as ONE fleet (duplicates across the paths are errors),
 * counted per file. Throws the ManifestError with every diagnostic; changes nothing anywhere.
 */
import { loadDesired } from '../manifest/load.js';
import { hostContext, type FleetPaths } from '../paths.js';

/** How many agents each manifest file holds (0 for a file with none), in the order the fleet lists them. */
export async function agentsPerManifest(
  inputs: readonly string[],
  paths: FleetPaths,
): Promise<Map<string, number>> {
  const fleet = await loadDesired([...inputs], hostContext(paths));
  const counts = new Map<string, number>(fleet.sources.map((f) => [f, 0]));
  for (const agent of fleet.agents) counts.set(agent.source.file, (counts.get(agent.source.file) ?? 0) + 1);
  return counts;
}
