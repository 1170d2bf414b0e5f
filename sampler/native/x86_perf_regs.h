/* The registers a perf sample of an x86-64 thread carries: enum perf_event_x86_regs (asm/perf_regs.h), the
 * general registers, ip, sp and bp (no flags, no segment registers). */
#ifndef XWALK_X86_PERF_REGS_H
#define XWALK_X86_PERF_REGS_H

#if !defined(__x86_64__)
#error "xwalk's perf addons read x86_64 registers"
#endif

enum { R_AX, R_BX, R_CX, R_DX, R_SI, R_DI, R_BP, R_SP, R_IP, R_FLAGS, R_R8 = 16, R_R15 = 23 };
#define NREGS 17
#define REG_MASK ((1ULL << R_AX) | (1ULL << R_BX) | (1ULL << R_CX) | (1ULL << R_DX) | (1ULL << R_SI) |          \
                  (1ULL << R_DI) | (1ULL << R_BP) | (1ULL << R_SP) | (1ULL << R_IP) | (0xffULL << R_R8))

#endif
