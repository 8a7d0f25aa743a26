/*
 * The local one-request servers of saw-guestd: the ControlSocket (guestd-sock.c) and the
 * DecisionSocket (guestd-policy.c) share everything but their requests.
 *
 * An AF_UNIX stream socket of mode 0666 (its directory is created 0755): who may ask what is
 * decided per request from SO_PEERCRED, never from the file mode. A client writes ONE request
 * line of at most max_line bytes ending in '\n' within timeout_ms, gets ONE answer line, and
 * the connection is closed; at most max_conns connections at once (more are closed at
 * accept, and the clients fail closed), so a local process cannot make guestd hold more than
 * max_conns * max_line bytes for it. A request may carry up to max_fds descriptors
 * (SCM_RIGHTS); more are closed and answered with an error. Lines too long get an error
 * answer, a timeout or EOF before the line just a close.
 *
 * Ownership: the caller frees the server with glserv_free() (which closes every connection)
 * and unlinks the socket's path itself. The request callback borrows the peer and the line
 * for the call only; what it returns is consumed.
 */
#ifndef SAW_GUESTD_LINESERV_H
#define SAW_GUESTD_LINESERV_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

/* The most descriptors any of these servers takes with a request (session_exec: 3). */
#define GLSERV_MAX_FDS 3

struct event_base;
struct glserv;

struct glserv_peer {
	int fd;	   /* the connection: closed after the answer (dup it to keep it) */
	uid_t uid; /* SO_PEERCRED */
	pid_t pid;
	int *fds;    /* descriptors sent along; the callback sets nfds to 0 when it took them, */
	size_t nfds; /* the others are closed with the connection */
};

/* Returns the answer (sent as one line, then the connection is closed), or NULL to close
 * without one. */
typedef json_t *(*glserv_request_cb)(struct glserv_peer *peer, const char *line, size_t len,
				     void *arg);

struct glserv_params {
	const char *what; /* the config keyword, for messages: "ControlSocket" */
	size_t max_line;
	int timeout_ms;
	size_t max_conns;
	size_t max_fds; /* at most GLSERV_MAX_FDS; 0 takes none */
	glserv_request_cb request;
	void *arg; /* passed to request */
};

/* Binds path (replacing a stale socket, never another kind of file) and listens. Returns
 * NULL, logged with p->what and path. p is copied; p->what must outlive the server. */
struct glserv *glserv_open(struct event_base *base, const char *path,
			   const struct glserv_params *p);
/* The same on a socket that is already listening (taken in every case, closed on failure):
 * e.g. a TCP listener inside a sandbox's network namespace. On a socket other than AF_UNIX
 * there is no SO_PEERCRED: the peer's uid is then (uid_t)-1 and its pid 0, and the callback
 * must know whom it serves from the listener itself. */
struct glserv *glserv_open_fd(struct event_base *base, int fd, const struct glserv_params *p);
void glserv_free(struct glserv *ls);

#endif
