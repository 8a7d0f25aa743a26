/*
 * Policy decision time (issue #5 target: p99 <= 2 us with 10,000 rules).
 *
 *   bench-policy [-r RULES] [-n LOOKUPS] [-s SEED] [-o policy.json]
 *
 * Generates a policy of RULES egress rules (default 10,000) in the shape real ones take:
 * mostly allow rules with one to four hosts, a quarter of them "*.suffix" wildcards, one
 * rule in ten a deny, one in five with a group/user/workspace selector, ports from a small
 * set and some ranges; plus 200 corporate services. It is loaded with policy_load_buffer()
 * (the same parser and compiler guestd uses) and decided LOOKUPS times (default 1e6) for
 * random requests: names the rules list exactly, names under their wildcards (one to three
 * extra labels), names no rule lists, IP literals, right and wrong ports, and subjects
 * drawn from a pool of users and groups. Each decision is timed alone with
 * clock_gettime(CLOCK_MONOTONIC) (whose own cost, measured and printed, is included in the
 * figures), and p50/p90/p99/p99.9/max are printed.
 *
 * The peer is the straightforward implementation of the same semantics: a linear scan over
 * every rule and every host pattern with string compares, ports and selectors checked by
 * scanning their lists, deny winning. It runs on the same requests, over a smaller sample
 * (it is thousands of times slower), and every one of its answers is compared with the
 * compiled engine's: the benchmark fails (exit 1) if they ever differ, so the speed is not
 * bought with a different answer.
 *
 * Benchmarks measure; exit 0 whatever the figures, 1 only if something failed to run.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "guestd/policy.h"

#define NUSERS 200
#define NGROUPS 60
#define NWS 50
#define MAXSUBJGROUPS 8

/* ---- a tiny deterministic PRNG (xorshift64*) ------------------------------------------- */

static uint64_t bench_rng = 0x9e3779b97f4a7c15ULL;

static uint64_t
rnd(void)
{
	bench_rng ^= bench_rng >> 12;
	bench_rng ^= bench_rng << 25;
	bench_rng ^= bench_rng >> 27;
	return bench_rng * 2685821657736338717ULL;
}

static unsigned
rndn(unsigned n)
{
	return (unsigned)(rnd() % n);
}

/* ---- the naive peer ---------------------------------------------------------------------- */

struct naive_rule {
	char *id;
	int kind; /* 0 deny, 1 corporate, 2 allow: the same precedence as the engine */
	size_t doc;
	char **hosts;
	size_t nhosts;
	int *lo, *hi;
	size_t nports; /* 0: all */
	char **users, **groups, **wss;
	size_t nusers, ngroups, nwss;
	int has_sel;
};

static struct naive_rule *naive;
static size_t nnaive;

static char **
strlist(json_t *a, size_t *n)
{
	char **out;
	size_t i;

	*n = json_array_size(a);
	if ((out = calloc(*n + 1, sizeof(*out))) == NULL)
		exit(1);
	for (i = 0; i < *n; i++)
		out[i] = strdup(json_string_value(json_array_get(a, i)));
	return out;
}

static void
naive_add(json_t *r, int kind, size_t doc)
{
	struct naive_rule *n = &naive[nnaive++];
	json_t *sel = json_object_get(r, "select"), *ports, *h;
	size_t i;

	memset(n, 0, sizeof(*n));
	n->kind = kind;
	n->doc = doc;
	if (kind == 1) {
		n->id = strdup(json_string_value(json_object_get(r, "name")));
		n->hosts = calloc(1, sizeof(char *));
		n->hosts[0] = strdup(json_string_value(json_object_get(r, "host")));
		n->nhosts = 1;
		n->lo = malloc(sizeof(int));
		n->hi = malloc(sizeof(int));
		n->lo[0] = n->hi[0] = (int)json_integer_value(json_object_get(r, "port"));
		n->nports = 1;
	} else {
		n->id = strdup(json_string_value(json_object_get(r, "id")));
		n->hosts = strlist(json_object_get(r, "hosts"), &n->nhosts);
		ports = json_object_get(r, "ports");
		n->nports = json_array_size(ports);
		n->lo = calloc(n->nports + 1, sizeof(int));
		n->hi = calloc(n->nports + 1, sizeof(int));
		json_array_foreach(ports, i, h) {
			if (json_is_integer(h)) {
				n->lo[i] = n->hi[i] = (int)json_integer_value(h);
			} else if (sscanf(json_string_value(h), "%d-%d", &n->lo[i], &n->hi[i]) !=
				   2) {
				exit(1);
			}
		}
	}
	if (sel != NULL) {
		n->has_sel = 1;
		n->users = strlist(json_object_get(sel, "users"), &n->nusers);
		n->groups = strlist(json_object_get(sel, "groups"), &n->ngroups);
		n->wss = strlist(json_object_get(sel, "workspaces"), &n->nwss);
	}
}

static int
naive_host_match(const char *pat, const char *host)
{
	size_t pl, hl;

	if (pat[0] != '*')
		return strcmp(pat, host) == 0;
	pl = strlen(pat + 1); /* ".suffix" */
	hl = strlen(host);
	return hl > pl && strcmp(host + hl - pl, pat + 1) == 0;
}

static int
naive_sel_match(const struct naive_rule *r, const struct policy_subject *s)
{
	size_t i, j;

	if (!r->has_sel)
		return 1;
	if (s == NULL)
		return 0;
	for (i = 0; i < r->nusers; i++)
		if (s->user != NULL && strcmp(r->users[i], s->user) == 0)
			return 1;
	for (i = 0; i < r->nwss; i++)
		if (s->workspace != NULL && strcmp(r->wss[i], s->workspace) == 0)
			return 1;
	for (i = 0; i < r->ngroups; i++)
		for (j = 0; j < s->ngroups; j++)
			if (strcmp(r->groups[i], s->groups[j]) == 0)
				return 1;
	return 0;
}

/* The same answer as policy_decide() for the lowercase names and IPv4 literals the
 * benchmark asks about: the best (kind, doc) among the rules that match. */
static void
naive_decide(const struct policy_subject *s, const char *host, int port,
	     struct policy_decision *out)
{
	const struct naive_rule *best = NULL;
	size_t i, j;

	for (i = 0; i < nnaive; i++) {
		const struct naive_rule *r = &naive[i];
		int hit = 0;

		if (best != NULL &&
		    (r->kind > best->kind || (r->kind == best->kind && r->doc > best->doc)))
			continue;
		for (j = 0; j < r->nhosts && !hit; j++)
			hit = naive_host_match(r->hosts[j], host);
		if (!hit)
			continue;
		if (r->nports > 0) {
			for (j = 0, hit = 0; j < r->nports && !hit; j++)
				hit = port >= r->lo[j] && port <= r->hi[j];
			if (!hit)
				continue;
		}
		if (!naive_sel_match(r, s))
			continue;
		best = r;
	}
	out->verdict = best == NULL ? POLICY_DENY :
				      (best->kind == 0 ? POLICY_DENY :
				       best->kind == 1 ? POLICY_CORP :
							 POLICY_ALLOW);
	out->rule = best == NULL ? "default-deny" : best->id;
}

/* ---- the generated policy and requests -------------------------------------------------- */

static char users[NUSERS][16], groups[NGROUPS][16], wss[NWS][16];

/* Names the requests draw from: each rule's exact names and wildcard suffixes. */
static char **exact_names, **wild_suffixes;
static size_t nexact, nwild;

static const char *const tlds[] = { "com", "org", "net", "io", "dev", "example" };

static json_t *
gen_policy(size_t nrules)
{
	json_t *root = json_object(), *egress = json_array(), *corp = json_array();
	size_t i, j;

	exact_names = calloc(nrules * 4 + 1, sizeof(char *));
	wild_suffixes = calloc(nrules * 4 + 1, sizeof(char *));
	for (i = 0; i < nrules; i++) {
		json_t *r = json_object(), *hosts = json_array(), *ports = json_array();
		size_t nh = 1 + rndn(4);
		char id[32], name[96];
		int deny = rndn(10) == 0;

		snprintf(id, sizeof(id), "rule-%zu", i);
		json_object_set_new(r, "id", json_string(id));
		json_object_set_new(r, "action", json_string(deny ? "deny" : "allow"));
		for (j = 0; j < nh; j++) {
			/* a domain per rule, some shared between rules so that lookups find
			 * several candidates */
			unsigned dom = rndn(5) == 0 ? rndn(200) : (unsigned)(i * 4 + j);

			snprintf(name, sizeof(name), "svc%u.d%u.%s", rndn(4), dom, tlds[dom % 6]);
			if (rndn(4) == 0) {
				snprintf(name, sizeof(name), "*.d%u.%s", dom, tlds[dom % 6]);
				wild_suffixes[nwild++] = strdup(name + 2);
			} else {
				exact_names[nexact++] = strdup(name);
			}
			json_array_append_new(hosts, json_string(name));
		}
		json_object_set_new(r, "hosts", hosts);
		if (!deny || rndn(2) == 0) {
			static const int common[] = { 443, 80, 22, 8080, 9418 };
			size_t np = 1 + rndn(2);

			for (j = 0; j < np; j++)
				json_array_append_new(ports, json_integer(common[rndn(5)]));
			if (rndn(10) == 0)
				json_array_append_new(ports, json_string("8000-8999"));
			json_object_set_new(r, "ports", ports);
		} else {
			json_decref(ports);
		}
		if (rndn(5) == 0) {
			json_t *sel = json_object(), *a;

			switch (rndn(3)) {
			case 0:
				a = json_array();
				json_array_append_new(a, json_string(groups[rndn(NGROUPS)]));
				json_array_append_new(a, json_string(groups[rndn(NGROUPS)]));
				json_object_set_new(sel, "groups", a);
				break;
			case 1:
				a = json_array();
				json_array_append_new(a, json_string(users[rndn(NUSERS)]));
				json_object_set_new(sel, "users", a);
				break;
			default:
				a = json_array();
				json_array_append_new(a, json_string(wss[rndn(NWS)]));
				json_object_set_new(sel, "workspaces", a);
				a = json_array();
				json_array_append_new(a, json_string(groups[rndn(NGROUPS)]));
				json_object_set_new(sel, "groups", a);
			}
			json_object_set_new(r, "select", sel);
		}
		json_array_append_new(egress, r);
	}
	for (i = 0; i < 200; i++) {
		char name[32], host[64];

		snprintf(name, sizeof(name), "corp-%zu", i);
		snprintf(host, sizeof(host), "svc%zu.corp.example", i);
		exact_names[nexact++] = strdup(host);
		json_array_append_new(corp, json_pack("{s:s, s:s, s:i}", "name", name, "host", host,
						      "port", i % 2 ? 443 : 22));
	}
	json_object_set_new(root, "version", json_integer(42));
	json_object_set_new(root, "profile", json_string("corporate"));
	json_object_set_new(root, "egress", egress);
	json_object_set_new(root, "corporate", corp);
	return root;
}

struct request {
	char host[128];
	int port;
	int subj;
};

struct subject {
	const char *g[MAXSUBJGROUPS];
	struct policy_subject s;
};

static void
gen_request(struct request *q, size_t nsubj)
{
	static const int ports[] = { 443, 443, 443, 80, 22, 8080, 8443, 8500, 9418, 5432 };
	unsigned k = rndn(100);

	if (k < 40) { /* a name a rule lists */
		snprintf(q->host, sizeof(q->host), "%s", exact_names[rndn((unsigned)nexact)]);
	} else if (k < 65) { /* under a wildcard, 1..3 labels deep */
		const char *suf = wild_suffixes[rndn((unsigned)nwild)];

		if (rndn(3) == 0)
			snprintf(q->host, sizeof(q->host), "a%u.b%u.%s", rndn(100), rndn(100), suf);
		else
			snprintf(q->host, sizeof(q->host), "x%u.%s", rndn(1000), suf);
	} else if (k < 95) { /* a miss */
		snprintf(q->host, sizeof(q->host), "host%u.unlisted%u.%s", rndn(100000), rndn(1000),
			 tlds[rndn(6)]);
	} else { /* an IP literal */
		snprintf(q->host, sizeof(q->host), "%u.%u.%u.%u", 1 + rndn(223), rndn(256),
			 rndn(256), 1 + rndn(254));
	}
	q->port = ports[rndn(10)];
	q->subj = (int)rndn((unsigned)nsubj);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t
cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t
report(const char *name, uint64_t *t, size_t n, double total_s)
{
	qsort(t, n, sizeof(*t), cmp_u64);
	printf("%-22s %9zu %9.3f %9.3f %9.3f %9.3f %10.3f %12.0f\n", name, n, t[n / 2] / 1e3,
	       t[n * 90 / 100] / 1e3, t[n * 99 / 100] / 1e3, t[n * 999 / 1000] / 1e3,
	       t[n - 1] / 1e3, n / total_s);
	return t[n * 99 / 100];
}

int
main(int argc, char **argv)
{
	size_t nrules = 10000, nlookups = 1000000, nnaive_lookups, i, mismatches = 0;
	size_t nsubj = 400, allow = 0, deny = 0, corp = 0;
	const char *out = NULL;
	struct subject *subjects;
	struct request *reqs;
	struct policy *p;
	uint64_t *t, t0, tstart, overhead, p50, p99, naive_p99;
	double load_ms, load_cpu_ms, total;
	uint64_t c0;
	char *text, err[512];
	json_t *doc;
	int ch;

	while ((ch = getopt(argc, argv, "r:n:s:o:")) != -1) {
		switch (ch) {
		case 'r':
			nrules = strtoul(optarg, NULL, 10);
			break;
		case 'n':
			nlookups = strtoul(optarg, NULL, 10);
			break;
		case 's':
			bench_rng = strtoull(optarg, NULL, 10) | 1;
			break;
		case 'o':
			out = optarg;
			break;
		default:
			fprintf(stderr, "usage: bench-policy [-r RULES] [-n LOOKUPS] [-s SEED] "
					"[-o policy.json]\n");
			return 1;
		}
	}
	if (nrules < 10 || nlookups < 1000)
		return 1;
	for (i = 0; i < NUSERS; i++)
		snprintf(users[i], sizeof(users[i]), "user%zu", i);
	for (i = 0; i < NGROUPS; i++)
		snprintf(groups[i], sizeof(groups[i]), "group%zu", i);
	for (i = 0; i < NWS; i++)
		snprintf(wss[i], sizeof(wss[i]), "ws%zu", i);

	doc = gen_policy(nrules);
	text = json_dumps(doc, JSON_COMPACT);
	if (text == NULL)
		return 1;
	if (out != NULL) {
		FILE *f = fopen(out, "w");

		if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
			perror(out);
			return 1;
		}
	}
	t0 = now_ns();
	c0 = cpu_ns();
	p = policy_load_buffer(text, strlen(text), err, sizeof(err));
	load_ms = (double)(now_ns() - t0) / 1e6;
	load_cpu_ms = (double)(cpu_ns() - c0) / 1e6;
	if (p == NULL) {
		fprintf(stderr, "bench-policy: the generated policy was refused: %s\n", err);
		return 1;
	}
	/* the peer's own copy of the rules, in the same precedence order */
	naive = calloc(nrules + 200, sizeof(*naive));
	{
		json_t *r;
		size_t nd = 0, na = 0;

		json_array_foreach(json_object_get(doc, "egress"), i, r) {
			int d = strcmp(json_string_value(json_object_get(r, "action")), "deny") ==
				0;

			naive_add(r, d ? 0 : 2, d ? nd++ : na++);
		}
		json_array_foreach(json_object_get(doc, "corporate"), i, r)
			naive_add(r, 1, i);
	}

	subjects = calloc(nsubj, sizeof(*subjects));
	for (i = 0; i < nsubj; i++) {
		size_t ng = rndn(MAXSUBJGROUPS + 1), j;

		for (j = 0; j < ng; j++)
			subjects[i].g[j] = groups[rndn(NGROUPS)];
		subjects[i].s.user = users[rndn(NUSERS)];
		subjects[i].s.workspace = wss[rndn(NWS)];
		subjects[i].s.groups = subjects[i].g;
		subjects[i].s.ngroups = ng;
	}
	reqs = calloc(nlookups, sizeof(*reqs));
	t = calloc(nlookups, sizeof(*t));
	if (reqs == NULL || t == NULL)
		return 1;
	for (i = 0; i < nlookups; i++)
		gen_request(&reqs[i], nsubj);

	/* the cost of the clock reads themselves, included in every figure below */
	for (i = 0; i < nlookups; i++) {
		t0 = now_ns();
		t[i] = now_ns() - t0;
	}
	qsort(t, nlookups, sizeof(*t), cmp_u64);
	overhead = t[nlookups / 2];

	/* warm-up: one pass over a tenth of the requests */
	for (i = 0; i < nlookups / 10; i++) {
		struct policy_decision d;

		policy_decide(p, &subjects[reqs[i].subj].s, reqs[i].host, reqs[i].port, &d);
	}
	tstart = now_ns();
	for (i = 0; i < nlookups; i++) {
		struct policy_decision d;

		t0 = now_ns();
		policy_decide(p, &subjects[reqs[i].subj].s, reqs[i].host, reqs[i].port, &d);
		t[i] = now_ns() - t0;
		if (d.verdict == POLICY_ALLOW)
			allow++;
		else if (d.verdict == POLICY_CORP)
			corp++;
		else
			deny++;
	}
	total = (double)(now_ns() - tstart) / 1e9;

	printf("policy: %zu egress rules + 200 corporate services, %zu exact names, %zu "
	       "wildcards; parse+compile %.1f ms (%.1f ms CPU)\n",
	       nrules, nexact, nwild, load_ms, load_cpu_ms);
	printf("requests: %zu (40%% listed names, 25%% under wildcards, 30%% unlisted, 5%% IP "
	       "literals; %zu subjects); answers: %zu allow, %zu corporate, %zu deny\n",
	       nlookups, nsubj, allow, corp, deny);
	printf("clock_gettime pair overhead (median, included below): %.3f us\n\n",
	       (double)overhead / 1e3);
	printf("%-22s %9s %9s %9s %9s %9s %10s %12s\n", "implementation", "lookups", "p50 us",
	       "p90 us", "p99 us", "p99.9 us", "max us", "decisions/s");
	p99 = report("saw (compiled tables)", t, nlookups, total);
	p50 = t[nlookups / 2];

	/* the peer: a sample of the same requests, answers compared one by one */
	nnaive_lookups = nlookups / 100 < 2000 ? (nlookups < 2000 ? nlookups : 2000) :
						 nlookups / 100;
	if (nnaive_lookups > 10000)
		nnaive_lookups = 10000;
	tstart = now_ns();
	for (i = 0; i < nnaive_lookups; i++) {
		struct policy_decision a, b;

		t0 = now_ns();
		naive_decide(&subjects[reqs[i].subj].s, reqs[i].host, reqs[i].port, &b);
		t[i] = now_ns() - t0;
		policy_decide(p, &subjects[reqs[i].subj].s, reqs[i].host, reqs[i].port, &a);
		if (a.verdict != b.verdict || strcmp(a.rule, b.rule) != 0) {
			if (mismatches++ < 5)
				fprintf(stderr, "MISMATCH %s:%d: saw %s (%s), linear %s (%s)\n",
					reqs[i].host, reqs[i].port, policy_verdict_name(a.verdict),
					a.rule, policy_verdict_name(b.verdict), b.rule);
		}
	}
	total = (double)(now_ns() - tstart) / 1e9;
	naive_p99 = report("linear scan (peer)", t, nnaive_lookups, total);
	printf("\nanswers compared with the linear scan: %zu, differing: %zu\n", nnaive_lookups,
	       mismatches);
	printf("speed-up at p50: %.0fx, at p99: %.0fx\n", (double)t[nnaive_lookups / 2] / p50,
	       (double)naive_p99 / p99);
	printf("target: p99 <= 2.000 us with %zu rules: %.3f us, %s\n", nrules, p99 / 1e3,
	       p99 <= 2000 ? "MET" : "NOT MET");
	free(text);
	free(reqs);
	free(t);
	free(subjects);
	json_decref(doc);
	policy_free(p);
	return mismatches == 0 ? 0 : 1;
}
