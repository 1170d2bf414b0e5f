/*
 * The floor: the fastest honest way to walk a linked list in another
 * process without stopping it. A page cache (open addressing, 4 KiB pages)
 * filled by process_vm_readv in 64 KiB chunks clipped to the mapping, the
 * same strategy as xsample's, in C with no interpreter in the way.
 *
 *   floor PID HEAD NEXT_OFF VALUE_OFF [verify] [again]
 * prints {"count":N,"sum":S,"ns":T} (T: wall time of the walk alone).
 * With again, as a sampler taking sample after sample: after a first walk,
 * four more, each reading every chunk again into the buffers it already has
 * and walking; T is the median of those four.
 * With verify, as xsample checks its answers by default: every chunk read is
 * read again after the walk and compared, and T includes that; the output
 * adds "changed": the chunks that differed.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>

#define PAGE 4096UL
#define CHUNK (64 * 1024UL)

struct range { uint64_t start, end; };
struct slot { uint64_t page; unsigned char *data; };

static pid_t pid;
static struct range *ranges;
static size_t nranges;
static struct slot *table;
static size_t table_size = 1 << 16, table_used;
/* Every chunk read, for the check after the walk. */
struct chunk { uint64_t start, len; unsigned char *buf; };
static struct chunk *chunks;
static size_t nchunks, chunks_cap;

static void load_maps(void)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(1); }
    size_t cap = 64;
    ranges = malloc(cap * sizeof *ranges);
    while (fgets(line, sizeof line, f)) {
        uint64_t s, e; char perms[5];
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s", &s, &e, perms) != 3 || perms[0] != 'r') continue;
        if (strstr(line, "[vvar]") || strstr(line, "[vsyscall]")) continue;
        if (nranges == cap) ranges = realloc(ranges, (cap *= 2) * sizeof *ranges);
        ranges[nranges++] = (struct range){ s, e };
    }
    fclose(f);
}

static struct range *range_of(uint64_t a)
{
    size_t lo = 0, hi = nranges;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a < ranges[mid].start) hi = mid;
        else if (a >= ranges[mid].end) lo = mid + 1;
        else return &ranges[mid];
    }
    return NULL;
}

static struct slot *find(uint64_t page)
{
    size_t i = (page * 0x9E3779B97F4A7C15ULL) >> 40 & (table_size - 1);
    while (table[i].data && table[i].page != page) i = (i + 1) & (table_size - 1);
    return &table[i];
}

static void grow(void)
{
    struct slot *old = table;
    size_t n = table_size;
    table_size *= 2;
    table = calloc(table_size, sizeof *table);
    for (size_t i = 0; i < n; i++)
        if (old[i].data) *find(old[i].page) = old[i];
    free(old);
}

/*
 * Chunk buffers are cut from 4 MiB slabs, the slabs after the first in huge pages, as xsample's (slabs.ts, slab.c):
 * the floor pays no page fault xsample does not.
 */
#define SLAB (4UL << 20)
static unsigned char *slab;
static size_t slab_used = SLAB, slabs_made;

static unsigned char *take(size_t len)
{
    if (len > SLAB) { fprintf(stderr, "a chunk of %zu bytes is larger than a slab\n", len); exit(1); }
    if (slab_used + len > SLAB) {
        unsigned char *p = mmap(NULL, 2 * SLAB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) { perror("mmap"); exit(1); }
        slab = (unsigned char *)(((uintptr_t)p + (2UL << 20) - 1) & ~((uintptr_t)(2UL << 20) - 1));
        if (slabs_made++ > 0) madvise(slab, SLAB, MADV_HUGEPAGE);
        slab_used = 0;
    }
    unsigned char *out = slab + slab_used;
    slab_used += len;
    return out;
}

static unsigned char *fill(uint64_t page)
{
    uint64_t a = page * PAGE;
    struct range *r = range_of(a);
    if (!r) { fprintf(stderr, "0x%" PRIx64 ": not in any mapping\n", a); exit(1); }
    uint64_t start = a - a % CHUNK;
    if (start < r->start) start = r->start;
    uint64_t end = start + CHUNK < r->end ? start + CHUNK : r->end;
    unsigned char *buf = take(end - start);
    struct iovec local = { buf, end - start }, remote = { (void *)start, end - start };
    ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (got < (ssize_t)(a - start + PAGE)) { perror("process_vm_readv"); exit(1); }
    if (nchunks == chunks_cap) chunks = realloc(chunks, (chunks_cap = chunks_cap ? 2 * chunks_cap : 256) * sizeof *chunks);
    chunks[nchunks++] = (struct chunk){ start, (uint64_t)got, buf };
    for (uint64_t p = start; p + PAGE <= start + (uint64_t)got; p += PAGE) {
        if ((table_used + 1) * 2 > table_size) grow();
        struct slot *s = find(p / PAGE);
        if (!s->data) { s->page = p / PAGE; s->data = buf + (p - start); table_used++; }
    }
    return find(page)->data;
}

static inline uint64_t u64(uint64_t a)
{
    static uint64_t last_page = UINT64_MAX;
    static unsigned char *last;
    uint64_t page = a / PAGE;
    if (page != last_page) {
        struct slot *s = find(page);
        last = s->data ? s->data : fill(page);
        last_page = page;
    }
    uint64_t v;
    memcpy(&v, last + a % PAGE, 8); /* the tests keep fields inside a page */
    return v;
}

/* Reads every chunk again and compares: how many changed while the walk read them. */
static size_t changed(void)
{
    static unsigned char again[CHUNK];
    size_t n = 0;
    for (size_t i = 0; i < nchunks; i++) {
        struct iovec local = { again, chunks[i].len }, remote = { (void *)chunks[i].start, chunks[i].len };
        ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
        if (got != (ssize_t)chunks[i].len || memcmp(again, chunks[i].buf, chunks[i].len) != 0) n++;
    }
    return n;
}

/* Every chunk read again into its own buffer: the next sample's memory, no allocation. */
static void reread(void)
{
    for (size_t i = 0; i < nchunks; i++) {
        struct iovec local = { chunks[i].buf, chunks[i].len }, remote = { (void *)chunks[i].start, chunks[i].len };
        if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != (ssize_t)chunks[i].len) { perror("process_vm_readv"); exit(1); }
    }
}

static double walk(uint64_t p, uint64_t next, uint64_t value, int verify, int again, uint64_t *n, uint64_t *sum, size_t *diff)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (again) reread();
    *n = 0, *sum = 0;
    while (p) {
        *sum += u64(p + value);
        p = u64(p + next);
        (*n)++;
    }
    *diff = verify ? changed() : 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int verify = 0, again = 0;
    for (int i = 5; i < argc; i++) {
        if (strcmp(argv[i], "verify") == 0) verify = 1;
        else if (strcmp(argv[i], "again") == 0) again = 1;
        else argc = 0;
    }
    if (argc < 5) { fprintf(stderr, "usage: floor PID HEAD NEXT_OFF VALUE_OFF [verify] [again]\n"); return 2; }
    pid = atoi(argv[1]);
    uint64_t p = strtoull(argv[2], NULL, 0);
    uint64_t next = strtoull(argv[3], NULL, 0), value = strtoull(argv[4], NULL, 0);
    load_maps();
    table = calloc(table_size, sizeof *table);
    uint64_t n, sum;
    size_t diff;
    double ns = walk(p, next, value, verify, 0, &n, &sum, &diff);
    if (again) {
        double t[4];
        for (int i = 0; i < 4; i++) t[i] = walk(p, next, value, verify, 1, &n, &sum, &diff);
        qsort(t, 4, sizeof t[0], cmp);
        ns = (t[1] + t[2]) / 2;
    }
    printf("{\"count\":%" PRIu64 ",\"sum\":%" PRIu64 ",\"ns\":%.0f,\"changed\":%zu}\n", n, sum, ns, diff);
    return 0;
}
