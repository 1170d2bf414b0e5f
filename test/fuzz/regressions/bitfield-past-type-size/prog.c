/* Shrunk from fuzz seed 100: a bitfield whose declared type (4 bytes) would end
   past the struct (uint32_t f1:11 after two bytes of a 4-byte struct); its bits
   end inside it. xgen refused the layout: "offset 2 does not leave its 4 bytes
   inside the struct (4)". */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

struct fz_s0 {
  uint8_t f0[2];
  uint32_t f1 : 11;
};
struct fz_root_s {
  struct fz_s0 in;
  int16_t tail;
  struct fz_s0 *p;
};
typedef struct fz_root_s fz_root_t;

static __attribute__((used)) struct fz_s0 fz_o0 = { .f0 = { 7, 9 }, .f1 = 2047 };
__attribute__((used)) fz_root_t fz_root = { .in = { .f0 = { 1, 2 }, .f1 = 1234 }, .tail = -5, .p = &fz_o0 };

int main(void) {
  printf("ready %d\n", (int) getpid());
  fflush(stdout);
  for (;;) pause();
}
