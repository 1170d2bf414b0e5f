/* fuzz program, seed 7 (test/fuzz/gen-c.ts) */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

enum fz_color { FZ_RED = -2, FZ_GREEN = 5, FZ_BLUE = 1000 };
enum fz_mode { FZ_OFF = 0, FZ_ON = 3, FZ_MAX = 4000000000 };
struct fz_str;
struct fz_lnode;
struct fz_tnode;
struct fz_link;
struct fz_item;
struct fz_flex;
union fz_un;
struct fz_s0;
struct fz_root_s;
typedef struct fz_lnode fz_lnode_t;
typedef struct fz_item fz_item_t;
typedef struct fz_s0 fz_s0_a;
typedef fz_s0_a fz_s0_t;
typedef struct fz_root_s fz_root_a;
typedef fz_root_a fz_root_t;
struct fz_str {
  uint64_t len;
  char *data;
};
struct fz_lnode {
  int8_t v;
  uint64_t w;
  struct fz_lnode *next;
};
struct fz_tnode {
  struct fz_tnode *left;
  uint16_t key;
  struct fz_tnode *right;
};
struct fz_link {
  struct fz_link *next;
  struct fz_link *prev;
};
struct fz_item {
  int64_t v;
  struct fz_link link;
  int64_t u;
};
struct fz_flex {
  uint64_t n;
  int64_t tag;
  uint32_t items[];
};
union fz_un {
  uint64_t a;
  int16_t b;
  uint8_t c;
  int32_t d;
};
struct fz_s0 {
  int16_t f0;
  uint8_t f1;
  int8_t f2;
  char f3[7];
};
struct fz_root_s {
  struct fz_link dhead;
  struct fz_s0 *parr[1];
  int32_t idx2;
};

static __attribute__((used)) struct fz_str *fz_use_fz_str;
static __attribute__((used)) struct fz_lnode *fz_use_fz_lnode;
static __attribute__((used)) fz_lnode_t *fz_use_fz_lnode_t;
static __attribute__((used)) struct fz_tnode *fz_use_fz_tnode;
static __attribute__((used)) struct fz_link *fz_use_fz_link;
static __attribute__((used)) struct fz_item *fz_use_fz_item;
static __attribute__((used)) fz_item_t *fz_use_fz_item_t;
static __attribute__((used)) struct fz_flex *fz_use_fz_flex;
static __attribute__((used)) union fz_un *fz_use_fz_un;
static __attribute__((used)) struct fz_s0 *fz_use_fz_s0;
static __attribute__((used)) fz_s0_a *fz_use_fz_s0_a;
static __attribute__((used)) fz_s0_t *fz_use_fz_s0_t;
static __attribute__((used)) struct fz_root_s *fz_use_fz_root_s;
static __attribute__((used)) fz_root_a *fz_use_fz_root_a;
static __attribute__((used)) fz_root_t *fz_use_fz_root_t;
static fz_s0_a fz_o0;
static fz_s0_a fz_o1;
fz_root_t fz_root;
static struct fz_lnode fz_o2;
static struct fz_lnode fz_o3;
static struct fz_lnode fz_o4;
static struct fz_lnode fz_o5;
static struct fz_tnode fz_o6;
static struct fz_tnode fz_o7;
static struct fz_tnode fz_o8;
static fz_item_t fz_o9;
static struct fz_flex fz_o10;
static __attribute__((used)) fz_s0_a fz_o0 = { .f0 = 27L, .f1 = 0UL, .f2 = 14L, .f3 = "\164\176\134\147\134\161\165" };
static __attribute__((used)) fz_s0_a fz_o1 = { .f0 = (-19393L), .f1 = 255UL, .f2 = (-128L), .f3 = "\162\303\147\154\142\171\166" };
__attribute__((used)) fz_root_t fz_root = { .dhead = { .next = &fz_o9.link, .prev = &fz_o9.link }, .parr = { &fz_o0 }, .idx2 = 0L };
static __attribute__((used)) struct fz_lnode fz_o2 = { .v = (-35L), .w = 236275727017264577UL, .next = 0 };
static __attribute__((used)) struct fz_lnode fz_o3 = { .v = 15L, .w = 0UL, .next = &fz_o2 };
static __attribute__((used)) struct fz_lnode fz_o4 = { .v = 23L, .w = 18446744073709551615UL, .next = &fz_o3 };
static __attribute__((used)) struct fz_lnode fz_o5 = { .v = 2L, .w = 39UL, .next = &fz_o4 };
static __attribute__((used)) struct fz_tnode fz_o6 = { .left = 0, .key = 21UL, .right = &fz_o8 };
static __attribute__((used)) struct fz_tnode fz_o7 = { .left = 0, .key = 23UL, .right = 0 };
static __attribute__((used)) struct fz_tnode fz_o8 = { .left = &fz_o7, .key = 21289UL, .right = 0 };
static __attribute__((used)) fz_item_t fz_o9 = { .v = (-25L), .link = { .next = &fz_root.dhead, .prev = &fz_root.dhead }, .u = (-5625691600950384923L) };
static __attribute__((used)) struct fz_flex fz_o10 = { .n = 1UL, .tag = (-9L), .items = { 1557058793UL } };
static __attribute__((used)) uint64_t ga_0[8] = { 0UL, 1UL, 7676330115826665237UL, 33UL, 2941404561379612288UL, 1064065606880361083UL, 35UL, 20UL };
static __attribute__((used)) uint16_t ga_1[8] = { 11964UL, 62981UL, 9355UL, 48256UL, 18UL, 5715UL, 62107UL, 59655UL };

int main(void) {
  printf("ready %d\n", (int) getpid());
  fflush(stdout);
  for (;;) pause();
}
