/*
 * End-to-end test of tunnel/jump.c against two real OpenSSH sshd (started by
 * jump-failover.sh) and a loopback HTTP service:
 *
 *   both up, host 0 active; HTTP GET through a channel; a refused destination;
 *   sshd 0 killed (SIGKILL of its process tree) -> failover to host 1 measured, the owner's
 *     channel on the dead session freed through dead_cb; sshd 0 restarted -> reconnected in
 *     the background, host 1 stays active (no flapping);
 *   sshd 1 frozen (SIGSTOP: the socket stays open, only the keepalive notices) -> failover
 *     to host 0 measured; thawed -> reconnected;
 *   a second mux whose known_hosts has a wrong key for host 0: host 0 never comes up,
 *     host 1 serves;
 *   a mux with no reachable host: "no jump host is available".
 *
 * Every wait is bounded. Prints PASS:/FAIL: lines and "metric NAME=VALUE" lines; exit status
 * 1 if any check failed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <libssh/libssh.h>

#include "audit/log.h"
#include "tunnel/jump.h"

#define T_MAX_REQS 32
#define T_FAILOVER_LIMIT_MS 2000
#define T_RECONNECT_LIMIT_MS 35000

struct t_req {
	bool used;
	bool opened;
	bool failed;
	bool done;
	bool freed_by_dead;
	bool send_get;
	ssh_channel ch;
	int active_at_cb;
	uint64_t t_cb;
	uint64_t t_done;
	char error[512];
	char buf[16384];
	size_t len;
	struct t *t;
};

struct t {
	struct event_base *base;
	struct jump_mux *m;
	struct t_req reqs[T_MAX_REQS];
	int ndead;
	int fails;
	int passes;
	const char *user;
	const char *key;
	const char *known_hosts;
	const char *bad_known_hosts;
	int port[2];
	pid_t sshd_pid[2];
	const char *sshd_config[2];
	const char *restart_pidfile;
	pid_t restarted;
	int http_port;
	int closed_port;
	const char *expect;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void t_check(struct t *t, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
t_check(struct t *t, bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", ok ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (ok)
		t->passes++;
	else
		t->fails++;
}

/* ---- the owner's side: channels, input, dead sessions ---- */

static void
t_req_read(struct t_req *r)
{
	int n;

	if (r->ch == NULL || r->done)
		return;
	for (;;) {
		size_t room = sizeof(r->buf) - 1 - r->len;

		if (room == 0)
			break;
		n = ssh_channel_read_nonblocking(r->ch, r->buf + r->len, (uint32_t)room, 0);
		if (n > 0) {
			r->len += (size_t)n;
			r->buf[r->len] = '\0';
			continue;
		}
		if (n == SSH_ERROR) {
			snprintf(r->error, sizeof(r->error), "channel read failed");
			r->failed = true;
			r->done = true;
			r->t_done = now_ms();
			return;
		}
		break;
	}
	if (ssh_channel_is_eof(r->ch) || ssh_channel_is_closed(r->ch)) {
		r->done = true;
		r->t_done = now_ms();
	}
}

static void
t_input_cb(void *arg)
{
	struct t *t = arg;
	int i;

	for (i = 0; i < T_MAX_REQS; i++)
		if (t->reqs[i].used)
			t_req_read(&t->reqs[i]);
	jump_flush(t->m);
}

static void
t_dead_cb(ssh_session dead, void *arg)
{
	struct t *t = arg;
	int i;

	t->ndead++;
	for (i = 0; i < T_MAX_REQS; i++) {
		struct t_req *r = &t->reqs[i];

		if (r->used && r->ch != NULL && ssh_channel_get_session(r->ch) == dead) {
			ssh_channel_free(r->ch);
			r->ch = NULL;
			r->freed_by_dead = true;
			if (!r->done) {
				r->done = true;
				r->failed = true;
				snprintf(r->error, sizeof(r->error), "jump host died");
			}
		}
	}
}

static void
t_open_cb(ssh_channel ch, const char *error, void *arg)
{
	struct t_req *r = arg;
	char req[256];
	int n;

	r->t_cb = now_ms();
	r->active_at_cb = jump_active(r->t->m);
	if (ch == NULL) {
		r->failed = true;
		r->done = true;
		snprintf(r->error, sizeof(r->error), "%s", error);
		return;
	}
	r->opened = true;
	r->ch = ch;
	if (!r->send_get)
		return;
	n = snprintf(req, sizeof(req), "GET /hello.txt HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n\r\n",
		     r->t->http_port);
	if (ssh_channel_write(ch, req, (uint32_t)n) != n) {
		r->failed = true;
		r->done = true;
		snprintf(r->error, sizeof(r->error), "channel write failed");
		return;
	}
	ssh_channel_send_eof(ch);
	jump_flush(r->t->m);
}

static struct t_req *
t_open(struct t *t, int port, bool send_get)
{
	struct t_req *r = NULL;
	int i;

	for (i = 0; i < T_MAX_REQS; i++) {
		if (!t->reqs[i].used) {
			r = &t->reqs[i];
			break;
		}
	}
	if (r == NULL)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->used = true;
	r->t = t;
	r->send_get = send_get;
	r->active_at_cb = -2;
	if (jump_open(t->m, "127.0.0.1", port, "127.0.0.1", 40000, t_open_cb, r) == NULL) {
		r->failed = r->done = true;
		snprintf(r->error, sizeof(r->error), "jump_open refused the request");
	}
	return r;
}

static void
t_req_release(struct t_req *r)
{
	if (r->ch != NULL)
		ssh_channel_free(r->ch);
	memset(r, 0, sizeof(*r));
}

static void
t_release_all(struct t *t)
{
	int i;

	for (i = 0; i < T_MAX_REQS; i++)
		if (t->reqs[i].used)
			t_req_release(&t->reqs[i]);
}

/* ---- bounded waiting ---- */

static void
t_tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

typedef bool (*t_cond)(struct t *t, void *arg);

/* Runs the loop until cond holds or ms passed. Returns the elapsed time, or -1. */
static long
t_wait(struct t *t, t_cond cond, void *arg, long ms)
{
	uint64_t start = now_ms();

	while (!cond(t, arg)) {
		if (now_ms() - start >= (uint64_t)ms)
			return -1;
		event_base_loop(t->base, EVLOOP_ONCE);
	}
	return (long)(now_ms() - start);
}

static bool
c_both_up(struct t *t, void *arg)
{
	return jump_host_up(t->m, 0) && jump_host_up(t->m, 1);
}

static bool
c_host_up(struct t *t, void *arg)
{
	return jump_host_up(t->m, *(int *)arg);
}

static bool
c_active(struct t *t, void *arg)
{
	return jump_active(t->m) == *(int *)arg;
}

static bool
c_req_resolved(struct t *t, void *arg)
{
	struct t_req *r = arg;

	return r->opened || r->failed;
}

static bool
c_req_done(struct t *t, void *arg)
{
	struct t_req *r = arg;

	return r->done;
}

static bool
c_never(struct t *t, void *arg)
{
	return false;
}

/* ---- processes ---- */

/* Signals pid and all its descendants (found through /proc), children first. */
static int
t_signal_tree(pid_t root, int sig)
{
	pid_t pids[512], ppids[512], tree[512];
	size_t n = 0, ntree = 0, i, k;
	struct dirent *de;
	DIR *d;

	if ((d = opendir("/proc")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL && n < 512) {
		char path[300], buf[512], *p;
		FILE *f;
		long ppid;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		p = fgets(buf, sizeof(buf), f);
		fclose(f);
		/* pid (comm) state ppid ...: comm may hold spaces and parentheses. */
		if (p == NULL || (p = strrchr(buf, ')')) == NULL ||
		    sscanf(p + 1, " %*c %ld", &ppid) != 1)
			continue;
		pids[n] = (pid_t)atol(de->d_name);
		ppids[n] = (pid_t)ppid;
		n++;
	}
	closedir(d);
	tree[ntree++] = root;
	for (k = 0; k < ntree; k++)
		for (i = 0; i < n && ntree < 512; i++)
			if (ppids[i] == tree[k])
				tree[ntree++] = pids[i];
	for (k = ntree; k-- > 0;)
		kill(tree[k], sig);
	return (int)ntree;
}

static pid_t
t_start_sshd(const char *config)
{
	char log[4096];
	const char *slash;
	pid_t pid;
	int fd;

	slash = strrchr(config, '/');
	snprintf(log, sizeof(log), "%.*s/sshd.log", slash ? (int)(slash - config) : 1,
		 slash ? config : ".");
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		if ((fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0600)) >= 0) {
			dup2(fd, 2);
			close(fd);
		}
		execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", config, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* ---- the scenarios ---- */

static bool
t_body_ok(struct t *t, struct t_req *r)
{
	return r->done && !r->failed && strstr(r->buf, " 200 ") != NULL &&
	       strstr(r->buf, t->expect) != NULL;
}

/* Opens a channel to the HTTP service and GETs the file; true if it came back. */
static bool
t_http_get(struct t *t, const char *what, long limit_ms)
{
	struct t_req *r = t_open(t, t->http_port, true);
	bool ok;

	if (r == NULL)
		return false;
	t_wait(t, c_req_done, r, limit_ms);
	ok = t_body_ok(t, r);
	t_check(t, ok, "%s: HTTP GET through the mux (via host %d)%s%s", what, r->active_at_cb,
		ok ? "" : ": ", ok ? "" : (r->error[0] ? r->error : "no/short answer"));
	t_req_release(r);
	return ok;
}

static struct jump_mux *
t_mux(struct t *t, const char *known_hosts, const int *ports)
{
	struct jump_host_cfg hc[2];
	int i;

	for (i = 0; i < 2; i++) {
		hc[i].host = "127.0.0.1";
		hc[i].port = ports[i];
		hc[i].user = t->user;
		hc[i].key_path = t->key;
	}
	t->m = jump_new(t->base, hc, 2, known_hosts, t_input_cb, t);
	if (t->m != NULL)
		jump_set_dead_cb(t->m, t_dead_cb, t);
	return t->m;
}

static void
t_mux_free(struct t *t)
{
	t_release_all(t);
	jump_free(t->m);
	t->m = NULL;
	/* Let cancelled connection attempts come back and be freed. */
	t_wait(t, c_never, NULL, 300);
}

static void
t_scenario_failover(struct t *t)
{
	struct t_req *keep, *refused, *r;
	uint64_t t0;
	long ms, active_ms;
	int zero = 0, one = 1;

	if (t_mux(t, t->known_hosts, t->port) == NULL) {
		t_check(t, false, "jump_new");
		return;
	}
	ms = t_wait(t, c_both_up, NULL, 15000);
	t_check(t, ms >= 0, "both jump hosts up (%ld ms)", ms);
	t_check(t, jump_active(t->m) == 0, "host 0 is preferred at start (active %d)",
		jump_active(t->m));
	t_http_get(t, "both up", 5000);

	/* A destination nobody listens on: refused by the jump host, in plain words. */
	refused = t_open(t, t->closed_port, false);
	t_wait(t, c_req_resolved, refused, 5000);
	t_check(t, refused->failed && strstr(refused->error, "refused the connection") != NULL,
		"closed destination refused: \"%s\"", refused->error);
	t_req_release(refused);

	/* A channel kept open on host 0: dead_cb must free it before its session goes. */
	keep = t_open(t, t->http_port, false);
	t_wait(t, c_req_resolved, keep, 5000);
	t_check(t, keep->opened && keep->active_at_cb == 0, "idle channel open on host 0");

	/* ---- hard death of host 0 ---- */
	t0 = now_ms();
	t_check(t, t_signal_tree(t->sshd_pid[0], SIGKILL) >= 1, "sshd 0 killed");
	r = t_open(t, t->http_port, true); /* possibly issued on host 0 before it is seen dead */
	active_ms = t_wait(t, c_active, &one, 3000);
	t_wait(t, c_req_resolved, r, 3000);
	ms = r->opened ? (long)(r->t_cb - t0) : -1;
	printf("metric failover_kill_active_ms=%ld\nmetric failover_kill_open_ms=%ld\n", active_ms,
	       ms);
	t_check(t, active_ms >= 0 && active_ms < T_FAILOVER_LIMIT_MS,
		"host 1 active %ld ms after sshd 0 was killed", active_ms);
	t_check(t, r->opened && r->active_at_cb == 1 && ms < T_FAILOVER_LIMIT_MS,
		"open issued at the kill succeeded via host 1 after %ld ms%s%s", ms,
		r->failed ? ": " : "", r->error);
	t_wait(t, c_req_done, r, 5000);
	t_check(t, t_body_ok(t, r),
		"HTTP GET through host 1 after the failover (%ld ms after kill)",
		r->done ? (long)(r->t_done - t0) : -1L);
	t_req_release(r);
	t_check(t, keep->freed_by_dead && t->ndead == 1,
		"dead_cb freed the owner's channel on the dead session (dead calls %d)", t->ndead);
	t_req_release(keep);
	t_check(t, !jump_host_up(t->m, 0), "host 0 is down");

	/* ---- host 0 comes back: reconnected in the background, no failback ---- */
	t->restarted = t_start_sshd(t->sshd_config[0]);
	if (t->restart_pidfile != NULL) {
		FILE *f = fopen(t->restart_pidfile, "w");

		if (f != NULL) {
			fprintf(f, "%ld\n", (long)t->restarted);
			fclose(f);
		}
	}
	t0 = now_ms();
	ms = t_wait(t, c_host_up, &zero, T_RECONNECT_LIMIT_MS);
	printf("metric reconnect_after_restart_ms=%ld\n", ms);
	t_check(t, ms >= 0, "host 0 reconnected %ld ms after sshd 0 was restarted", ms);
	t_wait(t, c_never, NULL, 700);
	t_check(t, jump_active(t->m) == 1, "host 1 stays active after host 0 is back (active %d)",
		jump_active(t->m));
	t_http_get(t, "after host 0 came back", 5000);

	/* ---- host 1 hangs: only the keepalive can tell ---- */
	t0 = now_ms();
	t_check(t, t_signal_tree(t->sshd_pid[1], SIGSTOP) >= 2, "sshd 1 frozen (with its child)");
	r = t_open(t, t->http_port, true); /* goes to the frozen host 1 first */
	active_ms = t_wait(t, c_active, &zero, 3000);
	t_wait(t, c_req_resolved, r, 3000);
	ms = r->opened ? (long)(r->t_cb - t0) : -1;
	printf("metric failover_hang_active_ms=%ld\nmetric failover_hang_open_ms=%ld\n", active_ms,
	       ms);
	t_check(t, active_ms >= 0 && active_ms < T_FAILOVER_LIMIT_MS,
		"host 0 active %ld ms after sshd 1 froze", active_ms);
	t_check(t, r->opened && r->active_at_cb == 0 && ms < T_FAILOVER_LIMIT_MS,
		"open issued at the freeze was re-issued and succeeded via host 0 after %ld ms%s%s",
		ms, r->failed ? ": " : "", r->error);
	t_wait(t, c_req_done, r, 5000);
	t_check(t, t_body_ok(t, r), "HTTP GET through host 0 after the second failover");
	t_req_release(r);
	t_signal_tree(t->sshd_pid[1], SIGCONT);
	ms = t_wait(t, c_host_up, &one, T_RECONNECT_LIMIT_MS);
	printf("metric reconnect_after_thaw_ms=%ld\n", ms);
	t_check(t, ms >= 0, "host 1 reconnected %ld ms after sshd 1 was thawed", ms);
	t_check(t, jump_active(t->m) == 0, "host 0 stays active (active %d)", jump_active(t->m));
	t_mux_free(t);
}

static void
t_scenario_bad_key(struct t *t)
{
	int one = 1;
	long ms;

	if (t_mux(t, t->bad_known_hosts, t->port) == NULL) {
		t_check(t, false, "jump_new (bad known_hosts)");
		return;
	}
	ms = t_wait(t, c_active, &one, 15000);
	t_check(t, ms >= 0, "wrong host key for host 0: host 1 active (%ld ms)", ms);
	t_wait(t, c_never, NULL, 2500);
	t_check(t, !jump_host_up(t->m, 0), "host 0 with the wrong key never came up");
	t_http_get(t, "wrong key for host 0", 5000);
	t_mux_free(t);
}

static void
t_scenario_none(struct t *t)
{
	int ports[2] = { t->closed_port, t->closed_port };
	struct t_req *r;

	if (t_mux(t, t->known_hosts, ports) == NULL) {
		t_check(t, false, "jump_new (no host)");
		return;
	}
	t_wait(t, c_never, NULL, 500);
	r = t_open(t, t->http_port, false);
	t_wait(t, c_req_resolved, r, 3000);
	t_check(t, r->failed && strcmp(r->error, "no jump host is available") == 0,
		"no jump host up: \"%s\"", r->error);
	t_req_release(r);
	t_mux_free(t);
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: jump-failover --user U --key K --known-hosts F --bad-known-hosts F\n"
		"       --port0 P --port1 P --sshd0-pid PID --sshd1-pid PID --sshd0-config F\n"
		"       --sshd1-config F --http-port P --closed-port P --expect TEXT\n"
		"       [--restart-pidfile F] [-d]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "key", required_argument, NULL, 'k' },
		{ "known-hosts", required_argument, NULL, 'K' },
		{ "bad-known-hosts", required_argument, NULL, 'B' },
		{ "port0", required_argument, NULL, '0' },
		{ "port1", required_argument, NULL, '1' },
		{ "sshd0-pid", required_argument, NULL, 'p' },
		{ "sshd1-pid", required_argument, NULL, 'q' },
		{ "sshd0-config", required_argument, NULL, 'c' },
		{ "sshd1-config", required_argument, NULL, 'C' },
		{ "http-port", required_argument, NULL, 'h' },
		{ "closed-port", required_argument, NULL, 'x' },
		{ "expect", required_argument, NULL, 'e' },
		{ "restart-pidfile", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct t t;
	struct event *tick;
	struct timeval tv = { 0, 20000 };
	int ch, debug = 0;

	memset(&t, 0, sizeof(t));
	while ((ch = getopt_long(argc, argv, "d", opts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			t.user = optarg;
			break;
		case 'k':
			t.key = optarg;
			break;
		case 'K':
			t.known_hosts = optarg;
			break;
		case 'B':
			t.bad_known_hosts = optarg;
			break;
		case '0':
			t.port[0] = atoi(optarg);
			break;
		case '1':
			t.port[1] = atoi(optarg);
			break;
		case 'p':
			t.sshd_pid[0] = (pid_t)atol(optarg);
			break;
		case 'q':
			t.sshd_pid[1] = (pid_t)atol(optarg);
			break;
		case 'c':
			t.sshd_config[0] = optarg;
			break;
		case 'C':
			t.sshd_config[1] = optarg;
			break;
		case 'h':
			t.http_port = atoi(optarg);
			break;
		case 'x':
			t.closed_port = atoi(optarg);
			break;
		case 'e':
			t.expect = optarg;
			break;
		case 'r':
			t.restart_pidfile = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		default:
			usage();
		}
	}
	if (t.user == NULL || t.key == NULL || t.known_hosts == NULL || t.bad_known_hosts == NULL ||
	    t.port[0] <= 0 || t.port[1] <= 0 || t.sshd_pid[0] <= 0 || t.sshd_pid[1] <= 0 ||
	    t.sshd_config[0] == NULL || t.http_port <= 0 || t.closed_port <= 0 || t.expect == NULL)
		usage();
	log_init("jump-failover", debug);
	signal(SIGPIPE, SIG_IGN);
	if ((t.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	/* EVLOOP_ONCE returns at least this often, so every wait is bounded. */
	if ((tick = event_new(t.base, -1, EV_PERSIST, t_tick_cb, NULL)) == NULL ||
	    event_add(tick, &tv) != 0)
		fatalx("tick timer");

	t_scenario_failover(&t);
	t_scenario_bad_key(&t);
	t_scenario_none(&t);

	if (t.restarted > 0) {
		t_signal_tree(t.restarted, SIGTERM);
		waitpid(t.restarted, NULL, 0);
	}
	event_free(tick);
	event_base_free(t.base);
	printf("jump-failover: %d passed, %d failed\n", t.passes, t.fails);
	return t.fails == 0 ? 0 : 1;
}
