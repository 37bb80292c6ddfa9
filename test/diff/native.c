/*
 * Differential-test harness: executes single x86-64 instructions natively.
 *
 * Built at test time by test/diff/native.ts (gcc -O1). Usage:
 *   native-exec --features            print host CPUID features as JSON
 *   native-exec IN OUT [--check-window]
 *
 * IN holds a 16-byte header ("TDIFIN01", u32 count, u32 0) followed by `count`
 * 256-byte case records; OUT receives a header ("TDIFOUT1", u32 count, u32 0)
 * and one 256-byte result record per case. The layouts are mirrored in
 * native.ts; keep the two in sync.
 *
 * Case record (little endian):
 *   0   u32 code length (1..32)      4  u32 reserved
 *   8   u64 rflags (only CF PF AF ZF SF OF DF are loaded)
 *   16  u8  code[32]
 *   48  u64 regs[16]  (RAX RCX RDX RBX RSP RBP RSI RDI R8..R15)
 *   176 u8  mem[64]   (the operand window at MEM_ADDR)
 * Result record:
 *   0   i32 vector (-1: none)        4  u32 status (bit0: wrote outside the
 *                                         window, bit1: result depends on
 *                                         bytes outside the window)
 *   8   u64 rflags                   16 u32 signal, 20 i32 si_code,
 *   24  u64 trapno                   32 u64 fault address, 40 reserved
 *   48  u64 regs[16]                 176 u8 mem[64]
 *
 * The instruction is placed at CODE_ADDR exactly, so RIP-relative operands
 * resolve to the same addresses in the simulator. The operand window is the
 * first 64 bytes of a 4 KiB page at MEM_ADDR; the rest of that page holds a
 * poison pattern that is checked after every case. Faults are caught with
 * sigaction on an alternate stack, and the x86 vector comes from the kernel's
 * trap number in the signal context.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include <cpuid.h>

#define MEM_ADDR 0x10000000UL
#define CODE_ADDR 0x20000000UL
#define PAGE 4096
#define WINDOW 64
#define REC 256
#define MAX_CODE 32
#define FLAG_LOAD_MASK 0xCD5UL /* CF PF AF ZF SF DF OF */

typedef struct {
  uint64_t rflags;
  uint64_t regs[16];
} ctx_t;

__attribute__((used)) static ctx_t g_in, g_out;
__attribute__((used)) static uint64_t g_saved_rsp, g_out_rsp, g_code_addr;

extern void run_snippet(void);
extern void snippet_exit(void);

/* run_snippet: save callee-saved state, load the case context, jump to the
 * instruction. The instruction is followed by an absolute jump to
 * snippet_exit, which stores the context and returns to run_snippet's caller.
 * Only pops, lea and mov are used after popfq, so the loaded flags survive. */
__asm__(".intel_syntax noprefix\n"
        ".text\n"
        ".globl run_snippet\n"
        "run_snippet:\n"
        "  push rbx\n  push rbp\n  push r12\n  push r13\n  push r14\n  push r15\n"
        "  mov [rip + g_saved_rsp], rsp\n"
        "  lea rsp, [rip + g_in]\n"
        "  popfq\n"
        "  pop rax\n  pop rcx\n  pop rdx\n  pop rbx\n"
        "  lea rsp, [rsp + 8]\n"
        "  pop rbp\n  pop rsi\n  pop rdi\n"
        "  pop r8\n  pop r9\n  pop r10\n  pop r11\n  pop r12\n  pop r13\n  pop r14\n  pop r15\n"
        "  mov rsp, [rip + g_in + 40]\n"
        "  jmp qword ptr [rip + g_code_addr]\n"
        ".globl snippet_exit\n"
        "snippet_exit:\n"
        "  mov [rip + g_out_rsp], rsp\n"
        "  lea rsp, [rip + g_out + 136]\n"
        "  push r15\n  push r14\n  push r13\n  push r12\n  push r11\n  push r10\n  push r9\n  push r8\n"
        "  push rdi\n  push rsi\n  push rbp\n"
        "  lea rsp, [rsp - 8]\n"
        "  push rbx\n  push rdx\n  push rcx\n  push rax\n"
        "  pushfq\n"
        "  cld\n"
        "  mov rsp, [rip + g_saved_rsp]\n"
        "  pop r15\n  pop r14\n  pop r13\n  pop r12\n  pop rbp\n  pop rbx\n"
        "  ret\n"
        ".att_syntax prefix\n");

static sigjmp_buf g_jb;
static volatile int g_sig;
static volatile int g_si_code;
static volatile uint64_t g_trapno, g_fault_addr;
static uint8_t *g_mem, *g_code;
static uint8_t g_poison[PAGE];

static const int ucregs[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
                               REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15};

static void on_fault(int sig, siginfo_t *si, void *ucv) {
  ucontext_t *uc = (ucontext_t *)ucv;
  g_sig = sig;
  g_si_code = si->si_code;
  g_trapno = (uint64_t)uc->uc_mcontext.gregs[REG_TRAPNO];
  g_fault_addr = (uint64_t)si->si_addr;
  /* State at the fault, for diagnostics only (faults compare the vector). */
  for (int i = 0; i < 16; i++) g_out.regs[i] = (uint64_t)uc->uc_mcontext.gregs[ucregs[i]];
  g_out.rflags = (uint64_t)uc->uc_mcontext.gregs[REG_EFL];
  siglongjmp(g_jb, 1);
}

__attribute__((noinline)) static int fault_vector(void) {
  int t = (int)g_trapno;
  switch (g_sig) {
  case SIGFPE:
    return t == 0 || t == 16 || t == 19 ? t : 0;
  case SIGILL:
    return 6;
  case SIGTRAP:
    return t == 1 || t == 3 ? t : 3;
  case SIGBUS:
    return t == 12 || t == 17 || t == 13 || t == 14 ? t : 17;
  case SIGSEGV:
    if (t == 13 || t == 14 || t == 12) return t;
    return g_si_code == SEGV_MAPERR || g_si_code == SEGV_ACCERR ? 14 : 13;
  }
  return 255;
}

static void *map_fixed(unsigned long addr, int prot) {
  void *p = mmap((void *)addr, PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED || p != (void *)addr) {
    fprintf(stderr, "native-exec: cannot map 0x%lx: %s\n", addr, strerror(errno));
    exit(2);
  }
  return p;
}

static void setup(void) {
  g_mem = map_fixed(MEM_ADDR, PROT_READ | PROT_WRITE);
  g_code = map_fixed(CODE_ADDR, PROT_READ | PROT_WRITE | PROT_EXEC);
  g_code_addr = CODE_ADDR;

  static uint8_t altstack[1 << 16];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) {
    perror("sigaltstack");
    exit(2);
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  int sigs[] = {SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGTRAP};
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    if (sigaction(sigs[i], &sa, NULL) != 0) {
      perror("sigaction");
      exit(2);
    }
  }
}

static uint64_t rd64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Runs one case with the given poison byte outside the window; fills out. */
static void run_one(const uint8_t *in, uint8_t *out, uint8_t poison) {
  uint32_t len;
  memcpy(&len, in, 4);
  if (len == 0 || len > MAX_CODE) {
    fprintf(stderr, "native-exec: bad code length %u\n", len);
    exit(2);
  }
  memset(g_poison, poison, PAGE);
  memcpy(g_mem + WINDOW, g_poison, PAGE - WINDOW);
  memcpy(g_mem, in + 176, WINDOW);

  /* instruction, then jmp [rip+0] to snippet_exit, then int3 filler */
  memset(g_code, 0xCC, 128);
  memcpy(g_code, in + 16, len);
  uint8_t *j = g_code + len;
  j[0] = 0xFF;
  j[1] = 0x25;
  wr32(j + 2, 0);
  wr64(j + 6, (uint64_t)(uintptr_t)&snippet_exit);

  g_in.rflags = (rd64(in + 8) & FLAG_LOAD_MASK) | 2;
  for (int i = 0; i < 16; i++) g_in.regs[i] = rd64(in + 48 + 8 * i);
  memset(&g_out, 0, sizeof g_out);
  g_sig = 0;
  g_trapno = 0;
  g_si_code = 0;
  g_fault_addr = 0;

  memset(out, 0, REC);
  int vector = -1;
  if (sigsetjmp(g_jb, 1) == 0) {
    run_snippet();
    g_out.regs[4] = g_out_rsp;
  } else {
    vector = fault_vector();
  }
  uint32_t status = 0;
  if (memcmp(g_mem + WINDOW, g_poison, PAGE - WINDOW) != 0) status |= 1;

  wr32(out + 0, (uint32_t)vector);
  wr32(out + 4, status);
  wr64(out + 8, g_out.rflags);
  wr32(out + 16, (uint32_t)g_sig);
  wr32(out + 20, (uint32_t)g_si_code);
  wr64(out + 24, g_trapno);
  wr64(out + 32, g_fault_addr);
  for (int i = 0; i < 16; i++) wr64(out + 48 + 8 * i, g_out.regs[i]);
  memcpy(out + 176, g_mem, WINDOW);
}

static void features(void) {
  unsigned a, b, c, d, max, maxext;
  char vendor[13];
  __cpuid(0, max, b, c, d);
  memcpy(vendor, &b, 4);
  memcpy(vendor + 4, &d, 4);
  memcpy(vendor + 8, &c, 4);
  vendor[12] = 0;
  unsigned ecx1 = 0, edx1 = 0, ebx7 = 0, ecx81 = 0;
  __cpuid(1, a, b, ecx1, edx1);
  if (max >= 7) __cpuid_count(7, 0, a, ebx7, c, d);
  __cpuid(0x80000000, maxext, b, c, d);
  if (maxext >= 0x80000001) __cpuid(0x80000001, a, b, ecx81, d);
  printf("{\"vendor\":\"%s\",\"popcnt\":%d,\"movbe\":%d,\"cx16\":%d,\"lzcnt\":%d,\"lahfsahf\":%d,"
         "\"bmi1\":%d,\"bmi2\":%d,\"adx\":%d}\n",
         vendor, (ecx1 >> 23) & 1, (ecx1 >> 22) & 1, (ecx1 >> 13) & 1, (ecx81 >> 5) & 1, ecx81 & 1,
         (ebx7 >> 3) & 1, (ebx7 >> 8) & 1, (ebx7 >> 19) & 1);
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--features") == 0) {
    features();
    return 0;
  }
  if (argc < 3) {
    fprintf(stderr, "usage: native-exec IN OUT [--check-window] | --features\n");
    return 2;
  }
  int check = argc > 3 && strcmp(argv[3], "--check-window") == 0;
  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    perror(argv[1]);
    return 2;
  }
  uint8_t hdr[16];
  if (fread(hdr, 1, 16, f) != 16 || memcmp(hdr, "TDIFIN01", 8) != 0) {
    fprintf(stderr, "native-exec: bad input header\n");
    return 2;
  }
  uint32_t n;
  memcpy(&n, hdr + 8, 4);
  uint8_t *in = malloc((size_t)n * REC + 1), *out = malloc((size_t)n * REC + 1);
  if (!in || !out) {
    fprintf(stderr, "native-exec: out of memory\n");
    return 2;
  }
  if (fread(in, REC, n, f) != n) {
    fprintf(stderr, "native-exec: short input\n");
    return 2;
  }
  fclose(f);

  setup();
  uint8_t other[REC];
  for (uint32_t i = 0; i < n; i++) {
    uint8_t *o = out + (size_t)i * REC;
    run_one(in + (size_t)i * REC, o, 0xA5);
    if (check) {
      run_one(in + (size_t)i * REC, other, 0x5A);
      /* Compare vector, flags, registers and window (not the fault details). */
      int differs = memcmp(o, other, 4) != 0 || memcmp(o + 8, other + 8, 8) != 0 ||
                    memcmp(o + 48, other + 48, REC - 48) != 0;
      uint32_t status;
      memcpy(&status, o + 4, 4);
      uint32_t st2;
      memcpy(&st2, other + 4, 4);
      status |= st2 | (differs ? 2u : 0u);
      wr32(o + 4, status);
    }
  }

  FILE *g = fopen(argv[2], "wb");
  if (!g) {
    perror(argv[2]);
    return 2;
  }
  uint8_t oh[16] = {'T', 'D', 'I', 'F', 'O', 'U', 'T', '1'};
  memcpy(oh + 8, &n, 4);
  if (fwrite(oh, 1, 16, g) != 16 || fwrite(out, REC, n, g) != n || fclose(g) != 0) {
    perror(argv[2]);
    return 2;
  }
  return 0;
}
