/**
 * A shop's module for Lua heap tests and benchmarks: render_item keeps every page it is asked for in page_cache,
 * an upvalue, keyed by what it is given and never forgotten (the memo of the leak issue 22 hunts). It is
 * written into the nginx prefix; /lua/retain/* (test/lib/nginx.ts) require it from there.
 */
import fs from 'node:fs';
import path from 'node:path';

export const SHOP = `local M = {}
local page_cache = {}
function M.render_item(k)
  if k == nil then return tostring(page_cache) end
  page_cache[k] = page_cache[k] or (string.rep("x", 100) .. k)
  return page_cache[k]
end
return M
`;

/** Writes the module into nginx's prefix; returns its path (what a function of it is named by). */
export function writeShop(prefix: string): string {
  const file = path.join(prefix, 'xwalk_shop.lua');
  fs.writeFileSync(file, SHOP);
  return file;
}
