/*
 * libFuzzer target for the control-channel decoder (tunnel/ctl.c): the input is a byte
 * stream as it arrives on the channel. Frames are decoded in a loop, as guestd and the
 * broker do; every decoded body goes through the typed parsers, and what they accept is
 * encoded again and must decode to the same thing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tunnel/ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_ctl_typed(const json_t *body)
{
	struct ctl_attach a;
	struct ctl_end e;
	char err[256];
	json_t *again;

	if (ctl_attach_from_json(body, &a, err, sizeof(err)) == 0) {
		if ((again = ctl_attach_to_json(&a)) != NULL) {
			struct ctl_attach b;

			if (ctl_attach_from_json(again, &b, err, sizeof(err)) != 0)
				abort();
			if (strcmp(a.session, b.session) != 0 || a.ncorp != b.ncorp ||
			    a.expires != b.expires)
				abort();
			ctl_attach_clear(&b);
			json_decref(again);
		}
		ctl_attach_clear(&a);
	}
	{
		int64_t seq, upto;
		json_t *ev;

		if (ctl_audit_from_json(body, &seq, &ev, err, sizeof(err)) == 0) {
			if (seq < 0 || seq > CTL_SEQ_MAX || !json_is_object(ev))
				abort();
			if ((again = ctl_audit_to_json(seq, ev)) == NULL)
				abort();
			json_decref(again);
		}
		if (ctl_audit_ack_from_json(body, &upto, err, sizeof(err)) == 0) {
			if ((again = ctl_audit_ack_to_json(upto)) == NULL)
				abort();
			json_decref(again);
		}
	}
	if (ctl_end_from_json(body, &e, err, sizeof(err)) == 0) {
		if ((again = ctl_end_to_json(&e)) != NULL)
			json_decref(again);
		ctl_end_clear(&e);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0, consumed, len;
	enum ctl_type type;
	json_t *body;
	uint8_t *out;
	char err[256];
	int rc;

	while (off < size) {
		rc = ctl_decode(data + off, size - off, &consumed, &type, &body, err, sizeof(err));
		if (rc != 0)
			break;
		if (consumed == 0 || consumed > size - off)
			abort();
		fuzz_ctl_typed(body);
		/* re-encoding an accepted body must succeed and decode again */
		if (ctl_encode(type, body, &out, &len) == 0) {
			json_t *back = NULL;
			enum ctl_type t2;
			size_t c2;

			if (ctl_decode(out, len, &c2, &t2, &back, err, sizeof(err)) != 0 ||
			    c2 != len || t2 != type || !json_equal(back, body))
				abort();
			json_decref(back);
			free(out);
		}
		json_decref(body);
		off += consumed;
	}
	return 0;
}
