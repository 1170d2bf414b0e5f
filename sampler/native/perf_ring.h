/* A perf event's ring as both perf addons map and read it: the metadata page, then a power of two of data
 * pages that the kernel writes records into (perf_event_open(2), "MMAP layout"). */
#ifndef XWALK_PERF_RING_H
#define XWALK_PERF_RING_H

#include <errno.h>
#include <linux/perf_event.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct perf_ring_map {
    int fd;
    size_t map_size;
    uint64_t data_size; /* a power of two */
    struct perf_event_mmap_page *meta;
    const unsigned char *data;
};

/* A software event's attributes, zeroed but for what says which event it is. */
static inline void perf_attr_software(struct perf_event_attr *attr, uint64_t config)
{
    memset(attr, 0, sizeof *attr);
    attr->size = sizeof *attr;
    attr->type = PERF_TYPE_SOFTWARE;
    attr->config = config;
}

/* Maps the ring of event fd with data_pages data pages (a power of two) and takes the fd: 0, or -errno with
 * the fd closed. */
static inline int perf_ring_map(struct perf_ring_map *m, int fd, uint64_t data_pages)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    m->fd = fd;
    m->data_size = (uint64_t)page * data_pages;
    m->map_size = page + (size_t)m->data_size;
    void *p = mmap(NULL, m->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        close(fd);
        m->fd = -1;
        return -e;
    }
    m->meta = p;
    m->data = (const unsigned char *)p + page;
    return 0;
}

static inline void perf_ring_unmap(struct perf_ring_map *m)
{
    if (m->meta) munmap(m->meta, m->map_size);
    if (m->fd >= 0) close(m->fd);
    m->meta = NULL;
    m->data = NULL;
    m->fd = -1;
}

/* n bytes of the ring at stream position `at`, which may wrap. n <= data_size. */
static inline void perf_ring_copy(const struct perf_ring_map *m, uint64_t at, void *dst, size_t n)
{
    uint64_t off = at & (m->data_size - 1);
    size_t first = n;
    if (off + n > m->data_size) first = (size_t)(m->data_size - off);
    memcpy(dst, m->data + off, first);
    if (first < n) memcpy((char *)dst + first, m->data, n - first);
}

/* The finalizer of a handle whose struct starts with its struct perf_ring_map. */
static inline void perf_ring_finalize(napi_env env, void *data, void *hint)
{
    (void)env;
    (void)hint;
    perf_ring_unmap(data);
    free(data);
}

#endif
