{
  "targets": [
    {
      "target_name": "xwalk_pvr",
      "sources": ["pvr.c", "slab.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "xwalk_perf",
      "sources": ["perf_regs.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "xwalk_bpf",
      "sources": ["bpf.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "xwalk_perf_stacks",
      "sources": ["perf_stacks.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
