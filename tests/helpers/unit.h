/* unit: shared helpers for the unit test suites. TEST(suite, name) is
 * criterion's Test() with a check that the body leaves no fd open (counted
 * in /proc/self/fd before and after; a failed assertion in .fini would be
 * ignored by criterion, so the check runs inside the test). */
#ifndef HANDOFF_TEST_UNIT_H
#define HANDOFF_TEST_UNIT_H

#include <criterion/criterion.h>
#include <dirent.h>

static inline int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

#define TEST(suite, name)                                                                           \
	static void body_##suite##_##name(void);                                                     \
	Test(suite, name)                                                                            \
	{                                                                                            \
		int fds_before_ = count_fds();                                                           \
		body_##suite##_##name();                                                                 \
		int fds_after_ = count_fds();                                                            \
		cr_assert_eq(fds_after_, fds_before_, "fd leak: %d fds open before the test, %d after", \
		             fds_before_, fds_after_);                                                   \
	}                                                                                            \
	static void body_##suite##_##name(void)

/* Criterion's runner leaks a few bytes at exit; keep LeakSanitizer
 * (./configure --enable-sanitizers) about our code only. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libcriterion.so\n";
}

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

#endif
