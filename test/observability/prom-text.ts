/**
 * A parser for the Prometheus text exposition format (0.0.4), strict
 * enough that a malformed line fails the test instead of being skipped.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) families.set(name, (f = { name, type: 'untyped', help: '', samples: [] }));
    return f;
  };
  const lines = text.split('\n');
  for (const [i, line] of lines.entries()) {
    if (line === '') continue;
    const fail = (why: string): never => {
      throw new Error(`exposition line ${i + 1}: ${why}: ${JSON.stringify(line)}`);
    };
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line);
      if (m === null) continue; // a plain comment
      const f = family(m[2]!);
      if (m[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3]!)) fail('unknown type');
        f.type = m[3]!;
      } else {
        f.help = m[3]!;
      }
      continue;
    }
    const nm = NAME.exec(line) ?? fail('no metric name');
    const name = nm[0];
    let rest = line.slice(name.length);
    const labels: Record<string, string> = {};
    if (rest.startsWith('{')) {
      rest = rest.slice(1);
      while (!rest.startsWith('}')) {
        const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(rest) ?? fail('bad label');
        rest = rest.slice(lm[0].length);
        let value = '';
        for (;;) {
          const c = rest[0] ?? fail('unterminated label value');
          rest = rest.slice(1);
          if (c === '"') break;
          if (c === '\\') {
            const e = rest[0] ?? fail('dangling escape');
            rest = rest.slice(1);
            if (e === 'n') value += '\n';
            else if (e === '\\' || e === '"') value += e;
            else fail(`bad escape \\${e}`);
          } else {
            value += c;
          }
        }
        labels[lm[1]!] = value;
        if (rest.startsWith(',')) rest = rest.slice(1);
        else if (!rest.startsWith('}')) fail('expected , or }');
      }
      rest = rest.slice(1);
    }
    const vm = /^ (\S+)(?: (-?\d+))?$/.exec(rest) ?? fail('bad value');
    const raw = vm[1]!;
    // Prometheus parses values with Go's ParseFloat: NaN and Inf in any case.
    const special = raw.toLowerCase();
    const value = special === 'nan' ? NaN : /^[+-]?inf$/.test(special) ? (special.startsWith('-') ? -Infinity : Infinity) : Number(raw);
    if (Number.isNaN(value) && special !== 'nan') fail('value is not a number');
    const base = familyOf(name, families);
    family(base).samples.push({ name, labels, value });
  }
  return families;
}

/** Histogram and summary samples carry suffixes; they belong to the declared family. */
function familyOf(sample: string, families: Map<string, Family>): string {
  if (families.has(sample)) return sample;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (sample.endsWith(suffix)) {
      const base = sample.slice(0, -suffix.length);
      const f = families.get(base);
      if (f !== undefined && (f.type === 'histogram' || f.type === 'summary')) return base;
    }
  }
  return sample;
}

/** The value of the one sample of `name` whose labels equal `labels` exactly; throws if absent. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const f = families.get(name);
  if (f === undefined) throw new Error(`metric ${name} is not exposed`);
  const want = JSON.stringify(Object.entries(labels).sort());
  const hits = f.samples.filter((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want);
  if (hits.length !== 1) throw new Error(`metric ${name}${want}: ${hits.length} samples (have ${JSON.stringify(f.samples)})`);
  return hits[0]!.value;
}
