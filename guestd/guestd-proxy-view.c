/*
 * The egress proxy's view of the sessions (guestd-proxy-view.h).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "guestd/guestd-proxy-view.h"
#include "guestd/guestd.h"
#include "guestd/policy.h"

static void
gproxy_view_free(struct gproxy_view *v)
{
	size_t i, k;

	for (i = 0; i < v->n; i++) {
		struct gproxy_vsession *s = &v->s[i];

		free(s->id);
		free(s->user);
		for (k = 0; k < s->ngroups; k++)
			free(s->groups[k]);
		free(s->groups);
		for (k = 0; k < s->ncorp; k++) {
			free(s->corp[k].name);
			free(s->corp[k].host);
		}
		free(s->corp);
	}
	free(v->s);
	policy_free(v->policy);
	free(v);
}

void
gproxy_view_put(struct gproxy_view *v)
{
	if (v != NULL && __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) == 0)
		gproxy_view_free(v);
}

static char *
gproxy_xstrdup(const char *s, bool *oom)
{
	char *d = strdup(s != NULL ? s : "");

	if (d == NULL)
		*oom = true;
	return d;
}

struct gproxy_view *
gproxy_view_build(struct guestd *g)
{
	struct gproxy_view *v;
	struct gsession *gs;
	bool oom = false;
	size_t i = 0, k;

	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	v->refs = 1;
	v->workspace = g->cfg.workspace_name;
	v->policy = policy_ref(g->policy);
	if (g->sessions.n > 0 && (v->s = calloc(g->sessions.n, sizeof(*v->s))) == NULL)
		oom = true;
	TAILQ_FOREACH(gs, &g->sessions.list, entry) {
		struct gproxy_vsession *s;

		if (oom || i >= g->sessions.n)
			break;
		s = &v->s[i++];
		v->n = i;
		s->id = gproxy_xstrdup(gs->id, &oom);
		s->user = gproxy_xstrdup(gs->user, &oom);
		s->expires = gs->expires;
		if (gs->ngroups > 0 &&
		    (s->groups = calloc(gs->ngroups, sizeof(*s->groups))) == NULL)
			oom = true;
		for (k = 0; !oom && k < gs->ngroups; k++) {
			s->groups[k] = gproxy_xstrdup(gs->groups[k], &oom);
			s->ngroups = k + 1;
		}
		if (gs->ncorp > 0 && (s->corp = calloc(gs->ncorp, sizeof(*s->corp))) == NULL)
			oom = true;
		for (k = 0; !oom && k < gs->ncorp; k++) {
			s->corp[k].name = gproxy_xstrdup(gs->corp[k].name, &oom);
			s->corp[k].host = gproxy_xstrdup(gs->corp[k].host, &oom);
			s->corp[k].port = gs->corp[k].port;
			s->ncorp = k + 1;
		}
	}
	if (oom) {
		gproxy_view_free(v);
		return NULL;
	}
	return v;
}

const struct gproxy_vsession *
gproxy_view_find(const struct gproxy_view *v, const char *sid, int64_t now)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		if (strcmp(v->s[i].id, sid) == 0)
			return v->s[i].expires > now ? &v->s[i] : NULL;
	return NULL;
}

void
gproxy_view_subject(const struct gproxy_view *v, const struct gproxy_vsession *s,
		    struct policy_subject *subj)
{
	memset(subj, 0, sizeof(*subj));
	subj->user = s->user;
	subj->workspace = v->workspace;
	subj->groups = (const char *const *)s->groups;
	subj->ngroups = s->ngroups;
}

struct gproxy_view *
gproxy_view_empty(struct guestd *g)
{
	struct gproxy_view *v;

	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	v->refs = 1;
	v->workspace = g->cfg.workspace_name;
	return v;
}
