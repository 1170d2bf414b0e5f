/**
 * A layout checked against the pack's IR: every struct, field and global
 * the schema declares is present, so the compiler can look offsets up
 * without failing mid-walk.
 */
import type { LayoutField, LayoutFile } from '../../generators/layout.ts';
import type { PackIR, Pointee } from '../../generators/ir.ts';
import { UserError } from '../memory/memory.ts';
import { layoutMisfit } from '../../generators/layout-valid.ts';

/** Why a global a build may lack (optional: in the schema) cannot be read; the Python runtime says the same words. */
export const optionalMissing = (name: string, why: string): string => `this build has no ${name} (${why})`;

/** An object's layout as selection found it, or why there is none (not mapped, an unknown build). */
export type ObjectLayout = { layout: LayoutFile; source: string } | { reason: string };

export class BoundLayout {
  private constructor(
    readonly file: LayoutFile,
    readonly source: string,
    /** Types and globals of objects without a layout: why each cannot be read. */
    private readonly unavailable: Map<string, string>,
  ) {}

  /**
   * The program's layout joined with those of its objects (objects:). A type or global of an object
   * without a layout is unavailable, with the reason: a view that reads it fails saying so, others run.
   */
  static bind(pack: PackIR, file: LayoutFile, source: string, objects: Map<string, ObjectLayout> = new Map()): BoundLayout {
    const missing: string[] = [];
    const unavailable = new Map<string, string>();
    const types = { ...file.types };
    const globals = { ...file.globals };
    const enums = { ...file.enums };
    const sources = [source];
    for (const o of objects.values()) {
      if (!('layout' in o)) continue;
      Object.assign(types, o.layout.types);
      Object.assign(globals, o.layout.globals);
      Object.assign(enums, o.layout.enums);
      sources.push(o.source);
    }
    const lacking = (object: string | undefined): string | null => {
      if (object === undefined) return null;
      const o = objects.get(object);
      return o && 'layout' in o ? null : (o?.reason ?? `${object} is not mapped in this process`);
    };
    for (const st of pack.structs.values()) {
      const reason = lacking(st.object);
      if (reason) {
        unavailable.set(st.name, reason);
        continue;
      }
      const t = types[st.name];
      if (!t) {
        missing.push(st.name);
        continue;
      }
      for (const f of st.fields.keys()) if (!t.fields[f]) missing.push(`${st.name}.${f}`);
    }
    for (const g of pack.globals.values()) {
      const reason = lacking(g.object);
      if (reason) unavailable.set(g.name, reason);
      else if (!globals[g.name] && g.optional) unavailable.set(g.name, optionalMissing(g.name, g.optional));
      else if (!globals[g.name]) missing.push(g.name);
    }
    if (missing.length > 0) {
      throw new UserError(`the layout ${sources.join(' + ')} lacks ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ` and ${missing.length - 6} more` : ''}: the schema changed since it was made; regenerate it with xgen layout`);
    }
    const joined = { ...file, types, globals, enums };
    const misfit = layoutMisfit(pack, joined);
    if (misfit) throw new UserError(`the layout ${sources.join(' + ')} does not fit the schema: ${misfit}`);
    return new BoundLayout(joined, sources.join(' + '), unavailable);
  }

  /** Whether struct or global `name` belongs to an object without a layout (not mapped, an unknown build). */
  lacks(name: string): boolean {
    return this.unavailable.has(name);
  }

  /** Throws, saying why, when struct or global `name` belongs to an object without a layout. */
  private available(name: string): void {
    const reason = this.unavailable.get(name);
    if (reason) throw new UserError(`${name} cannot be read: ${reason}`);
  }

  size(struct: string): number {
    this.available(struct);
    return this.file.types[struct].size;
  }

  align(struct: string): number {
    this.available(struct);
    return this.file.types[struct].align;
  }

  field(struct: string, path: string): LayoutField {
    this.available(struct);
    return this.file.types[struct].fields[path];
  }

  global(name: string): { size: number; signed?: boolean } {
    this.available(name);
    return this.file.globals[name];
  }

  /** Whether this build's layout carries the enum's enumerators (layouts made before enums: named it do not). */
  hasEnum(name: string): boolean {
    return Object.hasOwn(this.file.enums ?? {}, name);
  }

  /** The enum's enumerators by value (in decimal), the first declared where several share one. */
  enumNames(name: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const [n, v] of Object.entries(this.file.enums?.[name] ?? {})) if (!out.has(String(v))) out.set(String(v), n);
    return out;
  }

  sizeOf(p: Pointee): number {
    switch (p.k) {
      case 'int':
        return p.size;
      case 'ptr':
        return 8;
      case 'struct':
        return this.size(p.name);
      case 'void':
        return 1;
    }
  }
}
