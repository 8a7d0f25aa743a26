/*
 * The egress proxy's view of the sessions (guestd-proxy-view.c): what a decision needs of
 * them, as one immutable snapshot, so that the proxy's event loops (threads, guestd-shard.h)
 * can decide while guestd's loop changes the session table. guestd-proxy.c rebuilds it on
 * guestd's loop (gproxy_view_changed()) whenever a session is attached, refreshed or ended
 * and when the policy is replaced; a decision holds a reference to the snapshot it used.
 *
 * Ownership: a view owns copies of every string and a reference to the policy; it is freed
 * when its last reference goes (gproxy_view_put(), from any thread).
 */
#ifndef SAW_GUESTD_PROXY_VIEW_H
#define SAW_GUESTD_PROXY_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "tunnel/ctl.h"

struct guestd;
struct policy;
struct policy_subject;

struct gproxy_vsession {
	char *id, *user;
	char **groups;
	size_t ngroups;
	int64_t expires;
	struct ctl_corp *corp;
	size_t ncorp;
};

struct gproxy_view {
	int refs;	       /* atomic */
	struct policy *policy; /* a reference, or NULL: everything denied */
	const char *workspace; /* g->cfg.workspace_name (lives as long as guestd) */
	struct gproxy_vsession *s;
	size_t n;
};

/* A snapshot of g's sessions and policy, with one reference (guestd's loop); NULL when out of
 * memory. */
struct gproxy_view *gproxy_view_build(struct guestd *g);
/* A view of no session (every request of a session is refused), with one reference. */
struct gproxy_view *gproxy_view_empty(struct guestd *g);
/* Drops a reference (NULL: nothing); the last one frees the view. */
void gproxy_view_put(struct gproxy_view *v);
/* The session sid of v if it is live at now (0: whatever its expiry), or NULL. */
const struct gproxy_vsession *gproxy_view_find(const struct gproxy_view *v, const char *sid,
					       int64_t now);
/* The policy subject of s (pointers borrowed from v). */
void gproxy_view_subject(const struct gproxy_view *v, const struct gproxy_vsession *s,
			 struct policy_subject *subj);

#endif
