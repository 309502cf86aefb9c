/**
 * The shipped JSON Schema (framework/fleet/roster.schema.json), compiled once, and its errors turned into
 * diagnostics at the YAML node at fault. The schema checks structure and types; content rules live in
 * semantic.ts so their messages can say what is wrong in the operator's terms.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Ajv as AjvClass, ErrorObject, ValidateFunction } from 'ajv';
import { AJV_OPTIONS } from './schema-options.js';
import { InternalError, type Diagnostic } from '../errors.js';
import { packageRoot } from '../paths.js';
import { diagnosticAt, displayPath, locate, type ParsedManifest, type PathSegment } from './parse.js';

export function rosterSchemaPath(): string {
  return join(packageRoot(), 'framework', 'fleet', 'roster.schema.json');
}

// Compiled once per process: watch mode calls loadDesired on every edit, and compiling costs milliseconds.
let cachedValidator: ValidateFunction | undefined;

const requireHere = createRequire(import.meta.url);

/** The validator generated at build time (scripts/build-validator.mjs), when this runs from dist/. */
function prebuilt(): ValidateFunction | undefined {
  try {
    return requireHere('./roster-validator.generated.cjs') as ValidateFunction;
  } catch {
    return undefined;
  }
}

export function rosterValidator(): ValidateFunction {
  if (cachedValidator) return cachedValidator;
  cachedValidator = prebuilt() ?? compileValidator();
  return cachedValidator;
}

/** Compile the shipped schema now (loads ajv's compiler: only when no prebuilt validator is there). */
export function compileValidator(): ValidateFunction {
  const path = rosterSchemaPath();
  let schema: unknown;
  try {
    schema = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    // The schema ships with the package; if it is missing the installation is broken, not the manifest.
    throw new InternalError(`cannot read the roster schema ${path}`, { cause: error });
  }
  const { Ajv } = requireHere('ajv') as { Ajv: typeof AjvClass };
  return new Ajv(AJV_OPTIONS).compile(schema as object);
}

/** Schema diagnostics for one parsed manifest (whose YAML is sound). */
export function schemaDiagnostics(parsed: ParsedManifest): Diagnostic[] {
  const validate = rosterValidator();
  if (validate(parsed.data)) return [];
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const error of validate.errors ?? []) {
    const d = toDiagnostic(parsed, error);
    const id = `${d.line}:${d.col}:${d.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(d);
  }
  return out;
}

function pointerSegments(pointer: string): PathSegment[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  null: 'empty',
};

export function describeValue(data: unknown): string {
  if (data === null || data === undefined) return 'nothing';
  if (Array.isArray(data)) return 'a list';
  if (typeof data === 'object') return 'a mapping';
  if (typeof data === 'string') {
    const shown = data.length > 40 ? `${data.slice(0, 37)}...` : data;
    return `string ${JSON.stringify(shown)}`;
  }
  if (typeof data === 'number' || typeof data === 'boolean') return `${typeof data} ${String(data)}`;
  return typeof data;
}

function toDiagnostic(parsed: ParsedManifest, e: ErrorObject): Diagnostic {
  const path = pointerSegments(e.instancePath);
  const where = displayPath(path, parsed.data);
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      const suggestion = closest(key, allowed);
      const hint = suggestion
        ? `; did you mean "${suggestion}"?`
        : allowed.length > 0
          ? ` (allowed: ${allowed.join(', ')})`
          : '';
      const ref = locate(parsed, [...path, key], 'key');
      return diagnosticAt(parsed, ref, `unknown key "${key}" in ${where}${hint}`);
    }
    case 'required': {
      const key = String((e.params as { missingProperty: string }).missingProperty);
      return diagnosticAt(parsed, locate(parsed, path), `${where} is missing the required key "${key}"`);
    }
    case 'type': {
      const expected = String((e.params as { type: string | string[] }).type)
        .split(',')
        .map((t) => TYPE_NAMES[t] ?? t)
        .join(' or ');
      if (path.length === 0) {
        return diagnosticAt(
          parsed,
          locate(parsed, path),
          `a manifest must be a mapping starting with "version: 1" (got ${describeValue(e.data)})`,
        );
      }
      return diagnosticAt(
        parsed,
        locate(parsed, path),
        `${where} must be ${expected} (got ${describeValue(e.data)})`,
      );
    }
    case 'const': {
      const allowed = JSON.stringify((e.params as { allowedValue: unknown }).allowedValue);
      const extra = path.join('.') === 'version' ? '; this reconciler reads roster format version 1' : '';
      return diagnosticAt(
        parsed,
        locate(parsed, path),
        `${where} must be ${allowed} (got ${describeValue(e.data)})${extra}`,
      );
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues
        .map((v) => String(v))
        .join(', ');
      return diagnosticAt(
        parsed,
        locate(parsed, path),
        `${where} must be one of: ${allowed} (got ${describeValue(e.data)})`,
      );
    }
    case 'minimum':
    case 'maximum': {
      const { comparison, limit } = e.params as { comparison: string; limit: number };
      return diagnosticAt(
        parsed,
        locate(parsed, path),
        `${where} must be ${comparison} ${limit} (got ${describeValue(e.data)})`,
      );
    }
    case 'minLength':
      return diagnosticAt(parsed, locate(parsed, path), `${where} must not be empty`);
    default:
      return diagnosticAt(parsed, locate(parsed, path), `${where} ${e.message ?? 'is invalid'}`);
  }
}

/** The allowed key a typo most likely meant (edit distance <= 2, or the same letters ignoring case and _). */
function closest(key: string, allowed: readonly string[]): string | undefined {
  const squash = (s: string): string => s.toLowerCase().replace(/[_-]/g, '');
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of allowed) {
    if (squash(candidate) === squash(key)) return candidate;
    const d = editDistance(key, candidate);
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        (prev[j] ?? 0) + 1,
        (row[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
