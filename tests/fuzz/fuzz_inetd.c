/* libFuzzer target: the inetd.conf parser, through --convert-inetd (the
 * input is a memfd read by path). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "addr.h"
#include "inetd.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *sink;
	addr_numeric_only = 1;
	log_set_level(-1);
	if (!sink)
		sink = fopen("/dev/null", "we");
	int fd = memfd_create("inetd.conf", MFD_CLOEXEC);
	if (fd < 0 || !sink)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		(void)inetd_convert(path, sink, sink);
	}
	close(fd);
	return 0;
}
