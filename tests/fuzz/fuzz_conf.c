/*
 * libFuzzer target for the configuration parser through the broker's keyword table:
 * arbitrary bytes as a broker.conf, then dump (exercises every formatter) and free.
 */
#include <stdint.h>
#include <stdio.h>

#include "broker/broker-config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* opened once: error output is produced for most inputs and is not what we test */
	static FILE *devnull;
	struct broker_config cfg;

	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		return 0;
	if (broker_config_load_buffer("fuzz.conf", (const char *)data, size, &cfg, devnull) == 0)
		broker_config_dump(&cfg, devnull);
	broker_config_free(&cfg);
	return 0;
}
