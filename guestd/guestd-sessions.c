/*
 * The brokered sessions attached to this workspace (CTL_SESSION_ATTACH / _END) and the
 * logins pam_saw registered for them.
 *
 * The broker says when a session ends, but expiry is enforced here too: every lookup
 * ignores a session past its `expires`, and a timer per session ends it at that moment,
 * so a lost or late SESSION_END never extends a session.
 *
 * Ending a session is what makes revocation reach the workspace: its per-session tunnel is
 * closed (every corporate connection of the session drops) and its registered logins are
 * killed: cgroup.kill of the login's cgroup v2 where there is one, and SIGHUP to the login
 * process then SIGKILL 2 s later. Processes are held by pidfd from registration on, so a
 * recycled pid is never signalled.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event.h>

#include "audit/log.h"
#include "guestd/guestd-sandbox.h"
#include "guestd/guestd.h"

#define GSESSIONS_MAX 1024	 /* sessions per workspace: a single-user VM has a few */
#define GSESSIONS_MAX_LOGINS 256 /* registered logins per session */
#define GSESSIONS_KILL_GRACE 2	 /* seconds between SIGHUP and SIGKILL */

struct gsessions_kill {
	pid_t pid;
	int pidfd;
};

static int
gsessions_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	errno = ENOSYS;
	return -1;
#endif
}

static int
gsessions_signal(pid_t pid, int pidfd, int sig)
{
#ifdef SYS_pidfd_send_signal
	if (pidfd >= 0)
		return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
#endif
	return kill(pid, sig);
}

void
gsessions_init(struct gsessions *t, struct guestd *g)
{
	memset(t, 0, sizeof(*t));
	t->g = g;
	TAILQ_INIT(&t->list);
}

static void
gsessions_expire_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gsession *s = arg;

	log_info("session %s of %s: expired", s->id, s->user);
	gsessions_end(s, "expired");
}

static void
gsessions_arm(struct gsession *s, int64_t now)
{
	struct timeval tv;

	if (s->ev_expire == NULL)
		return;
	tv.tv_sec = s->expires > now ? (time_t)(s->expires - now) : 0;
	tv.tv_usec = 0;
	evtimer_add(s->ev_expire, &tv);
}

static void
gsessions_free_corp(struct ctl_corp *corp, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(corp[i].name);
		free(corp[i].host);
	}
	free(corp);
}

static int
gsessions_copy_corp(struct gsession *s, const struct ctl_attach *a)
{
	struct ctl_corp *c = NULL;
	size_t i;

	if (a->ncorp > 0 && (c = calloc(a->ncorp, sizeof(*c))) == NULL)
		return -1;
	for (i = 0; i < a->ncorp; i++) {
		c[i].name = strdup(a->corp[i].name);
		c[i].host = strdup(a->corp[i].host);
		c[i].port = a->corp[i].port;
		if (c[i].name == NULL || c[i].host == NULL) {
			gsessions_free_corp(c, a->ncorp);
			return -1;
		}
	}
	gsessions_free_corp(s->corp, s->ncorp);
	s->corp = c;
	s->ncorp = a->ncorp;
	return 0;
}

static void
gsessions_free_groups(char **groups, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(groups[i]);
	free(groups);
}

/* The session's groups (policy selectors) as the latest ATTACH says. */
static int
gsessions_copy_groups(struct gsession *s, const struct ctl_attach *a)
{
	char **gr = NULL;
	size_t i;

	if (a->ngroups > 0 && (gr = calloc(a->ngroups, sizeof(*gr))) == NULL)
		return -1;
	for (i = 0; i < a->ngroups; i++)
		if ((gr[i] = strdup(a->groups[i])) == NULL) {
			gsessions_free_groups(gr, i);
			return -1;
		}
	gsessions_free_groups(s->groups, s->ngroups);
	s->groups = gr;
	s->ngroups = a->ngroups;
	return 0;
}

static void
gsessions_free(struct gsession *s)
{
	struct glogin *l;

	while ((l = TAILQ_FIRST(&s->logins)) != NULL) {
		TAILQ_REMOVE(&s->logins, l, entry);
		if (l->pidfd >= 0)
			close(l->pidfd);
		free(l->cgroup);
		free(l);
	}
	if (s->ev_expire != NULL)
		event_free(s->ev_expire);
	gsessions_free_corp(s->corp, s->ncorp);
	gsessions_free_groups(s->groups, s->ngroups);
	free(s->id);
	free(s->user);
	free(s->sub);
	free(s->key_fp);
	free(s->profile);
	free(s);
}

struct gsession *
gsessions_attach(struct gsessions *t, const struct ctl_attach *a, int64_t now)
{
	struct gsession *s;
	bool fresh = false;

	if (a->expires <= now)
		return NULL;
	TAILQ_FOREACH(s, &t->list, entry)
		if (strcmp(s->id, a->session) == 0)
			break;
	if (s != NULL) {
		/* The same session again (broker resync or a refreshed token): the identity
		 * it is bound to must not change. */
		if (strcmp(s->user, a->user) != 0 || strcmp(s->key_fp, a->key_fp) != 0)
			return NULL;
	} else {
		if (t->n >= GSESSIONS_MAX)
			return NULL;
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return NULL;
		fresh = true;
		s->table = t;
		TAILQ_INIT(&s->logins);
		s->id = strdup(a->session);
		s->user = strdup(a->user);
		s->sub = strdup(a->sub);
		s->key_fp = strdup(a->key_fp);
		if (s->id == NULL || s->user == NULL || s->sub == NULL || s->key_fp == NULL)
			goto fail;
		if (t->g != NULL &&
		    (s->ev_expire = evtimer_new(t->g->base, gsessions_expire_cb, s)) == NULL)
			goto fail;
	}
	free(s->profile);
	if ((s->profile = strdup(a->profile)) == NULL || gsessions_copy_corp(s, a) != 0 ||
	    gsessions_copy_groups(s, a) != 0)
		goto fail;
	s->expires = a->expires;
	gsessions_arm(s, now);
	if (fresh) {
		TAILQ_INSERT_TAIL(&t->list, s, entry);
		t->n++;
	}
	if (t->g != NULL && a->tunnel_token != NULL &&
	    (s->tunnel == NULL || !gtunnel_up(s->tunnel))) {
		if (s->tunnel != NULL)
			gtunnel_free(s->tunnel);
		s->tunnel = gtunnel_new(t->g, s, a->tunnel_token);
	}
	if (t->g != NULL) {
		gproxy_view_changed(t->g);
		gbroker_state_changed(t->g);
	}
	return s;
fail:
	if (fresh)
		gsessions_free(s);
	return NULL;
}

struct gsession *
gsessions_find(struct gsessions *t, const char *id, int64_t now)
{
	struct gsession *s;

	TAILQ_FOREACH(s, &t->list, entry)
		if (s->expires > now && strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

struct gsession *
gsessions_find_key(struct gsessions *t, const char *user, const char *fp, int64_t now)
{
	struct gsession *s;

	TAILQ_FOREACH(s, &t->list, entry)
		if (s->expires > now && strcmp(s->user, user) == 0 && strcmp(s->key_fp, fp) == 0)
			return s;
	return NULL;
}

struct gsession *
gsessions_find_user(struct gsessions *t, const char *user, int64_t now)
{
	struct gsession *s, *best = NULL;

	TAILQ_FOREACH(s, &t->list, entry)
		if (s->expires > now && strcmp(s->user, user) == 0 &&
		    (best == NULL || s->expires > best->expires))
			best = s;
	return best;
}

bool
gsessions_cgroup_ok(const char *path)
{
	static const char root[] = "/sys/fs/cgroup/";
	const char *p;

	if (path == NULL || strncmp(path, root, sizeof(root) - 1) != 0 ||
	    strlen(path) > PATH_MAX - 32 || path[sizeof(root) - 1] == '\0')
		return false;
	for (p = path; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	/* no ".." component: the path must stay under the cgroup root */
	for (p = path; (p = strstr(p, "..")) != NULL; p += 2)
		if (p[-1] == '/' && (p[2] == '/' || p[2] == '\0'))
			return false;
	return true;
}

static void
gsessions_sigkill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gsessions_kill *k = arg;

	if (gsessions_signal(k->pid, k->pidfd, SIGKILL) == 0)
		log_info("login pid %d still there after SIGHUP: killed", (int)k->pid);
	if (k->pidfd >= 0)
		close(k->pidfd);
	free(k);
}

/* cgroup v2: writing 1 to cgroup.kill SIGKILLs every process of the cgroup at once,
 * including ones that left the login's process tree. */
static void
gsessions_cgroup_kill(const char *cgroup)
{
	char real[PATH_MAX], path[PATH_MAX];
	int fd;

	if (!gsessions_cgroup_ok(cgroup) || realpath(cgroup, real) == NULL ||
	    !gsessions_cgroup_ok(real) ||
	    snprintf(path, sizeof(path), "%s/cgroup.kill", real) >= (int)sizeof(path))
		return;
	if ((fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return; /* no cgroup v2 kill here: the signals below do it */
	if (write(fd, "1", 1) != 1)
		log_warn("%s", path);
	else
		log_info("killed cgroup %s", real);
	close(fd);
}

static void
gsessions_kill_login(struct guestd *g, struct glogin *l)
{
	struct gsessions_kill *k;
	struct timeval tv = { GSESSIONS_KILL_GRACE, 0 };

	if (l->cgroup != NULL)
		gsessions_cgroup_kill(l->cgroup);
	if (gsessions_signal(l->pid, l->pidfd, SIGHUP) != 0) {
		if (errno != ESRCH)
			log_warn("login pid %d: SIGHUP", (int)l->pid);
		return;
	}
	log_info("login pid %d: sent SIGHUP", (int)l->pid);
	if ((k = malloc(sizeof(*k))) == NULL)
		return;
	k->pid = l->pid;
	k->pidfd = l->pidfd; /* the kill timer owns the pidfd now */
	l->pidfd = -1;
	if (event_base_once(g->base, -1, EV_TIMEOUT, gsessions_sigkill_cb, k, &tv) != 0) {
		gsessions_signal(k->pid, k->pidfd, SIGKILL);
		if (k->pidfd >= 0)
			close(k->pidfd);
		free(k);
	}
}

void
gsessions_end(struct gsession *s, const char *reason)
{
	struct gsessions *t = s->table;
	struct glogin *l;

	TAILQ_REMOVE(&t->list, s, entry);
	t->n--;
	if (t->g != NULL) {
		log_info("session %s of %s ended (%s): %s", s->id, s->user, reason,
			 TAILQ_EMPTY(&s->logins) ? "no logins to end" : "ending its logins");
		if (s->tunnel != NULL)
			gtunnel_free(s->tunnel);
		s->tunnel = NULL;
		/* its proxy listeners, direct connections and capabilities */
		proxy_session_end(t->g, s->id);
		/* its sandboxes: every process of them (saw-session says why) */
		gsandbox_session_end(t->g, s->id, reason);
		if (!t->g->shutting_down)
			TAILQ_FOREACH(l, &s->logins, entry)
				gsessions_kill_login(t->g, l);
		gbroker_state_changed(t->g);
	}
	gsessions_free(s);
}

size_t
gsessions_expire(struct gsessions *t, int64_t now)
{
	struct gsession *s, *next;
	size_t n = 0;

	for (s = TAILQ_FIRST(&t->list); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->expires <= now) {
			gsessions_end(s, "expired");
			n++;
		}
	}
	return n;
}

int
gsessions_login_add(struct gsession *s, pid_t pid, const char *cgroup)
{
	struct glogin *l;
	size_t n = 0;

	if (pid <= 1)
		return -EINVAL;
	if (cgroup != NULL && !gsessions_cgroup_ok(cgroup))
		return -EINVAL;
	TAILQ_FOREACH(l, &s->logins, entry) {
		if (l->pid == pid)
			return 0; /* already registered */
		n++;
	}
	if (n >= GSESSIONS_MAX_LOGINS)
		return -ENOSPC;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return -ENOMEM;
	l->pid = pid;
	l->pidfd = -1;
	if (s->table->g != NULL) {
		l->pidfd = gsessions_pidfd_open(pid);
		if (l->pidfd == -1 && errno == ESRCH) {
			free(l);
			return -ESRCH;
		}
	}
	if (cgroup != NULL && (l->cgroup = strdup(cgroup)) == NULL) {
		if (l->pidfd >= 0)
			close(l->pidfd);
		free(l);
		return -ENOMEM;
	}
	TAILQ_INSERT_TAIL(&s->logins, l, entry);
	if (s->table->g != NULL)
		gbroker_state_changed(s->table->g);
	return 0;
}

size_t
gsessions_login_del(struct gsessions *t, const char *user, pid_t pid)
{
	struct gsession *s;
	struct glogin *l, *next;
	size_t n = 0;

	TAILQ_FOREACH(s, &t->list, entry) {
		if (strcmp(s->user, user) != 0)
			continue;
		for (l = TAILQ_FIRST(&s->logins); l != NULL; l = next) {
			next = TAILQ_NEXT(l, entry);
			if (l->pid != pid)
				continue;
			TAILQ_REMOVE(&s->logins, l, entry);
			if (l->pidfd >= 0)
				close(l->pidfd);
			free(l->cgroup);
			free(l);
			n++;
		}
	}
	if (n > 0 && t->g != NULL)
		gbroker_state_changed(t->g);
	return n;
}

void
gsessions_free_all(struct gsessions *t)
{
	struct gsession *s;

	while ((s = TAILQ_FIRST(&t->list)) != NULL)
		gsessions_end(s, "saw-guestd is stopping");
}
