/*
 * The egress proxy (ARCHITECTURE Flow 2, invariant 6): deny by default, every request decided
 * for the session's identity against the policy.
 *
 * Listeners. Each brokered session gets its own listeners inside its sandbox's network
 * namespace (proxy_listen_fds(), called by the sandbox launcher): a connection accepted there
 * belongs to that session and nobody else. ProxyListen (and CredentialListen, guestd-cred.c)
 * on the workspace's loopback stay as a workspace-wide fallback for processes outside any
 * sandbox: a connection there is attributed to "the" live session when exactly one is live,
 * and refused (403) when none or several are, because we could not say whose policy applies.
 *
 * A client has GPROXY_HEAD_TIMEOUT seconds to send its request head (at most
 * GPROXY_MAX_HEAD bytes, parsed by guestd-proxy-parse.c): CONNECT host:port, or a plain
 * HTTP request with an absolute http:// URL (forwarded with Connection: close). Then:
 *   - policy_decide() for the session's subject (deny wins; no policy: everything denied);
 *     a destination on the session's corporate list from the broker (ATTACH) that no rule
 *     denies explicitly counts as corporate;
 *   - POLICY_CORP  → the session's per-session tunnel (guestd-tunnel.c);
 *   - POLICY_ALLOW → guestd resolves the name itself (evdns, asynchronous, bounded), keeps
 *     only addresses whose class (netclass_of()) is public or that the policy names
 *     (addresses.allow_private), and dials those addresses, never the name again: a
 *     second lookup could answer differently (DNS rebinding). IP literals and "localhost"
 *     names (RFC 6761: never sent to DNS) go through the same classification.
 *   - anything else → 403 with a small JSON body naming the rule, and an audit event.
 * Once connected: TCP_NODELAY both ways, a bounded relay (guestd-relay.c), an idle timeout.
 *
 * Audit: OCSF Network Activity (4001) Open / Refuse events (audit/ocsf.h builders), spooled
 * and forwarded to the broker's audit pipeline over the control channel (CTL_AUDIT,
 * gbroker_audit(): kept while the broker is unreachable, and logged as "audit: {json}"
 * lines when nothing durable holds them, or with -d).
 *
 * Event loops (ProxyThreads, guestd-shard.h). Shard 0 is guestd's own loop, the others are
 * threads. An egress listener is one SO_REUSEPORT socket per shard on the same address, each
 * accepted on by its shard: the kernel deals the connections out, and a connection lives on
 * the shard that accepted it until it closes. What a shard may touch:
 *   - its own listeners, clients, events, resolver (evdns base) and relays;
 *   - the proxy's view (struct gproxy_view, guestd-proxy-view.c): an immutable,
 *     reference-counted copy of the sessions and the policy, replaced by guestd's loop
 *     whenever either changes; a decision holds the copy it was made with until the dial;
 *   - the connection counters and the relays' pipe count (atomic);
 *   - everything else through guestd's loop: audit events (posted, spooled there in the
 *     order they happened), a corporate destination (the client is handed over with its
 *     socket: the tunnels are guestd's loop's), the end of a session (guestd's loop posts
 *     it to every shard, which closes its listeners and resets its connections).
 * New listeners of a running shard (a sandbox's) are posted to it too.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "audit/audit-json.h"
#include "audit/log.h"
#include "audit/ocsf.h"
#include "guestd/guestd-proxy-view.h"
#include "guestd/guestd-proxy.h"
#include "guestd/guestd-relay.h"
#include "guestd/guestd-shard.h"
#include "guestd/guestd.h"
#include "guestd/netclass.h"
#include "guestd/policy.h"

#define GPROXY_HEAD_TIMEOUT 10	 /* seconds to send the request head */
#define GPROXY_RESOLVE_TIMEOUT 8 /* seconds for the name lookup, all attempts */
#define GPROXY_DIAL_TIMEOUT 10	 /* seconds per address to connect */
#define GPROXY_IDLE_TIMEOUT 300	 /* seconds without a byte either way */
#define GPROXY_MAX_ADDRS 8	 /* addresses tried per name */
#define GPROXY_MAX_PENDING 256	 /* clients still sending their head */
#define GPROXY_MAX_CONNS 4096	 /* clients in all (two descriptors each) */
#define GPROXY_HOW_TO "ask your platform team to add it to the egress allowlist"

enum gproxy_state {
	GP_HEAD,
	GP_RESOLVING,
	GP_DIALING,
	GP_RELAY,
};

struct gproxy_shard;

struct gproxy_listener {
	TAILQ_ENTRY(gproxy_listener) entry;
	struct gproxy_shard *ps; /* the loop it accepts on */
	struct evconnlistener *l;
	char *sid;	   /* NULL: the workspace-wide fallback */
	unsigned long tag; /* the sandbox it serves (proxy_listen_fds), 0: none */
	int kind;
};
TAILQ_HEAD(gproxy_listener_list, gproxy_listener);

struct gproxy_client;
TAILQ_HEAD(gproxy_client_list, gproxy_client);

/* One event loop's share of the clients (guestd-shard.h): shard 0 is guestd's own loop. */
struct gproxy_shard {
	struct gproxy *px;
	struct gshard *sh;
	struct event_base *base;
	struct evdns_base *dns;
	struct gproxy_view *view;	       /* this loop's reference to the current view, */
	unsigned long view_gen;		       /* taken when px->view_gen was this */
	struct gproxy_listener_list listeners; /* this loop's only */
	struct gproxy_client_list clients;     /* this loop's only */
};

struct gproxy_client {
	TAILQ_ENTRY(gproxy_client) entry;
	struct gproxy *px;
	struct gproxy_shard *ps; /* NULL once handed to guestd's loop for the tunnel */
	enum gproxy_state state;
	int fd;	 /* the client */
	int ufd; /* the destination while dialing */
	char sid[128];
	bool fallback; /* accepted on ProxyListen: attributed when decided */
	char user[128];
	char peer[INET6_ADDRSTRLEN];
	int peer_port;
	struct event *ev_read, *ev_timeout, *ev_dial, *ev_step;
	struct evdns_getaddrinfo_request *dns;
	int dns_err;
	bool dns_done;
	struct evutil_addrinfo *ai;
	struct sockaddr_storage addrs[GPROXY_MAX_ADDRS];
	socklen_t addrlens[GPROXY_MAX_ADDRS];
	size_t naddrs, next_addr;
	char dst_ip[INET6_ADDRSTRLEN];
	struct gproxy_view *view;	     /* reference held from the decision to the dial */
	char corp_host[GPROXY_HOST_MAX + 1]; /* POLICY_CORP: where the tunnel goes */
	int corp_port;
	char rule[160];
	int64_t version;
	struct grelay *relay;
	struct gproxy_request req;
	size_t len;
	char buf[GPROXY_MAX_HEAD];
};

struct gproxy {
	struct guestd *g;
	size_t nclients, npending; /* atomic: every shard's clients */
	struct gproxy_shard **shards;
	size_t nshards;
	/* The other shards' audit events, posted to guestd's loop in the order they happened
	 * (each before the client hears its answer); guestd's loop runs what is queued before
	 * it spools an event of its own, so the spool keeps that order across loops. */
	struct gshard *audit;
	pthread_mutex_t view_mu;
	struct gproxy_view *view;  /* under view_mu */
	unsigned long view_gen;	   /* atomic (written under view_mu): bumped with each view */
	struct gproxy_view *empty; /* no sessions: what decisions see when a rebuild failed */
	bool closing;		   /* atomic: gproxy_close() has begun */
};

static void gproxy_dial_next(struct gproxy_client *c);

/* ---- replies and audit ------------------------------------------------------------------ */

void
gproxy_reply_error(int fd, int status, const char *reason, const char *body)
{
	char buf[1024];
	int n;

	n = snprintf(buf, sizeof(buf),
		     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n"
		     "%s\n",
		     status, reason, strlen(body) + 1, body);
	if (n > 0 && (size_t)n < sizeof(buf))
		(void)!write(fd, buf, (size_t)n); /* best effort: the client may be gone */
}

void
gproxy_reply_json(int fd, int status, const char *reason, json_t *body)
{
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	char head[300];
	int n;

	json_decref(body);
	if (text == NULL)
		return;
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n",
		     status, reason, strlen(text) + 1);
	if (n > 0 && (size_t)n < sizeof(head)) {
		struct iovec iov[3] = { { head, (size_t)n }, { text, strlen(text) }, { "\n", 1 } };

		(void)!writev(fd, iov, 3); /* small: one write, best effort */
	}
	free(text);
}

/* OCSF Network Activity (4001): Open or Refuse of an egress destination. */
static json_t *
gproxy_ocsf_network(struct gproxy_client *c, enum ocsf_net_activity activity, const char *host,
		    const char *ip, int port, const char *detail)
{
	struct ocsf_subject who = { .username = c->user[0] ? c->user : "unknown",
				    .session_uid = c->sid[0] ? c->sid : "none" };
	struct ocsf_endpoint src = { .ip = c->peer[0] ? c->peer : NULL, .port = c->peer_port };
	struct ocsf_endpoint dst = { .hostname = host,
				     .ip = ip != NULL && ip[0] != '\0' ? ip : NULL,
				     .port = port };
	json_t *ev;

	ev = ocsf_network_activity(activity, &who, &src, &dst, detail,
				   activity == OCSF_NET_REFUSE ? "egress refused" : "egress opened",
				   ocsf_now_ms());
	if (ev != NULL)
		json_object_set_new(ev, "unmapped",
				    json_pack("{s:s, s:I}", "rule", c->rule, "policy_version",
					      (json_int_t)c->version));
	return ev;
}

/* ---- the sessions as decisions see them (guestd-proxy-view.c) ------------------------- */

/* The current snapshot, referenced, for a client of ps (on ps's thread); never NULL. Each
 * loop keeps a reference to the view it saw last and takes the lock only when the view has
 * changed since, so that decisions on several loops do not contend for it. */
static struct gproxy_view *
gproxy_view_get(struct gproxy_shard *ps)
{
	struct gproxy *px = ps->px;

	if (ps->view == NULL || ps->view_gen != __atomic_load_n(&px->view_gen, __ATOMIC_ACQUIRE)) {
		struct gproxy_view *v;

		pthread_mutex_lock(&px->view_mu);
		v = px->view;
		__atomic_add_fetch(&v->refs, 1, __ATOMIC_RELAXED);
		ps->view_gen = px->view_gen;
		pthread_mutex_unlock(&px->view_mu);
		gproxy_view_put(ps->view);
		ps->view = v;
	}
	__atomic_add_fetch(&ps->view->refs, 1, __ATOMIC_RELAXED);
	return ps->view;
}

void
gproxy_view_changed(struct guestd *g)
{
	struct gproxy *px = g->proxy;
	struct gproxy_view *v, *old;

	if (px == NULL)
		return;
	if ((v = gproxy_view_build(g)) == NULL) {
		/* Fail closed: without a snapshot of the sessions as they are now, no
		 * session's request is served (403, "session has ended") until the next
		 * change builds one. */
		log_warnx("egress proxy: out of memory: every request is refused until the "
			  "session list can be copied");
		v = px->empty;
		__atomic_add_fetch(&v->refs, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_lock(&px->view_mu);
	old = px->view;
	px->view = v;
	__atomic_store_n(&px->view_gen, px->view_gen + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&px->view_mu);
	gproxy_view_put(old);
}

/* ---- clients ------------------------------------------------------------------------- */

static bool
gproxy_on_main(const struct gproxy_client *c)
{
	return c->ps == NULL || gshard_index(c->ps->sh) == 0;
}

/* Frees c's events and takes it off its shard (c then belongs to nobody's loop). */
static void
gproxy_client_detach(struct gproxy_client *c)
{
	struct gproxy_shard *ps = c->ps;

	if (ps == NULL)
		return;
	TAILQ_REMOVE(&ps->clients, c, entry);
	c->ps = NULL;
	if (c->dns != NULL) {
		struct evdns_getaddrinfo_request *req = c->dns;

		c->dns = NULL;
		evdns_getaddrinfo_cancel(req); /* its callback ignores EVUTIL_EAI_CANCEL */
	}
	if (c->ev_read != NULL)
		event_free(c->ev_read);
	if (c->ev_timeout != NULL)
		event_free(c->ev_timeout);
	if (c->ev_dial != NULL)
		event_free(c->ev_dial);
	if (c->ev_step != NULL)
		event_free(c->ev_step);
	c->ev_read = c->ev_timeout = c->ev_dial = c->ev_step = NULL;
}

static void
gproxy_client_free(struct gproxy_client *c, bool close_fd)
{
	struct gproxy *px = c->px;

	gproxy_client_detach(c);
	__atomic_sub_fetch(&px->nclients, 1, __ATOMIC_RELAXED);
	if (c->state == GP_HEAD)
		__atomic_sub_fetch(&px->npending, 1, __ATOMIC_RELAXED);
	if (c->ai != NULL)
		evutil_freeaddrinfo(c->ai);
	if (c->ufd >= 0)
		close(c->ufd);
	if (c->relay != NULL)
		grelay_free(c->relay); /* closes both descriptors */
	else if (close_fd && c->fd >= 0)
		close(c->fd);
	gproxy_view_put(c->view);
	free(c);
}

struct gproxy_audit_job {
	json_t *ev;
	char *text;
	size_t len;
};

static void
gproxy_audit_job_cb(struct gshard *sh, void *arg)
{
	struct gproxy_audit_job *j = arg;
	struct gproxy *px = gshard_data(sh);

	gbroker_audit_text(px->g, j->ev, j->text, j->len);
	free(j->text);
	free(j);
}

/* An audit event of c (reference stolen): gbroker_audit() on guestd's loop; from another
 * shard it is serialised there and posted to guestd's loop, which spools and sends it. */
static void
gproxy_audit(struct gproxy_client *c, json_t *ev)
{
	struct gproxy *px = c->px;
	struct gproxy_audit_job *j;

	if (ev == NULL)
		return;
	if (gproxy_on_main(c)) {
		if (px->audit != NULL)
			gshard_run_pending(px->audit); /* theirs first: see struct gproxy */
		gbroker_audit(px->g, ev);
		return;
	}
	if ((j = calloc(1, sizeof(*j))) != NULL) {
		j->ev = ev;
		j->text = audit_json_compact(ev, NULL, &j->len); /* NULL: serialised there */
		if (gshard_post(px->audit, gproxy_audit_job_cb, j) == 0)
			return;
		free(j->text);
		free(j);
	}
	/* out of memory: say so where it is seen, like a spool that refused it */
	log_warnx("AUDIT EVENT LOST: egress proxy: out of memory passing an event to the spool");
	json_decref(ev);
}

static void
gproxy_refuse(struct gproxy_client *c, int status, const char *reason, const char *body)
{
	gproxy_reply_error(c->fd, status, reason, body);
	gproxy_client_free(c, true);
}

static const char *
gproxy_dest(const struct gproxy_client *c, char *buf, size_t len)
{
	snprintf(buf, len, strchr(c->req.host, ':') != NULL ? "[%s]:%d" : "%s:%d", c->req.host,
		 c->req.port);
	return buf;
}

/* 403 with the JSON body of a refused destination, and its audit event. */
static void
gproxy_refuse_dest(struct gproxy_client *c, const char *ip, const char *why)
{
	char dest[GPROXY_HOST_MAX + 16];
	json_t *body;

	gproxy_dest(c, dest, sizeof(dest));
	log_info("proxy: session %s: %s %s refused (rule %s, policy version %lld)%s%s",
		 c->sid[0] ? c->sid : "-", c->req.method, dest, c->rule, (long long)c->version,
		 why ? ": " : "", why ? why : "");
	gproxy_audit(c, gproxy_ocsf_network(c, OCSF_NET_REFUSE, c->req.host, ip, c->req.port,
					    why != NULL ? why : c->rule));
	body = json_pack("{s:s, s:s, s:s, s:I, s:s}", "error", "destination not allowed",
			 "destination", dest, "rule", c->rule, "policy_version",
			 (json_int_t)c->version, "how_to_request", GPROXY_HOW_TO);
	if (body != NULL && ip != NULL)
		json_object_set_new(body, "address", json_string(ip));
	if (body != NULL && why != NULL)
		json_object_set_new(body, "reason", json_string(why));
	gproxy_reply_json(c->fd, 403, "Forbidden", body);
	gproxy_client_free(c, true);
}

void
gproxy_subject(struct guestd *g, const struct gsession *s, struct policy_subject *subj)
{
	memset(subj, 0, sizeof(*subj));
	subj->user = s->user;
	subj->workspace = g->cfg.workspace_name;
	subj->groups = (const char *const *)s->groups;
	subj->ngroups = s->ngroups;
}

/* The session a connection belongs to in the snapshot c->view, or NULL after answering the
 * client. */
static const struct gproxy_vsession *
gproxy_session(struct gproxy_client *c)
{
	const struct gproxy_view *v = c->view;
	const struct gproxy_vsession *s, *only = NULL;
	int64_t now = guestd_now();
	size_t live = 0, i;

	if (!c->fallback) {
		if ((s = gproxy_view_find(v, c->sid, now)) == NULL)
			gproxy_refuse(c, 403, "Forbidden",
				      "your brokered session has ended: log in through the broker "
				      "again");
		return s;
	}
	for (i = 0; i < v->n; i++)
		if (v->s[i].expires > now) {
			live++;
			only = &v->s[i];
		}
	if (live == 0) {
		log_info("proxy: %s %s:%d refused: no live brokered session", c->req.method,
			 c->req.host, c->req.port);
		gproxy_refuse(c, 403, "Forbidden",
			      "no live brokered session: log in through the broker first");
		return NULL;
	}
	if (live > 1) {
		log_info("proxy: %s %s:%d on ProxyListen refused: %zu sessions live", c->req.method,
			 c->req.host, c->req.port, live);
		gproxy_refuse(c, 403, "Forbidden",
			      "several brokered sessions are live in this workspace: use the proxy "
			      "of your own session (HTTP_PROXY inside its sandbox)");
		return NULL;
	}
	snprintf(c->sid, sizeof(c->sid), "%s", only->id);
	return only;
}

static bool
gproxy_corp_match(const struct ctl_corp *c, const char *host, int port)
{
	return c->port == port &&
	       (strcasecmp(c->host, host) == 0 || strcasecmp(c->name, host) == 0);
}

/* "localhost" and "*.localhost" never go to DNS (RFC 6761 §6.3): they are loopback. */
static bool
gproxy_is_localhost(const char *h)
{
	size_t n = strlen(h);

	if (n > 0 && h[n - 1] == '.')
		n--;
	return (n == 9 && strncasecmp(h, "localhost", 9) == 0) ||
	       (n > 10 && strncasecmp(h + n - 10, ".localhost", 10) == 0);
}

/* The request head to send upstream for a forwarded http:// request: origin-form target,
 * Host from the URL, no proxy or hop-by-hop headers, Connection: close (one request per
 * connection, so every request gets its own decision). */
static int
gproxy_forward_head(const struct gproxy_client *c, char *out, size_t outlen, size_t *len)
{
	static const char *const drop[] = { "Host",
					    "Proxy-Authorization",
					    "Proxy-Connection",
					    "Connection",
					    "Keep-Alive",
					    "Upgrade",
					    "TE",
					    NULL };
	const struct gproxy_request *r = &c->req;
	size_t n, i, k;
	int w;

	w = snprintf(out, outlen, "%s %.*s HTTP/1.%d\r\nHost: %s%s%s", r->method,
		     r->path_len ? (int)r->path_len : 1, r->path_len ? c->buf + r->path : "/",
		     r->http_minor, strchr(r->host, ':') ? "[" : "", r->host,
		     strchr(r->host, ':') ? "]" : "");
	if (w < 0 || (size_t)w >= outlen)
		return -1;
	n = (size_t)w;
	if (r->port != 80) {
		w = snprintf(out + n, outlen - n, ":%d", r->port);
		if (w < 0 || (size_t)w >= outlen - n)
			return -1;
		n += (size_t)w;
	}
	if (n + 2 > outlen)
		return -1;
	memcpy(out + n, "\r\n", 2);
	n += 2;
	for (i = 0; i < r->nheaders; i++) {
		const struct gproxy_header *h = &r->headers[i];

		for (k = 0; drop[k] != NULL && !gproxy_header_is(c->buf, h, drop[k]); k++)
			;
		if (drop[k] != NULL)
			continue;
		if (n + h->name_len + h->value_len + 4 > outlen)
			return -1;
		memcpy(out + n, c->buf + h->name, h->name_len);
		n += h->name_len;
		memcpy(out + n, ": ", 2);
		n += 2;
		memcpy(out + n, c->buf + h->value, h->value_len);
		n += h->value_len;
		memcpy(out + n, "\r\n", 2);
		n += 2;
	}
	if (n + 21 > outlen)
		return -1;
	memcpy(out + n, "Connection: close\r\n\r\n", 21);
	*len = n + 21;
	return 0;
}

/* ---- direct egress: resolve, classify, dial, relay ---------------------------------- */

static void
gproxy_relay_done(struct grelay *r, const char *why, void *arg)
{
	struct gproxy_client *c = arg;

	log_debug("proxy: session %s: %s:%d closed (%llu bytes up, %llu down)%s%s", c->sid,
		  c->req.host, c->req.port, (unsigned long long)grelay_bytes(r, 0),
		  (unsigned long long)grelay_bytes(r, 1), why ? ": " : "", why ? why : "");
	gproxy_client_free(c, true);
}

static const char gproxy_ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";

static void
gproxy_connected(struct gproxy_client *c)
{
	char head[GPROXY_MAX_HEAD + 600];
	size_t hlen = 0, early = c->len - c->req.head_len;
	int ufd = c->ufd;

	if (c->req.form == GPROXY_FORM_ABSOLUTE &&
	    gproxy_forward_head(c, head, sizeof(head), &hlen) != 0) {
		gproxy_refuse(c, 431, "Request Header Fields Too Large", "request head too large");
		return;
	}
	event_del(c->ev_timeout);
	c->ufd = -1;
	c->state = GP_RELAY;
	if ((c->relay = grelay_new(c->ps->base, c->fd, ufd, GPROXY_IDLE_TIMEOUT, gproxy_relay_done,
				   c)) == NULL) {
		c->fd = -1; /* the relay closed both */
		gproxy_client_free(c, false);
		return;
	}
	if ((c->req.form == GPROXY_FORM_AUTHORITY &&
	     grelay_queue(c->relay, 1, gproxy_ok, sizeof(gproxy_ok) - 1) != 0) ||
	    grelay_queue(c->relay, 0, head, hlen) != 0 ||
	    grelay_queue(c->relay, 0, c->buf + c->req.head_len, early) != 0) {
		gproxy_client_free(c, true);
		return;
	}
	gproxy_audit(c, gproxy_ocsf_network(c, OCSF_NET_OPEN, c->req.host, c->dst_ip, c->req.port,
					    c->rule));
	gproxy_view_put(c->view);
	c->view = NULL;
	/* the relay's read event first, then ours: libevent counts both on the descriptor
	 * and leaves the epoll interest as it is */
	grelay_start(c->relay);
	event_del(c->ev_read);
}

static void
gproxy_dial_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gproxy_client *c = arg;
	int err = 0;
	socklen_t elen = sizeof(err);

	if (what & EV_TIMEOUT)
		err = ETIMEDOUT;
	else if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
		err = errno;
	if (err != 0) {
		log_debug("proxy: %s:%d via %s: %s", c->req.host, c->req.port, c->dst_ip,
			  strerror(err));
		close(c->ufd);
		c->ufd = -1;
		gproxy_dial_next(c);
		return;
	}
	gproxy_connected(c);
}

/* Whether a non-blocking connect() has finished, without waiting; *err its outcome. */
static bool
gproxy_dial_ready(int fd, int *err)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	socklen_t elen = sizeof(*err);

	*err = 0;
	if (poll(&pfd, 1, 0) != 1)
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &elen) != 0)
		*err = errno;
	return true;
}

static void
gproxy_dial_next(struct gproxy_client *c)
{
	struct timeval tv = { GPROXY_DIAL_TIMEOUT, 0 };
	struct sockaddr *sa;
	char body[GPROXY_HOST_MAX + 200];
	int one = 1, fd, err;

	while (c->next_addr < c->naddrs) {
		sa = (struct sockaddr *)&c->addrs[c->next_addr];
		evutil_inet_ntop(sa->sa_family,
				 sa->sa_family == AF_INET ?
					 (const void *)&((struct sockaddr_in *)sa)->sin_addr :
					 (const void *)&((struct sockaddr_in6 *)sa)->sin6_addr,
				 c->dst_ip, sizeof(c->dst_ip));
		fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			c->next_addr++;
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, sa, c->addrlens[c->next_addr]) == 0) {
			c->next_addr++;
			c->ufd = fd;
			gproxy_connected(c);
			return;
		}
		c->next_addr++;
		if (errno != EINPROGRESS) {
			close(fd);
			continue;
		}
		/* On loopback (and on a veth in the same host) the handshake has completed by
		 * the time connect() returns EINPROGRESS: one poll saves a loop turn and two
		 * epoll_ctl per connection; elsewhere it says "not yet" and we wait as usual. */
		if (gproxy_dial_ready(fd, &err)) {
			if (err == 0) {
				c->ufd = fd;
				gproxy_connected(c);
				return;
			}
			log_debug("proxy: %s:%d via %s: %s", c->req.host, c->req.port, c->dst_ip,
				  strerror(err));
			close(fd);
			continue;
		}
		c->ufd = fd;
		c->state = GP_DIALING;
		event_del(c->ev_read);
		if (c->ev_dial != NULL)
			event_free(c->ev_dial);
		if ((c->ev_dial = event_new(c->ps->base, fd, EV_WRITE, gproxy_dial_cb, c)) ==
			    NULL ||
		    event_add(c->ev_dial, &tv) != 0) {
			gproxy_refuse(c, 502, "Bad Gateway", "out of memory");
			return;
		}
		return;
	}
	snprintf(body, sizeof(body), "cannot connect to %s:%d (%s)", c->req.host, c->req.port,
		 c->naddrs > 1 ? "no address answered" : "the address did not answer");
	log_info("proxy: session %s: %s", c->sid, body);
	gproxy_refuse(c, 502, "Bad Gateway", body);
}

/* Keeps the addresses the session may reach; refuses if none is left. */
static void
gproxy_filter_and_dial(struct gproxy_client *c, const struct evutil_addrinfo *ai)
{
	const struct gproxy_vsession *s;
	struct gproxy_view *now;
	struct policy_subject subj;
	bool live;
	const struct evutil_addrinfo *a;
	char ip[INET6_ADDRSTRLEN] = "", why[200] = "";
	enum netclass cls;
	const void *addr;

	/* the session must still be live now (after a lookup); its subject is the one of the
	 * decision's snapshot, like the policy */
	now = gproxy_view_get(c->ps);
	live = gproxy_view_find(now, c->sid, guestd_now()) != NULL;
	gproxy_view_put(now);
	if (!live || (s = gproxy_view_find(c->view, c->sid, 0)) == NULL) {
		gproxy_refuse(c, 403, "Forbidden", "your brokered session has ended");
		return;
	}
	gproxy_view_subject(c->view, s, &subj);
	c->naddrs = 0;
	for (a = ai; a != NULL && c->naddrs < GPROXY_MAX_ADDRS; a = a->ai_next) {
		if (a->ai_family == AF_INET && a->ai_addrlen >= sizeof(struct sockaddr_in))
			addr = &((const struct sockaddr_in *)a->ai_addr)->sin_addr;
		else if (a->ai_family == AF_INET6 && a->ai_addrlen >= sizeof(struct sockaddr_in6))
			addr = &((const struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
		else
			continue;
		cls = netclass_of(a->ai_addr);
		if (cls != NETCLASS_PUBLIC &&
		    !policy_address_allowed(c->view->policy, &subj, addr, a->ai_family)) {
			/* remember the first refusal for the answer */
			if (why[0] == '\0') {
				evutil_inet_ntop(a->ai_family, addr, ip, sizeof(ip));
				snprintf(why, sizeof(why), "%s is in the %s address class", ip,
					 netclass_name(cls));
				snprintf(c->rule, sizeof(c->rule), "address-class:%s",
					 netclass_name(cls));
			}
			continue;
		}
		memcpy(&c->addrs[c->naddrs], a->ai_addr, a->ai_addrlen);
		c->addrlens[c->naddrs] = (socklen_t)a->ai_addrlen;
		if (a->ai_family == AF_INET)
			((struct sockaddr_in *)&c->addrs[c->naddrs])->sin_port =
				htons((uint16_t)c->req.port);
		else
			((struct sockaddr_in6 *)&c->addrs[c->naddrs])->sin6_port =
				htons((uint16_t)c->req.port);
		c->naddrs++;
	}
	if (c->naddrs == 0) {
		if (why[0] == '\0') {
			snprintf(c->rule, sizeof(c->rule), "no-address");
			snprintf(why, sizeof(why), "the name has no usable address");
		}
		gproxy_refuse_dest(c, ip[0] ? ip : NULL, why);
		return;
	}
	c->next_addr = 0;
	gproxy_dial_next(c);
}

/* A fresh loop turn after the lookup answered (the callback may run inside
 * evdns_getaddrinfo() itself, where c must not be freed). */
static void
gproxy_step_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gproxy_client *c = arg;
	char body[GPROXY_HOST_MAX + 200];
	struct evutil_addrinfo *ai = c->ai;

	evtimer_del(c->ev_timeout);
	if (c->dns_err != 0 || ai == NULL) {
		snprintf(body, sizeof(body), "cannot resolve %s: %s", c->req.host,
			 c->dns_err ? evutil_gai_strerror(c->dns_err) : "no address");
		log_info("proxy: session %s: %s", c->sid, body);
		gproxy_refuse(c, 502, "Bad Gateway", body);
		return;
	}
	gproxy_filter_and_dial(c, ai);
}

static void
gproxy_dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct gproxy_client *c = arg;

	if (result == EVUTIL_EAI_CANCEL)
		return; /* c is being freed */
	c->dns = NULL;
	c->dns_done = true;
	c->dns_err = result;
	c->ai = res;
	event_active(c->ev_step, EV_TIMEOUT, 0);
}

/* ProxyResolvConf (nameservers, search, options; libevent also takes "nameserver IP:PORT")
 * and /etc/hosts, read once at start (gproxy_open), so that no client's request waits on
 * file I/O and a bad file is reported when guestd starts. Our timeouts apply whatever the
 * file says. */
static int
gproxy_dns_open(struct gproxy_shard *ps)
{
	const char *path = ps->px->g->cfg.proxy_resolv_conf;
	bool first = gshard_index(ps->sh) == 0; /* the others say nothing more */
	int rc;

	if ((ps->dns = evdns_base_new(ps->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE)) == NULL)
		return -1;
	/* 0; 1 (cannot open) and 6 (no nameserver line): libevent asks 127.0.0.1 instead */
	rc = evdns_base_resolv_conf_parse(ps->dns, DNS_OPTIONS_ALL, path);
	if (rc != 0 && first)
		log_warnx("ProxyResolvConf %s: %s; %s", path,
			  rc == 6 ? "lists no nameserver" : "cannot be read",
			  rc == 1 || rc == 6 ? "names are sent to 127.0.0.1" :
					       "names cannot be resolved");
	else if (first)
		log_debug("proxy: names resolved as %s says", path);
	evdns_base_set_option(ps->dns, "timeout:", "3");
	evdns_base_set_option(ps->dns, "attempts:", "2");
	return 0;
}

static void
gproxy_resolve(struct gproxy_client *c)
{
	struct gproxy_shard *ps = c->ps;
	struct evutil_addrinfo hints, local[2];
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	struct timeval tv = { GPROXY_RESOLVE_TIMEOUT, 0 };
	struct evdns_getaddrinfo_request *req;
	char sport[8];

	/* IP literals and localhost: classified without asking anyone */
	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	memset(local, 0, sizeof(local));
	s4.sin_family = AF_INET;
	s6.sin6_family = AF_INET6;
	local[0].ai_family = AF_INET;
	local[0].ai_addr = (struct sockaddr *)&s4;
	local[0].ai_addrlen = sizeof(s4);
	local[1].ai_family = AF_INET6;
	local[1].ai_addr = (struct sockaddr *)&s6;
	local[1].ai_addrlen = sizeof(s6);
	if (inet_pton(AF_INET, c->req.host, &s4.sin_addr) == 1) {
		gproxy_filter_and_dial(c, &local[0]);
		return;
	}
	if (inet_pton(AF_INET6, c->req.host, &s6.sin6_addr) == 1) {
		gproxy_filter_and_dial(c, &local[1]);
		return;
	}
	if (gproxy_is_localhost(c->req.host)) {
		s4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s6.sin6_addr = in6addr_loopback;
		local[0].ai_next = &local[1];
		gproxy_filter_and_dial(c, &local[0]);
		return;
	}
	if (ps->dns == NULL) { /* gproxy_open() could not set the resolver up */
		gproxy_refuse(c, 502, "Bad Gateway", "name resolution is not available");
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	snprintf(sport, sizeof(sport), "%d", c->req.port);
	c->state = GP_RESOLVING;
	event_del(c->ev_read);
	evtimer_add(c->ev_timeout, &tv); /* the whole lookup is bounded */
	c->dns_done = false;
	req = evdns_getaddrinfo(ps->dns, c->req.host, sport, &hints, gproxy_dns_cb, c);
	if (!c->dns_done)
		c->dns = req; /* else it answered at once (and req is NULL) */
}

/* ---- the decision ------------------------------------------------------------------- */

/* POLICY_CORP, on guestd's loop (which owns the tunnels): the live session's tunnel takes
 * the client's socket, and any bytes sent after the head (e.g. an optimistic TLS
 * ClientHello). */
static void
gproxy_corp(struct gproxy_client *c)
{
	struct guestd *g = c->px->g;
	const struct gproxy_request *r = &c->req;
	struct gsession *s;

	if ((s = gsessions_find(&g->sessions, c->sid, guestd_now())) == NULL) {
		gproxy_refuse(c, 403, "Forbidden",
			      "your brokered session has ended: log in through the broker again");
		return;
	}
	if (s->tunnel == NULL) {
		gproxy_refuse(c, 502, "Bad Gateway",
			      "this session has no tunnel to the broker (its profile has no "
			      "corporate access)");
		return;
	}
	/* our events go first, so that they never see the descriptor again */
	gproxy_client_detach(c);
	if (r->form == GPROXY_FORM_ABSOLUTE) {
		char head[GPROXY_MAX_HEAD + 600];
		size_t hlen;

		if (gproxy_forward_head(c, head, sizeof(head), &hlen) != 0 ||
		    hlen + c->len - r->head_len > sizeof(head)) {
			gproxy_refuse(c, 431, "Request Header Fields Too Large",
				      "request head too large");
			return;
		}
		memcpy(head + hlen, c->buf + r->head_len, c->len - r->head_len);
		gtunnel_forward(s->tunnel, c->fd, c->corp_host, c->corp_port, head,
				hlen + c->len - r->head_len);
	} else {
		gtunnel_connect(s->tunnel, c->fd, c->corp_host, c->corp_port, c->buf + r->head_len,
				c->len - r->head_len);
	}
	gproxy_client_free(c, false);
}

static void
gproxy_corp_job_cb(struct gshard *sh, void *arg)
{
	gproxy_corp(arg);
}

static void
gproxy_decide(struct gproxy_client *c)
{
	struct gproxy *px = c->px;
	const struct gproxy_request *r = &c->req;
	const struct ctl_corp *corp = NULL;
	const struct gproxy_vsession *s;
	struct policy_decision d;
	struct policy_subject subj;
	size_t i;

	c->view = gproxy_view_get(c->ps);
	if ((s = gproxy_session(c)) == NULL)
		return;
	snprintf(c->user, sizeof(c->user), "%s", s->user);
	gproxy_view_subject(c->view, s, &subj);
	policy_decide(c->view->policy, &subj, r->host, r->port, &d);
	snprintf(c->rule, sizeof(c->rule), "%s", d.rule != NULL ? d.rule : "default-deny");
	c->version = d.version;
	for (i = 0; i < s->ncorp; i++)
		if (gproxy_corp_match(&s->corp[i], r->host, r->port)) {
			corp = &s->corp[i];
			break;
		}
	/* The broker's corporate list for the session counts unless a rule denies it. */
	if (d.verdict == POLICY_DENY && corp != NULL &&
	    (strcmp(c->rule, "default-deny") == 0 || strcmp(c->rule, "no-policy") == 0)) {
		d.verdict = POLICY_CORP;
		snprintf(c->rule, sizeof(c->rule), "corporate:%s", corp->name);
	}
	switch (d.verdict) {
	case POLICY_CORP:
		snprintf(c->corp_host, sizeof(c->corp_host), "%s",
			 corp != NULL ? corp->host : r->host);
		c->corp_port = corp != NULL ? corp->port : r->port;
		gproxy_view_put(c->view);
		c->view = NULL;
		if (gproxy_on_main(c)) {
			gproxy_corp(c);
			return;
		}
		gproxy_client_detach(c);
		if (gshard_post(px->shards[0]->sh, gproxy_corp_job_cb, c) != 0)
			gproxy_refuse(c, 503, "Service Unavailable", "out of memory");
		return;
	case POLICY_ALLOW:
		/* Early bytes wait in the socket until we relay. ev_read stays armed while we
		 * work without returning to the loop (an IP literal dialled at once): the relay
		 * then takes the same epoll interest over without an epoll_ctl DEL and ADD.
		 * The lookup and the dial wait disarm it before they return to the loop. The
		 * snapshot (c->view) stays with c until the dial: its policy decides the
		 * addresses too. */
		gproxy_resolve(c);
		return;
	default:
		gproxy_refuse_dest(c, NULL, NULL);
		return;
	}
}

static void
gproxy_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gproxy_client *c = arg;
	char err[200];
	ssize_t n;
	int rc;

	n = read(fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		gproxy_client_free(c, true);
		return;
	}
	c->len += (size_t)n;
	rc = gproxy_parse_mode(c->buf, c->len, GPROXY_MODE_EGRESS, &c->req, err, sizeof(err));
	switch (rc) {
	case GPROXY_MORE:
		return;
	case GPROXY_NOT_CONNECT:
		gproxy_refuse(c, 405, "Method Not Allowed", err);
		return;
	case GPROXY_TOO_LARGE:
		gproxy_refuse(c, 431, "Request Header Fields Too Large", err);
		return;
	case GPROXY_BAD:
		gproxy_refuse(c, 400, "Bad Request", err);
		return;
	default:
		break;
	}
	__atomic_sub_fetch(&c->px->npending, 1, __ATOMIC_RELAXED);
	c->state = GP_RESOLVING; /* no longer counted as pending */
	evtimer_del(c->ev_timeout);
	gproxy_decide(c);
}

static void
gproxy_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gproxy_client *c = arg;
	char body[GPROXY_HOST_MAX + 100];

	if (c->state == GP_HEAD) {
		gproxy_refuse(c, 408, "Request Timeout", "request head not received in time");
		return;
	}
	snprintf(body, sizeof(body), "cannot resolve %s: timed out", c->req.host);
	gproxy_refuse(c, 504, "Gateway Timeout", body);
}

static void
gproxy_accept_http(struct gproxy_shard *ps, int fd, const char *sid, const struct sockaddr *sa)
{
	struct gproxy *px = ps->px;
	struct gproxy_client *c;
	struct timeval tv = { GPROXY_HEAD_TIMEOUT, 0 };

	if (__atomic_load_n(&px->npending, __ATOMIC_RELAXED) >= GPROXY_MAX_PENDING ||
	    __atomic_load_n(&px->nclients, __ATOMIC_RELAXED) >= GPROXY_MAX_CONNS) {
		gproxy_reply_error(fd, 503, "Service Unavailable", "too many connections");
		close(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->px = px;
	c->ps = ps;
	c->fd = fd;
	c->ufd = -1;
	c->state = GP_HEAD;
	c->fallback = sid == NULL;
	snprintf(c->sid, sizeof(c->sid), "%s", sid != NULL ? sid : "");
	if (sa->sa_family == AF_INET) {
		evutil_inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->peer,
				 sizeof(c->peer));
		c->peer_port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		evutil_inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->peer,
				 sizeof(c->peer));
		c->peer_port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	}
	TAILQ_INSERT_TAIL(&ps->clients, c, entry);
	__atomic_add_fetch(&px->nclients, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&px->npending, 1, __ATOMIC_RELAXED);
	c->ev_read = event_new(ps->base, fd, EV_READ | EV_PERSIST, gproxy_read_cb, c);
	c->ev_timeout = evtimer_new(ps->base, gproxy_timeout_cb, c);
	c->ev_step = event_new(ps->base, -1, 0, gproxy_step_cb, c);
	if (c->ev_read == NULL || c->ev_timeout == NULL || c->ev_step == NULL) {
		gproxy_client_free(c, true);
		return;
	}
	event_add(c->ev_read, NULL);
	evtimer_add(c->ev_timeout, &tv);
	/* The listener defers accepting until the request's first bytes arrived
	 * (TCP_DEFER_ACCEPT): read them now rather than after another loop turn. */
	gproxy_read_cb(fd, EV_READ, c); /* may free c */
}

/* ---- listeners ------------------------------------------------------------------------ */

/*
 * An egress listener is a group of SO_REUSEPORT sockets bound to the same address, one per
 * loop, each accepted on by its own loop: the kernel deals the connections out, and a
 * connection is accepted, decided, dialled and relayed by one loop without a hand-off. The
 * credential proxy's listeners are one socket on guestd's loop (libcurl and the capabilities
 * live there).
 */
static void
gproxy_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		 void *arg)
{
	struct gproxy_listener *pl = arg;
	int one = 1;

	/* evconnlistener accepts with accept4(SOCK_NONBLOCK | SOCK_CLOEXEC) */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (pl->kind == PROXY_KIND_CRED)
		gcred_accept(pl->ps->px->g, fd, pl->sid, sa);
	else
		gproxy_accept_http(pl->ps, fd, pl->sid, sa);
}

static void
gproxy_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	evconnlistener_enable(arg);
}

static void
gproxy_error_cb(struct evconnlistener *l, void *arg)
{
	struct gproxy_listener *pl = arg;
	struct timeval tv = { 1, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	log_warnx("proxy accept: %s", evutil_socket_error_to_string(err));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		evconnlistener_disable(l);
		event_base_once(pl->ps->base, -1, EV_TIMEOUT, gproxy_resume_cb, l, &tv);
	}
}

static void
gproxy_listener_free(struct gproxy_listener *pl)
{
	TAILQ_REMOVE(&pl->ps->listeners, pl, entry);
	/* a resume timer may still name it: disabled listeners are not freed under it, the
	 * timer is one second at most and only armed after EMFILE */
	evconnlistener_free(pl->l);
	free(pl->sid);
	free(pl);
}

/* Serves fd (a listening socket, non-blocking) on ps's loop; on ps's thread, or before it
 * started. Takes fd in every case. 0 or -1. */
static int
gproxy_listener_new(struct gproxy_shard *ps, int fd, const char *sid, unsigned long tag, int kind)
{
	struct gproxy_listener *pl;

	if ((pl = calloc(1, sizeof(*pl))) == NULL ||
	    (sid != NULL && (pl->sid = strdup(sid)) == NULL) ||
	    (pl->l = evconnlistener_new(
		     ps->base, gproxy_accept_cb, pl,
		     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED, -1, fd)) ==
		    NULL) {
		if (pl != NULL)
			free(pl->sid);
		free(pl);
		close(fd);
		return -1;
	}
	pl->ps = ps;
	pl->tag = tag;
	pl->kind = kind;
	if (kind == PROXY_KIND_HTTP) {
		/* An HTTP client speaks first: the kernel wakes us once its request has begun,
		 * not on the bare handshake (one wakeup per connection instead of two). A client
		 * that sends nothing is accepted anyway once the deferral ends (these seconds,
		 * rounded up to the kernel's SYN-ACK retransmissions: ~15 s), and then has the
		 * head timeout like any other. */
		int secs = GPROXY_HEAD_TIMEOUT;

		if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs)) != 0)
			log_debug("proxy listener: TCP_DEFER_ACCEPT: %s", strerror(errno));
	}
	evconnlistener_set_error_cb(pl->l, gproxy_error_cb);
	TAILQ_INSERT_TAIL(&ps->listeners, pl, entry);
	evconnlistener_enable(pl->l);
	return 0;
}

struct gproxy_listen_job {
	int fd;
	char *sid;
	unsigned long tag;
};

static void
gproxy_listen_job_cb(struct gshard *sh, void *arg)
{
	struct gproxy_listen_job *j = arg;
	struct gproxy_shard *ps = gshard_data(sh);

	if (__atomic_load_n(&ps->px->closing, __ATOMIC_ACQUIRE))
		close(j->fd);
	else if (gproxy_listener_new(ps, j->fd, j->sid, j->tag, PROXY_KIND_HTTP) != 0)
		log_warnx("session %s: egress listener on event loop %u: out of memory",
			  j->sid != NULL ? j->sid : "-", gshard_index(sh) + 1);
	free(j->sid);
	free(j);
}

/*
 * Serves fds[0..n) for sid (NULL: the workspace-wide fallback), on guestd's loop: for the
 * egress proxy one SO_REUSEPORT group, fds[i] on loop i (posted to it: the loops are
 * running), for the credential proxy fds[0] alone. Takes the descriptors; what there is no
 * loop for is closed. -1 if guestd's own listener could not be made (the others may serve).
 */
static int
gproxy_listen_group(struct gproxy *px, const int *fds, size_t n, const char *sid, unsigned long tag,
		    int kind)
{
	struct gproxy_listen_job *j;
	size_t i;
	int rc;

	rc = gproxy_listener_new(px->shards[0], fds[0], sid, tag, kind);
	for (i = 1; i < n; i++) {
		if (kind != PROXY_KIND_HTTP || i >= px->nshards) {
			close(fds[i]); /* no loop for it */
			continue;
		}
		if ((j = calloc(1, sizeof(*j))) != NULL) {
			j->fd = fds[i];
			j->tag = tag;
			if ((sid == NULL || (j->sid = strdup(sid)) != NULL) &&
			    gshard_post(px->shards[i]->sh, gproxy_listen_job_cb, j) == 0)
				continue;
			free(j->sid);
			free(j);
		}
		/* the other loops serve the address all the same */
		log_warnx("egress listener on event loop %zu: out of memory", i + 1);
		close(fds[i]);
	}
	return rc;
}

static struct gproxy_shard *
gproxy_shard_new(struct gproxy *px, struct event_base *base, unsigned idx)
{
	struct gproxy_shard *ps;

	if ((ps = calloc(1, sizeof(*ps))) == NULL)
		return NULL;
	ps->px = px;
	TAILQ_INIT(&ps->listeners);
	TAILQ_INIT(&ps->clients);
	if ((ps->sh = gshard_new(base, idx)) == NULL) {
		free(ps);
		return NULL;
	}
	ps->base = gshard_base(ps->sh);
	gshard_set_data(ps->sh, ps);
	return ps;
}

/* Drops ps's listeners, clients and resolver: the last closure of its thread, or on
 * guestd's loop for shard 0. */
static void
gproxy_shard_drop_cb(struct gshard *sh, void *arg)
{
	struct gproxy_shard *ps = gshard_data(sh);
	struct gproxy_listener *pl;
	struct gproxy_client *c;

	while ((pl = TAILQ_FIRST(&ps->listeners)) != NULL)
		gproxy_listener_free(pl);
	while ((c = TAILQ_FIRST(&ps->clients)) != NULL)
		gproxy_client_free(c, true);
	if (ps->dns != NULL)
		evdns_base_free(ps->dns, 1);
	ps->dns = NULL;
	gproxy_view_put(ps->view);
	ps->view = NULL;
}

static struct gproxy *
gproxy_get(struct guestd *g)
{
	struct gproxy *px = g->proxy;

	if (px != NULL)
		return px;
	if ((px = calloc(1, sizeof(*px))) == NULL)
		return NULL;
	px->g = g;
	pthread_mutex_init(&px->view_mu, NULL);
	if ((px->empty = gproxy_view_empty(g)) == NULL ||
	    (px->view = gproxy_view_build(g)) == NULL ||
	    (px->shards = calloc(1, sizeof(*px->shards))) == NULL ||
	    (px->shards[0] = gproxy_shard_new(px, g->base, 0)) == NULL) {
		gproxy_view_put(px->view);
		gproxy_view_put(px->empty);
		free(px->shards);
		pthread_mutex_destroy(&px->view_mu);
		free(px);
		return NULL;
	}
	px->nshards = 1;
	g->proxy = px;
	return px;
}

/* ProxyThreads: 0 is one loop per CPU that guestd may run on. */
static size_t
gproxy_nshards(const struct guestd *g)
{
	long n = g->cfg.proxy_threads;
	cpu_set_t set;

	if (n <= 0)
		n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
	if (n < 1)
		n = 1;
	return n > GUESTD_PROXY_THREADS_MAX ? GUESTD_PROXY_THREADS_MAX : (size_t)n;
}

size_t
proxy_loops(struct guestd *g)
{
	return g->proxy != NULL ? g->proxy->nshards : 1;
}

int
proxy_listen_socket(const struct sockaddr *sa, socklen_t salen, bool group)
{
	int fd, one = 1, err;

	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (group && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
	    bind(fd, sa, salen) != 0 || listen(fd, 128) != 0) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* n sockets of one SO_REUSEPORT group on ss into fds: 0, or -1 with errno and none open. */
static int
gproxy_bind_group(const struct sockaddr_storage *ss, int sslen, int *fds, size_t n)
{
	size_t i;
	int err;

	for (i = 0; i < n; i++)
		if ((fds[i] = proxy_listen_socket((const struct sockaddr *)ss, (socklen_t)sslen,
						  true)) == -1) {
			err = errno;
			while (i-- > 0)
				close(fds[i]);
			errno = err;
			return -1;
		}
	return 0;
}

/* A workspace-wide fallback listener on a loopback address of the configuration: on every
 * loop for the egress proxy, on guestd's for the credential proxy. Before the loops' threads
 * start (gproxy_open). */
static int
gproxy_open_address(struct guestd *g, const char *keyword, const char *address, int kind)
{
	struct gproxy *px = g->proxy;
	struct sockaddr_storage ss;
	int fds[GUESTD_PROXY_THREADS_MAX], sslen;
	size_t n = kind == PROXY_KIND_HTTP ? px->nshards : 1, i;

	if (guestd_config_sockaddr(address, &ss, &sslen) != 0) {
		log_warnx("%s %s: not an IP address and port", keyword, address);
		return -1;
	}
	if (gproxy_bind_group(&ss, sslen, fds, n) != 0) {
		log_warn("%s %s: cannot listen", keyword, address);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (gproxy_listener_new(px->shards[i], fds[i], NULL, 0, kind) != 0) {
			while (++i < n)
				close(fds[i]);
			log_warnx("%s %s: out of memory", keyword, address);
			return -1;
		}
	log_info("%s listening on %s (workspace-wide)",
		 kind == PROXY_KIND_CRED ? "credential proxy" : "proxy", address);
	return 0;
}

int
gproxy_open(struct guestd *g)
{
	struct gproxy *px;
	struct gproxy_shard **shards;
	size_t want, i;

	if ((px = gproxy_get(g)) == NULL)
		return -1;
	want = gproxy_nshards(g);
	if (want > 1) {
		if ((px->audit = gshard_new(g->base, 0)) == NULL ||
		    (shards = realloc(px->shards, want * sizeof(*shards))) == NULL) {
			log_warn("egress proxy: %zu event loops", want);
			return -1;
		}
		gshard_set_data(px->audit, px);
		px->shards = shards;
		for (i = 1; i < want; i++) {
			if ((px->shards[i] = gproxy_shard_new(px, NULL, (unsigned)i)) == NULL) {
				log_warn("egress proxy: event loop %zu of %zu", i + 1, want);
				return -1;
			}
			px->nshards = i + 1;
		}
	}
	/* each loop's resolver and fallback listener are set up before its thread runs it */
	for (i = 0; i < px->nshards; i++)
		if (gproxy_dns_open(px->shards[i]) != 0) {
			log_warnx("egress proxy: cannot set up name resolution (out of memory)");
			return -1;
		}
	if (gproxy_open_address(g, "ProxyListen", g->cfg.proxy_listen, PROXY_KIND_HTTP) != 0)
		return -1;
	if (g->cfg.credential_listen != NULL &&
	    gproxy_open_address(g, "CredentialListen", g->cfg.credential_listen, PROXY_KIND_CRED) !=
		    0)
		return -1;
	for (i = 1; i < px->nshards; i++)
		if (gshard_start(px->shards[i]->sh) != 0) {
			log_warn("egress proxy: event loop %zu of %zu", i + 1, px->nshards);
			return -1;
		}
	log_info("egress proxy: %zu event loop%s", px->nshards, px->nshards == 1 ? "" : "s");
	return 0;
}

int
proxy_listen_fds(struct guestd *g, const int *fds, size_t n, const char *session_id,
		 unsigned long tag, int kind)
{
	struct gproxy *px;
	size_t i;

	if (session_id == NULL || (kind != PROXY_KIND_HTTP && kind != PROXY_KIND_CRED) || n == 0 ||
	    gsessions_find(&g->sessions, session_id, guestd_now()) == NULL ||
	    (px = gproxy_get(g)) == NULL) {
		for (i = 0; i < n; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (fds[i] >= 0) {
			evutil_make_socket_nonblocking(fds[i]);
			evutil_make_socket_closeonexec(fds[i]);
		}
		if (fds[i] < 0 || listen(fds[i], 128) != 0) {
			log_warn("session %s: proxy listener", session_id);
			for (i = 0; i < n; i++)
				if (fds[i] >= 0)
					close(fds[i]);
			return -1;
		}
	}
	if (gproxy_listen_group(px, fds, n, session_id, tag, kind) != 0)
		return -1;
	log_debug("session %s: %s proxy listener added (%zu loop%s)", session_id,
		  kind == PROXY_KIND_CRED ? "credential" : "egress", n, n == 1 ? "" : "s");
	return 0;
}

/* Closes ps's listeners of session_id (of its sandbox tag only, unless tag is 0). */
static void
gproxy_shard_unlisten(struct gproxy_shard *ps, const char *session_id, unsigned long tag)
{
	struct gproxy_listener *pl, *lnext;

	for (pl = TAILQ_FIRST(&ps->listeners); pl != NULL; pl = lnext) {
		lnext = TAILQ_NEXT(pl, entry);
		if (pl->sid != NULL && strcmp(pl->sid, session_id) == 0 &&
		    (tag == 0 || pl->tag == tag))
			gproxy_listener_free(pl);
	}
}

struct gproxy_unlisten_job {
	char *sid;
	unsigned long tag;
};

static void
gproxy_unlisten_job_cb(struct gshard *sh, void *arg)
{
	struct gproxy_unlisten_job *j = arg;

	gproxy_shard_unlisten(gshard_data(sh), j->sid, j->tag);
	free(j->sid);
	free(j);
}

void
proxy_unlisten(struct guestd *g, const char *session_id, unsigned long tag)
{
	struct gproxy *px = g->proxy;
	struct gproxy_unlisten_job *j;
	size_t i;

	if (px == NULL || session_id == NULL || tag == 0)
		return;
	gproxy_shard_unlisten(px->shards[0], session_id, tag);
	for (i = 1; i < px->nshards; i++) {
		if ((j = calloc(1, sizeof(*j))) != NULL && (j->sid = strdup(session_id)) != NULL) {
			j->tag = tag;
			if (gshard_post(px->shards[i]->sh, gproxy_unlisten_job_cb, j) == 0)
				continue;
		}
		/* it closes with the session */
		log_warnx("session %s: out of memory: a sandbox's egress listener on event loop "
			  "%zu stays until the session ends",
			  session_id, i + 1);
		if (j != NULL)
			free(j->sid);
		free(j);
	}
}

/* The end of a session on ps's loop (its thread): its listeners close, and its connections
 * are reset, not closed: bytes guestd or the kernel still holds for the client are discarded
 * rather than delivered at the client's pace after the session ended. */
static void
gproxy_shard_end(struct gproxy_shard *ps, const char *session_id)
{
	static const struct linger now = { .l_onoff = 1, .l_linger = 0 };
	struct gproxy_client *c, *cnext;
	size_t n = 0;

	gproxy_shard_unlisten(ps, session_id, 0);
	for (c = TAILQ_FIRST(&ps->clients); c != NULL; c = cnext) {
		cnext = TAILQ_NEXT(c, entry);
		if (strcmp(c->sid, session_id) != 0)
			continue;
		if (c->relay != NULL)
			grelay_abort_on_free(c->relay);
		else if (c->fd >= 0)
			(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &now, sizeof(now));
		gproxy_client_free(c, true);
		n++;
	}
	if (n > 0)
		log_info("session %s: %zu egress connection%s closed (event loop %u of %zu)",
			 session_id, n, n == 1 ? "" : "s", gshard_index(ps->sh) + 1,
			 ps->px->nshards);
}

static void
gproxy_shard_end_cb(struct gshard *sh, void *arg)
{
	gproxy_shard_end(gshard_data(sh), arg);
	free(arg);
}

void
proxy_session_end(struct guestd *g, const char *session_id)
{
	struct gproxy *px = g->proxy;
	char *sid;
	size_t i;

	gcred_session_end(g, session_id);
	if (px == NULL)
		return;
	/* from here on no loop decides for the session (the caller took it off the table) */
	gproxy_view_changed(g);
	gproxy_shard_end(px->shards[0], session_id);
	for (i = 1; i < px->nshards; i++) {
		/* Out of memory: that loop's listener and connections of the session stay until
		 * they end or idle out; its requests are refused all the same (the view). */
		if ((sid = strdup(session_id)) == NULL ||
		    gshard_post(px->shards[i]->sh, gproxy_shard_end_cb, sid) != 0) {
			log_warnx("session %s: out of memory: its egress connections on event loop "
				  "%zu stay open until they end",
				  session_id, i + 1);
			free(sid);
		}
	}
}

void
gproxy_close(struct guestd *g)
{
	struct gproxy *px = g->proxy;
	size_t i;

	if (px == NULL)
		return;
	__atomic_store_n(&px->closing, true, __ATOMIC_RELEASE);
	/* each loop drops its listeners and clients on its own thread, then stops; the audit
	 * events they posted to guestd's loop are spooled then, before shard 0's own go */
	for (i = px->nshards; i-- > 1;)
		gshard_free(px->shards[i]->sh, gproxy_shard_drop_cb, NULL);
	gshard_free(px->audit, NULL, NULL);
	gshard_free(px->shards[0]->sh, gproxy_shard_drop_cb, NULL);
	for (i = 0; i < px->nshards; i++)
		free(px->shards[i]);
	free(px->shards);
	gproxy_view_put(px->view);
	gproxy_view_put(px->empty);
	pthread_mutex_destroy(&px->view_mu);
	free(px);
	g->proxy = NULL;
}
