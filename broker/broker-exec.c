/*
 * KillCommand: after the kill switch, the platform is told to stop the workspace VM by
 * running the configured command with the workspace name appended as its last argument.
 *
 * No shell is involved (posix_spawn of the configured words: a workspace name can never
 * become shell syntax), stdin is /dev/null, stdout and stderr go through a pipe into the
 * broker's log line by line, and a watchdog kills the command's whole process group after
 * KILL_COMMAND_TIMEOUT seconds. The event loop never waits: the exit is collected from a
 * libevent timer, the output from a read event.
 *
 * Ownership: each run frees itself once the child is reaped and its output is drained.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "audit/log.h"
#include "broker/broker.h"

#define KILL_COMMAND_TIMEOUT 30 /* seconds */
#define KILL_COMMAND_MAXARGS 32
#define KILL_COMMAND_LINE 512	      /* bytes of one logged output line */
#define KILL_COMMAND_MAX_OUTPUT 65536 /* bytes logged per run; the rest is read and dropped */

extern char **environ;

struct kill_child {
	pid_t pid;
	char name[64];
	int ticks;
	bool reaped;
	struct event *ev_timer;
	struct event *ev_out;
	int out_fd;
	size_t logged;
	char line[KILL_COMMAND_LINE];
	size_t linelen;
};

static void
kill_child_maybe_free(struct kill_child *k)
{
	if (!k->reaped || k->out_fd != -1)
		return;
	event_free(k->ev_timer);
	free(k);
}

static void
kill_child_flush(struct kill_child *k)
{
	size_t i;

	if (k->linelen == 0)
		return;
	for (i = 0; i < k->linelen; i++)
		if ((unsigned char)k->line[i] < 0x20 || k->line[i] == 0x7f)
			k->line[i] = '?';
	k->line[k->linelen] = '\0';
	log_info("KillCommand for workspace %s: %s", k->name, k->line);
	k->linelen = 0;
}

static void
kill_child_output(evutil_socket_t fd, short what, void *arg)
{
	struct kill_child *k = arg;
	char buf[4096];
	ssize_t n, i;

	n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		kill_child_flush(k);
		event_free(k->ev_out);
		k->ev_out = NULL;
		close(k->out_fd);
		k->out_fd = -1;
		kill_child_maybe_free(k);
		return;
	}
	for (i = 0; i < n && k->logged < KILL_COMMAND_MAX_OUTPUT; i++) {
		k->logged++;
		if (buf[i] == '\n' || k->linelen == sizeof(k->line) - 1) {
			kill_child_flush(k);
			if (buf[i] == '\n')
				continue;
		}
		k->line[k->linelen++] = buf[i];
	}
}

static void
kill_child_timer(evutil_socket_t fd, short what, void *arg)
{
	struct kill_child *k = arg;
	struct timeval tv = { 0, 100000 };
	int status;
	pid_t r = waitpid(k->pid, &status, WNOHANG);

	if (r == 0 || (r == -1 && errno == EINTR)) {
		if (++k->ticks == KILL_COMMAND_TIMEOUT * 10) {
			log_warnx("KillCommand for workspace %s: still running after %d s, "
				  "killing it",
				  k->name, KILL_COMMAND_TIMEOUT);
			/* the whole group: a script's children must not linger either */
			kill(-k->pid, SIGKILL);
		}
		evtimer_add(k->ev_timer, &tv);
		return;
	}
	if (r == k->pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		log_info("KillCommand for workspace %s: done", k->name);
	else if (r == k->pid && WIFEXITED(status))
		log_warnx("KillCommand for workspace %s: exit status %d", k->name,
			  WEXITSTATUS(status));
	else if (r == k->pid && WIFSIGNALED(status))
		log_warnx("KillCommand for workspace %s: killed by signal %d", k->name,
			  WTERMSIG(status));
	else
		log_warn("KillCommand for workspace %s: waitpid", k->name);
	k->reaped = true;
	kill_child_maybe_free(k);
}

int
broker_run_kill_command(struct broker *b, const char *name)
{
	const struct conf_list *cmd = &b->cfg.kill_command;
	char *argv[KILL_COMMAND_MAXARGS + 2];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	struct kill_child *k = NULL;
	struct timeval tv = { 0, 100000 };
	int pfd[2] = { -1, -1 }, rc;
	size_t i, argc = 0;
	bool fa_init = false, attr_init = false;

	if (cmd->n == 0)
		return 0;
	for (i = 0; i < cmd->n && argc < KILL_COMMAND_MAXARGS; i++)
		argv[argc++] = cmd->v[i];
	argv[argc++] = (char *)name;
	argv[argc] = NULL;
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		log_warnx("KillCommand for workspace %s: out of memory", name);
		return -1;
	}
	k->out_fd = -1;
	snprintf(k->name, sizeof(k->name), "%s", name);
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		log_warn("KillCommand for workspace %s: pipe", name);
		goto fail;
	}
	if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
		goto spawn_fail;
	fa_init = true;
	if ((rc = posix_spawnattr_init(&attr)) != 0)
		goto spawn_fail;
	attr_init = true;
	/* its own process group (the watchdog kills all of it); default signal mask */
	if ((rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP)) != 0 ||
	    (rc = posix_spawnattr_setpgroup(&attr, 0)) != 0 ||
	    (rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) != 0 ||
	    (rc = posix_spawn_file_actions_adddup2(&fa, pfd[1], 1)) != 0 ||
	    (rc = posix_spawn_file_actions_adddup2(&fa, pfd[1], 2)) != 0 ||
	    /* nothing of the broker's (client sockets, the database) reaches the command */
	    (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0)
		goto spawn_fail;
	if ((rc = posix_spawn(&k->pid, argv[0], &fa, &attr, argv, environ)) != 0)
		goto spawn_fail;
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(pfd[1]);
	k->out_fd = pfd[0];
	evutil_make_socket_nonblocking(k->out_fd);
	k->ev_timer = evtimer_new(b->base, kill_child_timer, k);
	k->ev_out = event_new(b->base, k->out_fd, EV_READ | EV_PERSIST, kill_child_output, k);
	if (k->ev_timer == NULL || k->ev_out == NULL || evtimer_add(k->ev_timer, &tv) != 0 ||
	    event_add(k->ev_out, NULL) != 0) {
		/* Cannot watch it: at least do not leave a zombie forever. */
		log_warnx("KillCommand for workspace %s: cannot watch pid %d", name, (int)k->pid);
		kill(-k->pid, SIGKILL);
		waitpid(k->pid, NULL, 0);
		if (k->ev_out != NULL)
			event_free(k->ev_out);
		if (k->ev_timer != NULL)
			event_free(k->ev_timer);
		close(k->out_fd);
		free(k);
		return -1;
	}
	log_info("KillCommand for workspace %s started (pid %d)", name, (int)k->pid);
	return 0;
spawn_fail:
	errno = rc;
	log_warn("KillCommand %s for workspace %s", argv[0], name);
	if (fa_init)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_init)
		posix_spawnattr_destroy(&attr);
fail:
	if (pfd[0] != -1)
		close(pfd[0]);
	if (pfd[1] != -1)
		close(pfd[1]);
	free(k);
	return -1;
}
