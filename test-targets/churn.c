/*
 * churn -- a live C process whose structures change all the time, for
 * xwalk's consistency tests: a sampler that reads it without stopping it
 * must give an answer that is right, or say that it is partial.
 *
 * Reachable from the global `churn`:
 *   - a cache of N entries, in a chained hash table (entry_t.next) and on an
 *     intrusive LRU list (entry_t.lru, an ngx_queue_t). Churn evicts the LRU
 *     tail, or an entry anywhere, and reuses its memory for a new key, at the head of another
 *     bucket and of the LRU: under a reader, chains merge and split.
 *   - each entry's key again in a shadow of its own (entry_t.shadow), in
 *     memory far from the entries, written once the entry is in place: a
 *     reader that takes the entry and its shadow at two moments sees them
 *     disagree.
 *   - a list of M nodes in a mapping of its own. Churn builds a fresh copy
 *     in a new mapping, swaps the root pointer, and unmaps the old one; the
 *     kernel hands the hole back at the next rebuild, so a reader that
 *     started on one copy may go on in another.
 *
 * Invariants, true at every instant (one writer, its stores in order):
 *   cache: the table holds N or N-1 entries, the LRU list N or N-1 (an
 *          entry is out of both while it moves); every entry but the one
 *          moving has its shadow's key;
 *   list:  exactly M nodes whose values sum to M(M+1)/2 (the root is
 *          swapped in one store, once the new copy is whole).
 * So a complete answer outside these ranges is wrong.
 *
 * Commands on stdin, one JSON line each on stdout:
 *   truth       the invariants and how much churn has happened
 *   churn on [US]  start churning in rounds (many moves, one rebuild), resting
 *               US microseconds after each (default 0); answers once the
 *               first round is done
 *   churn off   stop (answers once the writer is idle: then all is still)
 *   exec        become /bin/sleep: the same pid, another program
 *   quit
 *
 * Build:
 *   cc -g -O2 -Wall -Wextra -pthread -o test-targets/bin/churn test-targets/churn.c
 */

#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHURN_VERSION "churn/1.0"

typedef struct ngx_queue_s ngx_queue_t;
struct ngx_queue_s {
    ngx_queue_t *prev;
    ngx_queue_t *next;
};

typedef struct {
    uint64_t key;
} shadow_t;

typedef struct entry_s entry_t;
struct entry_s {
    entry_t *next;                      /* hash chain */
    ngx_queue_t lru;
    uint64_t key;
    shadow_t *shadow;
};

typedef struct node_s node_t;
struct node_s {
    node_t *next;
    uint64_t value;
    uint64_t pad;
};

typedef struct {
    entry_t **buckets;
    uint64_t nbuckets;
    ngx_queue_t lru;                    /* sentinel: most recent first */
    uint64_t entries;
    node_t *list;
    uint64_t list_len;
    entry_t *all;                       /* every entry, in memory order */
} churn_root_t;

/* The root every walk starts from: non-static, so it is in .symtab. */
churn_root_t churn;

/* Stores a reader may see: in program order (release), never torn. */
#define PUBLISH(lvalue, v)  __atomic_store_n(&(lvalue), (v), __ATOMIC_RELEASE)

static struct {
    uint64_t entries, buckets, list;
} opt = { 100000, 16384, 20000 };

static entry_t *entries;                /* every entry lives here, reused forever */
static shadow_t *shadows;               /* a shadow each, allocated apart */
static size_t list_bytes;
static uint64_t rng = 0x636875726e;     /* "churn" */

static atomic_ulong ops, rebuilds;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int want_on, running;
static long rest_us;                    /* between rounds */

static void
die(const char *what)
{
    fprintf(stderr, "churn: %s\n", what);
    exit(1);
}

static uint64_t
splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t
bucket_of(uint64_t key)
{
    return (key * 0x9e3779b97f4a7c15ULL >> 17) % churn.nbuckets;
}

static void
cache_insert(entry_t *e, uint64_t key)
{
    uint64_t b = bucket_of(key);
    ngx_queue_t *h = &churn.lru;

    e->key = key;
    e->next = churn.buckets[b];
    PUBLISH(churn.buckets[b], e);

    e->lru.next = h->next;
    e->lru.prev = h;
    PUBLISH(h->next->prev, &e->lru);
    PUBLISH(h->next, &e->lru);
    PUBLISH(e->shadow->key, key);
}

/* An entry leaves its chain and the list; its memory comes back as a new key. */
static void
cache_evict_and_reuse(entry_t *e)
{
    ngx_queue_t *q = &e->lru;
    entry_t **pp = &churn.buckets[bucket_of(e->key)];

    while (*pp != e) {
        pp = &(*pp)->next;
    }
    PUBLISH(*pp, e->next);

    PUBLISH(q->prev->next, q->next);
    PUBLISH(q->next->prev, q->prev);

    cache_insert(e, splitmix64(&rng));
}

/* A whole new copy of the list in a fresh mapping, linked in shuffled order; returns its head. */
static node_t *
build_list(node_t **mapping)
{
    uint64_t m = opt.list;
    node_t *nodes = mmap(NULL, list_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t *order = malloc(m * sizeof(uint64_t));
    node_t *head;

    if (nodes == MAP_FAILED || order == NULL) {
        die("out of memory");
    }
    for (uint64_t i = 0; i < m; i++) {
        order[i] = i;
    }
    for (uint64_t i = m - 1; i > 0; i--) {
        uint64_t j = splitmix64(&rng) % (i + 1), t = order[i];

        order[i] = order[j];
        order[j] = t;
    }
    for (uint64_t k = 0; k < m; k++) {
        node_t *n = &nodes[order[k]];

        n->value = k + 1;
        n->next = k + 1 < m ? &nodes[order[k + 1]] : NULL;
    }
    head = &nodes[order[0]];
    free(order);
    *mapping = nodes;
    return head;
}

static node_t *list_mapping;            /* the mapping churn.list lives in */

static void
rebuild_list(void)
{
    node_t *old = list_mapping;
    node_t *head = build_list(&list_mapping);

    PUBLISH(churn.list, head);
    munmap(old, list_bytes);
    atomic_fetch_add(&rebuilds, 1);
}

static void *
churner(void *arg)
{
    (void) arg;
    for ( ;; ) {
        pthread_mutex_lock(&mu);
        while (!want_on) {
            if (running) {
                running = 0;
                pthread_cond_broadcast(&cv);        /* `churn off` waits */
            }
            pthread_cond_wait(&cv, &mu);
        }
        running = 1;
        pthread_mutex_unlock(&mu);

        /* a round: many moves through the cache, then one new copy of the list */
        for (int k = 0; k < 4096; k++) {
            /* the LRU tail, or (as an entry that expires) one anywhere in memory */
            entry_t *e = k % 2 ? &entries[splitmix64(&rng) % opt.entries]
                               : (entry_t *) ((char *) churn.lru.prev - offsetof(entry_t, lru));

            cache_evict_and_reuse(e);
        }
        atomic_fetch_add(&ops, 4096);
        rebuild_list();

        pthread_mutex_lock(&mu);
        pthread_cond_broadcast(&cv);                /* `churn on` waits for a round */
        pthread_mutex_unlock(&mu);
        if (rest_us > 0) {
            usleep(rest_us);
        }
    }
    return NULL;
}

static void
set_churning(int on, long rest)
{
    pthread_mutex_lock(&mu);
    want_on = on;
    rest_us = rest;
    pthread_cond_broadcast(&cv);
    if (on) {
        unsigned long seen = atomic_load(&rebuilds);

        while (atomic_load(&rebuilds) == seen) {
            pthread_cond_wait(&cv, &mu);
        }
    } else {
        while (running) {
            pthread_cond_wait(&cv, &mu);
        }
    }
    pthread_mutex_unlock(&mu);
}

static void
build(void)
{
    churn.nbuckets = opt.buckets;
    churn.buckets = calloc(opt.buckets, sizeof(entry_t *));
    entries = calloc(opt.entries, sizeof(entry_t));
    shadows = calloc(opt.entries, sizeof(shadow_t));
    if (churn.buckets == NULL || entries == NULL || shadows == NULL) {
        die("out of memory");
    }
    churn.lru.next = churn.lru.prev = &churn.lru;
    for (uint64_t i = 0; i < opt.entries; i++) {
        entries[i].shadow = &shadows[i];
        cache_insert(&entries[i], splitmix64(&rng));
    }
    churn.all = entries;
    churn.entries = opt.entries;

    list_bytes = opt.list * sizeof(node_t);
    churn.list = build_list(&list_mapping);
    churn.list_len = opt.list;
}

static void
print_truth(void)
{
    printf("{\"entries\":%" PRIu64 ",\"list_len\":%" PRIu64 ",\"list_sum\":%" PRIu64
           ",\"churning\":%s,\"ops\":%lu,\"rebuilds\":%lu}\n",
           opt.entries, opt.list, opt.list * (opt.list + 1) / 2, want_on ? "true" : "false",
           atomic_load(&ops), atomic_load(&rebuilds));
}

static uint64_t
number(const char *s, const char *name, uint64_t max)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < 1 || v > max) {
        fprintf(stderr, "churn: %s takes a whole number from 1 to %" PRIu64 "\n", name, max);
        exit(2);
    }
    return v;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "entries", required_argument, NULL, 'e' },
        { "buckets", required_argument, NULL, 'b' },
        { "list", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char line[256];
    pthread_t t;
    int c;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'e': opt.entries = number(optarg, "--entries", 10000000); break;
        case 'b': opt.buckets = number(optarg, "--buckets", 10000000); break;
        case 'l': opt.list = number(optarg, "--list", 10000000); break;
        case 'h':
            printf(CHURN_VERSION "\nusage: churn [--entries N] [--buckets B] [--list M]\n"
                   "commands on stdin: truth, churn on [REST_US], churn off, exec, quit\n");
            return 0;
        default:
            return 2;
        }
    }

    build();
    if (pthread_create(&t, NULL, churner, NULL) != 0) {
        die("cannot start the churn thread");
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("{\"ready\":true,\"pid\":%ld,\"version\":\"" CHURN_VERSION "\"}\n", (long) getpid());

    while (fgets(line, sizeof line, stdin) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, "truth") == 0) {
            print_truth();
        } else if (strncmp(line, "churn on", 8) == 0 && (line[8] == '\0' || line[8] == ' ')) {
            set_churning(1, line[8] ? strtol(line + 9, NULL, 10) : 0);
            printf("{\"ok\":true}\n");
        } else if (strcmp(line, "churn off") == 0) {
            set_churning(0, 0);
            printf("{\"ok\":true}\n");
        } else if (strcmp(line, "exec") == 0) {
            printf("{\"ok\":true}\n");
            fflush(stdout);
            execl("/bin/sleep", "sleep", "600", (char *) NULL);
            die("exec /bin/sleep failed");
        } else if (strcmp(line, "quit") == 0) {
            printf("{\"ok\":true}\n");
            return 0;
        } else {
            printf("{\"error\":\"unknown command\"}\n");
        }
    }
    return 0;
}
