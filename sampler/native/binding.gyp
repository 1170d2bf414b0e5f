{
  "targets": [
    {
      "target_name": "xwalk_pvr",
      "sources": ["pvr.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
