/** JSON as xsample prints it: the one writer is sampler/outputs/json-shape.ts. */
export { toJson } from './json-shape.ts';
