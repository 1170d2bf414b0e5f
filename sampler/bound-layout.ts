/**
 * A layout checked against the pack's IR: every struct, field and global
 * the schema declares is present, so the compiler can look offsets up
 * without failing mid-walk.
 */
import type { LayoutField, LayoutFile } from '../generators/layout.ts';
import type { PackIR, Pointee } from '../generators/ir.ts';
import { UserError } from './memory.ts';

export class BoundLayout {
  private constructor(
    readonly file: LayoutFile,
    readonly source: string,
  ) {}

  static bind(pack: PackIR, file: LayoutFile, source: string): BoundLayout {
    const missing: string[] = [];
    for (const st of pack.structs.values()) {
      const t = file.types[st.name];
      if (!t) {
        missing.push(st.name);
        continue;
      }
      for (const f of st.fields.keys()) if (!t.fields[f]) missing.push(`${st.name}.${f}`);
    }
    for (const g of pack.globals.keys()) if (!file.globals[g]) missing.push(g);
    if (missing.length > 0) {
      throw new UserError(`the layout ${source} lacks ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ` and ${missing.length - 6} more` : ''}: the schema changed since it was made; regenerate it with xgen layout`);
    }
    return new BoundLayout(file, source);
  }

  size(struct: string): number {
    return this.file.types[struct].size;
  }

  align(struct: string): number {
    return this.file.types[struct].align;
  }

  field(struct: string, path: string): LayoutField {
    return this.file.types[struct].fields[path];
  }

  global(name: string): { size: number; signed?: boolean } {
    return this.file.globals[name];
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
