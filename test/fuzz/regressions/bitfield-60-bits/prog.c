/* Shrunk from fuzz seed 212: a signed bitfield of 60 bits holding 2^59 - 1;
   xsample read it as a double (-576460752303423500), gdb and lldb exactly. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

struct fz_root_s {
  int8_t pad;
  int64_t r7 : 60;
  uint64_t u : 63;
  int64_t n : 60;
  int64_t small : 50;
};
typedef struct fz_root_s fz_root_t;

__attribute__((used)) fz_root_t fz_root = { .pad = 1, .r7 = 576460752303423487L, .u = 9223372036854775807UL, .n = -576460752303423488L, .small = -1L };

int main(void) {
  printf("ready %d\n", (int) getpid());
  fflush(stdout);
  for (;;) pause();
}
