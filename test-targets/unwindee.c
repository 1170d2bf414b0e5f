/*
 * unwindee: a call chain for the unwinder's tests (test/unwind.test.ts), built with
 * -O2 -fomit-frame-pointer -fasynchronous-unwind-tables and no -g, as Debian builds
 * its packages: every frame is found through .eh_frame, none through rbp.
 *
 *   unwindee read     main → chain_1 … chain_6 (chain_4 static) → read(0) through the PLT: blocks
 *   unwindee signal   the same chain spins in chain_6 under a 10 ms timer; SIGALRM's handler blocks in
 *                     read(0), so the stack holds glibc's signal trampoline (__restore_rt, CFI by DWARF
 *                     expressions) over chain_6 where the signal interrupted it
 *   unwindee clock    the same chain calls clock_gettime in a loop: most of its time is in the vDSO
 *
 * It prints "ready" when the chain is built ("in-handler" once the handler runs).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile int spin_mode; /* 1: spin, 2: call clock_gettime */
static volatile unsigned long spins;

__attribute__((noinline)) static int handler_hop(int sig)
{
    char c;
    printf("in-handler\n");
    fflush(stdout);
    return (int)read(0, &c, 1) + sig;
}

static void on_alarm(int sig)
{
    spins += (unsigned long)handler_hop(sig);
}

__attribute__((noinline)) int chain_6(int n)
{
    char c;
    printf("ready\n");
    fflush(stdout);
    if (spin_mode == 1) {
        struct itimerval it = {{0, 0}, {0, 10000}};
        setitimer(ITIMER_REAL, &it, NULL);
        for (;;)
            spins += (unsigned long)n;
    }
    if (spin_mode == 2)
        for (;;) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            spins += (unsigned long)ts.tv_nsec & 1;
        }
    return (int)read(0, &c, 1) + n;
}

__attribute__((noinline)) int chain_5(int n) { return chain_6(n + 1) * 3 + 1; }

/* static: named from .symtab only */
__attribute__((noinline)) static int chain_4(int n) { return chain_5(n + 1) * 5 + 2; }

__attribute__((noinline)) int chain_3(int n) { return chain_4(n + 1) * 7 + 3; }
__attribute__((noinline)) int chain_2(int n) { return chain_3(n + 1) * 11 + 4; }
__attribute__((noinline)) int chain_1(int n) { return chain_2(n + 1) * 13 + 5; }

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "read") != 0 && strcmp(argv[1], "signal") != 0 && strcmp(argv[1], "clock") != 0)) {
        fprintf(stderr, "usage: unwindee read|signal|clock\n");
        return 2;
    }
    spin_mode = strcmp(argv[1], "signal") == 0 ? 1 : strcmp(argv[1], "clock") == 0 ? 2 : 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    return chain_1(argc) & 0x7f;
}
