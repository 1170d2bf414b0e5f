/*
 * A process whose memory is a test's fake memory (test/lib/fake-memory.ts),
 * byte for byte at the same addresses: the eBPF printer's programs run in
 * the kernel against it (test/bpf-printer.test.ts). Built by the test into
 * a temp folder (test/lib/fake-process.ts), static, so that nothing but the
 * binary, its heap and its stack sits in the address space.
 *
 * Commands, one a line on stdin, answered one a line on stdout:
 *   load FILE  the regions of FILE replace the ones loaded before: "ok", or
 *              "busy ADDR" when something of the process is mapped there
 *   tick       calls xw_tick() once (where the uprobe is): "ticked"
 * It exits at the end of stdin.
 *
 * FILE: u32 regions; each: u64 start, u64 size, u32 pages; each page: u64
 * offset in the region, 4096 bytes. Then u32 holes; each: u64 start, u64
 * end (pages unmapped again: listed once, gone since). Little endian.
 * Every page is populated (a BPF read of a page not resident faults).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE 4096
#define MAX_REGIONS 64

static struct {
  uint64_t start, size;
} mapped[MAX_REGIONS];
static int nmapped;

static volatile uint64_t ticks;

/* The uprobe's target: the kernel program runs once a call. */
__attribute__((noinline)) void xw_tick(void) {
  ticks++;
  __asm__ volatile("" ::: "memory");
}

static void need(FILE *f, void *p, size_t n) {
  if (fread(p, 1, n, f) != n) {
    printf("error short file\n");
    fflush(stdout);
    exit(1);
  }
}

static void unload(void) {
  for (int i = 0; i < nmapped; i++) munmap((void *)(uintptr_t)mapped[i].start, mapped[i].size);
  nmapped = 0;
}

static void load(const char *path) {
  unload();
  FILE *f = fopen(path, "rb");
  if (!f) {
    printf("error open %s: %s\n", path, strerror(errno));
    return;
  }
  uint32_t n;
  need(f, &n, 4);
  for (uint32_t i = 0; i < n; i++) {
    uint64_t start, size;
    uint32_t pages;
    need(f, &start, 8);
    need(f, &size, 8);
    need(f, &pages, 4);
    void *at = mmap((void *)(uintptr_t)start, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_POPULATE, -1, 0);
    if (at == MAP_FAILED || (uint64_t)(uintptr_t)at != start) {
      if (at != MAP_FAILED) munmap(at, size);
      fclose(f);
      unload();
      printf("busy 0x%llx %s\n", (unsigned long long)start, strerror(errno));
      return;
    }
    if (nmapped == MAX_REGIONS) {
      printf("error more than %d regions\n", MAX_REGIONS);
      exit(1);
    }
    mapped[nmapped].start = start;
    mapped[nmapped].size = size;
    nmapped++;
    for (uint32_t p = 0; p < pages; p++) {
      uint64_t off;
      need(f, &off, 8);
      need(f, (char *)at + off, PAGE);
    }
  }
  uint32_t holes;
  need(f, &holes, 4);
  for (uint32_t i = 0; i < holes; i++) {
    uint64_t start, end;
    need(f, &start, 8);
    need(f, &end, 8);
    munmap((void *)(uintptr_t)start, end - start);
  }
  fclose(f);
  printf("ok\n");
}

int main(void) {
  char line[4096];
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    if (strncmp(line, "load ", 5) == 0) load(line + 5);
    else if (strcmp(line, "tick") == 0) {
      xw_tick();
      printf("ticked\n");
    } else printf("error unknown command %s\n", line);
  }
  return 0;
}
