/* libFuzzer target: the control protocol decoder, both directions, with
 * 0 or 1 received fds (the first input byte chooses). */
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned nfds = data[0] & 1;
	struct proto_msg m;
	const char *why = NULL;
	for (int from = PROTO_FROM_DAEMON; from <= PROTO_FROM_CLIENT; from++) {
		if (proto_decode(data + 1, size - 1, nfds, (enum proto_dir)from, &m, &why) == 0) {
			/* Every accessor on a decoded message stays in bounds. */
			char buf[PROTO_MAX_TEXT + 1];
			for (unsigned a = 1; a <= PA_ATTR_MAX; a++) {
				(void)proto_has(&m, (enum proto_attr)a);
				(void)proto_u32(&m, (enum proto_attr)a);
				(void)proto_u64(&m, (enum proto_attr)a);
				proto_str(&m, (enum proto_attr)a, buf, sizeof(buf));
			}
			(void)proto_type_name(m.type);
		}
	}
	return 0;
}
