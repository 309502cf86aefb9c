/**
 * YAML text -> plain data, keeping the document and its line counter so every later diagnostic (schema,
 * semantic) can point at FILE:LINE:COL of the node at fault. Pure: the caller reads the file.
 */
import {
  Composer,
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  Parser,
  YAMLParseError,
  type CST,
  type Document,
  type Node,
} from 'yaml';
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

/**
 * Limits that keep any input answered quickly (docs/reliability.md, "Bad input"). A roster of a few thousand
 * agents is far inside each; a file outside one is refused with one diagnostic before any further work.
 */
export const MANIFEST_LIMITS = {
  /**
   * Bytes of one manifest file: a 100-agent roster is about 10 KiB. yaml parses about 250 KiB of the worst
   * kind (one flow line of tiny values) a second, so this keeps every file under the 2 s promise.
   */
  maxBytes: 256 * 1024,
  /**
   * YAML tokens (keys, values, indicators, line breaks) of one file. Parse time follows the token count, not
   * the bytes: 256 KiB of `[1,1,1,…]` is 390 000 tokens and takes seconds. A 250-agent roster with every
   * field set is about 16 000, so this is some 800 agents a file.
   */
  maxTokens: 50_000,
  /** Nested mappings and lists, counted after aliases are expanded: a roster needs about 6. */
  maxDepth: 32,
  /** Alias nodes (`*name`) in one file. */
  maxAliases: 100,
  /** Values (mappings, lists, scalars) that expanding the aliases adds: the billion-laughs guard. */
  maxExpandedNodes: 100_000,
} as const;

/** The first problem found by the structure check, at its offset. */
interface Problem {
  offset: number;
  message: string;
}

export function parseManifestText(file: string, text: string): ParsedManifest {
  const lineCounter = new LineCounter();
  const bytes = Buffer.byteLength(text, 'utf8');
  // Refused before the YAML parser sees it: parse time grows with size.
  if (bytes > MANIFEST_LIMITS.maxBytes) return refused(file, text, lineCounter, 0, tooLarge(bytes));
  const tokens = lexAndParse(text, lineCounter);
  if ('offset' in tokens) return refused(file, text, lineCounter, tokens.offset, tokens.message);
  // prettyErrors off: we place the error ourselves, so the message stays one line.
  const doc = composeOne(tokens, text.length);
  const parsed: ParsedManifest = { file, text, doc, lineCounter, data: undefined, diagnostics: [] };
  // Warnings (unresolved tags and the like) are treated as errors: a roster has no use for custom tags,
  // and a silently-stringified value is worse than a refusal.
  for (const problem of [...doc.errors, ...doc.warnings]) {
    const message = yamlMessage(problem.code, problem.message, text, problem.pos);
    parsed.diagnostics.push(diagnosticAtOffset(parsed, problem.pos[0], message));
  }
  if (parsed.diagnostics.length > 0) return parsed;
  const structural = structureProblem(doc);
  if (structural) {
    parsed.diagnostics.push(diagnosticAtOffset(parsed, structural.offset, structural.message));
    return parsed;
  }
  try {
    // The structure check already bounds aliases; yaml's own count stays as a second guard.
    parsed.data = doc.toJS({ maxAliasCount: MANIFEST_LIMITS.maxExpandedNodes }) as unknown;
  } catch (error) {
    parsed.diagnostics.push(
      diagnosticAtOffset(parsed, 0, `YAML: ${error instanceof Error ? error.message : String(error)}`),
    );
  }
  return parsed;
}

function kib(bytes: number): string {
  return `${Math.ceil(bytes / 1024)} KiB`;
}

export function tooLarge(bytes: number): string {
  return `the file is ${kib(bytes)}; a manifest may be at most ${kib(MANIFEST_LIMITS.maxBytes)} (split the fleet into several files)`;
}

/** A manifest refused before composing: an empty document stands in, with the one diagnostic. */
function refused(
  file: string,
  text: string,
  lineCounter: LineCounter,
  offset: number,
  message: string,
): ParsedManifest {
  const doc = composeOne([], 0);
  const parsed: ParsedManifest = { file, text, doc, lineCounter, data: undefined, diagnostics: [] };
  if (lineCounter.lineStarts.length === 0) indexLines(text, lineCounter);
  parsed.diagnostics.push(diagnosticAtOffset(parsed, offset, message));
  return parsed;
}

function indexLines(text: string, lineCounter: LineCounter): void {
  lineCounter.addNewLine(0);
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lineCounter.addNewLine(i + 1);
}

/**
 * yaml's lexer and parser, driven the way `parseDocument` drives them, but watching the parser's stack: input
 * nested thousands deep (`[[[[…`) makes yaml's recursive composer overflow the stack, slowly, once per level.
 * Refused at the first token past the limit instead. Returns the CST tokens, or the problem.
 */
function lexAndParse(text: string, lineCounter: LineCounter): CST.Token[] | Problem {
  const parser = new Parser(lineCounter.addNewLine);
  const tokens: CST.Token[] = [];
  lineCounter.addNewLine(0);
  let offset = 0;
  let count = 0;
  for (const lexeme of new Lexer().lex(text, false)) {
    const start = offset;
    offset += lexeme.length;
    if (++count > MANIFEST_LIMITS.maxTokens) {
      finishLines(text, start, lineCounter);
      return {
        offset: start,
        message: `more than ${MANIFEST_LIMITS.maxTokens} YAML tokens (keys, values, punctuation) by here; split the fleet into several files`,
      };
    }
    for (const token of parser.next(lexeme)) tokens.push(token);
    // The stack also holds the document and a pending scalar; count only collections, and only when it is deep.
    if (parser.stack.length > MANIFEST_LIMITS.maxDepth) {
      const depth = parser.stack.filter(
        (t) => t.type === 'block-map' || t.type === 'block-seq' || t.type === 'flow-collection',
      ).length;
      if (depth > MANIFEST_LIMITS.maxDepth) {
        finishLines(text, offset, lineCounter);
        return { offset: start, message: nestingMessage() };
      }
    }
  }
  for (const token of parser.end()) tokens.push(token);
  return tokens;
}

/** Stopping early: count the rest of the lines, so later positions (there are none) and this one are right. */
function finishLines(text: string, offset: number, lineCounter: LineCounter): void {
  for (let i = text.indexOf('\n', offset); i !== -1; i = text.indexOf('\n', i + 1))
    lineCounter.addNewLine(i + 1);
}

function nestingMessage(): string {
  return `mappings and lists are nested more than ${MANIFEST_LIMITS.maxDepth} deep here; a manifest needs a handful of levels`;
}

/** The one document of the file (a second one is an error, as with `parseDocument`). */
function composeOne(tokens: CST.Token[], length: number): Document.Parsed {
  const composer = new Composer({ prettyErrors: false, uniqueKeys: true });
  let doc: Document.Parsed | undefined;
  // yaml makes an Error per problem, and garbage can hold tens of thousands; capturing a stack for each (never
  // shown: problems become diagnostics) was most of the time such a file took.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    for (const next of composer.compose(tokens, true, length)) {
      if (!doc) {
        doc = next;
      } else {
        doc.errors.push(
          new YAMLParseError([next.range[0], next.range[1]], 'MULTIPLE_DOCS', 'multiple documents'),
        );
        break;
      }
    }
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
  // compose(…, forceDoc = true) always yields a document.
  return doc as Document.Parsed;
}
/**
 * What yaml accepts but a manifest must not be, found in one walk of the document before `toJS`: an alias
 * inside the node it names (a cycle: `toJS` would build a self-referencing object that every later check
 * recurses into forever), too many aliases, aliases expanding to too much data or nesting too deep, and a
 * mapping or list used as a key. Depth is already bounded by `lexAndParse`, so the recursion is too.
 */
function structureProblem(doc: Document.Parsed): Problem | undefined {
  interface Seen {
    /** Values below (and including) the node, aliases expanded; undefined while the node is being walked. */
    size?: number;
    /** Nesting levels below (and including) the node, aliases expanded. */
    height?: number;
  }
  const anchored = new Map<string, { node: unknown; seen: Seen }>();
  let aliases = 0;
  /** Values added by expanding aliases (the file's own values are bounded by its size). */
  let expanded = 0;
  const at = (node: unknown): number => rangeStart(node) ?? 0;

  /** Returns [size, height] of the node, or a problem. */
  const walk = (node: unknown, depth: number): [number, number] | Problem => {
    if (isAlias(node)) {
      aliases++;
      if (aliases > MANIFEST_LIMITS.maxAliases)
        return {
          offset: at(node),
          message: `more than ${MANIFEST_LIMITS.maxAliases} aliases (*name) in one manifest`,
        };
      const target = anchored.get(node.source);
      // An unknown anchor is reported by yaml itself when converting; nothing to bound here.
      if (!target) return [1, 0];
      const { size, height } = target.seen;
      if (size === undefined || height === undefined)
        return {
          offset: at(node),
          message: `alias *${node.source} is inside the node &${node.source} it refers to (an alias cycle); a manifest cannot contain itself`,
        };
      expanded += size;
      if (expanded > MANIFEST_LIMITS.maxExpandedNodes)
        return {
          offset: at(node),
          message: `aliases here expand the manifest to more than ${MANIFEST_LIMITS.maxExpandedNodes} values`,
        };
      if (depth + height > MANIFEST_LIMITS.maxDepth) return { offset: at(node), message: nestingMessage() };
      return [size, height];
    }
    const seen: Seen = {};
    const anchor = (node as { anchor?: string } | null)?.anchor;
    if (anchor !== undefined) anchored.set(anchor, { node, seen });
    let size = 1;
    let height = 0;
    if (isCollection(node)) {
      if (depth + 1 > MANIFEST_LIMITS.maxDepth) return { offset: at(node), message: nestingMessage() };
      for (const item of node.items) {
        const children: unknown[] = isPair(item) ? [item.key, item.value] : [item];
        if (isPair(item) && (isCollection(item.key) || isAlias(item.key)))
          return {
            offset: at(item.key),
            message: 'a key must be a plain value, not a mapping, a list or an alias',
          };
        for (const child of children) {
          if (child === null || child === undefined) continue;
          const r = walk(child, depth + 1);
          if (!Array.isArray(r)) return r;
          size += r[0];
          height = Math.max(height, r[1]);
        }
      }
      height += 1;
    }
    seen.size = size;
    seen.height = height;
    return [size, height];
  };
  const r = walk(doc.contents, 0);
  return Array.isArray(r) ? undefined : r;
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

/** Columns of a long line shown around the spot: a one-line, 500 KiB flow collection is not printed whole. */
const EXCERPT_WIDTH = 100;

function excerptAt(parsed: ParsedManifest, line: number, col: number): string | undefined {
  const starts = parsed.lineCounter.lineStarts;
  const start = starts[line - 1];
  if (start === undefined) return undefined;
  const end = starts[line] ?? parsed.text.length;
  const source = parsed.text.slice(start, end).replace(/\r?\n$/, '');
  if (source.length <= EXCERPT_WIDTH) return `${source}\n${' '.repeat(Math.max(0, col - 1))}^`;
  // Cut a window around the column, marked with an ellipsis on each cut side.
  const from = Math.max(0, Math.min(col - 1 - EXCERPT_WIDTH / 2, source.length - EXCERPT_WIDTH));
  const head = from > 0 ? '…' : '';
  const tail = from + EXCERPT_WIDTH < source.length ? '…' : '';
  const caret = head.length + col - 1 - from;
  return `${head}${source.slice(from, from + EXCERPT_WIDTH)}${tail}\n${' '.repeat(Math.max(0, caret))}^`;
}

export function diagnosticAt(parsed: ParsedManifest, ref: SourceRef, message: string): Diagnostic {
  const excerpt = excerptAt(parsed, ref.line, ref.col);
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
