/**
 * Python source fragments, escaped by construction: a Py value is either
 * code this emitter wrote or a literal made by pyStr/pyInt/pyJson. Schema
 * text never reaches the output any other way, so it can never become code.
 */
declare const pyBrand: unique symbol;
export type Py = string & { readonly [pyBrand]: true };

const trusted = (s: string): Py => s as Py;

/** A Python str literal; every character outside printable ASCII (and " and \) is escaped. */
export function pyStr(s: string): Py {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x20 && c < 0x7f && ch !== '"' && ch !== '\\') out += ch;
    else if (c < 0x100) out += '\\x' + c.toString(16).padStart(2, '0');
    else if (c < 0x10000) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += '\\U' + c.toString(16).padStart(8, '0');
  }
  return trusted(out + '"');
}

export function pyInt(n: number): Py {
  if (!Number.isSafeInteger(n)) throw new Error(`not an integer: ${n}`);
  return trusted(String(n));
}

export function pyBool(b: boolean): Py {
  return trusted(b ? 'True' : 'False');
}

/** Plain data (objects, arrays, strings, numbers, booleans, null) as a Python literal. */
export function pyData(v: unknown): Py {
  if (v === null || v === undefined) return trusted('None');
  if (typeof v === 'string') return pyStr(v);
  if (typeof v === 'number') return pyInt(v);
  if (typeof v === 'boolean') return pyBool(v);
  if (Array.isArray(v)) return trusted('[' + v.map(pyData).join(', ') + ']');
  if (typeof v === 'object') return trusted('{' + Object.entries(v).map(([k, x]) => `${pyStr(k)}: ${pyData(x)}`).join(', ') + '}');
  throw new Error(`cannot write ${typeof v} as Python`);
}

/** A comment line: newlines and control characters cannot end it early. */
export function pyComment(s: string): Py {
  return trusted('# ' + s.replace(/[^\x20-\x7e]/g, '?'));
}

/**
 * Code written by the emitter: the template's literal parts are ours; every
 * interpolated value must already be Py (or a safe integer).
 */
export function py(parts: TemplateStringsArray, ...values: (Py | number)[]): Py {
  let out = parts[0];
  values.forEach((v, i) => {
    out += typeof v === 'number' ? pyInt(v) : v;
    out += parts[i + 1];
  });
  return trusted(out);
}

export function pyJoin(items: Py[], sep: string): Py {
  return trusted(items.join(sep));
}

/**
 * A hand-written runtime module's source (ours, not the schema's) as a raw triple-quoted literal, kept
 * readable line for line; refused if it holds what would end such a literal early or change its text.
 */
export function pyRuntime(text: string): Py {
  if (text.includes("'''") || text.includes('\r') || !text.endsWith('\n')) throw new Error("internal: a runtime module holds ''' or a carriage return, or does not end in a line break");
  return trusted(`r'''${text}'''`);
}
