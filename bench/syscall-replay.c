/*
 * syscall-replay: the floor of one xsample sample (make bench, issue 26).
 * Replays the system calls one sample made, as strace saw them, with no
 * work between them: what a sample would cost if it were its system calls
 * alone.
 *
 * usage: syscall-replay PID GAP_US COUNT < PLAN
 *   PLAN, a line each, in order:
 *     readv ADDR LEN [ADDR LEN ...]   one process_vm_readv of those ranges
 *     identity ADDR                   pread of the byte at ADDR from /proc/PID/mem (its memory watched)
 *     identity                        pread of /proc/PID/stat, stat of /proc/PID/exe
 *   Runs the plan once, then COUNT times GAP_US apart, and prints
 *   {"cpu_us": ..., "kernel_us": ...}: CPU (user + system) and system time
 *   per sample, the waits' own system calls included.
 *
 * Build: cc -O2 -o syscall-replay bench/syscall-replay.c
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_STEPS 256
#define MAX_IOV 1024
#define BUF_BYTES (64u << 20)

struct step {
    int identity;
    /* identity ADDR: the byte of /proc/PID/mem read */
    int watched;
    unsigned long long addr;
    size_t n;
    struct iovec *local, *remote;
};

static struct step steps[MAX_STEPS];
static size_t nsteps;
static char *buf;

static void die(const char *what)
{
    fprintf(stderr, "syscall-replay: %s\n", what);
    exit(1);
}

static void read_plan(void)
{
    static char line[1 << 16];
    while (fgets(line, sizeof line, stdin)) {
        if (nsteps == MAX_STEPS)
            die("too many steps");
        struct step *s = &steps[nsteps];
        if (strncmp(line, "identity", 8) == 0) {
            s->identity = 1;
            s->watched = sscanf(line + 8, " %llu", &s->addr) == 1;
            nsteps++;
            continue;
        }
        if (strncmp(line, "readv ", 6) != 0)
            continue;
        s->local = calloc(MAX_IOV, sizeof *s->local);
        s->remote = calloc(MAX_IOV, sizeof *s->remote);
        if (!s->local || !s->remote)
            die("out of memory");
        size_t off = 0;
        char *p = line + 6;
        unsigned long long addr, len;
        int used;
        while (s->n < MAX_IOV && sscanf(p, "%llu %llu%n", &addr, &len, &used) == 2) {
            if (off + len > BUF_BYTES)
                die("a step reads more than the buffer");
            s->remote[s->n].iov_base = (void *)(uintptr_t)addr;
            s->remote[s->n].iov_len = len;
            s->local[s->n].iov_base = buf + off;
            s->local[s->n].iov_len = len;
            off += len;
            s->n++;
            p += used;
        }
        nsteps++;
    }
}

static void sample(pid_t pid, int stat_fd, int mem_fd, const char *exe)
{
    char line[1024];
    struct stat st;
    for (size_t i = 0; i < nsteps; i++) {
        if (steps[i].identity && steps[i].watched) {
            if (pread(mem_fd, line, 1, (off_t)steps[i].addr) != 1)
                die("the process is gone");
        } else if (steps[i].identity) {
            if (pread(stat_fd, line, sizeof line, 0) < 0 || stat(exe, &st) < 0)
                die("the process is gone");
        } else if (process_vm_readv(pid, steps[i].local, steps[i].n, steps[i].remote, steps[i].n, 0) < 0) {
            die("process_vm_readv failed");
        }
    }
}

static double usec(struct timeval t)
{
    return t.tv_sec * 1e6 + t.tv_usec;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        die("usage: syscall-replay PID GAP_US COUNT < PLAN");
    pid_t pid = atoi(argv[1]);
    int gap = atoi(argv[2]), count = atoi(argv[3]);
    char path[64], mem[64], exe[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    snprintf(mem, sizeof mem, "/proc/%d/mem", pid);
    snprintf(exe, sizeof exe, "/proc/%d/exe", pid);
    int fd = open(path, O_RDONLY), mem_fd = open(mem, O_RDONLY);
    buf = malloc(BUF_BYTES);
    if (fd < 0 || mem_fd < 0 || !buf || count < 1)
        die("cannot start");
    read_plan();
    sample(pid, fd, mem_fd, exe);
    struct rusage a, b;
    getrusage(RUSAGE_SELF, &a);
    for (int i = 0; i < count; i++) {
        sample(pid, fd, mem_fd, exe);
        if (gap > 0)
            usleep(gap);
    }
    getrusage(RUSAGE_SELF, &b);
    double user = usec(b.ru_utime) - usec(a.ru_utime), sys = usec(b.ru_stime) - usec(a.ru_stime);
    printf("{\"cpu_us\": %.1f, \"kernel_us\": %.1f}\n", (user + sys) / count, sys / count);
    return 0;
}
