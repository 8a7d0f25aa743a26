/*
 * saw-guestd's pure pieces: reconnect backoff, the session table (expiry enforced on every
 * lookup), the CONNECT request parser, and the configuration table.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guestd/guestd-proxy-view.h"
#include "guestd/guestd-proxy.h"
#include "guestd/policy.h"
#include "guestd/guestd.h"

static void
test_backoff(void **state)
{
	long b = 0, seen[16];
	int i;

	for (i = 0; i < 10; i++) {
		b = gbroker_backoff_next(b, 60000);
		seen[i] = b;
	}
	assert_int_equal(seen[0], 1000);
	assert_int_equal(seen[1], 2000);
	assert_int_equal(seen[2], 4000);
	assert_int_equal(seen[5], 32000);
	assert_int_equal(seen[6], 60000); /* capped at ReconnectMax */
	assert_int_equal(seen[9], 60000);
	/* a cap that is not a power of two, and one below the first step */
	assert_int_equal(gbroker_backoff_next(4000, 5000), 5000);
	assert_int_equal(gbroker_backoff_next(0, 200), 1000);
	assert_int_equal(gbroker_backoff_next(1000, 200), 1000);
	/* huge values do not overflow */
	assert_int_equal(gbroker_backoff_next(86400000, 86400000), 86400000);

	/* jitter: ±20% over the whole range of r */
	assert_int_equal(gbroker_backoff_jitter(10000, 0), 8000);
	assert_int_equal(gbroker_backoff_jitter(10000, UINT32_MAX), 12000);
	assert_in_range(gbroker_backoff_jitter(10000, 0x80000000u), 9999, 10001);
	for (i = 0; i < 1000; i++) {
		uint32_t r = (uint32_t)i * 4294967u;

		assert_in_range(gbroker_backoff_jitter(1000, r), 800, 1200);
		assert_in_range(gbroker_backoff_jitter(60000, r), 48000, 72000);
	}
}

static void
attach_fill(struct ctl_attach *a, const char *sid, const char *user, const char *fp,
	    int64_t expires)
{
	static struct ctl_corp corp[2] = { { "git", "git.corp.example", 443 },
					   { "wiki", "10.0.0.5", 8080 } };

	memset(a, 0, sizeof(*a));
	a->session = (char *)sid;
	a->user = (char *)user;
	a->sub = (char *)"sub";
	a->key_fp = (char *)fp;
	a->profile = (char *)"corporate";
	a->expires = expires;
	a->corp = corp;
	a->ncorp = 2;
}

/* The egress proxy's view: a deep copy of the table, live sessions only by expiry, that outlives
 * the table it was copied from, and a subject for the policy. */
static void
test_proxy_view(void **state)
{
	struct guestd g;
	struct ctl_attach a;
	struct gproxy_view *v, *e;
	const struct gproxy_vsession *s;
	struct policy_subject subj;
	char *groups[2] = { (char *)"dev", (char *)"ml" };

	memset(&g, 0, sizeof(g));
	g.cfg.workspace_name = (char *)"ws1";
	gsessions_init(&g.sessions, NULL);
	attach_fill(&a, "s1", "alice", "SHA256:k1", 1000);
	a.groups = groups;
	a.ngroups = 2;
	assert_non_null(gsessions_attach(&g.sessions, &a, 100));
	attach_fill(&a, "s2", "bob", "SHA256:k2", 500);
	assert_non_null(gsessions_attach(&g.sessions, &a, 100));

	assert_non_null(v = gproxy_view_build(&g));
	assert_int_equal(v->n, 2);
	assert_null(v->policy); /* no policy: every decision denies */
	assert_non_null(s = gproxy_view_find(v, "s1", 999));
	assert_string_equal(s->user, "alice");
	assert_int_equal(s->ncorp, 2);
	assert_string_equal(s->corp[0].host, "git.corp.example");
	assert_int_equal(s->corp[1].port, 8080);
	gproxy_view_subject(v, s, &subj);
	assert_string_equal(subj.user, "alice");
	assert_string_equal(subj.workspace, "ws1");
	assert_int_equal(subj.ngroups, 2);
	assert_string_equal(subj.groups[1], "ml");
	/* expiry is enforced on every lookup; 0 asks whatever the expiry */
	assert_null(gproxy_view_find(v, "s2", 500));
	assert_non_null(gproxy_view_find(v, "s2", 499));
	assert_non_null(gproxy_view_find(v, "s2", 0));
	assert_null(gproxy_view_find(v, "s3", 0));

	/* the copy does not depend on the table: end both sessions, then read it */
	gsessions_free_all(&g.sessions);
	assert_non_null(s = gproxy_view_find(v, "s1", 999));
	assert_string_equal(s->corp[0].name, "git");
	/* a second reference keeps it after the first is dropped (ASan: no use after free) */
	__atomic_add_fetch(&v->refs, 1, __ATOMIC_RELAXED);
	gproxy_view_put(v);
	assert_string_equal(gproxy_view_find(v, "s1", 0)->user, "alice");
	gproxy_view_put(v);
	gproxy_view_put(NULL);

	assert_non_null(e = gproxy_view_empty(&g));
	assert_int_equal(e->n, 0);
	assert_null(gproxy_view_find(e, "s1", 0));
	gproxy_view_put(e);
}

static void
test_sessions(void **state)
{
	struct gsessions t;
	struct ctl_attach a;
	struct gsession *s1, *s2, *s;

	gsessions_init(&t, NULL);
	attach_fill(&a, "s1", "alice", "SHA256:k1", 1000);
	s1 = gsessions_attach(&t, &a, 100);
	assert_non_null(s1);
	assert_int_equal(s1->ncorp, 2);
	assert_string_equal(s1->corp[1].host, "10.0.0.5");
	attach_fill(&a, "s2", "alice", "SHA256:k2", 2000);
	s2 = gsessions_attach(&t, &a, 100);
	assert_non_null(s2);
	/* already expired: not attached */
	attach_fill(&a, "s3", "bob", "SHA256:k3", 100);
	assert_null(gsessions_attach(&t, &a, 100));
	assert_int_equal(t.n, 2);

	assert_ptr_equal(gsessions_find_key(&t, "alice", "SHA256:k1", 999), s1);
	assert_ptr_equal(gsessions_find_key(&t, "alice", "SHA256:k2", 999), s2);
	assert_null(gsessions_find_key(&t, "alice", "SHA256:k3", 999));
	assert_null(gsessions_find_key(&t, "bob", "SHA256:k1", 999));
	assert_ptr_equal(gsessions_find_user(&t, "alice", 999), s2); /* expires last */
	assert_ptr_equal(gsessions_find(&t, "s1", 999), s1);

	/* past its expiry a session is gone for every lookup, even before the END
	 * message or the expiry sweep */
	assert_null(gsessions_find_key(&t, "alice", "SHA256:k1", 1000));
	assert_null(gsessions_find(&t, "s1", 1000));
	assert_ptr_equal(gsessions_find_user(&t, "alice", 1500), s2);
	assert_null(gsessions_find_user(&t, "alice", 2000));

	/* re-attach: the expiry moves; the bound user/key cannot change */
	attach_fill(&a, "s1", "alice", "SHA256:k1", 3000);
	assert_ptr_equal(gsessions_attach(&t, &a, 100), s1);
	assert_int_equal(s1->expires, 3000);
	attach_fill(&a, "s1", "mallory", "SHA256:k1", 3000);
	assert_null(gsessions_attach(&t, &a, 100));
	attach_fill(&a, "s1", "alice", "SHA256:other", 3000);
	assert_null(gsessions_attach(&t, &a, 100));
	assert_int_equal(t.n, 2);

	/* logins */
	assert_int_equal(gsessions_login_add(s1, 4242, NULL), 0);
	assert_int_equal(gsessions_login_add(s1, 4242, NULL), 0); /* idempotent */
	assert_int_equal(gsessions_login_add(s1, 4243, "/sys/fs/cgroup/user.slice/x.scope"), 0);
	assert_int_equal(gsessions_login_add(s1, 1, NULL), -EINVAL);
	assert_int_equal(gsessions_login_add(s1, 4244, "/tmp/x"), -EINVAL);
	assert_int_equal(gsessions_login_del(&t, "alice", 4242), 1);
	assert_int_equal(gsessions_login_del(&t, "alice", 4242), 0);
	assert_int_equal(gsessions_login_del(&t, "bob", 4243), 0);

	/* the sweep ends exactly the expired ones */
	assert_int_equal(gsessions_expire(&t, 2000), 1);
	assert_int_equal(t.n, 1);
	assert_null(gsessions_find(&t, "s2", 0));
	s = gsessions_find(&t, "s1", 0);
	assert_ptr_equal(s, s1);
	gsessions_end(s1, "revoked");
	assert_int_equal(t.n, 0);
	gsessions_free_all(&t);
}

static void
test_cgroup_paths(void **state)
{
	assert_true(gsessions_cgroup_ok("/sys/fs/cgroup/user.slice/session-4.scope"));
	assert_true(gsessions_cgroup_ok("/sys/fs/cgroup/unified/a..b"));
	assert_false(gsessions_cgroup_ok("/sys/fs/cgroup/"));
	assert_false(gsessions_cgroup_ok("/sys/fs/cgroup/../../etc"));
	assert_false(gsessions_cgroup_ok("/sys/fs/cgroup/a/.."));
	assert_false(gsessions_cgroup_ok("/sys/fs/cgroupx/a"));
	assert_false(gsessions_cgroup_ok("relative/sys/fs/cgroup/a"));
	assert_false(gsessions_cgroup_ok("/sys/fs/cgroup/a\nb"));
	assert_false(gsessions_cgroup_ok(NULL));
}

static enum gproxy_parse_result
parse(const char *s, struct gproxy_request *r, char *err, size_t errlen)
{
	return gproxy_parse(s, strlen(s), r, err, errlen);
}

static void
test_proxy_parse(void **state)
{
	static const char *const bad[] = {
		"CONNECT git.corp.example HTTP/1.1\r\n\r\n",	     /* no port */
		"CONNECT git.corp.example:0 HTTP/1.1\r\n\r\n",	     /* port 0 */
		"CONNECT git.corp.example:65536 HTTP/1.1\r\n\r\n",   /* port too big */
		"CONNECT git.corp.example:+443 HTTP/1.1\r\n\r\n",    /* sign */
		"CONNECT git.corp.example:443 HTTP/2.0\r\n\r\n",     /* version */
		"CONNECT git.corp.example:443\r\n\r\n",		     /* no version */
		"CONNECT  git.corp.example:443 HTTP/1.1\r\n\r\n",    /* double space */
		"CONNECT git..example:443 HTTP/1.1\r\n\r\n",	     /* empty label */
		"CONNECT user@git.example:443 HTTP/1.1\r\n\r\n",     /* userinfo */
		"CONNECT [::1:443 HTTP/1.1\r\n\r\n",		     /* bracket */
		"CONNECT [zz::1]:443 HTTP/1.1\r\n\r\n",		     /* not v6 */
		"CONNECT ::1:443 HTTP/1.1\r\n\r\n",		     /* v6 unbracketed */
		"CONNECT a:443 HTTP/1.1\r\nHost a:443\r\n\r\n",	     /* no colon */
		"CONNECT a:443 HTTP/1.1\r\n: x\r\n\r\n",	     /* empty name */
		"CONNECT a:443 HTTP/1.1\r\nX: 1\r\n folded\r\n\r\n", /* obs-fold */
		"CONNECT a:443 HTTP/1.1\r\nX: a\x01b\r\n\r\n",	     /* control byte */
		"CONNECT a:443 HTTP/1.1\rX: 1\r\n\r\n",		     /* lone CR */
		"\r\n\r\n",
	};
	struct gproxy_request r;
	char err[200], big[GPROXY_MAX_HEAD + 100];
	const char *ok = "CONNECT git.corp.example:443 HTTP/1.1\r\nHost: git.corp.example:443\r\n"
			 "User-Agent: curl/7.88\r\n\r\nEARLY";
	size_t i, n;

	assert_int_equal(parse(ok, &r, err, sizeof(err)), GPROXY_OK);
	assert_string_equal(r.host, "git.corp.example");
	assert_int_equal(r.port, 443);
	assert_int_equal(r.http_minor, 1);
	assert_int_equal(r.head_len, strlen(ok) - 5);
	/* every prefix of the head asks for more */
	for (n = 0; n < strlen(ok) - 5; n++)
		assert_int_equal(gproxy_parse(ok, n, &r, err, sizeof(err)), GPROXY_MORE);

	assert_int_equal(parse("CONNECT [2001:db8::1]:8443 HTTP/1.0\n\n", &r, err, sizeof(err)),
			 GPROXY_OK);
	assert_string_equal(r.host, "2001:db8::1");
	assert_int_equal(r.port, 8443);
	assert_int_equal(r.http_minor, 0);
	assert_int_equal(parse("CONNECT 10.0.0.5:8080 HTTP/1.1\r\n\r\n", &r, err, sizeof(err)),
			 GPROXY_OK);
	assert_string_equal(r.host, "10.0.0.5");

	assert_int_equal(parse("GET http://x/ HTTP/1.1\r\n\r\n", &r, err, sizeof(err)),
			 GPROXY_NOT_CONNECT);
	assert_non_null(strstr(err, "only CONNECT"));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &r, err, sizeof(err)) != GPROXY_BAD)
			fail_msg("accepted: %s", bad[i]);
	}

	/* head cap */
	memset(big, 'a', sizeof(big));
	memcpy(big, "CONNECT a:1 HTTP/1.1\r\nX: ", 25);
	assert_int_equal(gproxy_parse(big, GPROXY_MAX_HEAD - 1, &r, err, sizeof(err)), GPROXY_MORE);
	assert_int_equal(gproxy_parse(big, GPROXY_MAX_HEAD, &r, err, sizeof(err)),
			 GPROXY_TOO_LARGE);
	assert_int_equal(gproxy_parse(big, sizeof(big), &r, err, sizeof(err)), GPROXY_TOO_LARGE);

	/* header count cap */
	n = (size_t)snprintf(big, sizeof(big), "CONNECT a:1 HTTP/1.1\r\n");
	for (i = 0; i <= GPROXY_MAX_HEADERS; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "X: %zu\r\n", i);
	n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
	assert_int_equal(gproxy_parse(big, n, &r, err, sizeof(err)), GPROXY_BAD);
}

static void
test_config(void **state)
{
	static const char req[] = "BrokerAddress broker.example:22\n"
				  "BrokerHostKey /etc/saw/broker_host_key.pub\n"
				  "WorkspaceName alice-ws\n"
				  "WorkspaceKey /etc/saw/workspace_key\n";
	struct guestd_config cfg;
	char buf[1024];

	assert_int_equal(guestd_config_load_buffer("t", req, strlen(req), &cfg, NULL), 0);
	assert_string_equal(cfg.local_ssh, "127.0.0.1:22");
	assert_string_equal(cfg.control_socket, "/run/saw/guestd.sock");
	assert_string_equal(cfg.authorized_keys_user, "nobody");
	assert_string_equal(cfg.proxy_listen, "127.0.0.1:3128");
	assert_int_equal(cfg.keepalive, 15);
	assert_int_equal(cfg.reconnect_max, 60);
	guestd_config_free(&cfg);

	/* the proxy never listens outside loopback */
	snprintf(buf, sizeof(buf), "%sProxyListen 0.0.0.0:3128\n", req);
	assert_int_equal(guestd_config_load_buffer("t", buf, strlen(buf), &cfg, NULL), -1);
	snprintf(buf, sizeof(buf), "%sProxyListen [::1]:3128\n", req);
	assert_int_equal(guestd_config_load_buffer("t", buf, strlen(buf), &cfg, NULL), 0);
	guestd_config_free(&cfg);
	snprintf(buf, sizeof(buf),
		 "BrokerAddress b:22\nBrokerHostKey /k.pub\nWorkspaceKey /k\nWorkspaceName %s\n",
		 "../x");
	assert_int_equal(guestd_config_load_buffer("t", buf, strlen(buf), &cfg, NULL), -1);
	snprintf(buf, sizeof(buf),
		 "BrokerAddress b:22\nBrokerHostKey /k.pub\nWorkspaceKey /k\nWorkspaceName %s\n",
		 "alice-ws.2");
	assert_int_equal(guestd_config_load_buffer("t", buf, strlen(buf), &cfg, NULL), 0);
	guestd_config_free(&cfg);
	snprintf(buf, sizeof(buf), "%sAuthorizedKeysUser root\n", req);
	assert_int_equal(guestd_config_load_buffer("t", buf, strlen(buf), &cfg, NULL), -1);
	snprintf(buf, sizeof(buf), "%sLocalSSH sshd.example:22\n", req);
	assert_int_equal(guestd_config_load_buffer("t", buf, strlen(buf), &cfg, NULL), -1);
	assert_int_equal(guestd_config_load_buffer("t", req, 20, &cfg, NULL), -1); /* required */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),	    cmocka_unit_test(test_sessions),
		cmocka_unit_test(test_proxy_view),  cmocka_unit_test(test_cgroup_paths),
		cmocka_unit_test(test_proxy_parse), cmocka_unit_test(test_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
