import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Node as YamlNode, Scalar, YAMLMap, Document } from 'yaml';
import { parseGoDuration } from './duration.js';
import { parseByteSize } from './size.js';
import { expandEnv, type Env } from './env.js';
import { at, type ConfigProblem } from './errors.js';
import { CONFIG_SCHEMA, EXEC_ENTRY_KEYS, type FieldSpec, type SectionSpec } from './schema.js';
import type { ExecEntry } from './types.js';

export type RawValue = boolean | string | number | string[] | ExecEntry[];

export interface Position {
  line: number;
  column: number;
}

export interface RawEntry {
  value: RawValue;
  pos: Position;
}

/**
 * The keys present in the file, each already checked against its scalar
 * kind, keyed by dotted path ("lease.consul.ttl"). Sections record where
 * they start so "missing key" messages can point at the enclosing section.
 */
export interface RawConfig {
  values: Map<string, RawEntry>;
  sections: Map<string, Position>;
  /** Paths that were present but rejected; "missing" rules skip them and their children. */
  rejected: Set<string>;
}

export interface ReadResult {
  raw: RawConfig;
  syntax: ConfigProblem[];
  problems: ConfigProblem[];
}

/**
 * Parses litefs.yml text. Environment references are expanded inside
 * scalar values only, after parsing (see expandScalar for why).
 */
export function readYaml(text: string, env: Env | null): ReadResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const pos = (offset: number): Position => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  const syntax: ConfigProblem[] = [];
  for (const e of [...doc.errors, ...doc.warnings]) {
    const p = pos(e.pos[0]);
    const what = e.code === 'DUPLICATE_KEY' ? 'duplicate key' : 'YAML syntax error';
    syntax.push({
      kind: 'syntax',
      path: '',
      line: p.line,
      column: p.column,
      message: `${what}${at(p.line, p.column)}: ${e.message}`,
    });
  }
  const raw: RawConfig = { values: new Map(), sections: new Map(), rejected: new Set() };
  const problems: ConfigProblem[] = [];
  if (syntax.length === 0) new Walker(doc, pos, env, raw, problems).section(doc.contents, CONFIG_SCHEMA, '');
  return { raw, syntax, problems };
}

type Scalarish = { value: unknown; text: string; shown: string };

class Walker {
  constructor(
    private readonly doc: Document,
    private readonly pos: (offset: number) => Position,
    private readonly env: Env | null,
    private readonly raw: RawConfig,
    private readonly problems: ConfigProblem[],
  ) {}

  section(node: unknown, spec: SectionSpec, prefix: string): void {
    const n = this.deref(node);
    if (n === null || (isScalar(n) && n.value === null)) return;
    if (!isMap(n)) {
      const p = this.where(n);
      const name = prefix === '' ? 'the config file' : prefix;
      this.problem(
        'wrong-type',
        prefix,
        p,
        `${name}${at(p.line, p.column)}: expected a mapping of ${spec.label} settings (${keyList(spec)}), got ${this.describe(n)}`,
      );
      return;
    }
    if (prefix !== '') this.raw.sections.set(prefix, this.where(n));
    for (const pair of (n as YAMLMap<unknown, unknown>).items) {
      const keyNode = this.deref(pair.key);
      const keyPos = this.where(keyNode);
      if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
        this.problem('unknown-key', prefix, keyPos, `${prefix || 'config'}${at(keyPos.line, keyPos.column)}: keys must be plain strings`);
        continue;
      }
      const key = String(keyNode.value);
      const path = prefix === '' ? key : `${prefix}.${key}`;
      const field = spec.fields[key];
      if (field === undefined) {
        const where = spec.label === 'top-level' ? 'allowed top-level keys' : `allowed keys in ${spec.label}`;
        const hint = suggest(key, Object.keys(spec.fields));
        this.problem(
          'unknown-key',
          path,
          keyPos,
          `unknown key ${path}${at(keyPos.line, keyPos.column)}${hint}; ${where}: ${keyList(spec)}`,
        );
        continue;
      }
      this.field(pair.value, field, path, keyPos);
    }
  }

  private field(valueNode: unknown, spec: FieldSpec, path: string, keyPos: Position): void {
    const node = this.deref(valueNode);
    switch (spec.kind) {
      case 'section':
        this.section(node, spec, path);
        return;
      case 'unsupported':
        if (node !== null && !(isScalar(node) && node.value === null)) {
          this.problem('unsupported', path, keyPos, `${path}${at(keyPos.line, keyPos.column)}: ${spec.reason}`);
        }
        return;
      case 'string-list':
        this.stringList(node, path);
        return;
      case 'exec':
        this.exec(node, path);
        return;
      default:
        this.scalarField(node, spec, path);
    }
  }

  private scalarField(node: YamlNode | null, spec: FieldSpec, path: string): void {
    if (node === null) return;
    const p = this.where(node);
    if (!isScalar(node)) {
      this.problem('wrong-type', path, p, `${path}${at(p.line, p.column)}: expected ${expected(spec)}, got ${this.describe(node)}`);
      return;
    }
    const s = this.scalar(node);
    if (spec.kind === 'secret') {
      this.secret(node, s, path, p);
      return;
    }
    if (s.value === null) return; // `key:` or `key: ~` keeps the default, as in LiteFS
    const value = convert(s, spec);
    if (typeof value === 'object' && value !== null && 'error' in value) {
      this.problem(value.kind, path, p, `${path}${at(p.line, p.column)}: ${value.error}`);
      return;
    }
    this.raw.values.set(path, { value, pos: p });
  }

  /**
   * A secret is never shown in a message. Written but empty is an error
   * rather than "not set": `token: ${LITEFS_TOKEN}` with the variable
   * unset must not quietly start a node that accepts anyone.
   */
  private secret(node: Scalar, s: Scalarish, path: string, p: Position): void {
    const raw = typeof node.value === 'string' ? node.value.trim() : '';
    const from = /^\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)$/.test(raw) ? ` (expanded from ${JSON.stringify(raw)})` : '';
    const where = `${path}${at(p.line, p.column)}`;
    if (s.value === null || s.text === '') {
      this.problem('missing', path, p, `${where}: is empty${from}; set it, or remove the key to run without one`);
    } else if (typeof s.value === 'boolean' || typeof s.value === 'object') {
      this.problem('wrong-type', path, p, `${where}: expected a string (the value is not shown)`);
    } else if (!/^[\x21-\x7e]+$/.test(s.text)) {
      this.problem(
        'invalid-value',
        path,
        p,
        `${where}: must be printable ASCII without spaces, as it travels in an HTTP header (the value is not shown)`,
      );
    } else {
      this.raw.values.set(path, { value: s.text, pos: p });
    }
  }

  private stringList(node: YamlNode | null, path: string): void {
    if (node === null || (isScalar(node) && node.value === null)) return;
    const p = this.where(node);
    if (!isSeq(node)) {
      this.problem('wrong-type', path, p, `${path}${at(p.line, p.column)}: expected a list of strings, got ${this.describe(node)}`);
      return;
    }
    const out: string[] = [];
    let ok = true;
    node.items.forEach((item, i) => {
      const n = this.deref(item);
      const ip = this.where(n);
      const s = n !== null && isScalar(n) ? this.scalar(n) : null;
      if (s === null || s.value === null || s.text === '') {
        ok = false;
        const got = s === null ? this.describe(n) : 'an empty value';
        this.problem('wrong-type', `${path}[${i}]`, ip, `${path}[${i}]${at(ip.line, ip.column)}: expected a non-empty string, got ${got}`);
        return;
      }
      out.push(s.text);
    });
    if (ok) this.raw.values.set(path, { value: out, pos: p });
  }

  private exec(node: YamlNode | null, path: string): void {
    if (node === null || (isScalar(node) && node.value === null)) return;
    const p = this.where(node);
    const shape = `a command string or a list of {${EXEC_ENTRY_KEYS.join(', ')}} mappings`;
    if (isScalar(node)) {
      const s = this.scalar(node);
      if (s.value === null) return;
      if (typeof s.value !== 'string' && typeof s.value !== 'number') {
        this.problem('wrong-type', path, p, `${path}${at(p.line, p.column)}: expected ${shape}, got ${s.shown}`);
      } else if (s.text.trim() === '') {
        this.problem('invalid-value', path, p, `${path}${at(p.line, p.column)}: the command must not be empty`);
      } else {
        this.raw.values.set(path, { value: [{ cmd: s.text, ifCandidate: false }], pos: p });
      }
      return;
    }
    if (!isSeq(node)) {
      this.problem('wrong-type', path, p, `${path}${at(p.line, p.column)}: expected ${shape}, got ${this.describe(node)}`);
      return;
    }
    const entries: ExecEntry[] = [];
    let ok = true;
    node.items.forEach((item, i) => {
      const entry = this.execEntry(this.deref(item), `${path}[${i}]`);
      if (entry === null) ok = false;
      else entries.push(entry);
    });
    if (ok) this.raw.values.set(path, { value: entries, pos: p });
  }

  private execEntry(node: YamlNode | null, path: string): ExecEntry | null {
    const p = this.where(node);
    if (node === null || !isMap(node)) {
      this.problem(
        'wrong-type',
        path,
        p,
        `${path}${at(p.line, p.column)}: expected a mapping with keys ${EXEC_ENTRY_KEYS.join(', ')}, got ${this.describe(node)}`,
      );
      return null;
    }
    let cmd: string | undefined;
    let ifCandidate = false;
    let ok = true;
    for (const pair of node.items) {
      const k = this.deref(pair.key);
      const kp = this.where(k);
      const key = isScalar(k) ? String(k.value) : '';
      const v = this.deref(pair.value);
      const vp = this.where(v);
      const s = v !== null && isScalar(v) ? this.scalar(v) : null;
      if (key === 'cmd') {
        if (s === null || typeof s.value === 'boolean' || (s.value !== null && typeof s.value === 'object')) {
          ok = false;
          this.problem(
            'wrong-type',
            `${path}.cmd`,
            vp,
            `${path}.cmd${at(vp.line, vp.column)}: expected a command string, got ${s?.shown ?? this.describe(v)}`,
          );
        } else if (s.value !== null && s.text.trim() !== '') {
          cmd = s.text;
        }
      } else if (key === 'if-candidate') {
        const b = s === null ? undefined : convert(s, { kind: 'bool' });
        if (s !== null && s.value === null) continue;
        if (typeof b !== 'boolean') {
          ok = false;
          this.problem(
            'wrong-type',
            `${path}.if-candidate`,
            vp,
            `${path}.if-candidate${at(vp.line, vp.column)}: expected true or false, got ${s?.shown ?? this.describe(v)}`,
          );
        } else {
          ifCandidate = b;
        }
      } else {
        ok = false;
        this.problem(
          'unknown-key',
          `${path}.${key}`,
          kp,
          `unknown key ${path}.${key}${at(kp.line, kp.column)}${suggest(key, [...EXEC_ENTRY_KEYS])}; allowed keys in exec entries: ${EXEC_ENTRY_KEYS.join(', ')}`,
        );
      }
    }
    if (cmd === undefined) {
      if (ok) this.problem('missing', `${path}.cmd`, p, `${path}.cmd${at(p.line, p.column)}: is required (the command to run)`);
      return null;
    }
    return ok ? { cmd, ifCandidate } : null;
  }

  /**
   * Expands environment references in one scalar. Expansion happens here,
   * inside values, rather than on the raw text as LiteFS does: a variable
   * holding ": ", "#", quotes or newlines then cannot add, remove or
   * reshape keys, and line/column numbers in messages stay exact. A plain
   * (unquoted) scalar is re-typed after expansion the way YAML would type
   * the expanded text, so `candidate: ${A == B}` is still a boolean and
   * `hostname: $UNSET` is still "not set".
   */
  private scalar(node: Scalar): Scalarish {
    const v = node.value;
    const plain = node.type === 'PLAIN' || node.type === undefined;
    const source = node.source ?? (typeof v === 'string' ? v : String(v));
    if (typeof v === 'string' && this.env !== null && v.includes('$')) {
      const expanded = expandEnv(v, this.env);
      if (expanded !== v) {
        const value = plain ? resolvePlain(expanded) : expanded;
        return { value, text: expanded, shown: `${JSON.stringify(expanded)} (expanded from ${JSON.stringify(v)})` };
      }
    }
    if (v === null) return { value: null, text: '', shown: 'an empty value' };
    const text = typeof v === 'string' ? v : plain ? source : String(v);
    const shown = typeof v === 'string' ? JSON.stringify(v) : text;
    return { value: v, text, shown };
  }

  private deref(node: unknown): YamlNode | null {
    if (node === null || node === undefined) return null;
    if (isAlias(node)) return (node.resolve(this.doc) as YamlNode | undefined) ?? null;
    return node as YamlNode;
  }

  private where(node: YamlNode | null): Position {
    const range = node?.range;
    return range ? this.pos(range[0]) : { line: 1, column: 1 };
  }

  private describe(node: YamlNode | null): string {
    if (node === null) return 'an empty value';
    if (isMap(node)) return 'a mapping';
    if (isSeq(node)) return 'a list';
    if (isScalar(node)) return this.scalar(node).shown;
    return 'an unsupported YAML node';
  }

  private problem(kind: ConfigProblem['kind'], path: string, p: Position, message: string): void {
    this.raw.rejected.add(path);
    this.problems.push({ kind, path, line: p.line, column: p.column, message });
  }
}

const YAML11_TRUE = new Set(['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON']);
const YAML11_FALSE = new Set(['n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF']);

type Converted = RawValue | { error: string; kind: 'wrong-type' | 'invalid-value' };

function convert(s: Scalarish, spec: FieldSpec): Converted {
  switch (spec.kind) {
    case 'bool':
      if (typeof s.value === 'boolean') return s.value;
      // LiteFS uses go-yaml v3, which accepts YAML 1.1 booleans for bool fields.
      if (typeof s.value === 'string' && YAML11_TRUE.has(s.value)) return true;
      if (typeof s.value === 'string' && YAML11_FALSE.has(s.value)) return false;
      return { kind: 'wrong-type', error: `expected true or false, got ${s.shown}` };
    case 'string':
      if (typeof s.value === 'object') return { kind: 'wrong-type', error: `expected a string, got ${s.shown}` };
      return s.text;
    case 'enum':
      if (typeof s.value === 'string' && spec.values.includes(s.value)) return s.value;
      return { kind: 'invalid-value', error: `${s.shown} is not allowed; allowed values: ${spec.values.join(', ')}` };
    case 'duration': {
      if (typeof s.value === 'number') {
        if (s.value === 0) return 0;
        return { kind: 'invalid-value', error: `${s.shown} is not a duration (e.g. 10s, 1m30s); add a unit: ns, us, ms, s, m or h` };
      }
      if (typeof s.value !== 'string') return { kind: 'wrong-type', error: `expected a duration (e.g. 10s, 1m30s), got ${s.shown}` };
      const ms = parseGoDuration(s.value.trim());
      if (ms === undefined) return { kind: 'invalid-value', error: `${s.shown} is not a duration (e.g. 10s, 1m30s)` };
      if (ms < 0) return { kind: 'invalid-value', error: `${s.shown} is negative; durations must be 0 or more` };
      return ms;
    }
    case 'size': {
      const n = typeof s.value === 'number' ? s.value : typeof s.value === 'string' ? parseByteSize(s.value) : undefined;
      if (typeof s.value !== 'number' && typeof s.value !== 'string') {
        return { kind: 'wrong-type', error: `expected a size (e.g. 100MB, 1GiB), got ${s.shown}` };
      }
      if (n === undefined || !Number.isSafeInteger(n)) {
        return { kind: 'invalid-value', error: `${s.shown} is not a size (e.g. 100MB, 1GiB, or a number of bytes)` };
      }
      if (n <= 0) return { kind: 'invalid-value', error: `${s.shown} must be more than 0 bytes` };
      return n;
    }
    default:
      return { kind: 'wrong-type', error: `unexpected value ${s.shown}` };
  }
}

/** Types an expanded plain scalar with the YAML 1.2 core schema's rules. */
export function resolvePlain(text: string): unknown {
  const t = text.trim();
  if (t === '' || t === '~' || t === 'null' || t === 'Null' || t === 'NULL') return null;
  if (t === 'true' || t === 'True' || t === 'TRUE') return true;
  if (t === 'false' || t === 'False' || t === 'FALSE') return false;
  if (/^[-+]?[0-9]+$/.test(t)) return Number(t);
  if (/^0o[0-7]+$/.test(t)) return parseInt(t.slice(2), 8);
  if (/^0x[0-9a-fA-F]+$/.test(t)) return parseInt(t.slice(2), 16);
  if (/^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/.test(t)) return Number(t);
  return t;
}

function expected(spec: FieldSpec): string {
  switch (spec.kind) {
    case 'bool':
      return 'true or false';
    case 'duration':
      return 'a duration (e.g. 10s, 1m30s)';
    case 'size':
      return 'a size (e.g. 100MB, 1GiB)';
    case 'enum':
      return `one of ${spec.values.join(', ')}`;
    default:
      return 'a string';
  }
}

function keyList(spec: SectionSpec): string {
  return Object.entries(spec.fields)
    .filter(([, f]) => f.kind !== 'unsupported')
    .map(([k]) => k)
    .join(', ');
}

/** " (did you mean consul?)" for a key within edit distance 2 of a known one. */
function suggest(key: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDist = 3;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k);
    if (d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  return best === undefined ? '' : ` (did you mean ${best}?)`;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}
