/* Test harness. Output contract (parsed by scripts): one line per test,
 *   PASS name
 *   PASS name (skipped: reason)      only for features CPUID says are absent
 *   FAIL name: detail
 * and finally "SUMMARY: N passed, M failed", then exit(0) if M == 0, else exit(1).
 *
 *   TEST(div_zero) { ... EXPECT_EQ(f.vector, VEC_DE); ... }
 *   void kmain(uint32_t magic, uint32_t mbi) { rt_init(magic, mbi); RUN(div_zero); test_finish(); }
 *
 * EXPECT* record a failure and continue; ASSERT (kassert.h) and test_skip() end the test.
 * An exception without a handler inside a test fails it with the exception's details. */
#ifndef TEST_H
#define TEST_H

#include "types.h"

#define TEST(name) static void test_##name(void)
#define RUN(name) test_run(#name, test_##name)

void test_run(const char *name, void (*fn)(void));
void test_skip(const char *reason) NORETURN;
void test_check(bool ok, const char *file, int line, const char *fmt, ...) PRINTF_LIKE(4, 5);
void test_check_eq(uint64_t got, uint64_t want, const char *file, int line, const char *expr);
void test_finish(void) NORETURN;

#define EXPECT(cond) test_check(!!(cond), __FILE__, __LINE__, "%s", #cond)
#define EXPECTF(cond, ...) test_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define EXPECT_EQ(got, want) test_check_eq((uint64_t)(got), (uint64_t)(want), __FILE__, __LINE__, #got)

/* Report a result directly (for results computed outside test_run, e.g. before long mode). */
void pass(const char *name);
void fail(const char *name, const char *fmt, ...) PRINTF_LIKE(2, 3);
void pass_skipped(const char *name, const char *reason);

#endif
