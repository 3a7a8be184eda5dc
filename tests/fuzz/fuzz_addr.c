/* libFuzzer target: listen address parsing, canonical text, numeric
 * resolution (no DNS), and sockaddr formatting of raw bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	addr_numeric_only = 1;
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct addr_spec spec;
	const char *why = NULL;
	if (addr_parse(text, &spec, &why) == 0) {
		char canon[ADDR_TEXT_MAX];
		if (addr_spec_format(&spec, canon, sizeof(canon)) >= 0) {
			/* The canonical text parses back to the same spec. */
			struct addr_spec again;
			if (addr_parse(canon, &again, &why) != 0 || again.kind != spec.kind ||
			    again.socktype != spec.socktype)
				abort();
		}
		struct addr_bound b[8];
		(void)addr_resolve(&spec, b, 8, &why);
	}
	char out[ADDR_TEXT_MAX];
	struct sockaddr_storage ss;
	size_t n = size < sizeof(ss) ? size : sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, data, n);
	(void)addr_format((struct sockaddr *)&ss, (socklen_t)n, out, sizeof(out));
	(void)addr_hash_source((struct sockaddr *)&ss, (socklen_t)n);
	free(text);
	return 0;
}
