/** JSON as xsample prints it: the one writer is sampler/sampling/result-shape.ts. */
export { toJson } from '../sampling/result-shape.ts';
