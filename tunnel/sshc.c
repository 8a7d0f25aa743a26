/*
 * SSH client connections handed to the event loop (see sshc.h for the contract).
 *
 * Each attempt gets a detached worker thread and a pipe. The worker owns the ssh_session
 * while it connects, checks the host key and authenticates in blocking mode, switches the
 * session to non-blocking, stores the session (or an error) in the attempt and writes the
 * attempt's pointer into the pipe; from that write on it touches nothing. The loop watches
 * the pipe's read end, so the callback always runs on the loop thread. The attempt is freed
 * by the loop side once the pointer came back, whether or not it was cancelled: cancelling
 * only marks it, because the worker may still be blocked in connect() and must find its
 * attempt alive when it finishes (at the latest after timeout_s).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "tunnel/sshc.h"

struct sshc_attempt {
	struct event_base *base;
	struct event *ev;
	int pipefd[2];
	sshc_done_cb cb;
	void *arg;
	bool cancelled; /* loop thread only */

	/* copies of the parameters; read by the worker only */
	char *host;
	int port;
	char *user;
	char *key_path;
	char *pinned_key;
	char *known_hosts;
	char *password; /* wiped when freed */
	long timeout_s;

	/* the worker's result, read by the loop after the hand-over */
	ssh_session session;
	char error[512];
};

static void
sshc_free(struct sshc_attempt *a)
{
	if (a == NULL)
		return;
	if (a->ev != NULL)
		event_free(a->ev);
	if (a->pipefd[0] >= 0)
		close(a->pipefd[0]);
	if (a->pipefd[1] >= 0)
		close(a->pipefd[1]);
	free(a->host);
	free(a->user);
	free(a->key_path);
	free(a->pinned_key);
	free(a->known_hosts);
	if (a->password != NULL) {
		explicit_bzero(a->password, strlen(a->password));
		free(a->password);
	}
	if (a->session != NULL)
		ssh_free(a->session);
	explicit_bzero(a, sizeof(*a));
	free(a);
}

/* "SHA256:…" of a public key, or "(unknown)". */
static void
sshc_fingerprint(ssh_key key, char *buf, size_t len)
{
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp;

	snprintf(buf, len, "(unknown)");
	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != 0)
		return;
	if ((fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen)) != NULL) {
		snprintf(buf, len, "%s", fp);
		ssh_string_free_char(fp);
	}
	ssh_clean_pubkey_hash(&hash);
}

/* Offer only the pinned key's algorithm, so that a server with several host keys presents
 * the one we can check. */
static int
sshc_prefer_hostkey(ssh_session s, ssh_key pinned)
{
	const char *algs;

	switch (ssh_key_type(pinned)) {
	case SSH_KEYTYPE_RSA:
		algs = "rsa-sha2-512,rsa-sha2-256";
		break;
	default:
		algs = ssh_key_type_to_char(ssh_key_type(pinned));
		break;
	}
	if (algs == NULL)
		return 0;
	return ssh_options_set(s, SSH_OPTIONS_HOSTKEYS, algs);
}

static int
sshc_check_pinned(struct sshc_attempt *a, ssh_session s, ssh_key pinned)
{
	ssh_key srv = NULL;
	char want[128], got[128];
	int rc = -1;

	if (ssh_get_server_publickey(s, &srv) != SSH_OK) {
		snprintf(a->error, sizeof(a->error), "%s:%d sent no host key", a->host, a->port);
		return -1;
	}
	if (ssh_key_cmp(pinned, srv, SSH_KEY_CMP_PUBLIC) == 0) {
		rc = 0;
	} else {
		sshc_fingerprint(pinned, want, sizeof(want));
		sshc_fingerprint(srv, got, sizeof(got));
		snprintf(a->error, sizeof(a->error),
			 "host key mismatch for %s:%d: expected %s (%s) but the server has %s; "
			 "check the pinned key %s",
			 a->host, a->port, want, ssh_key_type_to_char(ssh_key_type(pinned)), got,
			 a->pinned_key);
	}
	ssh_key_free(srv);
	return rc;
}

static int
sshc_check_known_hosts(struct sshc_attempt *a, ssh_session s)
{
	ssh_key srv = NULL;
	char got[128];

	switch (ssh_session_is_known_server(s)) {
	case SSH_KNOWN_HOSTS_OK:
		return 0;
	case SSH_KNOWN_HOSTS_CHANGED:
	case SSH_KNOWN_HOSTS_OTHER:
		snprintf(got, sizeof(got), "(unknown)");
		if (ssh_get_server_publickey(s, &srv) == SSH_OK) {
			sshc_fingerprint(srv, got, sizeof(got));
			ssh_key_free(srv);
		}
		snprintf(a->error, sizeof(a->error),
			 "host key mismatch for %s:%d: the server has %s, which is not the key "
			 "listed in %s",
			 a->host, a->port, got, a->known_hosts);
		return -1;
	case SSH_KNOWN_HOSTS_UNKNOWN:
	case SSH_KNOWN_HOSTS_NOT_FOUND:
		snprintf(a->error, sizeof(a->error),
			 "host key of %s:%d is not in %s: add it (ssh-keyscan -p %d %s) after "
			 "checking its fingerprint",
			 a->host, a->port, a->known_hosts, a->port, a->host);
		return -1;
	default:
		snprintf(a->error, sizeof(a->error), "cannot check the host key of %s:%d: %s",
			 a->host, a->port, ssh_get_error(s));
		return -1;
	}
}

static int
sshc_auth(struct sshc_attempt *a, ssh_session s)
{
	ssh_key priv = NULL;
	int rc;

	if (ssh_pki_import_privkey_file(a->key_path, NULL, NULL, NULL, &priv) != SSH_OK) {
		snprintf(a->error, sizeof(a->error),
			 "cannot load the private key %s (missing, unreadable, encrypted or not "
			 "an OpenSSH/PEM key)",
			 a->key_path);
		return -1;
	}
	rc = ssh_userauth_publickey(s, NULL, priv);
	ssh_key_free(priv);
	if (rc == SSH_AUTH_PARTIAL && a->password != NULL)
		rc = ssh_userauth_password(s, NULL, a->password);
	switch (rc) {
	case SSH_AUTH_SUCCESS:
		return 0;
	case SSH_AUTH_PARTIAL:
		snprintf(a->error, sizeof(a->error),
			 "authentication as %s at %s:%d is incomplete: the server asks for a "
			 "further method",
			 a->user, a->host, a->port);
		return -1;
	case SSH_AUTH_DENIED:
		snprintf(a->error, sizeof(a->error),
			 "authentication refused: %s:%d does not accept %s as %s%s", a->host,
			 a->port, a->key_path, a->user,
			 a->password != NULL ? " (with its one-time token)" : "");
		return -1;
	default:
		snprintf(a->error, sizeof(a->error), "authentication with %s:%d failed: %s",
			 a->host, a->port, ssh_get_error(s));
		return -1;
	}
}

static void *
sshc_worker(void *arg)
{
	struct sshc_attempt *a = arg;
	ssh_session s = NULL;
	ssh_key pinned = NULL;
	bool no = false;
	int one = 1, verbosity = SSH_LOG_NOLOG;
	ssize_t n;

	if ((s = ssh_new()) == NULL) {
		snprintf(a->error, sizeof(a->error), "out of memory");
		goto out;
	}
	if (ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no) != SSH_OK ||
	    ssh_options_set(s, SSH_OPTIONS_LOG_VERBOSITY, &verbosity) != SSH_OK ||
	    ssh_options_set(s, SSH_OPTIONS_HOST, a->host) != SSH_OK ||
	    ssh_options_set(s, SSH_OPTIONS_PORT, &a->port) != SSH_OK ||
	    ssh_options_set(s, SSH_OPTIONS_USER, a->user) != SSH_OK ||
	    ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &a->timeout_s) != SSH_OK ||
	    ssh_options_set(s, SSH_OPTIONS_NODELAY, &one) != SSH_OK) {
		snprintf(a->error, sizeof(a->error), "invalid connection parameters: %s",
			 ssh_get_error(s));
		goto out;
	}
	if (a->pinned_key != NULL) {
		if (ssh_pki_import_pubkey_file(a->pinned_key, &pinned) != SSH_OK) {
			snprintf(a->error, sizeof(a->error),
				 "cannot load the pinned host key %s (missing, unreadable or not "
				 "an OpenSSH public key)",
				 a->pinned_key);
			goto out;
		}
		if (sshc_prefer_hostkey(s, pinned) != SSH_OK) {
			snprintf(a->error, sizeof(a->error), "unsupported pinned key type in %s",
				 a->pinned_key);
			goto out;
		}
	} else if (ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, a->known_hosts) != SSH_OK ||
		   ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, a->known_hosts) != SSH_OK) {
		snprintf(a->error, sizeof(a->error), "cannot use %s: %s", a->known_hosts,
			 ssh_get_error(s));
		goto out;
	}
	if (ssh_connect(s) != SSH_OK) {
		snprintf(a->error, sizeof(a->error), "cannot connect to %s:%d: %s", a->host,
			 a->port, ssh_get_error(s));
		goto out;
	}
	if (pinned != NULL ? sshc_check_pinned(a, s, pinned) != 0 :
			     sshc_check_known_hosts(a, s) != 0)
		goto out;
	if (sshc_auth(a, s) != 0)
		goto out;
	ssh_set_blocking(s, 0);
	a->session = s;
	s = NULL;
out:
	if (s != NULL) {
		ssh_disconnect(s);
		ssh_free(s);
	}
	ssh_key_free(pinned);
	/* The hand-over: after this write the attempt belongs to the loop thread. */
	do {
		n = write(a->pipefd[1], &a, sizeof(a));
	} while (n == -1 && errno == EINTR);
	/* n != sizeof(a) cannot happen for a pipe write of a pointer (< PIPE_BUF); if it
	 * did, the attempt would leak and its callback never run. */
	return NULL;
}

static void
sshc_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sshc_attempt *a = arg, *got = NULL;
	ssh_session s;
	ssize_t n;

	n = read(fd, &got, sizeof(got));
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n != sizeof(got) || got != a) {
		/* Cannot happen: the pipe is ours alone. Do not free what the worker may
		 * still use. */
		event_del(a->ev);
		return;
	}
	if (a->cancelled) {
		sshc_free(a);
		return;
	}
	s = a->session;
	a->session = NULL;
	if (s == NULL && a->error[0] == '\0')
		snprintf(a->error, sizeof(a->error), "connection failed");
	a->cb(s, s != NULL ? NULL : a->error, a->arg);
	sshc_free(a);
}

static char *
sshc_dup(const char *s, bool *oom)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*oom = true;
	return d;
}

struct sshc_attempt *
sshc_connect(struct event_base *base, const struct sshc_params *p, sshc_done_cb cb, void *arg)
{
	struct sshc_attempt *a;
	pthread_attr_t attr;
	pthread_t tid;
	bool oom = false;
	int rc;

	if (p->host == NULL || p->user == NULL || p->key_path == NULL ||
	    (p->pinned_key == NULL && p->known_hosts == NULL) || p->port < 1 || p->port > 65535)
		return NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->pipefd[0] = a->pipefd[1] = -1;
	a->base = base;
	a->cb = cb;
	a->arg = arg;
	a->port = p->port;
	a->timeout_s = p->timeout_s > 0 ? p->timeout_s : 10;
	a->host = sshc_dup(p->host, &oom);
	a->user = sshc_dup(p->user, &oom);
	a->key_path = sshc_dup(p->key_path, &oom);
	a->pinned_key = sshc_dup(p->pinned_key, &oom);
	a->known_hosts = a->pinned_key == NULL ? sshc_dup(p->known_hosts, &oom) : NULL;
	a->password = sshc_dup(p->password, &oom);
	if (oom || pipe2(a->pipefd, O_CLOEXEC) != 0)
		goto fail;
	evutil_make_socket_nonblocking(a->pipefd[0]);
	a->ev = event_new(base, a->pipefd[0], EV_READ | EV_PERSIST, sshc_ready_cb, a);
	if (a->ev == NULL || event_add(a->ev, NULL) != 0)
		goto fail;
	if (pthread_attr_init(&attr) != 0)
		goto fail;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&tid, &attr, sshc_worker, a);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		goto fail;
	return a;
fail:
	sshc_free(a);
	return NULL;
}

void
sshc_cancel(struct sshc_attempt *a)
{
	if (a != NULL)
		a->cancelled = true;
}
