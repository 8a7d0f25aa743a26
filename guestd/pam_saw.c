/*
 * pam_saw.so: the workspace sshd's PAM check that a login belongs to a live brokered session,
 * and the registration of that login with saw-guestd so that revoking the session ends it.
 *
 *   account  required pam_saw.so [socket=PATH] [debug]
 *   session  required pam_saw.so [socket=PATH] [debug]
 *
 * account: {"op":"pam_account"} → PAM_SUCCESS only on {"ok":true}; anything else, including an
 *   unreachable guestd, is PAM_PERM_DENIED. There is deliberately no fail-open option: the
 *   workspace sshd exists only to serve brokered sessions, so a guestd that is down means there
 *   is no session to serve, and an option that let logins through would turn "guestd crashed or
 *   was killed" into "the broker is bypassed".
 * session open: {"op":"pam_open","pid","cgroup","tty"} → PAM_SUCCESS on ok, else PAM_SESSION_ERR
 *   (sshd then refuses to start the shell). pid is the calling process: in sshd that is the
 *   per-connection privileged monitor ("sshd: USER [priv]"); the user's shell is its descendant
 *   in a session of its own (setsid), so guestd must end the whole process tree (or the cgroup),
 *   not a process group. The cgroup is sent only when it is a v2 cgroup holding no process but
 *   this one (e.g. pam_systemd's session scope ran first): killing a shared cgroup such as
 *   ssh.service would take sshd down with the login.
 * session close: {"op":"pam_close"}, errors ignored (the login is over either way).
 * auth, setcred: PAM_IGNORE (authentication is sshd's publickey + saw-authorized-keys).
 *
 * The module is loaded into sshd: no global state, no signal handlers, logs via pam_syslog.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#define PAM_SM_ACCOUNT
#define PAM_SM_SESSION
#define PAM_SM_AUTH
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "guestd/gsock-client.h"

#define PAM_SAW_MAX_TTY 64
#define PAM_SAW_MAX_CGROUP 512

struct pam_saw_opts {
	const char *socket;
	int debug;
};

/* Parses the module arguments. 0, or -1 (logged) on an unknown or bad argument: a typo in the
 * PAM stack must not silently change behaviour. */
static int
pam_saw_args(pam_handle_t *pamh, int argc, const char **argv, struct pam_saw_opts *o)
{
	int i;

	o->socket = GSOCK_DEFAULT_PATH;
	o->debug = 0;
	for (i = 0; i < argc; i++) {
		if (strncmp(argv[i], "socket=", 7) == 0) {
			o->socket = argv[i] + 7;
			if (gsock_check_path(o->socket) != 0) {
				pam_syslog(pamh, LOG_ERR,
					   "socket=: the path must be absolute and shorter than "
					   "108 bytes");
				return -1;
			}
		} else if (strcmp(argv[i], "debug") == 0) {
			o->debug = 1;
		} else {
			pam_syslog(pamh, LOG_ERR,
				   "unknown module argument \"%.64s\" (known: socket=PATH, debug)",
				   argv[i]);
			return -1;
		}
	}
	return 0;
}

/* The PAM user, checked against the user name rule. NULL (logged) if unset or invalid. */
static const char *
pam_saw_user(pam_handle_t *pamh)
{
	const char *user = NULL;

	if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || user == NULL) {
		pam_syslog(pamh, LOG_ERR, "no user name");
		return NULL;
	}
	if (gsock_check_user(user) != 0) {
		pam_syslog(pamh, LOG_NOTICE, "refusing an invalid user name");
		return NULL;
	}
	return user;
}

/* Sends req and returns guestd's answer, or NULL (logged) if there is none. Takes req. */
static json_t *
pam_saw_ask(pam_handle_t *pamh, const struct pam_saw_opts *o, json_t *req)
{
	char err[512];
	json_t *ans;

	if (req == NULL) {
		pam_syslog(pamh, LOG_CRIT, "out of memory");
		return NULL;
	}
	if (o->debug) {
		char *s = json_dumps(req, JSON_COMPACT);

		pam_syslog(pamh, LOG_DEBUG, "to %s: %s", o->socket, s != NULL ? s : "?");
		free(s);
	}
	ans = gsock_request(o->socket, req, GSOCK_TIMEOUT_MS, err, sizeof(err));
	json_decref(req);
	if (ans == NULL) {
		pam_syslog(pamh, LOG_ERR, "%s", err);
		return NULL;
	}
	if (o->debug) {
		char *s = json_dumps(ans, JSON_COMPACT);

		pam_syslog(pamh, LOG_DEBUG, "from saw-guestd: %s", s != NULL ? s : "?");
		free(s);
	}
	return ans;
}

/*
 * Fills cg with the caller's cgroup v2 directory, or leaves it empty when there is none worth
 * sending: no unified hierarchy line, the root cgroup, no mounted v2 hierarchy holding it, or
 * a cgroup shared with other processes (killing it would kill them too).
 */
static void
pam_saw_cgroup(pam_handle_t *pamh, const struct pam_saw_opts *o, char *cg, size_t cglen)
{
	static const char *const roots[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	char line[PAM_SAW_MAX_CGROUP], probe[PAM_SAW_MAX_CGROUP + 64];
	char path[PAM_SAW_MAX_CGROUP] = "";
	struct stat st;
	FILE *f = NULL;
	size_t i, len;
	long pid;
	int n, others = 0, self = 0;

	cg[0] = '\0';
	if ((f = fopen("/proc/self/cgroup", "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "0::/", 4) != 0)
			continue;
		len = strcspn(line + 3, "\n");
		if (len < sizeof(path)) {
			memcpy(path, line + 3, len);
			path[len] = '\0';
		}
		break;
	}
	fclose(f);
	f = NULL;
	if (path[0] == '\0' || strcmp(path, "/") == 0 || strstr(path, "/..") != NULL)
		return;
	for (i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		/* cgroup.controllers exists only at the top of a v2 hierarchy. */
		snprintf(probe, sizeof(probe), "%s/cgroup.controllers", roots[i]);
		if (stat(probe, &st) != 0)
			continue;
		n = snprintf(cg, cglen, "%s%s", roots[i], path);
		if (n < 0 || (size_t)n >= cglen || stat(cg, &st) != 0 || !S_ISDIR(st.st_mode)) {
			cg[0] = '\0';
			continue;
		}
		break;
	}
	if (cg[0] == '\0')
		return;
	snprintf(probe, sizeof(probe), "%s/cgroup.procs", cg);
	if ((f = fopen(probe, "re")) != NULL) {
		while (fscanf(f, "%ld", &pid) == 1) {
			if (pid == (long)getpid())
				self = 1;
			else
				others = 1;
		}
		fclose(f);
	}
	if (!self || others) {
		if (o->debug)
			pam_syslog(pamh, LOG_DEBUG,
				   "cgroup %s is shared with other processes: not sent", cg);
		cg[0] = '\0';
	}
}

PAM_EXTERN int
pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return PAM_IGNORE;
}

PAM_EXTERN int
pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return PAM_IGNORE;
}

PAM_EXTERN int
pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct pam_saw_opts o;
	const char *user, *why;
	json_t *ans;
	int rc = PAM_PERM_DENIED;

	if (pam_saw_args(pamh, argc, argv, &o) != 0)
		return PAM_SERVICE_ERR;
	if ((user = pam_saw_user(pamh)) == NULL)
		return PAM_USER_UNKNOWN;
	ans = pam_saw_ask(pamh, &o, json_pack("{s:s, s:s}", "op", "pam_account", "user", user));
	if (ans == NULL) {
		pam_syslog(pamh, LOG_ERR, "refusing %s: no answer from saw-guestd (fail closed)",
			   user);
		pam_error(pamh, "SAW: cannot check for a brokered session (saw-guestd is not "
				"answering); login refused");
		return PAM_PERM_DENIED;
	}
	if (gsock_answer_ok(ans, &why)) {
		if (o.debug)
			pam_syslog(pamh, LOG_DEBUG, "account %s: live brokered session", user);
		rc = PAM_SUCCESS;
	} else {
		pam_syslog(
			pamh, LOG_NOTICE,
			"SAW: no live brokered session for %s; log in through the broker (%.200s)",
			user, why);
		pam_error(pamh, "SAW: no live brokered session for %s; log in through the broker",
			  user);
	}
	json_decref(ans);
	return rc;
}

PAM_EXTERN int
pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct pam_saw_opts o;
	char cg[PAM_SAW_MAX_CGROUP];
	const void *item = NULL;
	const char *user, *tty = NULL, *why;
	json_t *req, *ans;
	int rc = PAM_SESSION_ERR;

	if (pam_saw_args(pamh, argc, argv, &o) != 0)
		return PAM_SESSION_ERR;
	if ((user = pam_saw_user(pamh)) == NULL)
		return PAM_SESSION_ERR;
	if (pam_get_item(pamh, PAM_TTY, &item) == PAM_SUCCESS && item != NULL &&
	    strlen(item) < PAM_SAW_MAX_TTY)
		tty = item;
	pam_saw_cgroup(pamh, &o, cg, sizeof(cg));

	req = json_pack("{s:s, s:s, s:I}", "op", "pam_open", "user", user, "pid",
			(json_int_t)getpid());
	if (req != NULL && cg[0] != '\0' &&
	    json_object_set_new(req, "cgroup", json_string(cg)) != 0)
		goto nomem;
	if (req != NULL && tty != NULL && json_object_set_new(req, "tty", json_string(tty)) != 0)
		goto nomem;
	if ((ans = pam_saw_ask(pamh, &o, req)) == NULL) {
		pam_syslog(pamh, LOG_ERR, "refusing the login of %s: no answer from saw-guestd",
			   user);
		pam_error(pamh, "SAW: cannot register the login with saw-guestd; login refused");
		return PAM_SESSION_ERR;
	}
	if (gsock_answer_ok(ans, &why)) {
		pam_syslog(pamh, LOG_INFO, "login of %s (pid %ld%s%s) registered with saw-guestd",
			   user, (long)getpid(), cg[0] != '\0' ? ", cgroup " : "", cg);
		rc = PAM_SUCCESS;
	} else {
		pam_syslog(pamh, LOG_NOTICE,
			   "saw-guestd refused to register the login of %s: %.200s", user, why);
		pam_error(pamh, "SAW: no live brokered session for %s; log in through the broker",
			  user);
	}
	json_decref(ans);
	return rc;
nomem:
	json_decref(req);
	pam_syslog(pamh, LOG_CRIT, "out of memory");
	return PAM_SESSION_ERR;
}

PAM_EXTERN int
pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct pam_saw_opts o;
	const char *user;
	json_t *ans;

	if (pam_saw_args(pamh, argc, argv, &o) != 0 || (user = pam_saw_user(pamh)) == NULL)
		return PAM_SUCCESS;
	ans = pam_saw_ask(pamh, &o,
			  json_pack("{s:s, s:s, s:I}", "op", "pam_close", "user", user, "pid",
				    (json_int_t)getpid()));
	json_decref(ans);
	return PAM_SUCCESS;
}
