/*
 * walkee -- a live C process for xwalk's tests.
 *
 * walkee builds nginx-shaped data structures (pools, an array, a list, a
 * queue, a red-black tree) and a plain linked list, all reachable from the
 * global `walkee`, with sizes taken from its command line.  It then answers
 * commands read from stdin with one JSON line each on stdout.
 *
 * The ground truth it reports (`truth`) is bookkeeping kept WHILE the
 * structures are built -- counters updated inside the allocator and container
 * functions themselves -- and never the result of walking the finished
 * structures.  A walker that reads walkee's memory from outside is therefore
 * checked against numbers that no walker produced.
 *
 * The ngx_* types copy nginx 1.22.1 field for field (Linux x86_64), so the same
 * schema walks walkee and nginx.  The ngx_* functions are ports of nginx's own
 * (src/core/ngx_palloc.c, ngx_array.c, ngx_list.c, ngx_queue.h, ngx_rbtree.c),
 * kept as close to the original as possible, plus the bookkeeping.
 *
 * Threads: main (builds, then serves stdin; the only writer of stdout), a
 * ticker (measures how long the process was stopped, see `gaps`) and a
 * mutator (idle until `mutate on`).
 *
 * Build:
 *   cc -g -O2 -Wall -Wextra -pthread -o test-targets/bin/walkee test-targets/walkee.c
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* nginx 1.22.1 types (x86_64)                                              */
/* ------------------------------------------------------------------------ */

typedef intptr_t ngx_int_t;
typedef uintptr_t ngx_uint_t;
typedef unsigned char u_char;

typedef struct { size_t len; u_char *data; } ngx_str_t;

typedef struct ngx_pool_s ngx_pool_t;
typedef struct ngx_pool_large_s ngx_pool_large_t;
typedef struct ngx_pool_cleanup_s ngx_pool_cleanup_t;
typedef void (*ngx_pool_cleanup_pt)(void *data);

struct ngx_pool_cleanup_s {
    ngx_pool_cleanup_pt handler;
    void *data;
    ngx_pool_cleanup_t *next;
};

struct ngx_pool_large_s {
    ngx_pool_large_t *next;
    void *alloc;
};

typedef struct {
    u_char *last;
    u_char *end;
    ngx_pool_t *next;
    ngx_uint_t failed;
} ngx_pool_data_t;

struct ngx_pool_s {
    ngx_pool_data_t d;
    size_t max;
    ngx_pool_t *current;
    void *chain;                        /* ngx_chain_t * in nginx */
    ngx_pool_large_t *large;
    ngx_pool_cleanup_t *cleanup;
    void *log;                          /* ngx_log_t * in nginx */
};

typedef struct {
    void *elts;
    ngx_uint_t nelts;
    size_t size;
    ngx_uint_t nalloc;
    ngx_pool_t *pool;
} ngx_array_t;

typedef struct ngx_list_part_s ngx_list_part_t;

struct ngx_list_part_s {
    void *elts;
    ngx_uint_t nelts;
    ngx_list_part_t *next;
};

typedef struct {
    ngx_list_part_t *last;
    ngx_list_part_t part;
    size_t size;
    ngx_uint_t nalloc;
    ngx_pool_t *pool;
} ngx_list_t;

typedef struct ngx_queue_s ngx_queue_t;

struct ngx_queue_s {
    ngx_queue_t *prev;
    ngx_queue_t *next;
};

typedef ngx_uint_t ngx_rbtree_key_t;
typedef ngx_int_t ngx_rbtree_key_int_t;
typedef struct ngx_rbtree_node_s ngx_rbtree_node_t;

struct ngx_rbtree_node_s {
    ngx_rbtree_key_t key;
    ngx_rbtree_node_t *left;
    ngx_rbtree_node_t *right;
    ngx_rbtree_node_t *parent;
    u_char color;
    u_char data;
};

typedef struct ngx_rbtree_s ngx_rbtree_t;
typedef void (*ngx_rbtree_insert_pt)(ngx_rbtree_node_t *root,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);

struct ngx_rbtree_s {
    ngx_rbtree_node_t *root;
    ngx_rbtree_node_t *sentinel;
    ngx_rbtree_insert_pt insert;
};

/* ------------------------------------------------------------------------ */
/* walkee's own payload types and THE global root                           */
/* ------------------------------------------------------------------------ */

typedef struct walkee_item_s walkee_item_t;
struct walkee_item_s {                  /* linked list node, 24 bytes */
    walkee_item_t *next;
    uint64_t value;
    uint64_t pad;                       /* the node's position in the list */
};

typedef struct {                        /* ngx_array_t element */
    uint64_t id;
    uint32_t weight;
    uint32_t flags;
} walkee_elt_t;

typedef struct {                        /* ngx_list_t element */
    ngx_str_t key;
    ngx_str_t value;
} walkee_kv_t;

typedef struct {                        /* queue entry */
    uint64_t id;
    ngx_queue_t link;                   /* NOT at offset 0: tests container-of */
    uint64_t cost;
} walkee_job_t;

typedef struct {                        /* rbtree entry */
    ngx_rbtree_node_t node;
    uint64_t payload;
} walkee_timer_t;

typedef struct walkee_tnode_s walkee_tnode_t;
struct walkee_tnode_s {                 /* a plain binary search tree: NULL leaves, never balanced */
    uint64_t key;
    walkee_tnode_t *left;
    walkee_tnode_t *right;
};

typedef struct {
    walkee_item_t *list;
    ngx_uint_t list_len;
    ngx_pool_t **pools;
    ngx_uint_t npools;
    ngx_array_t *array;
    ngx_list_t *kvs;
    ngx_queue_t jobs;                   /* sentinel head of walkee_job_t.link */
    ngx_rbtree_t timers;
    ngx_rbtree_node_t timer_sentinel;
    ngx_str_t name;                     /* "walkee" */
    walkee_tnode_t *bst;
    char tag[16];                       /* array members: text, numbers, pointers */
    uint32_t counts[4];
    walkee_item_t *heads[2];
} walkee_root_t;

/* The root every walk starts from: non-static, so it is in .symtab. */
walkee_root_t walkee;

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

/* Like assert(), but not compiled out by NDEBUG: the truth must be right. */
#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "walkee: %s:%d: check failed: %s\n",              \
                    __FILE__, __LINE__, #cond);                               \
            abort();                                                          \
        }                                                                     \
    } while (0)

static void *
xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    if (p == NULL) {
        fprintf(stderr, "walkee: out of memory (%zu bytes)\n", size);
        exit(1);
    }
    return p;
}

/* splitmix64: a tiny, good, seedable PRNG; rand() is neither. */
static uint64_t
splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ------------------------------------------------------------------------ */
/* Options                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * The upper limits keep every reported sum below 2^53 (exact in a JS double)
 * and every large pool allocation below glibc's mmap threshold (see
 * malloc_chunk_size()).
 */
#define MAX_NODES   10000000ULL
#define MAX_POOLS   10000ULL
#define MAX_ARRAY   10000000ULL
#define MAX_KVS     1000000ULL
#define MAX_JOBS    10000000ULL
#define MAX_TIMERS  1000000ULL
#define MAX_POOL_SIZE (1024ULL * 1024)

static struct {
    uint64_t nodes;
    int shuffled;
    uint64_t seed;
    uint64_t pools;
    uint64_t pool_size;
    uint64_t array;
    uint64_t kvs;
    uint64_t jobs;
    uint64_t timers;
    uint64_t stride;                    /* bytes from one list node to the next in memory */
} opt = { 1000, 0, 1, 4, 1024, 100, 50, 20, 30, sizeof(walkee_item_t) };

/* ------------------------------------------------------------------------ */
/* Ground truth (bookkeeping kept while building)                           */
/* ------------------------------------------------------------------------ */

typedef struct {
    ngx_pool_t *pool;           /* the pool, i.e. its first block */
    ngx_pool_t *last_block;     /* tail of the d.next chain (corrupt pool-cycle) */
    uint64_t blocks;            /* blocks in the d.next chain */
    uint64_t used;              /* sum of (d.last - block) */
    uint64_t free;              /* sum of (d.end - d.last) */
    uint64_t failed;            /* sum of d.failed */
    uint64_t large_count;       /* large entries with alloc != NULL */
    uint64_t large_bytes;       /* sum of their glibc chunk sizes */
    uint64_t cleanups;          /* entries in the cleanup chain */
} pool_truth_t;

static struct {
    uint64_t list_count, list_sum;
    pool_truth_t *pools;        /* one per walkee.pools[i], same order */
    ngx_uint_t npools;          /* pools registered so far */
    uint64_t array_count, weight_sum, id_sum;
    uint64_t kvs_count, kvs_parts, key_bytes, value_bytes;
    uint64_t jobs_count, cost_sum, first_id, last_id;
    uint64_t timers_count, key_sum, min_key, max_key, inorder_hash;
    uint64_t bst_count, bst_key_sum, bst_inorder_hash, bst_preorder_hash, bst_depth;
} truth;

/* What `repair` needs to undo the corruptions. */
static walkee_item_t *list_items;       /* the one array all list nodes live in */
/* Node i of that array: opt.stride bytes apart (the size of a node, unless --stride spreads them). */
#define ITEM(i)  ((walkee_item_t *) ((char *) list_items + (uint64_t) (i) * opt.stride))
static uint64_t *list_order;            /* list_order[k] = index of k-th node */
static walkee_job_t **jobs_by_id;       /* jobs in insertion (= queue) order */

/*
 * The bookkeeping of a pool, or NULL for pools that are not reported (the
 * mutator's churn pool).  A linear search is fine: the registry is small and
 * is only written by the main thread before the mutator thread exists.
 */
static pool_truth_t *
pool_truth(ngx_pool_t *pool)
{
    for (ngx_uint_t i = 0; i < truth.npools; i++) {
        if (truth.pools[i].pool == pool) {
            return &truth.pools[i];
        }
    }
    return NULL;
}

/*
 * Registers a pool just made by ngx_create_pool(pool, size): one block whose
 * ngx_pool_t header is used and the rest free, exactly as ngx_create_pool
 * sets d.last and d.end.
 */
static pool_truth_t *
pool_truth_track(ngx_pool_t *pool, size_t size)
{
    pool_truth_t *t = &truth.pools[truth.npools++];

    memset(t, 0, sizeof(*t));
    t->pool = pool;
    t->last_block = pool;
    t->blocks = 1;
    t->used = sizeof(ngx_pool_t);
    t->free = size - sizeof(ngx_pool_t);
    return t;
}

/*
 * The bytes a malloc'd block really occupies: glibc's chunk size, stored in
 * the word just below the user pointer (its low 3 bits are flags).  For a
 * chunk that is not mmapped this equals malloc_usable_size() + 8; checking
 * both catches an mmapped chunk or another allocator instead of reporting a
 * wrong figure.  (Large pool allocations stay below the 128 KiB mmap
 * threshold for that reason.)
 */
static size_t
malloc_chunk_size(void *p)
{
    size_t header;

    /* hide p's origin from gcc, which knows malloc's block starts at p and
       would warn (-Warray-bounds) about reading the word below it */
    __asm__ ("" : "+r" (p));

    header = *(size_t *) ((char *) p - sizeof(size_t)) & ~(size_t) 7;

    CHECK(malloc_usable_size(p) + sizeof(size_t) == header);
    return header;
}

/* ------------------------------------------------------------------------ */
/* ngx_palloc.c                                                             */
/* ------------------------------------------------------------------------ */

#define NGX_ALIGNMENT           sizeof(unsigned long)
#define NGX_POOL_ALIGNMENT      16
#define NGX_MAX_ALLOC_FROM_POOL (4096 - 1)     /* ngx_pagesize - 1 */
#define NGX_OK                  0
#define NGX_DECLINED            -5

#define ngx_align(d, a)     (((d) + (a - 1)) & ~(a - 1))
#define ngx_align_ptr(p, a)                                                   \
    (u_char *) (((uintptr_t) (p) + ((uintptr_t) a - 1)) & ~((uintptr_t) a - 1))

#define NGX_MIN_POOL_SIZE                                                     \
    ngx_align((sizeof(ngx_pool_t) + 2 * sizeof(ngx_pool_large_t)),            \
              NGX_POOL_ALIGNMENT)

static void *ngx_palloc_small(ngx_pool_t *pool, size_t size, ngx_uint_t align);
static void *ngx_palloc_block(ngx_pool_t *pool, size_t size);
static void *ngx_palloc_large(ngx_pool_t *pool, size_t size);

static void *
ngx_memalign(size_t alignment, size_t size)
{
    void *p;

    if (posix_memalign(&p, alignment, size) != 0) {
        return NULL;
    }
    return p;
}

static ngx_pool_t *
ngx_create_pool(size_t size, void *log)
{
    ngx_pool_t *p;

    p = ngx_memalign(NGX_POOL_ALIGNMENT, size);
    if (p == NULL) {
        return NULL;
    }

    p->d.last = (u_char *) p + sizeof(ngx_pool_t);
    p->d.end = (u_char *) p + size;
    p->d.next = NULL;
    p->d.failed = 0;

    size = size - sizeof(ngx_pool_t);
    p->max = (size < NGX_MAX_ALLOC_FROM_POOL) ? size : NGX_MAX_ALLOC_FROM_POOL;

    p->current = p;
    p->chain = NULL;
    p->large = NULL;
    p->cleanup = NULL;
    p->log = log;

    return p;
}

static void
ngx_destroy_pool(ngx_pool_t *pool)
{
    ngx_pool_t *p, *n;
    ngx_pool_large_t *l;
    ngx_pool_cleanup_t *c;

    /* Destroying a reported pool would make its truth stale. */
    CHECK(pool_truth(pool) == NULL);

    for (c = pool->cleanup; c; c = c->next) {
        if (c->handler) {
            c->handler(c->data);
        }
    }

    for (l = pool->large; l; l = l->next) {
        if (l->alloc) {
            free(l->alloc);
        }
    }

    for (p = pool, n = pool->d.next; /* void */; p = n, n = n->d.next) {
        free(p);
        if (n == NULL) {
            break;
        }
    }
}

static void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    if (size <= pool->max) {
        return ngx_palloc_small(pool, size, 1);
    }

    return ngx_palloc_large(pool, size);
}

static void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    if (size <= pool->max) {
        return ngx_palloc_small(pool, size, 0);
    }

    return ngx_palloc_large(pool, size);
}

static void *
ngx_palloc_small(ngx_pool_t *pool, size_t size, ngx_uint_t align)
{
    u_char *m;
    ngx_pool_t *p;
    pool_truth_t *t;

    p = pool->current;

    do {
        m = p->d.last;

        if (align) {
            m = ngx_align_ptr(m, NGX_ALIGNMENT);
        }

        /*
         * As in nginx, this relies on d.end being NGX_ALIGNMENT-aligned, or
         * aligning m could step past d.end (hence --pool-size % 16 == 0).
         */
        if ((size_t) (p->d.end - m) >= size) {
            t = pool_truth(pool);
            if (t) {
                /* the alignment padding counts as used, too */
                size_t taken = (size_t) (m + size - p->d.last);

                t->used += taken;
                t->free -= taken;
            }

            p->d.last = m + size;

            return m;
        }

        p = p->d.next;

    } while (p);

    return ngx_palloc_block(pool, size);
}

static void *
ngx_palloc_block(ngx_pool_t *pool, size_t size)
{
    u_char *m;
    size_t psize;
    ngx_pool_t *p, *new;
    pool_truth_t *t;
    uint64_t failed = 0;

    psize = (size_t) (pool->d.end - (u_char *) pool);

    m = ngx_memalign(NGX_POOL_ALIGNMENT, psize);
    if (m == NULL) {
        return NULL;
    }

    new = (ngx_pool_t *) m;

    new->d.end = m + psize;
    new->d.next = NULL;
    new->d.failed = 0;

    /* later blocks only carry an ngx_pool_data_t header */
    m += sizeof(ngx_pool_data_t);
    m = ngx_align_ptr(m, NGX_ALIGNMENT);
    new->d.last = m + size;

    /*
     * Every block from current on failed to satisfy this request; one that
     * has failed more than 4 times before stops being tried (current moves
     * past it).
     */
    for (p = pool->current; p->d.next; p = p->d.next) {
        failed++;
        if (p->d.failed++ > 4) {
            pool->current = p->d.next;
        }
    }

    p->d.next = new;

    t = pool_truth(pool);
    if (t) {
        size_t taken = (size_t) (new->d.last - (u_char *) new);

        t->blocks++;
        t->used += taken;
        t->free += psize - taken;
        t->failed += failed;
        t->last_block = new;
    }

    return m;
}

static void *
ngx_palloc_large(ngx_pool_t *pool, size_t size)
{
    void *p;
    ngx_uint_t n;
    ngx_pool_large_t *large;
    pool_truth_t *t;

    p = malloc(size);                   /* ngx_alloc() */
    if (p == NULL) {
        return NULL;
    }

    t = pool_truth(pool);
    if (t) {
        t->large_count++;
        t->large_bytes += malloc_chunk_size(p);
    }

    n = 0;

    /* reuse the header of a pfree'd large, looking at the first 5 only */
    for (large = pool->large; large; large = large->next) {
        if (large->alloc == NULL) {
            large->alloc = p;
            return p;
        }

        if (n++ > 3) {
            break;
        }
    }

    large = ngx_palloc_small(pool, sizeof(ngx_pool_large_t), 1);
    if (large == NULL) {
        free(p);
        return NULL;
    }

    large->alloc = p;
    large->next = pool->large;
    pool->large = large;

    return p;
}

static ngx_int_t
ngx_pfree(ngx_pool_t *pool, void *p)
{
    ngx_pool_large_t *l;
    pool_truth_t *t;

    for (l = pool->large; l; l = l->next) {
        if (p == l->alloc) {
            t = pool_truth(pool);
            if (t) {
                t->large_count--;
                t->large_bytes -= malloc_chunk_size(l->alloc);
            }

            free(l->alloc);
            l->alloc = NULL;

            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}

static void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    void *p;

    p = ngx_palloc(pool, size);
    if (p) {
        memset(p, 0, size);
    }

    return p;
}

static ngx_pool_cleanup_t *
ngx_pool_cleanup_add(ngx_pool_t *p, size_t size)
{
    ngx_pool_cleanup_t *c;
    pool_truth_t *t;

    c = ngx_palloc(p, sizeof(ngx_pool_cleanup_t));
    if (c == NULL) {
        return NULL;
    }

    if (size) {
        c->data = ngx_palloc(p, size);
        if (c->data == NULL) {
            return NULL;
        }

    } else {
        c->data = NULL;
    }

    c->handler = NULL;
    c->next = p->cleanup;

    p->cleanup = c;

    t = pool_truth(p);
    if (t) {
        t->cleanups++;
    }

    return c;
}

/* The handler of every cleanup walkee adds: a real function to point at. */
static atomic_ulong cleanups_run;

static void
walkee_cleanup_handler(void *data)
{
    (void) data;
    atomic_fetch_add(&cleanups_run, 1);
}

/* ------------------------------------------------------------------------ */
/* ngx_array.c, ngx_list.c                                                  */
/*                                                                          */
/* walkee's array and list live in malloc'd memory (pool == NULL), so that   */
/* they do not disturb the pools' figures; nginx takes them from the pool.  */
/* ------------------------------------------------------------------------ */

static ngx_int_t
ngx_array_init(ngx_array_t *array, ngx_pool_t *pool, ngx_uint_t n, size_t size)
{
    array->nelts = 0;
    array->size = size;
    array->nalloc = n;
    array->pool = pool;

    array->elts = xmalloc(n * size);

    return NGX_OK;
}

static void *
ngx_array_push(ngx_array_t *a)
{
    void *elt, *new;

    if (a->nelts == a->nalloc) {
        /*
         * The array is full: allocate a new one twice as large and copy.
         * nginx first tries to grow in place at the end of a pool block, and
         * leaves the old elements in the pool; here they are simply freed.
         */
        new = xmalloc(2 * a->size * a->nalloc);
        memcpy(new, a->elts, a->size * a->nalloc);
        free(a->elts);
        a->elts = new;
        a->nalloc *= 2;
    }

    elt = (u_char *) a->elts + a->size * a->nelts;
    a->nelts++;

    return elt;
}

static ngx_int_t
ngx_list_init(ngx_list_t *list, ngx_pool_t *pool, ngx_uint_t n, size_t size)
{
    list->part.elts = xmalloc(n * size);

    list->part.nelts = 0;
    list->part.next = NULL;
    list->last = &list->part;
    list->size = size;
    list->nalloc = n;
    list->pool = pool;

    truth.kvs_parts = 1;

    return NGX_OK;
}

static void *
ngx_list_push(ngx_list_t *l)
{
    void *elt;
    ngx_list_part_t *last;

    last = l->last;

    if (last->nelts == l->nalloc) {

        /* the last part is full, allocate a new list part */

        last = xmalloc(sizeof(ngx_list_part_t));
        last->elts = xmalloc(l->nalloc * l->size);
        last->nelts = 0;
        last->next = NULL;

        l->last->next = last;
        l->last = last;

        truth.kvs_parts++;
    }

    elt = (char *) last->elts + l->size * last->nelts;
    last->nelts++;

    return elt;
}

/* ------------------------------------------------------------------------ */
/* ngx_queue.h                                                              */
/* ------------------------------------------------------------------------ */

static void
ngx_queue_init(ngx_queue_t *q)
{
    q->prev = q;
    q->next = q;
}

static void
ngx_queue_insert_tail(ngx_queue_t *h, ngx_queue_t *x)
{
    x->prev = h->prev;
    x->prev->next = x;
    x->next = h;
    h->prev = x;
}

/* ------------------------------------------------------------------------ */
/* ngx_rbtree.c                                                             */
/* ------------------------------------------------------------------------ */

#define ngx_rbt_red(node)               ((node)->color = 1)
#define ngx_rbt_black(node)             ((node)->color = 0)
#define ngx_rbt_is_red(node)            ((node)->color)
#define ngx_rbtree_sentinel_init(node)  ngx_rbt_black(node)

static void
ngx_rbtree_init(ngx_rbtree_t *tree, ngx_rbtree_node_t *s, ngx_rbtree_insert_pt i)
{
    ngx_rbtree_sentinel_init(s);
    tree->root = s;
    tree->sentinel = s;
    tree->insert = i;
}

static void
ngx_rbtree_left_rotate(ngx_rbtree_node_t **root, ngx_rbtree_node_t *sentinel,
    ngx_rbtree_node_t *node)
{
    ngx_rbtree_node_t *temp;

    temp = node->right;
    node->right = temp->left;

    if (temp->left != sentinel) {
        temp->left->parent = node;
    }

    temp->parent = node->parent;

    if (node == *root) {
        *root = temp;

    } else if (node == node->parent->left) {
        node->parent->left = temp;

    } else {
        node->parent->right = temp;
    }

    temp->left = node;
    node->parent = temp;
}

static void
ngx_rbtree_right_rotate(ngx_rbtree_node_t **root, ngx_rbtree_node_t *sentinel,
    ngx_rbtree_node_t *node)
{
    ngx_rbtree_node_t *temp;

    temp = node->left;
    node->left = temp->right;

    if (temp->right != sentinel) {
        temp->right->parent = node;
    }

    temp->parent = node->parent;

    if (node == *root) {
        *root = temp;

    } else if (node == node->parent->right) {
        node->parent->right = temp;

    } else {
        node->parent->left = temp;
    }

    temp->right = node;
    node->parent = temp;
}

static void
ngx_rbtree_insert(ngx_rbtree_t *tree, ngx_rbtree_node_t *node)
{
    ngx_rbtree_node_t **root, *temp, *sentinel;

    /* a binary tree insert */

    root = &tree->root;
    sentinel = tree->sentinel;

    if (*root == sentinel) {
        node->parent = NULL;            /* the root's parent is NULL */
        node->left = sentinel;
        node->right = sentinel;
        ngx_rbt_black(node);
        *root = node;

        return;
    }

    tree->insert(*root, node, sentinel);

    /* re-balance tree */

    while (node != *root && ngx_rbt_is_red(node->parent)) {

        if (node->parent == node->parent->parent->left) {
            temp = node->parent->parent->right;

            if (ngx_rbt_is_red(temp)) {
                ngx_rbt_black(node->parent);
                ngx_rbt_black(temp);
                ngx_rbt_red(node->parent->parent);
                node = node->parent->parent;

            } else {
                if (node == node->parent->right) {
                    node = node->parent;
                    ngx_rbtree_left_rotate(root, sentinel, node);
                }

                ngx_rbt_black(node->parent);
                ngx_rbt_red(node->parent->parent);
                ngx_rbtree_right_rotate(root, sentinel, node->parent->parent);
            }

        } else {
            temp = node->parent->parent->left;

            if (ngx_rbt_is_red(temp)) {
                ngx_rbt_black(node->parent);
                ngx_rbt_black(temp);
                ngx_rbt_red(node->parent->parent);
                node = node->parent->parent;

            } else {
                if (node == node->parent->left) {
                    node = node->parent;
                    ngx_rbtree_right_rotate(root, sentinel, node);
                }

                ngx_rbt_black(node->parent);
                ngx_rbt_red(node->parent->parent);
                ngx_rbtree_left_rotate(root, sentinel, node->parent->parent);
            }
        }
    }

    ngx_rbt_black(*root);
}

/*
 * nginx's insert function for timer trees: keys are compared as a signed
 * difference so that they may wrap around.  walkee's keys are < 2^31, where
 * this orders exactly like an unsigned comparison.
 */
static void
ngx_rbtree_insert_timer_value(ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t **p;

    for ( ;; ) {

        /*  node->key < temp->key */

        p = ((ngx_rbtree_key_int_t) (node->key - temp->key) < 0)
            ? &temp->left : &temp->right;

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}

/* ------------------------------------------------------------------------ */
/* Building the structures                                                  */
/* ------------------------------------------------------------------------ */

/* Each structure draws from its own stream, so that e.g. --nodes does not
   change the timers' keys. */
static uint64_t
stream_seed(uint64_t salt)
{
    uint64_t s = opt.seed ^ salt;

    return splitmix64(&s);
}

/* (Re)links the list nodes in list_order; used by build and by `repair`. */
static void
link_list(void)
{
    uint64_t n = opt.nodes;

    for (uint64_t k = 0; k < n; k++) {
        walkee_item_t *it = ITEM(list_order[k]);

        it->next = (k + 1 < n) ? ITEM(list_order[k + 1]) : NULL;
        it->pad = k;
    }

    walkee.list = n ? ITEM(list_order[0]) : NULL;
}

static void
build_list(void)
{
    uint64_t n = opt.nodes;
    uint64_t rng = stream_seed(0x6c697374);     /* "list" */

    if (opt.stride > sizeof(walkee_item_t)) {
        /* nodes far apart: only the pages that hold one become resident */
        list_items = mmap(NULL, n * opt.stride, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        CHECK(list_items != MAP_FAILED);
    } else {
        list_items = xmalloc(n * sizeof(walkee_item_t));
    }
    list_order = xmalloc(n * sizeof(uint64_t));

    for (uint64_t i = 0; i < n; i++) {
        ITEM(i)->value = i * 7 + 3;
        list_order[i] = i;

        truth.list_count++;
        truth.list_sum += ITEM(i)->value;
    }

    if (opt.shuffled) {
        /* Fisher-Yates: list order becomes a random walk through the array */
        for (uint64_t i = n; i > 1; i--) {
            uint64_t j = splitmix64(&rng) % i;
            uint64_t tmp = list_order[i - 1];

            list_order[i - 1] = list_order[j];
            list_order[j] = tmp;
        }
    }

    link_list();
    walkee.list_len = n;
}

/* A small allocation of a random size, and way, from pool `pool`. */
static void
pool_small_alloc(ngx_pool_t *pool, uint64_t *rng, int fill)
{
    uint64_t r = splitmix64(rng) % 100;
    size_t size;
    u_char *m;

    if (r < 70) {
        size = 1 + splitmix64(rng) % 48;
    } else if (r < 95) {
        size = 49 + splitmix64(rng) % 208;
    } else {
        size = 257 + splitmix64(rng) % 644;
    }

    /* stay small with any --pool-size: large ones are made on purpose only */
    if (size > pool->max) {
        size = pool->max;
    }

    switch (splitmix64(rng) % 3) {
    case 0:
        m = ngx_palloc(pool, size);
        memset(m, fill, size);
        break;
    case 1:
        m = ngx_pnalloc(pool, size);
        memset(m, fill, size);
        break;
    default:
        m = ngx_pcalloc(pool, size);
        break;
    }

    CHECK(m != NULL);
}

/* A large allocation (always > max, always < glibc's mmap threshold). */
static void *
pool_large_alloc(ngx_pool_t *pool, uint64_t *rng)
{
    size_t size = 5000 + splitmix64(rng) % 95001;
    void *p = ngx_palloc(pool, size);

    CHECK(p != NULL);
    memset(p, 0x4c, 64);
    return p;
}

/*
 * Pool i gets a deterministic mix, by i % 3:
 *   0: 3 + i % 4 larges, the 2nd pfree'd (its entry stays, alloc == NULL);
 *   1: no larges;
 *   2: 2 larges, the 1st pfree'd, then one more that reuses its entry.
 * and 0 cleanups when i % 4 == 1, else 1 + i % 3.  Small allocations are
 * interleaved with those, enough to fill several blocks, so that `failed`
 * passes 4 and `current` moves on in the default 1024-byte pools.
 */
static void
fill_pool(ngx_pool_t *pool, ngx_uint_t i, uint64_t *rng)
{
    ngx_uint_t nsmall = 80 + 23 * (i % 5);
    ngx_uint_t nlarge = (i % 3 == 0) ? 3 + i % 4 : (i % 3 == 2) ? 2 : 0;
    ngx_uint_t ncleanup = (i % 4 == 1) ? 0 : 1 + i % 3;
    ngx_uint_t nl = 0, nc = 0;
    void *larges[8];

    for (ngx_uint_t k = 0; k < nsmall; k++) {
        pool_small_alloc(pool, rng, 'a' + (int) (i % 26));

        if (nl < nlarge && k == (nl + 1) * nsmall / (nlarge + 1)) {
            larges[nl++] = pool_large_alloc(pool, rng);
        }

        if (nc < ncleanup && k == (nc + 1) * nsmall / (ncleanup + 1) + 1) {
            ngx_pool_cleanup_t *c = ngx_pool_cleanup_add(pool, nc % 2 ? 24 : 0);

            CHECK(c != NULL);
            c->handler = walkee_cleanup_handler;
            if (c->data) {
                memset(c->data, 0x43, 24);
            }
            nc++;
        }
    }

    CHECK(nl == nlarge && nc == ncleanup);

    if (i % 3 == 0) {
        CHECK(ngx_pfree(pool, larges[1]) == NGX_OK);

    } else if (i % 3 == 2) {
        CHECK(ngx_pfree(pool, larges[0]) == NGX_OK);
        pool_large_alloc(pool, rng);
    }
}

static void
build_pools(void)
{
    uint64_t rng = stream_seed(0x706f6f6c);     /* "pool" */

    walkee.pools = xmalloc(opt.pools * sizeof(ngx_pool_t *));
    truth.pools = xmalloc(opt.pools * sizeof(pool_truth_t));

    for (ngx_uint_t i = 0; i < opt.pools; i++) {
        ngx_pool_t *pool = ngx_create_pool(opt.pool_size, NULL);

        CHECK(pool != NULL);
        pool_truth_track(pool, opt.pool_size);
        fill_pool(pool, i, &rng);
        walkee.pools[i] = pool;
    }

    walkee.npools = opt.pools;
}

static void
build_array(void)
{
    ngx_array_t *a = xmalloc(sizeof(ngx_array_t));

    /* start small, so that pushes grow it: nalloc ends >= nelts */
    ngx_array_init(a, NULL, 16, sizeof(walkee_elt_t));

    for (uint64_t i = 0; i < opt.array; i++) {
        walkee_elt_t *e = ngx_array_push(a);

        e->id = i;
        e->weight = (uint32_t) ((i * 31 + 17) % 1000);
        e->flags = (uint32_t) (i & 0xff);

        truth.array_count++;
        truth.id_sum += e->id;
        truth.weight_sum += e->weight;
    }

    walkee.array = a;
}

/* A copy of a string into exactly len malloc'd bytes, without a NUL. */
static ngx_str_t
make_str(const char *s, size_t len)
{
    ngx_str_t str;

    str.len = len;
    str.data = xmalloc(len);
    memcpy(str.data, s, len);
    return str;
}

static void
build_kvs(void)
{
    ngx_list_t *l = xmalloc(sizeof(ngx_list_t));
    char buf[64];

    ngx_list_init(l, NULL, 8, sizeof(walkee_kv_t));

    for (uint64_t i = 0; i < opt.kvs; i++) {
        walkee_kv_t *kv = ngx_list_push(l);
        int len;

        len = snprintf(buf, sizeof(buf), "k%" PRIu64, i);
        kv->key = make_str(buf, (size_t) len);

        len = snprintf(buf, sizeof(buf), "value-%" PRIu64, i);
        kv->value = make_str(buf, (size_t) len);

        truth.kvs_count++;
        truth.key_bytes += kv->key.len;
        truth.value_bytes += kv->value.len;
    }

    walkee.kvs = l;
}

static void
build_jobs(void)
{
    ngx_queue_init(&walkee.jobs);
    jobs_by_id = xmalloc(opt.jobs * sizeof(walkee_job_t *));

    for (uint64_t i = 0; i < opt.jobs; i++) {
        walkee_job_t *job = xmalloc(sizeof(walkee_job_t));

        job->id = i;
        job->cost = (i * 37 + 11) % 101 + 1;
        ngx_queue_insert_tail(&walkee.jobs, &job->link);
        jobs_by_id[i] = job;

        if (truth.jobs_count == 0) {
            truth.first_id = job->id;
        }
        truth.last_id = job->id;
        truth.jobs_count++;
        truth.cost_sum += job->cost;
    }
}

/*
 * Distinct pseudo-random 31-bit keys without rejection: a bijection on
 * [0, 2^31) applied to i (xor with a constant, multiplications by odd
 * numbers mod 2^31 and xor-shifts are each invertible).
 */
static uint64_t
timer_key(uint64_t i, uint64_t salt)
{
    uint32_t x = (uint32_t) ((i ^ salt) & 0x7fffffff);

    x = (x * 0x2c1b3c6dU) & 0x7fffffff;
    x ^= x >> 13;
    x = (x * 0x297a2d39U) & 0x7fffffff;
    x ^= x >> 16;
    return x;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return (x > y) - (x < y);
}

static void
build_timers(void)
{
    uint64_t salt = stream_seed(0x74696d65);    /* "time" */
    uint64_t *keys = xmalloc(opt.timers * sizeof(uint64_t));

    ngx_rbtree_init(&walkee.timers, &walkee.timer_sentinel,
                    ngx_rbtree_insert_timer_value);

    for (uint64_t i = 0; i < opt.timers; i++) {
        walkee_timer_t *t = xmalloc(sizeof(walkee_timer_t));

        memset(t, 0, sizeof(*t));
        t->node.key = timer_key(i, salt);
        t->payload = i * 11 + 1;
        ngx_rbtree_insert(&walkee.timers, &t->node);

        keys[i] = t->node.key;
        if (truth.timers_count == 0 || t->node.key < truth.min_key) {
            truth.min_key = t->node.key;
        }
        if (truth.timers_count == 0 || t->node.key > truth.max_key) {
            truth.max_key = t->node.key;
        }
        truth.timers_count++;
        truth.key_sum += t->node.key;
    }

    /* the in-order hash from a sorted copy of the keys, not from the tree */
    qsort(keys, opt.timers, sizeof(uint64_t), cmp_u64);
    for (uint64_t i = 0; i < opt.timers; i++) {
        CHECK(i == 0 || keys[i] > keys[i - 1]);
        truth.inorder_hash = (truth.inorder_hash * 1000003 + keys[i])
                             & 0x7fffffff;
    }
    free(keys);
}

/* The BST's truth, by C's own recursion: count, sum, and both orders' hashes. */
static void
bst_truth(walkee_tnode_t *n, uint64_t depth)
{
    if (n == NULL) {
        return;
    }
    truth.bst_preorder_hash = (truth.bst_preorder_hash * 1000003 + n->key) & 0x7fffffff;
    if (depth > truth.bst_depth) {
        truth.bst_depth = depth;
    }
    bst_truth(n->left, depth + 1);
    truth.bst_count++;
    truth.bst_key_sum += n->key;
    truth.bst_inorder_hash = (truth.bst_inorder_hash * 1000003 + n->key) & 0x7fffffff;
    bst_truth(n->right, depth + 1);
}

/* As many nodes as timers, with keys of their own, inserted as they come (so the tree is as deep as it happens to be). */
static void
build_bst(void)
{
    uint64_t salt = stream_seed(0x62737421);    /* "bst!" */

    for (uint64_t i = 0; i < opt.timers; i++) {
        walkee_tnode_t *t = xmalloc(sizeof(walkee_tnode_t)), **at = &walkee.bst;

        t->key = timer_key(i, salt);
        t->left = t->right = NULL;
        while (*at != NULL) {
            at = t->key < (*at)->key ? &(*at)->left : &(*at)->right;
        }
        *at = t;
    }
    bst_truth(walkee.bst, 1);
}

/* ------------------------------------------------------------------------ */
/* The ticker thread: how long was the process stopped?                     */
/* ------------------------------------------------------------------------ */

/*
 * Gaps are counted in 1 us buckets below GAP_EXACT us, and in one bucket per
 * power of two above; p99 in the latter is reported as the bucket's upper
 * bound (capped at the max).
 */
#define GAP_EXACT    4096
#define GAP_EXACT_LOG2 12
#define GAP_BUCKETS  (GAP_EXACT + 64)

static struct {
    pthread_mutex_t mu;
    uint64_t iterations;
    uint64_t max_gap_us;
    /*
     * The longest a round was held off beyond its nap while neither running nor waiting for a CPU
     * (the wall gap less its CPU time and run-queue wait, from /proc/thread-self/schedstat): a stop
     * (SIGSTOP, ptrace) shows here whole, the scheduler's delays on a busy host do not.
     */
    uint64_t max_held_us;
    uint64_t hist[GAP_BUCKETS];
    struct timespec since;              /* start of the current period */
} gaps = { .mu = PTHREAD_MUTEX_INITIALIZER };

static volatile uint64_t ticker_sink;

static uint64_t
elapsed_us(const struct timespec *from, const struct timespec *to)
{
    int64_t us = (int64_t) (to->tv_sec - from->tv_sec) * 1000000
                 + (to->tv_nsec - from->tv_nsec) / 1000;

    return us > 0 ? (uint64_t) us : 0;
}

static unsigned
gap_bucket(uint64_t us)
{
    if (us < GAP_EXACT) {
        return (unsigned) us;
    }
    /* floor(log2(us)) >= GAP_EXACT_LOG2 */
    return GAP_EXACT + (unsigned) (63 - __builtin_clzll(us)) - GAP_EXACT_LOG2;
}

static uint64_t
gap_bucket_upper(unsigned b)
{
    if (b < GAP_EXACT) {
        return b;
    }
    unsigned log2 = b - GAP_EXACT + GAP_EXACT_LOG2;
    return log2 >= 63 ? UINT64_MAX : (2ULL << log2) - 1;
}

/* This thread's time on a CPU and waiting for one, in ns (/proc/thread-self/schedstat); 0 if unreadable. */
static uint64_t
sched_busy_ns(int fd)
{
    char buf[96];
    unsigned long long run = 0, wait = 0;
    ssize_t n = fd >= 0 ? pread(fd, buf, sizeof(buf) - 1, 0) : -1;

    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    if (sscanf(buf, "%llu %llu", &run, &wait) != 2) {
        return 0;
    }
    return (uint64_t) run + (uint64_t) wait;
}

static void *
ticker_main(void *arg)
{
    const struct timespec nap = { 0, 200000 };      /* 200 us */
    struct timespec prev, now;
    uint64_t work = 1;
    int sched_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    uint64_t busy_prev, busy_now;

    (void) arg;
    clock_gettime(CLOCK_MONOTONIC, &prev);
    busy_prev = sched_busy_ns(sched_fd);

    for ( ;; ) {
        /* a small bit of work, as a real event loop would do */
        for (int k = 0; k < 32; k++) {
            work ^= splitmix64(&work);
        }
        ticker_sink = work;

        clock_gettime(CLOCK_MONOTONIC, &now);
        busy_now = sched_busy_ns(sched_fd);
        uint64_t gap = elapsed_us(&prev, &now);
        uint64_t busy_us = (busy_now - busy_prev) / 1000;
        uint64_t held = gap > busy_us + 200 ? gap - busy_us - 200 : 0;
        prev = now;
        busy_prev = busy_now;

        pthread_mutex_lock(&gaps.mu);
        gaps.iterations++;
        if (gap > gaps.max_gap_us) {
            gaps.max_gap_us = gap;
        }
        if (held > gaps.max_held_us) {
            gaps.max_held_us = held;
        }
        gaps.hist[gap_bucket(gap)]++;
        pthread_mutex_unlock(&gaps.mu);

        nanosleep(&nap, NULL);
    }

    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The mutator thread                                                       */
/* ------------------------------------------------------------------------ */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int want_on;                        /* set by main */
    int running;                        /* set by the mutator */
} mut = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };

/* The churn pool: not in walkee.pools, so not in the truth. */
static ngx_pool_t *churn_pool;

static void *
mutator_main(void *arg)
{
    const struct timespec nap = { 0, 50000 };       /* 50 us between batches */
    uint64_t rng = stream_seed(0x6d757461);         /* "muta" */
    uint64_t n = opt.nodes;
    unsigned churn_allocs = 0;

    (void) arg;

    for ( ;; ) {
        pthread_mutex_lock(&mut.mu);
        while (!mut.want_on) {
            if (mut.running) {
                mut.running = 0;
                pthread_cond_broadcast(&mut.cv);    /* `mutate off` waits */
            }
            pthread_cond_wait(&mut.cv, &mut.mu);
        }
        mut.running = 1;
        pthread_mutex_unlock(&mut.mu);

        /* swap values between list nodes: the links and the sum stay */
        if (n > 1) {
            for (int k = 0; k < 256; k++) {
                walkee_item_t *a = ITEM(splitmix64(&rng) % n);
                walkee_item_t *b = ITEM(splitmix64(&rng) % n);
                uint64_t v = a->value;

                a->value = b->value;
                b->value = v;
            }
        }

        /* allocate from the churn pool, and now and then start it afresh */
        for (int k = 0; k < 16; k++) {
            if (churn_pool == NULL) {
                churn_pool = ngx_create_pool(opt.pool_size, NULL);
                CHECK(churn_pool != NULL);
            }

            pool_small_alloc(churn_pool, &rng, 'z');
            churn_allocs++;

            if (churn_allocs % 64 == 0) {
                ngx_pool_cleanup_t *c = ngx_pool_cleanup_add(churn_pool, 0);

                CHECK(c != NULL);
                c->handler = walkee_cleanup_handler;
            }
            if (churn_allocs % 128 == 0) {
                pool_large_alloc(churn_pool, &rng);
            }
            if (churn_allocs % 2048 == 0) {
                ngx_destroy_pool(churn_pool);
                churn_pool = NULL;
            }
        }

        nanosleep(&nap, NULL);
    }

    return NULL;
}

static void
mutate(int on)
{
    pthread_mutex_lock(&mut.mu);
    mut.want_on = on;
    pthread_cond_broadcast(&mut.cv);
    if (!on) {
        /* answer only once the mutator has finished its batch */
        while (mut.running) {
            pthread_cond_wait(&mut.cv, &mut.mu);
        }
    }
    pthread_mutex_unlock(&mut.mu);
}

/* ------------------------------------------------------------------------ */
/* Commands                                                                 */
/* ------------------------------------------------------------------------ */

#define ADDR(p)  ((uintptr_t) (p))

static void
print_truth(void)
{
    printf("{\"list\":{\"count\":%" PRIu64 ",\"sum\":%" PRIu64
           ",\"head\":\"0x%" PRIxPTR "\"}",
           truth.list_count, truth.list_sum,
           ADDR(opt.nodes ? ITEM(list_order[0]) : NULL));

    printf(",\"pools\":[");
    for (ngx_uint_t i = 0; i < truth.npools; i++) {
        pool_truth_t *t = &truth.pools[i];

        printf("%s{\"addr\":\"0x%" PRIxPTR "\",\"blocks\":%" PRIu64
               ",\"used\":%" PRIu64 ",\"free\":%" PRIu64
               ",\"failed\":%" PRIu64 ",\"large_count\":%" PRIu64
               ",\"large_bytes\":%" PRIu64 ",\"cleanups\":%" PRIu64 "}",
               i ? "," : "", ADDR(t->pool), t->blocks, t->used, t->free,
               t->failed, t->large_count, t->large_bytes, t->cleanups);
    }
    printf("]");

    printf(",\"array\":{\"count\":%" PRIu64 ",\"weight_sum\":%" PRIu64
           ",\"id_sum\":%" PRIu64 "}",
           truth.array_count, truth.weight_sum, truth.id_sum);

    printf(",\"kvs\":{\"count\":%" PRIu64 ",\"parts\":%" PRIu64
           ",\"key_bytes\":%" PRIu64 ",\"value_bytes\":%" PRIu64 "}",
           truth.kvs_count, truth.kvs_parts, truth.key_bytes,
           truth.value_bytes);

    printf(",\"jobs\":{\"count\":%" PRIu64 ",\"cost_sum\":%" PRIu64,
           truth.jobs_count, truth.cost_sum);
    if (truth.jobs_count) {
        printf(",\"first_id\":%" PRIu64 ",\"last_id\":%" PRIu64 "}",
               truth.first_id, truth.last_id);
    } else {
        printf(",\"first_id\":null,\"last_id\":null}");
    }

    printf(",\"timers\":{\"count\":%" PRIu64 ",\"key_sum\":%" PRIu64,
           truth.timers_count, truth.key_sum);
    if (truth.timers_count) {
        printf(",\"min_key\":%" PRIu64 ",\"max_key\":%" PRIu64,
               truth.min_key, truth.max_key);
    } else {
        printf(",\"min_key\":null,\"max_key\":null");
    }
    printf(",\"inorder_hash\":%" PRIu64 "}", truth.inorder_hash);

    printf(",\"bst\":{\"count\":%" PRIu64 ",\"key_sum\":%" PRIu64
           ",\"inorder_hash\":%" PRIu64 ",\"preorder_hash\":%" PRIu64
           ",\"depth\":%" PRIu64 "}",
           truth.bst_count, truth.bst_key_sum, truth.bst_inorder_hash,
           truth.bst_preorder_hash, truth.bst_depth);

    printf(",\"arrays\":{\"tag\":\"%s\",\"counts\":[%u,%u,%u,%u]"
           ",\"heads\":[\"0x%" PRIxPTR "\",\"0x%" PRIxPTR "\"]}",
           walkee.tag, walkee.counts[0], walkee.counts[1], walkee.counts[2],
           walkee.counts[3], ADDR(walkee.heads[0]), ADDR(walkee.heads[1]));

    printf(",\"name\":\"%.*s\"}\n", (int) walkee.name.len, walkee.name.data);
}

static void
print_gaps(void)
{
    struct timespec now;
    uint64_t n, max, held, p99 = 0, seen = 0, rank, elapsed;

    pthread_mutex_lock(&gaps.mu);

    clock_gettime(CLOCK_MONOTONIC, &now);
    elapsed = elapsed_us(&gaps.since, &now);
    n = gaps.iterations;
    max = gaps.max_gap_us;
    held = gaps.max_held_us;

    rank = (n * 99 + 99) / 100;                     /* ceil(0.99 n) */
    for (unsigned b = 0; n && b < GAP_BUCKETS; b++) {
        seen += gaps.hist[b];
        if (seen >= rank) {
            p99 = gap_bucket_upper(b);
            break;
        }
    }
    if (p99 > max) {
        p99 = max;
    }

    gaps.iterations = 0;
    gaps.max_gap_us = 0;
    gaps.max_held_us = 0;
    memset(gaps.hist, 0, sizeof(gaps.hist));
    gaps.since = now;

    pthread_mutex_unlock(&gaps.mu);

    printf("{\"iterations\":%" PRIu64 ",\"elapsed_us\":%" PRIu64
           ",\"max_gap_us\":%" PRIu64 ",\"p99_gap_us\":%" PRIu64 ",\"max_held_us\":%" PRIu64 "}\n",
           n, elapsed, max, p99, held);
}

static void
print_error(const char *what, const char *arg)
{
    printf("{\"error\":\"%s", what);
    for (const unsigned char *s = (const unsigned char *) arg; *s; s++) {
        if (*s == '"' || *s == '\\') {
            printf("\\%c", *s);
        } else if (*s < 0x20 || *s >= 0x7f) {
            printf("\\u%04x", *s);
        } else {
            putchar(*s);
        }
    }
    printf("\"}\n");
}

static void
print_ok(void)
{
    printf("{\"ok\":true}\n");
}

/*
 * Corruptions, each undone by `repair` from the bookkeeping (list_order,
 * jobs_by_id, the pools' last_block), whatever combination was applied.
 * The truth keeps describing the intact structures.
 */
static int
corrupt(const char *what)
{
    uint64_t n = opt.nodes;

    if (strcmp(what, "cycle") == 0 && n) {
        /* the last node points back to the one in the middle */
        ITEM(list_order[n - 1])->next = ITEM(list_order[n / 2]);

    } else if (strcmp(what, "badptr") == 0 && n) {
        ITEM(list_order[n / 2])->next = (walkee_item_t *) 0x10;

    } else if (strcmp(what, "pool-cycle") == 0 && truth.npools) {
        truth.pools[0].last_block->d.next = truth.pools[0].pool;

    } else if (strcmp(what, "queue") == 0 && opt.jobs) {
        jobs_by_id[opt.jobs / 2]->link.next = (ngx_queue_t *) 0x10;

    } else {
        return -1;
    }

    return 0;
}

static void
repair(void)
{
    link_list();

    if (truth.npools) {
        truth.pools[0].last_block->d.next = NULL;
    }

    if (opt.jobs) {
        uint64_t m = opt.jobs / 2;

        jobs_by_id[m]->link.next = (m + 1 < opt.jobs)
                                   ? &jobs_by_id[m + 1]->link : &walkee.jobs;
    }
}

/* Answers one command; returns 0 to go on, 1 to quit. */
static int
command(const char *cmd)
{
    if (strcmp(cmd, "truth") == 0) {
        print_truth();

    } else if (strcmp(cmd, "gaps") == 0) {
        print_gaps();

    } else if (strcmp(cmd, "mutate on") == 0) {
        mutate(1);
        print_ok();

    } else if (strcmp(cmd, "mutate off") == 0) {
        mutate(0);
        print_ok();

    } else if (strncmp(cmd, "corrupt ", 8) == 0) {
        if (corrupt(cmd + 8) == 0) {
            print_ok();
        } else {
            print_error("cannot corrupt (unknown kind or empty structure): ",
                        cmd + 8);
        }

    } else if (strcmp(cmd, "repair") == 0) {
        repair();
        print_ok();

    } else if (strcmp(cmd, "quit") == 0) {
        print_ok();
        return 1;

    } else {
        print_error("unknown command: ", cmd);
    }

    return 0;
}

/* ------------------------------------------------------------------------ */
/* main                                                                     */
/* ------------------------------------------------------------------------ */

/* The version string xsample's pack selection looks for (binary.version). */
#define WALKEE_VERSION "walkee/1.0"

static void
usage(FILE *out)
{
    fprintf(out,
WALKEE_VERSION "\n"
"usage: walkee [options]\n"
"\n"
"Builds nginx-shaped data structures reachable from the global `walkee`,\n"
"prints {\"ready\":true,\"pid\":PID}, then answers commands read from stdin,\n"
"one per line, with one JSON line each on stdout.\n"
"\n"
"options:\n"
"  --nodes N        linked list of N walkee_item_t (default 1000)\n"
"  --layout L       contiguous | shuffled list order (default contiguous)\n"
"  --stride B       list nodes B bytes apart in memory (default: packed)\n"
"  --seed S         seed of every random choice (default 1)\n"
"  --pools P        P nginx pools in walkee.pools (default 4)\n"
"  --pool-size B    bytes per pool block, >= %zu, a multiple of 16\n"
"                   (default 1024)\n"
"  --array M        ngx_array_t of M walkee_elt_t (default 100)\n"
"  --kvs K          ngx_list_t of K walkee_kv_t, 8 per part (default 50)\n"
"  --jobs J         ngx_queue_t of J walkee_job_t (default 20)\n"
"  --timers T       ngx_rbtree_t of T walkee_timer_t (default 30)\n"
"  --help           this text\n"
"\n"
"commands:\n"
"  truth            the ground truth, as bookkept while building\n"
"  gaps             ticker statistics since the previous `gaps`\n"
"  mutate on|off    start/stop the mutator thread\n"
"  corrupt cycle|badptr|pool-cycle|queue\n"
"  repair           undo every corruption\n"
"  quit             answer {\"ok\":true} and exit 0 (so does EOF)\n",
        (size_t) NGX_MIN_POOL_SIZE);
}

static void
bad_option(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "walkee: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\nTry 'walkee --help'.\n");
    exit(2);
}

static uint64_t
parse_count(const char *name, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    unsigned long long v;
    char range[64];

    snprintf(range, sizeof(range), "[%llu, %llu]",
             (unsigned long long) min, (unsigned long long) max);

    if (*s < '0' || *s > '9') {
        bad_option("--%s: not a number: '%s'", name, s);
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (*end != '\0' || errno == ERANGE || v < min || v > max) {
        fprintf(stderr, "walkee: --%s: expected an integer in %s, got '%s'\n"
                "Try 'walkee --help'.\n", name, range, s);
        exit(2);
    }
    return v;
}

static void
parse_options(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "nodes",     required_argument, NULL, 'n' },
        { "layout",    required_argument, NULL, 'l' },
        { "seed",      required_argument, NULL, 's' },
        { "pools",     required_argument, NULL, 'p' },
        { "pool-size", required_argument, NULL, 'z' },
        { "array",     required_argument, NULL, 'a' },
        { "kvs",       required_argument, NULL, 'k' },
        { "jobs",      required_argument, NULL, 'j' },
        { "timers",    required_argument, NULL, 't' },
        { "stride",    required_argument, NULL, 'r' },
        { "help",      no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int c;

    opterr = 0;     /* our own messages */

    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'n': opt.nodes = parse_count("nodes", optarg, 0, MAX_NODES); break;
        case 's': opt.seed = parse_count("seed", optarg, 0, UINT64_MAX); break;
        case 'p': opt.pools = parse_count("pools", optarg, 0, MAX_POOLS); break;
        case 'a': opt.array = parse_count("array", optarg, 0, MAX_ARRAY); break;
        case 'k': opt.kvs = parse_count("kvs", optarg, 0, MAX_KVS); break;
        case 'j': opt.jobs = parse_count("jobs", optarg, 0, MAX_JOBS); break;
        case 't':
            opt.timers = parse_count("timers", optarg, 0, MAX_TIMERS);
            break;
        case 'r':
            opt.stride = parse_count("stride", optarg, sizeof(walkee_item_t), 1024 * 1024);
            if (opt.stride % 8) {
                bad_option("--%s: must be a multiple of 8: '%s'", "stride", optarg);
            }
            break;
        case 'z':
            opt.pool_size = parse_count("pool-size", optarg, NGX_MIN_POOL_SIZE,
                                        MAX_POOL_SIZE);
            if (opt.pool_size % NGX_POOL_ALIGNMENT) {
                bad_option("--%s: must be a multiple of 16: '%s'",
                           "pool-size", optarg);
            }
            break;
        case 'l':
            if (strcmp(optarg, "contiguous") == 0) {
                opt.shuffled = 0;
            } else if (strcmp(optarg, "shuffled") == 0) {
                opt.shuffled = 1;
            } else {
                bad_option("--%s: expected contiguous or shuffled, got '%s'",
                           "layout", optarg);
            }
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case ':':
            bad_option("%s: missing argument%s", argv[optind - 1], "");
            break;
        default:
            bad_option("unknown option '%s'%s", argv[optind - 1], "");
        }
    }

    if (optind < argc) {
        bad_option("unexpected argument '%s'%s", argv[optind], "");
    }
}

int
main(int argc, char **argv)
{
    pthread_t ticker, mutator;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;

    parse_options(argc, argv);

    clock_gettime(CLOCK_MONOTONIC, &gaps.since);
    CHECK(pthread_create(&ticker, NULL, ticker_main, NULL) == 0);

    build_list();
    build_pools();
    build_array();
    build_kvs();
    build_jobs();
    build_timers();
    build_bst();
    strcpy(walkee.tag, "walkee-tag");
    walkee.counts[0] = (uint32_t) opt.nodes;
    walkee.counts[1] = (uint32_t) opt.pools;
    walkee.counts[2] = (uint32_t) opt.array;
    walkee.counts[3] = (uint32_t) opt.jobs;
    walkee.heads[0] = walkee.list;
    walkee.heads[1] = NULL;
    walkee.name.len = sizeof("walkee") - 1;
    walkee.name.data = (u_char *) "walkee";

    /* created after building: it never sees the registry change */
    CHECK(pthread_create(&mutator, NULL, mutator_main, NULL) == 0);

    /* stdout is a pipe, hence fully buffered: flush after every line */
    printf("{\"ready\":true,\"pid\":%ld}\n", (long) getpid());
    fflush(stdout);

    while ((len = getline(&line, &cap, stdin)) != -1) {
        char *cmd = line, *end = line + len;

        while (end > cmd && (end[-1] == '\n' || end[-1] == '\r'
                             || end[-1] == ' ' || end[-1] == '\t'))
        {
            *--end = '\0';
        }
        while (*cmd == ' ' || *cmd == '\t') {
            cmd++;
        }

        int quit = command(cmd);

        fflush(stdout);
        if (quit) {
            break;
        }
    }

    free(line);
    return 0;
}
