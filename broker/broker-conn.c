/*
 * One SSH connection of saw-brokerd, driven by libevent.
 *
 * libssh runs in non-blocking mode and never polls on its own: we watch the socket with
 * libevent and, when it is readable (or writable while libssh has output queued), let libssh
 * process what arrived by calling ssh_handle_key_exchange() during key exchange and
 * ssh_message_get() afterwards. Messages are taken from libssh's queue (no message callback)
 * so that a login waiting on the IdP can keep its message and answer it later.
 *
 * Lifetime: conn_close() may be called from anywhere (a libssh message handler, an IdP
 * callback, a session timer). It removes the socket events at once, before libssh closes
 * the descriptor, so that a reused descriptor number can never reach this connection, and
 * frees the connection from a fresh event-loop turn so no caller touches freed memory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "audit/log.h"
#include "audit/ocsf.h"
#include "broker/broker-oidc.h"
#include "broker/broker.h"

#define CONN_MAX_MESSAGES_PER_TURN 64 /* fairness: one busy client cannot starve others */
#define CONN_DRAIN_SECONDS 2
#define CONN_DISCONNECT_POLLS 8 /* non-blocking polls to get our output out before DISCONNECT */

static void conn_step(struct conn *c);
static void conn_destroy(struct conn *c);

static void
conn_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (what & EV_READ) {
		c->last_rx = broker_now();
		if (c->state == CONN_OPEN) {
			/* Any traffic is session activity: pumped channel data and keepalives
			 * never surface as messages. */
			c->last_activity = c->last_rx;
			sessions_activity(c);
		}
	}
	conn_step(c);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	char reason[128];

	if (c->state == CONN_CLOSING)
		return;
	if (c->state == CONN_KEX || c->state == CONN_AUTH) {
		snprintf(reason, sizeof(reason),
			 "Login not completed within %llds; connect again to start over.",
			 c->broker->cfg.login_grace_time);
		log_info("conn %llu from %s: login grace time exceeded", (unsigned long long)c->id,
			 c->src_ip);
		broker_audit_ssh(c->broker, c, OCSF_SSH_REFUSE, "login grace time exceeded");
		conn_close(c, reason);
	}
}

static void
conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_destroy(arg);
}

static void
addr_to_text(const struct sockaddr *sa, char *ip, size_t iplen, int *port)
{
	ip[0] = '\0';
	*port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, ip, iplen);
		*port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, iplen);
		*port = ntohs(s6->sin6_port);
	}
}

void
conn_accept(struct broker *b, int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct conn *c = NULL;
	struct sockaddr_storage local;
	socklen_t locallen = sizeof(local);
	const char *refusal;
	struct timeval tv;
	int one = 1;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("accept: out of memory");
		close(fd);
		return;
	}
	c->broker = b;
	c->fd = fd;
	c->id = ++b->next_conn_id;
	c->state = CONN_KEX;
	TAILQ_INIT(&c->routes_from);
	TAILQ_INIT(&c->routes_to);
	addr_to_text(sa, c->src_ip, sizeof(c->src_ip), &c->src_port);
	if (getsockname(fd, (struct sockaddr *)&local, &locallen) == 0)
		addr_to_text((struct sockaddr *)&local, c->dst_ip, sizeof(c->dst_ip), &c->dst_port);

	/* Pre-auth admission: MaxStartups, PerSourceMaxStartups, PerSourcePenalty. */
	refusal = limits_admit(b->limits, c->src_ip, b->nunauth, broker_now());
	if (refusal != NULL || b->shutting_down) {
		if (refusal == NULL)
			refusal = "broker is shutting down";
		log_info("refused connection from %s port %d: %s", c->src_ip, c->src_port, refusal);
		broker_audit_ssh(b, c, OCSF_SSH_REFUSE, refusal);
		close(fd);
		free(c);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	evutil_make_socket_nonblocking(fd);

	if ((c->ssh = ssh_new()) == NULL)
		goto fail;
	if (ssh_bind_accept_fd(b->bind, c->ssh, fd) != SSH_OK) {
		log_warnx("conn from %s: %s", c->src_ip, ssh_get_error(b->bind));
		goto fail;
	}
	ssh_set_blocking(c->ssh, 0);
	/* libevent watches its own descriptor of the socket: libssh closes its one whenever
	 * it sees EOF or an error, and an event on a closed (or reused) number would be
	 * wrong. The socket itself stays open until conn_destroy() closes evfd. */
	if ((c->evfd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) == -1)
		goto fail;
	c->ev_read = event_new(b->base, c->evfd, EV_READ | EV_PERSIST, conn_io_cb, c);
	c->ev_write = event_new(b->base, c->evfd, EV_WRITE, conn_io_cb, c);
	c->ev_timer = evtimer_new(b->base, conn_timer_cb, c);
	if (c->ev_read == NULL || c->ev_write == NULL || c->ev_timer == NULL)
		goto fail;
	event_add(c->ev_read, NULL);
	tv.tv_sec = b->cfg.login_grace_time;
	tv.tv_usec = 0;
	evtimer_add(c->ev_timer, &tv);

	TAILQ_INSERT_TAIL(&b->conns, c, entry);
	b->nconns++;
	b->nunauth++;
	c->unauth_counted = true;
	limits_unauth_add(b->limits, c->src_ip);
	log_debug("conn %llu: accepted from %s port %d", (unsigned long long)c->id, c->src_ip,
		  c->src_port);
	conn_step(c);
	return;
fail:
	log_warnx("conn from %s: cannot set up the SSH session", c->src_ip);
	if (c->ev_read)
		event_free(c->ev_read);
	if (c->ev_write)
		event_free(c->ev_write);
	if (c->ev_timer)
		event_free(c->ev_timer);
	if (c->ssh)
		ssh_free(c->ssh); /* closes fd once accepted */
	else
		close(fd);
	if (c->evfd > 0)
		close(c->evfd);
	free(c);
}

/* The connection left the pre-auth state (authenticated or closing). */
static void
conn_unauth_done(struct conn *c)
{
	if (!c->unauth_counted)
		return;
	c->unauth_counted = false;
	c->broker->nunauth--;
	limits_unauth_del(c->broker->limits, c->src_ip);
}

void
conn_flush(struct conn *c)
{
	if (c->state == CONN_CLOSING || c->ssh == NULL)
		return;
	if (ssh_get_poll_flags(c->ssh) & SSH_WRITE_PENDING)
		event_add(c->ev_write, NULL);
}

void
conn_pause(struct conn *c)
{
	c->read_paused = true;
	if (c->state != CONN_CLOSING)
		event_del(c->ev_read);
}

void
conn_resume(struct conn *c)
{
	if (!c->read_paused || c->state == CONN_CLOSING)
		return;
	c->read_paused = false;
	event_add(c->ev_read, NULL);
	/* Messages may already sit in libssh's queue: look at them on the next turn. */
	event_active(c->ev_read, EV_READ, 0);
}

static void
conn_dispatch(struct conn *c, ssh_message msg)
{
	if (c->state == CONN_AUTH) {
		if (auth_handle_message(c, msg) == 1)
			return; /* kept in c->held */
	} else if (c->state == CONN_OPEN) {
		if (chan_handle_message(c, msg) == 1)
			return; /* kept by a pending route */
	} else {
		ssh_message_reply_default(msg);
	}
	ssh_message_free(msg);
}

static void
conn_step(struct conn *c)
{
	ssh_message msg;
	int rc, n;

	if (c->state == CONN_CLOSING)
		return;
	if (c->state == CONN_KEX) {
		rc = ssh_handle_key_exchange(c->ssh);
		if (rc == SSH_AGAIN) {
			conn_flush(c);
			return;
		}
		if (rc != SSH_OK) {
			log_info("conn %llu from %s: key exchange failed: %s",
				 (unsigned long long)c->id, c->src_ip, ssh_get_error(c->ssh));
			broker_audit_ssh(c->broker, c, OCSF_SSH_REFUSE, "key exchange failed");
			conn_close(c, NULL);
			return;
		}
		c->state = CONN_AUTH;
		/* Before a key is verified only publickey can succeed; keyboard-interactive is
		 * offered so that a client without keys hears why it is refused. */
		ssh_set_auth_methods(c->ssh,
				     SSH_AUTH_METHOD_PUBLICKEY | SSH_AUTH_METHOD_INTERACTIVE);
	}
	for (n = 0; n < CONN_MAX_MESSAGES_PER_TURN; n++) {
		if (c->read_paused || c->state == CONN_CLOSING)
			break;
		if ((msg = ssh_message_get(c->ssh)) == NULL)
			break;
		conn_dispatch(c, msg);
	}
	if (c->state == CONN_OPEN) {
		if (c->kind == CONN_WORKSPACE)
			workspace_conn_input(c);
		if (c->state == CONN_OPEN)
			route_run_conn(c);
	}
	if (c->state == CONN_CLOSING)
		return;
	if (n == CONN_MAX_MESSAGES_PER_TURN)
		event_active(c->ev_read, EV_READ, 0);
	if (ssh_get_status(c->ssh) & (SSH_CLOSED | SSH_CLOSED_ERROR)) {
		log_debug("conn %llu from %s: closed by peer", (unsigned long long)c->id,
			  c->src_ip);
		if (c->state == CONN_AUTH)
			broker_audit_ssh(c->broker, c, OCSF_SSH_REFUSE,
					 "client left before logging in");
		else if (c->state == CONN_OPEN)
			broker_audit_ssh(c->broker, c, OCSF_SSH_CLOSE, "closed by client");
		conn_close(c, NULL);
		return;
	}
	conn_flush(c);
}

/*
 * Before ssh_disconnect(): take in what the peer already sent (otherwise OpenSSH may report
 * "closed by remote host" rather than our reason, see REFERENCE.md) and get our own pending
 * output written, so that the DISCONNECT with its sentence really leaves.
 *
 * libssh 0.10, non-blocking, writes a packet at once only if its own last poll found the
 * socket writable with nothing left to send; every write clears that state until the next
 * poll. Otherwise the packet is only buffered, and ssh_disconnect() closes libssh's
 * descriptor right after queueing the DISCONNECT: a connection that had output in flight
 * (a tunnel carrying a download, an ssh -J printing output) would lose the DISCONNECT and the
 * peer would see the TCP close without the reason. Each ssh_message_get() that finds no message
 * polls the session once (input, then pending output), so poll until a poll started with
 * nothing pending. Bounded: a peer that reads nothing cannot hold the event loop.
 */
static void
conn_drain_for_disconnect(struct conn *c)
{
	ssh_message msg;
	bool pending;
	int polls, n = 0;

	for (polls = 0; polls < CONN_DISCONNECT_POLLS; polls++) {
		pending = (ssh_get_poll_flags(c->ssh) & SSH_WRITE_PENDING) != 0;
		while (n < CONN_MAX_MESSAGES_PER_TURN && (msg = ssh_message_get(c->ssh)) != NULL) {
			ssh_message_free(msg);
			n++;
		}
		if (!pending || n >= CONN_MAX_MESSAGES_PER_TURN || !ssh_is_connected(c->ssh))
			break;
	}
}

void
conn_close(struct conn *c, const char *reason)
{
	struct timeval zero = { 0, 0 };

	if (c->state == CONN_CLOSING)
		return;
	/* Events first: libssh closes the descriptor in ssh_disconnect(). */
	event_del(c->ev_read);
	event_del(c->ev_write);
	event_del(c->ev_timer);
	if (c->state == CONN_OPEN && reason != NULL)
		broker_audit_ssh(c->broker, c, OCSF_SSH_CLOSE, reason);
	c->state = CONN_CLOSING;
	conn_unauth_done(c);
	/* Routes hold channels of this session (and of others): free them while the session
	 * is still whole, telling the other ends. */
	c->closing_why = reason;
	route_close_conn(c);
	c->closing_why = NULL;
	workspace_conn_closed(c);
	auth_conn_cleanup(c);
	sessions_detach(c);
	if (ssh_is_connected(c->ssh)) {
		conn_drain_for_disconnect(c);
		if (reason != NULL)
			ssh_session_set_disconnect_message(c->ssh, reason);
		ssh_disconnect(c->ssh);
	}
	event_base_once(c->broker->base, -1, EV_TIMEOUT, conn_free_cb, c, &zero);
}

void
conn_authenticated(struct conn *c)
{
	c->state = CONN_OPEN;
	c->last_activity = broker_now();
	event_del(c->ev_timer);
	conn_unauth_done(c);
}

static void
conn_destroy(struct conn *c)
{
	struct broker *b = c->broker;

	TAILQ_REMOVE(&b->conns, c, entry);
	b->nconns--;
	event_free(c->ev_read);
	event_free(c->ev_write);
	event_free(c->ev_timer);
	ssh_free(c->ssh);
	close(c->evfd); /* the peer sees the close here */
	free(c->user);
	free(c->key_fp);
	free(c->ws_name);
	free(c);
}

void
conn_free_all(struct broker *b)
{
	struct conn *c;

	TAILQ_FOREACH(c, &b->conns, entry)
		conn_close(c, "The broker is shutting down; connect again in a moment.");
}
