/*
 * The policy document (conf/saw-policy.5): what a brokered session may do inside the
 * workspace. JSON, strictly parsed (unknown fields are errors), immutable once loaded:
 * guestd swaps the whole struct atomically on reload (SIGHUP now, signed bundles later).
 *
 *   { "version": 7, "profile": "corporate",
 *     "egress": [ {"id": "pypi", "action": "allow", "hosts": ["pypi.org", "*.pythonhosted.org"],
 *                  "ports": [443], "select": {"groups": ["saw-users"]}} , … ],
 *     "corporate": [ {"name": "git", "host": "git.corp.example", "port": 443} ],
 *     "credentials": [ {"name": "openai", "kind": "openai", "upstream": "https://api.openai.com",
 *                       "header": "Authorization", "scheme": "Bearer",
 *                       "secret": "file:/etc/saw/secrets/openai"} ],
 *     "filesystem": {"writable": ["/srv/data"], "protected": [".git/hooks", ".bashrc", …]},
 *     "limits": {"nproc": 512, "nofile": 4096, "memory": "8G", "cpu": 2},
 *     "addresses": {"allow_private": ["10.20.0.0/16"]} }
 *
 * Rules: deny wins over allow; a rule applies when its selector matches the session (any of
 * the listed groups / users / workspaces; no selector = everyone). Hosts are exact names or
 * "*.suffix" (which does not match the bare suffix). Decisions are pure functions of
 * (policy, subject, host, port): no I/O, no allocation, fast enough to run per request.
 *
 * Ownership: policy_load_*() returns a policy the caller frees with policy_free(); every
 * pointer returned by the accessors is borrowed from the policy and lives as long as it.
 */
#ifndef SAW_GUESTD_POLICY_H
#define SAW_GUESTD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_MAX_LEN (4 * 1024 * 1024)

struct policy;

struct policy_subject {
	const char *user;
	const char *workspace;
	const char *const *groups;
	size_t ngroups;
};

enum policy_verdict {
	POLICY_DENY = 0,
	POLICY_ALLOW = 1, /* public destination: guestd dials it itself */
	POLICY_CORP = 2,  /* corporate service: over the per-session tunnel */
};

struct policy_decision {
	enum policy_verdict verdict;
	const char *rule; /* id of the deciding rule, or "default-deny" */
	int64_t version;  /* policy version that decided */
};

struct policy_cred_route {
	const char *name;     /* route name: SAW_CAP_<NAME> in the session environment */
	const char *kind;     /* "openai" | "anthropic" | "generic" */
	const char *upstream; /* https URL (scheme + host [+ port] [+ base path]) */
	const char *header;   /* header to inject, e.g. "Authorization" or "x-api-key" */
	const char *scheme;   /* e.g. "Bearer", or NULL: the header is the secret itself */
	const char *secret;   /* reference: "file:/path" or "command:NAME" — never the secret */
};

struct policy_limits {
	long nproc, nofile;
	long long memory; /* bytes, 0 = unlimited */
	double cpu;	  /* CPUs, 0 = unlimited */
};

struct policy *policy_load_file(const char *path, char *err, size_t errlen);
struct policy *policy_load_buffer(const char *buf, size_t len, char *err, size_t errlen);
void policy_free(struct policy *p);

int64_t policy_version(const struct policy *p);
const char *policy_profile(const struct policy *p);

/* host is a DNS name or an IP literal (no brackets), lowercase expected. */
void policy_decide(const struct policy *p, const struct policy_subject *s, const char *host,
		   int port, struct policy_decision *out);
/* Is this resolved address (of a class the classifier refuses by default) explicitly named by
 * the policy ("addresses.allow_private")? */
bool policy_address_allowed(const struct policy *p, const struct policy_subject *s,
			    const void *addr, int family);
const struct policy_cred_route *policy_cred_route(const struct policy *p,
						  const struct policy_subject *s, const char *name);
size_t policy_cred_routes(const struct policy *p, const struct policy_cred_route **out, size_t max);
const struct policy_limits *policy_limits(const struct policy *p);
/* NULL-terminated arrays borrowed from the policy. */
const char *const *policy_fs_writable(const struct policy *p);
const char *const *policy_fs_protected(const struct policy *p);

/* ---- additions (the declarations above are the fixed contract) ---------------------------
 *
 * Errors: policy_load_*() put one sentence in err naming where the problem is, as a JSON
 * path ("$.egress[3].hosts[1]: …") or, for JSON syntax, "line L column C: …". The file name
 * is not in it: the caller says which file.
 *
 * A NULL policy is valid everywhere a const policy is taken: it decides "deny" (rule
 * "no-policy", version 0), names no route, no limits and no paths.
 *
 * Lifetime across a reload: guestd frees the old policy when it swaps in a new one. Code
 * that keeps using a policy (or pointers borrowed from it) across event-loop turns takes a
 * reference first with policy_ref() and drops it with policy_free(), which frees the policy
 * when the last reference goes. The count is atomic: the egress proxy's event loops (threads)
 * share policies; everything else about a policy is read-only once loaded. */

struct policy *policy_ref(const struct policy *p);

/* "allow", "deny" or "corporate" (the decision API's words). */
const char *policy_verdict_name(enum policy_verdict v);

/* May a process of the session write path (absolute; "." and ".." are resolved lexically,
 * symbolic links are not: the sandbox's mounts enforce what this answers)? home is the
 * session user's home directory, or NULL. Order: a protected path denies (rule
 * "protected:ENTRY"); the home ("home"), the session's /tmp ("session-tmp") and the
 * writable paths ("writable:PATH") allow; anything else is read-only ("read-only"). A path
 * that is not absolute or too long is denied ("invalid-path"). */
void policy_decide_write(const struct policy *p, const char *path, const char *home,
			 struct policy_decision *out);

/* Egress rules plus corporate services, as compiled. */
size_t policy_rule_count(const struct policy *p);

#endif
