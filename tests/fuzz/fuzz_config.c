/* libFuzzer target: the handoffd.conf parser and validator (names are not
 * resolved through DNS: numeric addresses only). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	addr_numeric_only = 1;
	log_set_level(-1); /* quiet */
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct config *c = NULL;
	char err[4096];
	if (config_load_string(text, "fuzz.conf", &c, err, sizeof(err)) == 0)
		config_free(c);
	free(text);
	return 0;
}
