/*
 * A target for the perf stack-sample source (test/perf-stacks.test.ts):
 * one thread burns CPU in a known function, the main thread blocks where
 * the test says, so the kernel's samples can be checked against what the
 * target itself knows. Built by the test into a temp folder.
 *
 * Commands, one a line on stdin, or on the FIFO named by the first argument
 * (a pipe: node's child stdin is a socket); the main thread reads them with
 * read(2) one byte at a time, so between commands it is blocked in read()
 * (pipe_read in the kernel, from a FIFO). Answers, one a line on stdout:
 *   tids         "tids MAIN"
 *   burn         starts the burner thread (once), spinning in xw_burn():
 *                "burning TID LO HI": its tid and stack (pthread_getattr_np, hex)
 *   work         "work ITERATIONS": the burner's iterations so far
 *   sleep MS     the main thread sleeps MS ms in nanosleep(2): "slept"
 *   ping         "pong"
 * It exits at the end of its input.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile uint64_t iterations;
static volatile pid_t burner_tid;
static uintptr_t burner_stack_lo, burner_stack_hi;

/* The function the CPU samples land in: a fixed amount of work a round, counted. */
__attribute__((noinline)) static void xw_burn(void)
{
    uint64_t x = 88172645463325252ULL;
    for (;;) {
        for (int i = 0; i < 1000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        __atomic_store_n(&iterations, iterations + 1 + (x == 0), __ATOMIC_RELAXED);
    }
}

static void *burner(void *arg)
{
    (void)arg;
    pthread_attr_t attr;
    void *lo = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &lo, &size);
        pthread_attr_destroy(&attr);
    }
    burner_stack_lo = (uintptr_t)lo;
    burner_stack_hi = (uintptr_t)lo + size;
    __atomic_store_n(&burner_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    xw_burn();
    return NULL;
}

static void say(const char *line)
{
    size_t n = strlen(line);
    while (n > 0) {
        ssize_t w = write(1, line, n);
        if (w <= 0) exit(1);
        line += w;
        n -= (size_t)w;
    }
}

/* One line from stdin, read one byte at a time (the thread blocks in read(2)); 0 at the end. */
static int read_line(char *buf, size_t size)
{
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t got = read(0, &c, 1);
        if (got <= 0) return 0;
        if (c == '\n') break;
        if (n + 1 < size) buf[n++] = c;
    }
    buf[n] = 0;
    return 1;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        int fd = open(argv[1], O_RDONLY);
        if (fd < 0 || dup2(fd, 0) < 0) return 1;
        close(fd);
    }
    char line[128], out[128];
    pthread_t t;
    int started = 0;
    while (read_line(line, sizeof line)) {
        if (strcmp(line, "tids") == 0) {
            snprintf(out, sizeof out, "tids %d\n", (int)syscall(SYS_gettid));
        } else if (strcmp(line, "burn") == 0) {
            if (!started) {
                pthread_create(&t, NULL, burner, NULL);
                started = 1;
            }
            while (__atomic_load_n(&burner_tid, __ATOMIC_ACQUIRE) == 0) sched_yield();
            snprintf(out, sizeof out, "burning %d %lx %lx\n", (int)burner_tid, (unsigned long)burner_stack_lo,
                     (unsigned long)burner_stack_hi);
        } else if (strcmp(line, "work") == 0) {
            snprintf(out, sizeof out, "work %llu\n", (unsigned long long)__atomic_load_n(&iterations, __ATOMIC_RELAXED));
        } else if (strncmp(line, "sleep ", 6) == 0) {
            long ms = atol(line + 6);
            struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
            while (nanosleep(&ts, &ts) != 0) {
            }
            snprintf(out, sizeof out, "slept\n");
        } else if (strcmp(line, "ping") == 0) {
            snprintf(out, sizeof out, "pong\n");
        } else {
            snprintf(out, sizeof out, "error unknown command\n");
        }
        say(out);
    }
    return 0;
}
