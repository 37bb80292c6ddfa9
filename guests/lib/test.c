#include "test.h"
#include "catch.h"
#include "exit.h"
#include "idt.h"
#include "printf.h"

static int passed, failed;

/* State of the running test (test_run is not reentrant). */
static bool running;
static int failures;
static char detail[160];
static const char *skip_reason;

void pass(const char *name)
{
	printf("PASS %s\n", name);
	passed++;
}

void pass_skipped(const char *name, const char *reason)
{
	printf("PASS %s (skipped: %s)\n", name, reason);
	passed++;
}

void fail(const char *name, const char *fmt, ...)
{
	va_list ap;
	printf("FAIL %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	failed++;
}

static void record(const char *file, int line, const char *fmt, va_list ap)
{
	if (failures++ == 0) {
		int n = file ? snprintf(detail, sizeof(detail), "%s:%d: ", file, line) : 0;
		if (n < (int)sizeof(detail))
			vsnprintf(detail + n, sizeof(detail) - (size_t)n, fmt, ap);
	}
}

static void record_f(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	record(file, line, fmt, ap);
	va_end(ap);
}

void test_check(bool ok, const char *file, int line, const char *fmt, ...)
{
	if (ok)
		return;
	va_list ap;
	va_start(ap, fmt);
	record(file, line, fmt, ap);
	va_end(ap);
}

void test_check_eq(uint64_t got, uint64_t want, const char *file, int line, const char *expr)
{
	if (got != want)
		record_f(file, line, "%s = 0x%llx, want 0x%llx", expr, (unsigned long long)got,
			 (unsigned long long)want);
}

static void end_test(void) NORETURN;
static void end_test(void)
{
	struct frame f = { 0 };
	f.vector = VEC_THROW;
	catch_throw(&f);
}

void test_skip(const char *reason)
{
	skip_reason = reason;
	end_test();
}

void assert_failed(const char *file, int line, const char *expr)
{
	if (!running) {
		printf("%s:%d: assertion failed: %s\n", file, line, expr);
		exit(3);
	}
	record_f(file, line, "assertion failed: %s", expr);
	end_test();
}

void test_run(const char *name, void (*fn)(void))
{
	struct frame f;
	running = true;
	failures = 0;
	skip_reason = 0;
	bool ended = catch_run0(fn, &f);
	running = false;
	if (ended && f.vector != VEC_THROW)
		record_f(0, 0, "unexpected %s (vector %lu) error=0x%lx rip=0x%lx cs=0x%lx cr2=0x%lx",
			 vector_name(f.vector), f.vector, f.error, f.rip, f.cs, f.cr2);
	if (failures == 0 && skip_reason)
		pass_skipped(name, skip_reason);
	else if (failures == 0)
		pass(name);
	else if (failures == 1)
		fail(name, "%s", detail);
	else
		fail(name, "%s (and %d more)", detail, failures - 1);
}

void test_finish(void)
{
	printf("SUMMARY: %d passed, %d failed\n", passed, failed);
	exit(failed ? 1 : 0);
}
