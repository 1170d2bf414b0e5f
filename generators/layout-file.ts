/** A layout file's shape (packs/<pack>/<release>/*.json): what extractLayout writes (layout.ts) and checkedLayout accepts (layout-valid.ts). */
export const LAYOUT_FORMAT = 1;

export interface LayoutField {
  offset: number;
  size: number;
  signed?: boolean;
  bit?: number; // bitfields: first bit within the byte at offset
  bits?: number;
}

export interface LayoutStruct {
  size: number;
  align: number;
  fields: Record<string, LayoutField>;
}

export interface LayoutFile {
  xwalk_layout: number;
  pack: string;
  release: string;
  build_id: string;
  /** The build's signature string (binary.signature), when the schema names one: builds that share release and signature share struct layouts. */
  signature?: string;
  binary: string;
  /** The schema's object (objects:) this layout is of; absent: the program's own binary. */
  object?: string;
  producer: string;
  types: Record<string, LayoutStruct>;
  globals: Record<string, { size: number; signed?: boolean }>;
  /** The enumerators of the enums the schema declares (enums:), name to value in declaration order; absent in older layouts. */
  enums?: Record<string, Record<string, number>>;
}
