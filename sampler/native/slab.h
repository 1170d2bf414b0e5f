/* slab.c: memory in huge pages for a snapshot's copies, exported by xwalk_pvr. */
#ifndef XWALK_SLAB_H
#define XWALK_SLAB_H
#include <node_api.h>
void slab_register(napi_env env, napi_value exports);
#endif
