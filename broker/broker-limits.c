/*
 * Pre-auth limits: tighter rules before a client has proven anything (as sshd and Redis do).
 *
 * - MaxStartups begin:rate:full: with `begin` unauthenticated connections, new ones are
 *   refused with probability rate% growing linearly to 100% at `full` (sshd's random early
 *   drop), so a flood cannot exhaust memory or the IdP.
 * - PerSourceMaxStartups: unauthenticated connections from one address.
 * - PerSourcePenalty FAILURES DURATION: an address with that many refused logins inside
 *   DURATION is refused for DURATION.
 *
 * Per-source state lives in a small open table of fixed size; when it is full the oldest
 * entry is reused, so the table can never grow with the number of attackers.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "broker/broker.h"

#define LIMITS_SLOTS 4096

struct source {
	char ip[64];
	int unauth;	      /* unauthenticated connections now */
	int failures;	      /* refused logins in the current window */
	int64_t window_start; /* first failure of the window */
	int64_t penalty_until;
	int64_t last_seen;
};

struct limits {
	const struct broker_config *cfg;
	struct source slots[LIMITS_SLOTS];
};

struct limits *
limits_new(const struct broker_config *cfg)
{
	struct limits *l = calloc(1, sizeof(*l));

	if (l != NULL)
		l->cfg = cfg;
	return l;
}

void
limits_free(struct limits *l)
{
	free(l);
}

static uint32_t
limits_hash(const char *ip)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *ip; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h;
}

/* The slot for ip, or (create) a free/oldest idle slot nearby. */
static struct source *
limits_slot(struct limits *l, const char *ip, bool create, int64_t now)
{
	uint32_t h = limits_hash(ip);
	struct source *victim = NULL, *s;
	int i;

	for (i = 0; i < 16; i++) {
		s = &l->slots[(h + (uint32_t)i) % LIMITS_SLOTS];
		if (strcmp(s->ip, ip) == 0)
			return s;
		if (s->unauth > 0)
			continue; /* in use by live connections: never evicted */
		if (victim == NULL || s->ip[0] == '\0' || s->last_seen < victim->last_seen)
			victim = s;
	}
	if (!create || victim == NULL)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	snprintf(victim->ip, sizeof(victim->ip), "%s", ip);
	victim->last_seen = now;
	return victim;
}

const char *
limits_admit(struct limits *l, const char *ip, size_t nunauth, int64_t now)
{
	const struct broker_config *cfg = l->cfg;
	struct source *s = limits_slot(l, ip, false, now);
	uint32_t r;

	if (s != NULL && s->penalty_until > now)
		return "too many failed logins from this address (PerSourcePenalty)";
	if (s != NULL && cfg->per_source_max_startups > 0 &&
	    s->unauth >= cfg->per_source_max_startups)
		return "too many unauthenticated connections from this address "
		       "(PerSourceMaxStartups)";
	if (nunauth >= (size_t)cfg->max_startups_full)
		return "too many unauthenticated connections (MaxStartups)";
	if (nunauth >= (size_t)cfg->max_startups_begin &&
	    cfg->max_startups_full > cfg->max_startups_begin) {
		/* drop with probability rate% at begin, rising to 100% at full */
		unsigned int p =
			(unsigned int)cfg->max_startups_rate +
			(unsigned int)((100 - cfg->max_startups_rate) *
				       (nunauth - (size_t)cfg->max_startups_begin) /
				       (size_t)(cfg->max_startups_full - cfg->max_startups_begin));
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = 0;
		if (r % 100 < p)
			return "too many unauthenticated connections (MaxStartups, random drop)";
	}
	return NULL;
}

void
limits_unauth_add(struct limits *l, const char *ip)
{
	struct source *s = limits_slot(l, ip, true, broker_now());

	if (s != NULL)
		s->unauth++;
}

void
limits_unauth_del(struct limits *l, const char *ip)
{
	struct source *s = limits_slot(l, ip, false, broker_now());

	if (s != NULL && s->unauth > 0) {
		s->unauth--;
		s->last_seen = broker_now();
	}
}

void
limits_login_failed(struct limits *l, const char *ip, int64_t now)
{
	const struct broker_config *cfg = l->cfg;
	struct source *s = limits_slot(l, ip, true, now);

	if (s == NULL || cfg->per_source_penalty_failures <= 0)
		return;
	s->last_seen = now;
	if (now - s->window_start > cfg->per_source_penalty_time) {
		s->window_start = now;
		s->failures = 0;
	}
	if (++s->failures >= cfg->per_source_penalty_failures) {
		s->penalty_until = now + cfg->per_source_penalty_time;
		s->failures = 0;
	}
}
