/*
 * KillCommand: after the kill switch, the platform is told to stop the workspace VM by
 * running the configured command with the workspace name appended as its last argument.
 *
 * No shell is involved (posix_spawn with an argv split on whitespace), the child's output
 * goes to the broker's log, and a watchdog kills it after KILL_COMMAND_TIMEOUT seconds. The
 * event loop never waits: the exit is collected from a libevent timer.
 */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "audit/log.h"
#include "broker/broker.h"

#define KILL_COMMAND_TIMEOUT 30
#define KILL_COMMAND_MAXARGS 32

extern char **environ;

struct kill_child {
	struct broker *broker;
	pid_t pid;
	char name[64];
	int ticks;
	struct event *ev;
};

static void
kill_child_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kill_child *k = arg;
	struct timeval tv = { 0, 100000 };
	int status;
	pid_t r = waitpid(k->pid, &status, WNOHANG);

	if (r == 0) {
		if (++k->ticks == KILL_COMMAND_TIMEOUT * 10) {
			log_warnx(
				"KillCommand for workspace %s: still running after %ds, killing it",
				k->name, KILL_COMMAND_TIMEOUT);
			kill(k->pid, SIGKILL);
		}
		evtimer_add(k->ev, &tv);
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
	event_free(k->ev);
	free(k);
}

int
broker_run_kill_command(struct broker *b, const char *name)
{
	const char *cmd = b->cfg.kill_command;
	char *copy = NULL, *argv[KILL_COMMAND_MAXARGS + 2], *save = NULL, *tok;
	struct kill_child *k = NULL;
	struct timeval tv = { 0, 100000 };
	int argc = 0, rc;

	if (cmd == NULL || *cmd == '\0')
		return 0;
	if ((copy = strdup(cmd)) == NULL || (k = calloc(1, sizeof(*k))) == NULL)
		goto fail;
	for (tok = strtok_r(copy, " \t", &save); tok != NULL && argc < KILL_COMMAND_MAXARGS;
	     tok = strtok_r(NULL, " \t", &save))
		argv[argc++] = tok;
	if (argc == 0)
		goto fail;
	argv[argc++] = (char *)name;
	argv[argc] = NULL;
	/* Output to our stderr (the journal); no stdin. */
	rc = posix_spawn(&k->pid, argv[0], NULL, NULL, argv, environ);
	if (rc != 0) {
		errno = rc;
		log_warn("KillCommand %s for workspace %s", argv[0], name);
		goto fail;
	}
	k->broker = b;
	snprintf(k->name, sizeof(k->name), "%s", name);
	if ((k->ev = evtimer_new(b->base, kill_child_cb, k)) == NULL) {
		/* Cannot watch it: at least do not leave a zombie forever. */
		waitpid(k->pid, NULL, 0);
		goto fail;
	}
	evtimer_add(k->ev, &tv);
	log_info("KillCommand for workspace %s started (pid %d)", name, (int)k->pid);
	free(copy);
	return 0;
fail:
	free(copy);
	free(k);
	return -1;
}
