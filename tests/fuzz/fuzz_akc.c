/*
 * libFuzzer target for what saw-authorized-keys and pam_saw.so read from outside: sshd's four
 * arguments (akc_check_args) and saw-guestd's answer line (gsock_parse_answer, then akc_line).
 *
 * Input: USER \0 FP \0 KEY \0 TYPE \0 ANSWER-BYTES. Missing fields are empty. The answer is
 * also judged for a fixed valid key, so that akc_line is reached whatever the arguments.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guestd/akc.h"
#include "guestd/gsock-client.h"

#define FUZZ_AKC_KEY "AAAAC3NzaC1lZDI1NTE5AAAAIDXc2uGB1TKbkIhM3hy2a9pYHwocqd3L3ZPJaiO4H5x+"
#define FUZZ_AKC_FP "SHA256:CoUS23cvoLCEs+ky88XS+RKxl91zgP1EVJpr9+6ues4"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct akc_args valid = { "alice", FUZZ_AKC_FP, FUZZ_AKC_KEY, "ssh-ed25519" };
	char *copy, *field[4], *p, *end;
	char line[AKC_MAX_LINE], err[512];
	struct akc_args a;
	json_t *ans;
	size_t i;

	/* One spare NUL so that every field is a C string even at the end of the input. */
	if ((copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	end = copy + size;
	p = copy;
	for (i = 0; i < 4; i++) {
		field[i] = p;
		p = memchr(p, '\0', (size_t)(end - p) + 1);
		if (p < end)
			p++;
	}
	a.user = field[0];
	a.fp = field[1];
	a.key = field[2];
	a.type = field[3];
	if (akc_check_args(&a, err, sizeof(err)) != 0)
		a = valid;
	ans = gsock_parse_answer(p, (size_t)(end - p), err, sizeof(err));
	if (ans != NULL) {
		(void)akc_line(ans, &a, 1700000000, line, sizeof(line), err, sizeof(err));
		(void)akc_line(ans, &valid, 1700000000, line, sizeof(line), err, sizeof(err));
		(void)gsock_answer_ok(ans, NULL);
		json_decref(ans);
	}
	free(copy);
	return 0;
}
