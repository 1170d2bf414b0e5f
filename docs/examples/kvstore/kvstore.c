/* kvstore: a toy key-value store - a hash table of chains, an LRU list and an expiry tree. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct list_head { struct list_head *next, *prev; };    /* as the Linux kernel's */

typedef struct entry_s entry_t;
struct entry_s {
    char key[24];
    uint64_t value;
    entry_t *next;                  /* the rest of its bucket's chain */
    struct list_head lru;           /* most recently used first */
    entry_t *left, *right;          /* the expiry tree, ordered by expires */
    uint64_t expires;
};

typedef struct {
    entry_t *buckets[8];
    struct list_head lru;           /* the head: an empty list points at itself */
    entry_t *by_expiry;             /* a plain binary search tree, NULL leaves */
    uint32_t count;
} store_t;

store_t store;

static unsigned hash(const char *k) {
    unsigned h = 5381;
    while (*k) h = h * 33 + (unsigned char) *k++;
    return h % 8;
}

static void put(const char *key, uint64_t value, uint64_t expires) {
    entry_t *e = calloc(1, sizeof(*e));
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->value = value;
    e->expires = expires;
    unsigned b = hash(key);
    e->next = store.buckets[b];
    store.buckets[b] = e;
    e->lru.next = store.lru.next;
    e->lru.prev = &store.lru;
    store.lru.next->prev = &e->lru;
    store.lru.next = &e->lru;
    entry_t **at = &store.by_expiry;
    while (*at) at = expires < (*at)->expires ? &(*at)->left : &(*at)->right;
    *at = e;
    store.count++;
}

int main(void) {
    const char *words[] = {"apple", "banana", "cherry", "date", "elderberry", "fig", "grape", "honeydew", "kiwi", "lemon"};
    store.lru.next = store.lru.prev = &store.lru;
    for (int i = 0; i < 10; i++) put(words[i], (i + 1) * 100, (i * 7) % 10 * 1000);
    printf("kvstore pid %d\n", getpid());
    fflush(stdout);
    pause();
    return 0;
}
