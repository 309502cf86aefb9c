/**
 * YAML text -> plain data, keeping the document and its line counter so every later diagnostic (schema,
 * semantic) can point at FILE:LINE:COL of the node at fault. Pure: the caller reads the file.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { Diagnostic } from '../errors.js';
import type { SourceRef } from '../model/desired.js';

export type PathSegment = string | number;

export interface ParsedManifest {
  /** The file as the operator named it (relative if they gave a relative path). */
  file: string;
  text: string;
  doc: Document.Parsed;
  lineCounter: LineCounter;
  /** Plain data; `undefined` when the YAML is broken (then `diagnostics` says why). */
  data: unknown;
  /** YAML syntax problems only; schema and semantic checks come later. */
  diagnostics: Diagnostic[];
}

/** Billion-laughs guard: a roster has no reason to expand more aliases than this. */
const MAX_ALIAS_COUNT = 100;

export function parseManifestText(file: string, text: string): ParsedManifest {
  const lineCounter = new LineCounter();
  // prettyErrors off: we place the error ourselves, so the message stays one line.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const parsed: ParsedManifest = { file, text, doc, lineCounter, data: undefined, diagnostics: [] };
  // Warnings (unresolved tags and the like) are treated as errors: a roster has no use for custom tags,
  // and a silently-stringified value is worse than a refusal.
  for (const problem of [...doc.errors, ...doc.warnings]) {
    const message = yamlMessage(problem.code, problem.message, text, problem.pos);
    parsed.diagnostics.push(diagnosticAtOffset(parsed, problem.pos[0], message));
  }
  if (parsed.diagnostics.length > 0) return parsed;
  try {
    parsed.data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown;
  } catch (error) {
    parsed.diagnostics.push(
      diagnosticAtOffset(parsed, 0, `YAML: ${error instanceof Error ? error.message : String(error)}`),
    );
  }
  return parsed;
}

function yamlMessage(code: string, message: string, text: string, pos: [number, number]): string {
  switch (code) {
    case 'DUPLICATE_KEY': {
      // yaml says "Map keys must be unique"; name the key so the operator knows which one.
      const key = text.slice(pos[0]).split(/[:\n]/, 1)[0]?.trim();
      return key ? `duplicate key "${key}"` : 'duplicate key';
    }
    case 'MULTIPLE_DOCS':
      return 'a manifest is one YAML document, but this file has several (a "---" line); split it into files';
    case 'TAG_RESOLVE_FAILED':
      return `YAML: ${message} (a manifest has no custom tags)`;
    default:
      return `YAML syntax error: ${message}`;
  }
}

export function positionOf(parsed: ParsedManifest, offset: number): SourceRef {
  const { line, col } = parsed.lineCounter.linePos(Math.max(0, Math.min(offset, parsed.text.length)));
  return { file: parsed.file, line, col };
}

function excerptAt(text: string, line: number, col: number): string | undefined {
  const source = text.split(/\r?\n/)[line - 1];
  if (source === undefined) return undefined;
  return `${source}\n${' '.repeat(Math.max(0, col - 1))}^`;
}

export function diagnosticAt(parsed: ParsedManifest, ref: SourceRef, message: string): Diagnostic {
  const excerpt = excerptAt(parsed.text, ref.line, ref.col);
  return excerpt === undefined ? { ...ref, message } : { ...ref, message, excerpt };
}

function diagnosticAtOffset(parsed: ParsedManifest, offset: number, message: string): Diagnostic {
  return diagnosticAt(parsed, positionOf(parsed, offset), message);
}

function deref(parsed: ParsedManifest, node: unknown): unknown {
  // Anchors/aliases: a diagnostic about aliased data points at the anchored original.
  return isAlias(node) ? node.resolve(parsed.doc) : node;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return Array.isArray(range) ? range[0] : undefined;
}

/**
 * Where the value at `path` is (or, with which = 'key', the key naming it). When the path does not exist
 * (a missing key), the deepest existing node is returned: a "missing required key" error points at the mapping.
 */
export function locate(
  parsed: ParsedManifest,
  path: readonly PathSegment[],
  which: 'key' | 'value' = 'value',
): SourceRef {
  let node: unknown = deref(parsed, parsed.doc.contents);
  let offset = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) break;
      const keyStart = rangeStart(pair.key);
      const value = deref(parsed, pair.value);
      const valueStart = rangeStart(value);
      // An empty value (`tmux:`) has no useful range of its own: point at its key.
      const valueIsEmpty = isScalar(value) && value.value === null && value.source === '';
      offset =
        (last && which === 'key') || valueIsEmpty || valueStart === undefined
          ? (keyStart ?? offset)
          : valueStart;
      node = value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = deref(parsed, node.items[segment]);
      const start = rangeStart(item);
      if (start === undefined) break;
      offset = start;
      node = item;
    } else {
      break;
    }
  }
  return positionOf(parsed, offset);
}

/**
 * How the operator would name the spot: `tmux.socket_name`, `agents[3]`, or — when the agent has a usable
 * name — `agent "coder0": heartbeat.grace_seconds`.
 */
export function displayPath(path: readonly PathSegment[], data?: unknown): string {
  const join = (segments: readonly PathSegment[]): string => {
    let out = '';
    for (const s of segments) out += typeof s === 'number' ? `[${s}]` : out === '' ? s : `.${s}`;
    return out;
  };
  if (path[0] === 'agents' && typeof path[1] === 'number') {
    const agents = (data as { agents?: unknown } | undefined)?.agents;
    const name = Array.isArray(agents)
      ? (agents[path[1]] as { name?: unknown } | undefined)?.name
      : undefined;
    if (typeof name === 'string' && /^[\x21-\x7e]{1,63}$/.test(name)) {
      const rest = join(path.slice(2));
      return rest === '' ? `agent ${JSON.stringify(name)}` : `agent ${JSON.stringify(name)}: ${rest}`;
    }
  }
  const out = join(path);
  return out === '' ? 'the manifest' : out;
}
