/*
 * libFuzzer target for the policy document (guestd/policy.c): arbitrary bytes as a policy
 * file. An accepted document is then exercised: decisions for a few hosts, ports and
 * subjects (including names taken from the input), address allowances, credential routes
 * and write decisions. Checks the promises callers rely on: a decision always names a
 * rule and the policy's version, refusals always say why, and a reference outlives
 * policy_free() of the original.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guestd/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_decide(const struct policy *p, const struct policy_subject *s, const char *host, int port)
{
	struct policy_decision d;

	policy_decide(p, s, host, port, &d);
	if (d.rule == NULL || d.rule[0] == '\0' || d.version != policy_version(p) ||
	    (d.verdict != POLICY_DENY && d.verdict != POLICY_ALLOW && d.verdict != POLICY_CORP))
		abort();
	/* deny by default: an invalid request is never allowed */
	if ((port < 1 || port > 65535) && d.verdict != POLICY_DENY)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const hosts[] = { "example.com",
					     "a.example.com",
					     "pypi.org",
					     "x.y.z.corp.example",
					     "10.0.0.1",
					     "::1",
					     "::ffff:10.0.0.1",
					     "EXAMPLE.COM.",
					     "[2001:db8::1]",
					     "1.2.3",
					     "",
					     "a..b" };
	static const char *const groups[] = { "saw-users", "dev", "ml-team" };
	struct policy_subject subj = { "alice", "alice-ws", groups, 3 };
	const struct policy_cred_route *routes[4];
	struct policy_decision d;
	struct policy *p, *ref;
	char err[512], tail[300];
	uint8_t a4[4] = { 10, 20, 1, 2 }, a6[16] = { 0xfd, 0x12, 0x34, 0x56 };
	size_t i, n;

	err[0] = '\0';
	p = policy_load_buffer((const char *)data, size, err, sizeof(err));
	if (p == NULL) {
		if (err[0] == '\0' || strlen(err) >= sizeof(err))
			abort();
		return 0;
	}
	ref = policy_ref(p);
	policy_free(p);
	p = ref;
	/* the input's last bytes as a host name: whatever they are, no crash */
	n = size < sizeof(tail) - 1 ? size : sizeof(tail) - 1;
	memcpy(tail, data + size - n, n);
	tail[n] = '\0';
	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		fuzz_decide(p, &subj, hosts[i], 443);
		fuzz_decide(p, NULL, hosts[i], 22);
		fuzz_decide(p, &subj, hosts[i], 0);
	}
	fuzz_decide(p, &subj, tail, 443);
	(void)policy_address_allowed(p, &subj, a4, AF_INET);
	(void)policy_address_allowed(p, NULL, a6, AF_INET6);
	n = policy_cred_routes(p, routes, 4);
	for (i = 0; i < n && i < 4; i++) {
		if (routes[i]->name == NULL || routes[i]->kind == NULL ||
		    routes[i]->upstream == NULL || routes[i]->header == NULL ||
		    routes[i]->secret == NULL)
			abort();
		(void)policy_cred_route(p, &subj, routes[i]->name);
	}
	policy_decide_write(p, "/home/alice/.git/hooks/x", "/home/alice", &d);
	policy_decide_write(p, tail[0] == '/' ? tail : "/srv/data/x", NULL, &d);
	for (i = 0; policy_fs_writable(p)[i] != NULL; i++)
		if (policy_fs_writable(p)[i][0] != '/')
			abort();
	(void)policy_fs_protected(p);
	(void)policy_limits(p);
	policy_free(p);
	return 0;
}
