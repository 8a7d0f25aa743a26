/*
 * The sandbox launcher (guestd-sandbox.h): session_exec on the ControlSocket, the processes
 * that build a login's sandbox, its proxy listeners, its end.
 *
 * Why two forks: a pid namespace applies to the children of the process that unshares it,
 * and saw-guestd itself must stay where it is. So guestd forks a monitor (glibc fork(): the
 * child is single-threaded with a consistent heap, unlike a raw clone3 from a process that
 * has sshc worker threads), the monitor unshares the namespaces and forks the sandbox's
 * pid 1. The monitor stays outside the sandbox (root, in guestd's pid namespace) and only
 * relays pid 1's exit status; it and pid 1 die with guestd (PR_SET_PDEATHSIG), so a sandbox
 * never outlives the daemon that owns it.
 *
 * Why the namespaces are created by root and the user namespace last: the mounts then
 * belong to the initial user namespace, so even a process that regained every capability
 * inside its user namespace could not unmount or remount them. The user namespace maps only
 * the user's own uid and gid (written by the process itself, setgroups denied).
 *
 * Why pid 1 execs saw-guestd again as saw-sandbox-init: a forked guestd holds guestd's
 * memory (the workspace key, tunnel tokens, credential secrets). Nothing that runs inside the
 * sandbox may be such a copy, so pid 1 replaces its image before anything of the user runs,
 * and the init only forks, execs the shell and reaps.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>

#include "audit/log.h"
#include "audit/ocsf.h"
#include "guestd/guestd-lineserv.h"
#include "guestd/guestd-proxy.h"
#include "guestd/guestd-sandbox.h"
#include "guestd/guestd.h"
#include "guestd/policy.h"
#include "guestd/sandbox.h"

#define GSANDBOX_MAX 256       /* sandboxes per workspace */
#define GSANDBOX_START_MS 5000 /* the monitor must report pid 1 within this */
#define GSANDBOX_KILL_GRACE 2  /* seconds between SIGHUP and SIGKILL on hang-up */
#define GSANDBOX_MAX_GROUPS 256
#define GSANDBOX_MAX_COMMAND 3000 /* the request line is GSOCK_MAX_LINE anyway */
#define GSANDBOX_CG_DIR "saw-sessions"
#define GSANDBOX_CG_RM_TRIES 50	  /* a busy cgroup directory is retried … */
#define GSANDBOX_CG_RM_MS 100	  /* … this often (its last processes are being reaped) */
#define GSANDBOX_AUDIT_CMD 512	  /* bytes of a command line in a Process Activity event */
#define GSANDBOX_DECIDE_LINE 4096 /* the sandbox's decision listener: as the DecisionSocket */
#define GSANDBOX_DECIDE_MS 2000
#define GSANDBOX_DECIDE_CONNS 16

/* The per-login cgroups: v2 (cgroup.kill, and controllers where delegated), and on a v1/v2
 * hybrid the v1 pids and memory hierarchies for the limits v2 cannot apply. */
enum gsandbox_cg {
	GSANDBOX_CG_V2 = 0,
	GSANDBOX_CG_V1_PIDS,
	GSANDBOX_CG_V1_MEMORY,
	GSANDBOX_CG_N
};

struct gsandbox {
	TAILQ_ENTRY(gsandbox) entry;
	struct gsandboxes *sbs;
	char *session_id;
	char *user;
	unsigned long seq;
	int conn; /* saw-session's connection: our answers; EOF = the login hung up */
	struct event *ev_conn;
	int ctl; /* pid 1's socket: "E…" errors, "W…" warnings, EOF once it exec'ed */
	struct event *ev_ctl;
	pid_t monitor;
	int monitor_pidfd;
	struct event *ev_monitor;
	pid_t init; /* pid 1 of the sandbox, as our pid namespace sees it */
	int init_pidfd;
	struct event *ev_kill;
	char *cgroup;		   /* the login's cgroup v2 directory, or NULL */
	char *cgv1[GSANDBOX_CG_N]; /* its v1 pids / memory directories (hybrid), or NULL */
	char *ended;		   /* why guestd ended it (told to saw-session), or NULL */
	/* Process Activity (OCSF 1007): the brokered identity, and what was launched */
	char *sub;
	char *shell;
	char *command;	       /* NULL for a login shell */
	pid_t shell_pid;       /* the user's shell or command, as our pid namespace sees it */
	bool launched;	       /* Launch events sent (the shell reported it started) */
	bool launch_failed;    /* a failed Launch was sent */
	struct glserv *decide; /* the decision listener inside the sandbox */
	size_t linelen;
	char line[256];
};
TAILQ_HEAD(gsandbox_list, gsandbox);

/* The cgroup directories of an ended sandbox that were still busy (its last processes being
 * reaped): removed from a timer, GSANDBOX_CG_RM_TRIES times at most. */
struct gsandbox_cgrm {
	TAILQ_ENTRY(gsandbox_cgrm) entry;
	struct gsandboxes *sbs;
	struct event *ev;
	char *dirs[GSANDBOX_CG_N];
	int tries;
};
TAILQ_HEAD(gsandbox_cgrm_list, gsandbox_cgrm);

struct gsandboxes {
	struct guestd *g;
	struct gsandbox_list list;
	size_t n;
	unsigned long seq;
	char cgbase[PATH_MAX]; /* ".../saw-sessions", or "" without cgroup v2 */
	bool cg_pids, cg_memory, cg_cpu;
	char cgv1[GSANDBOX_CG_N][PATH_MAX]; /* v1 ".../saw-sessions" (pids, memory), or "" */
	bool cgv1_memsw;		    /* memory.memsw.limit_in_bytes exists (swap) */
	bool landlock_required;
	int landlock_abi;
	struct gsandbox_cgrm_list cgrm; /* cgroup directories still to remove */
};

/* What the sandbox's processes need, prepared in guestd before the fork. */
struct gsandbox_spec {
	struct sandbox_plan plan;
	struct sandbox_env env;
	const char *argv[8]; /* saw-sandbox-init, shell, its argv… */
	char argv0[64];
	const char *writable[SANDBOX_MAX_MOUNTS + 4];
	uid_t uid;
	gid_t gid;
	gid_t groups[GSANDBOX_MAX_GROUPS];
	int ngroups;
	long nproc, nofile;
	bool landlock_required;
	int fds[3];
	int ctl;		    /* the child's end of the socketpair */
	int um;			    /* pid 1's end of its socketpair with the monitor (id maps) */
	int cgprocs[GSANDBOX_CG_N]; /* cgroup.procs of the login's cgroups, or -1 */
	pid_t guestd;
};

/* ---- the sandbox's processes (after fork; never return) ------------------------------- */

static void
gsandbox_child_reset_signals(void)
{
	struct sigaction sa;
	sigset_t none;
	int sig;

	/* libevent's handlers write to guestd's signal socket: never from a child. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static void __attribute__((noreturn, format(printf, 2, 3)))
gsandbox_child_fail(int ctl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	msg[0] = 'E';
	va_start(ap, fmt);
	n = vsnprintf(msg + 1, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(msg) - 2)
		n = (int)sizeof(msg) - 2;
	(void)!send(ctl, msg, (size_t)n + 1, MSG_NOSIGNAL);
	dprintf(2, "SAW: your session's sandbox could not start: %s\n", msg + 1);
	_exit(255);
}

static void
gsandbox_child_warn(int ctl, const char *msg)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "W%s", msg);
	(void)!send(ctl, buf, strlen(buf), MSG_NOSIGNAL);
}

static int
gsandbox_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd == -1)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* pid 1 of the sandbox: root until it becomes the user, then exec saw-sandbox-init. */
static void __attribute__((noreturn)) gsandbox_child(struct gsandbox_spec *sp)
{
	char err[512];
	struct rlimit rl;
	int fd[5], i, ctl, um, rc;
	char go;

	/* 0-2 the login's terminal or pipes, 3 the socket to guestd, 4 the one to the monitor,
	 * nothing else. */
	for (i = 0; i < 3; i++)
		if ((fd[i] = fcntl(sp->fds[i], F_DUPFD_CLOEXEC, 10)) == -1)
			_exit(255);
	if ((fd[3] = fcntl(sp->ctl, F_DUPFD_CLOEXEC, 10)) == -1 ||
	    (fd[4] = fcntl(sp->um, F_DUPFD_CLOEXEC, 10)) == -1)
		_exit(255);
	for (i = 0; i < 3; i++)
		if (dup2(fd[i], i) != i)
			_exit(255);
	if (dup2(fd[3], 3) != 3 || fcntl(3, F_SETFD, FD_CLOEXEC) != 0 || dup2(fd[4], 4) != 4 ||
	    fcntl(4, F_SETFD, FD_CLOEXEC) != 0)
		_exit(255);
	ctl = 3;
	um = 4;
	if (close_range(5, ~0U, 0) != 0)
		for (i = 5; i < 1024; i++)
			close(i);

	if (sandbox_mounts_apply(&sp->plan, sp->uid, sp->gid, err, sizeof(err)) != 0)
		gsandbox_child_fail(ctl, "%s", err);
	if (chdir(sp->plan.home) != 0)
		gsandbox_child_fail(ctl, "chdir %s: %s", sp->plan.home, strerror(errno));
	/* Our own session; the login's terminal becomes the sandbox's controlling terminal
	 * (taken from saw-session's session, which no longer needs it), so that job control,
	 * ^C and window-size changes (SIGWINCH) reach the sandbox's foreground directly. */
	(void)setsid();
	if (isatty(0) && ioctl(0, TIOCSCTTY, 1) != 0)
		gsandbox_child_warn(ctl, "cannot make the login's terminal the controlling one");

	rl.rlim_cur = rl.rlim_max = 0;
	(void)setrlimit(RLIMIT_CORE, &rl);
	if (sp->nproc > 0) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)sp->nproc;
		if (setrlimit(RLIMIT_NPROC, &rl) != 0)
			gsandbox_child_fail(ctl, "RLIMIT_NPROC: %s", strerror(errno));
	}
	if (sp->nofile > 0) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)sp->nofile;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			gsandbox_child_fail(ctl, "RLIMIT_NOFILE: %s", strerror(errno));
	}

	/* Become the user (still in the initial user namespace) … */
	if (setgroups((size_t)sp->ngroups, sp->groups) != 0 ||
	    setresgid(sp->gid, sp->gid, sp->gid) != 0 || setresuid(sp->uid, sp->uid, sp->uid) != 0)
		gsandbox_child_fail(ctl, "cannot become uid %d: %s", (int)sp->uid, strerror(errno));
	if (getuid() != sp->uid || geteuid() != sp->uid)
		gsandbox_child_fail(ctl, "still not uid %d", (int)sp->uid);
	/* … then a user namespace that maps only the user's own ids. The monitor (root outside)
	 * writes the maps: we are not dumpable after setresuid, so our own /proc files are
	 * root's, and making ourselves dumpable would let the user's other processes read this
	 * copy of guestd's memory. */
	if (unshare(CLONE_NEWUSER) != 0)
		gsandbox_child_fail(ctl, "user namespace: %s", strerror(errno));
	if (send(um, "U", 1, MSG_NOSIGNAL) != 1 || recv(um, &go, 1, 0) != 1 || go != 'K')
		gsandbox_child_fail(ctl, "the user namespace's id maps could not be written");
	close(um);
	/* A new user namespace starts with a full bounding set: empty it here. */
	if ((rc = sandbox_drop_bounding()) != 0)
		gsandbox_child_fail(ctl, "capability bounding set: %s", strerror(-rc));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		gsandbox_child_fail(ctl, "no_new_privs: %s", strerror(errno));

	rc = sandbox_landlock_apply(sp->writable, err, sizeof(err));
	if (rc == 0 && sp->landlock_required)
		gsandbox_child_fail(ctl, "Landlock is required (SandboxLandlock required) but "
					 "this kernel does not offer it");
	if (rc < 0 && sp->landlock_required)
		gsandbox_child_fail(ctl, "%s", err);
	if (rc < 0)
		gsandbox_child_warn(ctl, err);
	if (sandbox_seccomp_load(err, sizeof(err)) != 0)
		gsandbox_child_fail(ctl, "%s", err);

	/* guestd has made the proxy listeners in our network namespace. */
	if (recv(ctl, &go, 1, 0) != 1 || go != 'G')
		_exit(255);
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	/* saw-sandbox-init keeps the socket (fd 3) only until the shell's process, still our
	 * code, has told guestd its pid: nothing of the user ever holds it. */
	if (fcntl(ctl, F_SETFD, 0) != 0)
		gsandbox_child_fail(ctl, "fcntl: %s", strerror(errno));
	execve("/proc/self/exe", (char *const *)sp->argv, sp->env.v);
	gsandbox_child_fail(ctl, "cannot run %s: %s", GSANDBOX_INIT_NAME, strerror(errno));
}

/* The monitor: outside the sandbox, relays pid 1's exit status as its own. */
/* The monitor's half of the id maps: setgroups denied, then "uid uid 1" / "gid gid 1".
 * The monitor shares pid 1's mount namespace, where /proc is by now the sandbox's own
 * (mounted before pid 1 asks): pid 1 is /proc/1 there. */
static void
gsandbox_monitor_maps(struct gsandbox_spec *sp, int um)
{
	char map[64], c;

	if (recv(um, &c, 1, 0) != 1 || c != 'U')
		return; /* pid 1 failed before (and said why) */
	if (gsandbox_write_file("/proc/1/setgroups", "deny") != 0)
		goto fail;
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)sp->uid, (unsigned)sp->uid);
	if (gsandbox_write_file("/proc/1/uid_map", map) != 0)
		goto fail;
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)sp->gid, (unsigned)sp->gid);
	if (gsandbox_write_file("/proc/1/gid_map", map) != 0)
		goto fail;
	(void)!send(um, "K", 1, MSG_NOSIGNAL);
	return;
fail:
	(void)!send(um, "E", 1, MSG_NOSIGNAL);
}

static void __attribute__((noreturn)) gsandbox_monitor(struct gsandbox_spec *sp, int parent_end)
{
	char msg[1 + sizeof(pid_t)];
	pid_t pid, r;
	int st, um[2];

	gsandbox_child_reset_signals();
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != sp->guestd)
		_exit(255);
	close(parent_end);
	(void)setsid(); /* not in guestd's process group: its terminal's ^C is not ours */
	for (st = 0; st < GSANDBOX_CG_N; st++)
		if (sp->cgprocs[st] != -1 && write(sp->cgprocs[st], "0", 1) != 1)
			gsandbox_child_fail(sp->ctl, "cannot join the login's cgroup: %s",
					    strerror(errno));
	if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET) != 0)
		gsandbox_child_fail(sp->ctl, "namespaces: %s", strerror(errno));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, um) != 0)
		gsandbox_child_fail(sp->ctl, "socketpair: %s", strerror(errno));
	if ((pid = fork()) == -1)
		gsandbox_child_fail(sp->ctl, "fork: %s", strerror(errno));
	if (pid == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		close(um[0]);
		sp->um = um[1];
		gsandbox_child(sp);
	}
	close(um[1]);
	msg[0] = 'P';
	memcpy(msg + 1, &pid, sizeof(pid));
	(void)!send(sp->ctl, msg, sizeof(msg), MSG_NOSIGNAL);
	gsandbox_monitor_maps(sp, um[0]);
	if (close_range(0, ~0U, 0) != 0)
		for (st = 0; st < 1024; st++)
			close(st);
	while ((r = waitpid(pid, &st, 0)) != pid)
		if (r == -1 && errno != EINTR)
			_exit(255);
	if (WIFEXITED(st))
		_exit(WEXITSTATUS(st));
	_exit(128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0));
}

/* ---- saw-sandbox-init ----------------------------------------------------------------- */

int
gsandbox_init_main(int argc, char **argv)
{
	sigset_t all, old;
	siginfo_t si;
	struct stat sb;
	pid_t child, r;
	int st, sig, ctl = -1;

	if (argc < 3) {
		fprintf(stderr, "%s: run by saw-guestd only\n", GSANDBOX_INIT_NAME);
		return 2;
	}
	/* fd 3: the socket to saw-guestd (gsandbox_child), if it is one */
	if (fstat(3, &sb) == 0 && S_ISSOCK(sb.st_mode)) {
		ctl = 3;
		(void)fcntl(ctl, F_SETFD, FD_CLOEXEC);
	}
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	if ((child = fork()) == -1) {
		fprintf(stderr, "SAW: cannot start your shell: %s\n", strerror(errno));
		return 255;
	}
	if (child == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		/* "S": guestd reads this process's pid from the message's credentials (the
		 * kernel translates it into guestd's pid namespace); the socket closes at exec */
		if (ctl != -1)
			(void)!send(ctl, "S", 1, MSG_NOSIGNAL);
		execv(argv[1], argv + 2);
		fprintf(stderr, "SAW: cannot run %s: %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	if (ctl != -1)
		close(ctl);
	for (;;) {
		if ((sig = sigwaitinfo(&all, &si)) == -1)
			continue;
		if (sig == SIGCHLD) {
			while ((r = waitpid(-1, &st, WNOHANG)) > 0)
				/* _exit: nothing to flush, and no exit handlers in the sandbox (a
				 * sanitizer's leak check would need ptrace, which seccomp denies). */
				if (r == child)
					_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
			continue;
		}
		if (sig == SIGHUP || sig == SIGTERM || sig == SIGINT || sig == SIGQUIT ||
		    sig == SIGUSR1 || sig == SIGUSR2 || sig == SIGWINCH)
			kill(child, sig);
	}
}

/* ---- guestd's side -------------------------------------------------------------------- */

static void gsandbox_ctl_cb(evutil_socket_t fd, short what, void *arg);
static void gsandbox_cg_remove(struct gsandboxes *sbs, char **dirs);

static const char *
gsandbox_basename(const char *path)
{
	const char *b = path != NULL ? strrchr(path, '/') : NULL;

	return b != NULL ? b + 1 : path;
}

static int
gsandbox_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int
gsandbox_pidfd_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static int
gsandbox_cg_write(const char *dir, const char *file, const char *text)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return -1;
	return gsandbox_write_file(path, text);
}

/* cgroup v2 below our own cgroup: "<ours>/saw-sessions/<login>". Controllers are enabled
 * where the kernel offers them (a hybrid often offers none: then cgroup.kill only, or
 * nothing, and the pid namespace still takes every process with pid 1). */
static void
gsandbox_cg_setup_v2(struct gsandboxes *sbs)
{
	char own[PATH_MAX], path[PATH_MAX], ctrl[512];
	int fd;
	ssize_t n;

	sbs->cgbase[0] = '\0';
	if (sandbox_cgroup_self(own, sizeof(own)) != 0) {
		log_info("sandbox: no cgroup v2 hierarchy (no cgroup.kill)");
		return;
	}
	if (snprintf(path, sizeof(path), "%s/" GSANDBOX_CG_DIR, own) >= (int)sizeof(path))
		return;
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		log_warn("sandbox: cgroup %s (per-login cgroups off; systemd needs Delegate=yes)",
			 path);
		return;
	}
	snprintf(sbs->cgbase, sizeof(sbs->cgbase), "%s", path);
	if (snprintf(path, sizeof(path), "%s/cgroup.controllers", own) >= (int)sizeof(path))
		return;
	ctrl[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		if ((n = read(fd, ctrl, sizeof(ctrl) - 1)) > 0)
			ctrl[n] = '\0';
		close(fd);
	}
	/* Each controller separately: one the parent cannot delegate must not stop others. */
	sbs->cg_pids = strstr(ctrl, "pids") != NULL &&
		       gsandbox_cg_write(own, "cgroup.subtree_control", "+pids") == 0 &&
		       gsandbox_cg_write(sbs->cgbase, "cgroup.subtree_control", "+pids") == 0;
	sbs->cg_memory = strstr(ctrl, "memory") != NULL &&
			 gsandbox_cg_write(own, "cgroup.subtree_control", "+memory") == 0 &&
			 gsandbox_cg_write(sbs->cgbase, "cgroup.subtree_control", "+memory") == 0;
	sbs->cg_cpu = strstr(ctrl, "cpu") != NULL &&
		      gsandbox_cg_write(own, "cgroup.subtree_control", "+cpu") == 0 &&
		      gsandbox_cg_write(sbs->cgbase, "cgroup.subtree_control", "+cpu") == 0;
	log_info("sandbox: per-login cgroups below %s (pids %s, memory %s, cpu %s)", sbs->cgbase,
		 sbs->cg_pids ? "yes" : "no", sbs->cg_memory ? "yes" : "no",
		 sbs->cg_cpu ? "yes" : "no");
}

/* A v1/v2 hybrid: the pids and memory controllers that v2 does not offer us, from their v1
 * hierarchies, below our own cgroup there: "<ours>/saw-sessions/<login>". */
static void
gsandbox_cg_setup_v1(struct gsandboxes *sbs)
{
	static const char *const ctl[GSANDBOX_CG_N] = { NULL, "pids", "memory" };
	char own[PATH_MAX], path[PATH_MAX];
	struct stat st;
	int i;

	for (i = GSANDBOX_CG_V1_PIDS; i < GSANDBOX_CG_N; i++) {
		sbs->cgv1[i][0] = '\0';
		if ((i == GSANDBOX_CG_V1_PIDS && sbs->cg_pids) ||
		    (i == GSANDBOX_CG_V1_MEMORY && sbs->cg_memory))
			continue; /* v2 has it */
		if (sandbox_cgroup_v1_self(ctl[i], own, sizeof(own)) != 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/" GSANDBOX_CG_DIR, own) >= (int)sizeof(path))
			continue;
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			log_warn("sandbox: cgroup v1 %s (no %s limit per login)", path, ctl[i]);
			continue;
		}
		snprintf(sbs->cgv1[i], sizeof(sbs->cgv1[i]), "%s", path);
		log_info("sandbox: per-login cgroup v1 %s limits below %s", ctl[i], path);
	}
	if (sbs->cgv1[GSANDBOX_CG_V1_MEMORY][0] != '\0' &&
	    snprintf(path, sizeof(path), "%s/memory.memsw.limit_in_bytes",
		     sbs->cgv1[GSANDBOX_CG_V1_MEMORY]) < (int)sizeof(path))
		sbs->cgv1_memsw = stat(path, &st) == 0;
}

static void
gsandbox_cg_setup(struct gsandboxes *sbs)
{
	gsandbox_cg_setup_v2(sbs);
	gsandbox_cg_setup_v1(sbs);
	if (sbs->cgbase[0] == '\0' && sbs->cgv1[GSANDBOX_CG_V1_PIDS][0] == '\0')
		log_info("sandbox: no per-login cgroup: ending a sandbox kills its pid namespace; "
			 "the process limit is RLIMIT_NPROC");
}

int
gsandbox_init(struct guestd *g)
{
	struct gsandboxes *sbs;

	if ((sbs = calloc(1, sizeof(*sbs))) == NULL)
		return -1;
	sbs->g = g;
	TAILQ_INIT(&sbs->list);
	TAILQ_INIT(&sbs->cgrm);
	sbs->landlock_required = g->cfg.sandbox_landlock == NULL ||
				 strcmp(g->cfg.sandbox_landlock, "best-effort") != 0;
	sbs->landlock_abi = sandbox_landlock_abi();
	if (sbs->landlock_abi == 0)
		log_warnx("sandbox: this kernel offers no Landlock%s",
			  sbs->landlock_required ?
				  ": brokered logins are refused (SandboxLandlock required)" :
				  " (SandboxLandlock best-effort: sandboxes start without it)");
	else
		log_info("sandbox: Landlock ABI %d", sbs->landlock_abi);
	gsandbox_cg_setup(sbs);
	g->sandboxes = sbs;
	return 0;
}

size_t
gsandbox_count(struct guestd *g)
{
	return g->sandboxes != NULL ? g->sandboxes->n : 0;
}

static void
gsandbox_send(struct gsandbox *sb, json_t *msg)
{
	char *text = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;
	size_t n;

	json_decref(msg);
	if (text == NULL || sb->conn == -1) {
		free(text);
		return;
	}
	n = strlen(text);
	text[n] = '\n';
	/* small; the socket is blocking for this write (best effort, never our loop's problem
	 * for long: the peer is saw-session, which reads everything) */
	(void)!send(sb->conn, text, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	free(text);
}

/* ---- per-login cgroups: removal ------------------------------------------------------- */

/* SIGKILL to every process listed in dir/cgroup.procs (v1 has no cgroup.kill). The pids
 * are members of this login's cgroup only. */
static void
gsandbox_cg_kill_v1(const char *dir)
{
	char path[PATH_MAX], buf[4096], *p, *end;
	ssize_t n;
	long pid;
	int fd;

	if (snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= (int)sizeof(path) ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (p = buf; *p != '\0'; p = end) {
		pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid > 1)
			(void)kill((pid_t)pid, SIGKILL);
		while (*end == '\n')
			end++;
	}
}

/* Tries to remove every directory left in rm->dirs; true when none is left. */
static bool
gsandbox_cg_rmdirs(struct gsandbox_cgrm *rm, bool last)
{
	bool done = true;
	int i;

	for (i = 0; i < GSANDBOX_CG_N; i++) {
		if (rm->dirs[i] == NULL)
			continue;
		if (rmdir(rm->dirs[i]) == 0 || errno == ENOENT) {
			free(rm->dirs[i]);
			rm->dirs[i] = NULL;
			continue;
		}
		if (errno != EBUSY || last) {
			log_warn("sandbox: cannot remove cgroup %s", rm->dirs[i]);
			free(rm->dirs[i]);
			rm->dirs[i] = NULL;
			continue;
		}
		/* something is still in there: kill it (the pid namespace should have) */
		if (i == GSANDBOX_CG_V2)
			(void)gsandbox_cg_write(rm->dirs[i], "cgroup.kill", "1");
		else
			gsandbox_cg_kill_v1(rm->dirs[i]);
		done = false;
	}
	return done;
}

static void
gsandbox_cgrm_free(struct gsandbox_cgrm *rm)
{
	int i;

	TAILQ_REMOVE(&rm->sbs->cgrm, rm, entry);
	if (rm->ev != NULL)
		event_free(rm->ev);
	for (i = 0; i < GSANDBOX_CG_N; i++)
		free(rm->dirs[i]);
	free(rm);
}

static void
gsandbox_cgrm_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gsandbox_cgrm *rm = arg;
	struct timeval tv = { 0, GSANDBOX_CG_RM_MS * 1000 };

	if (gsandbox_cg_rmdirs(rm, ++rm->tries >= GSANDBOX_CG_RM_TRIES))
		gsandbox_cgrm_free(rm);
	else
		evtimer_add(rm->ev, &tv);
}

/* Removes the directories of dirs (taking the strings), now or from a timer. */
static void
gsandbox_cg_remove(struct gsandboxes *sbs, char **dirs)
{
	struct timeval tv = { 0, GSANDBOX_CG_RM_MS * 1000 };
	struct gsandbox_cgrm *rm;
	int i;

	if ((rm = calloc(1, sizeof(*rm))) == NULL) {
		for (i = 0; i < GSANDBOX_CG_N; i++) {
			if (dirs[i] != NULL)
				(void)rmdir(dirs[i]);
			free(dirs[i]);
			dirs[i] = NULL;
		}
		return;
	}
	rm->sbs = sbs;
	for (i = 0; i < GSANDBOX_CG_N; i++) {
		rm->dirs[i] = dirs[i];
		dirs[i] = NULL;
	}
	TAILQ_INSERT_TAIL(&sbs->cgrm, rm, entry);
	if (gsandbox_cg_rmdirs(rm, false))
		gsandbox_cgrm_free(rm);
	else if ((rm->ev = evtimer_new(sbs->g->base, gsandbox_cgrm_cb, rm)) == NULL ||
		 evtimer_add(rm->ev, &tv) != 0)
		gsandbox_cgrm_free(rm); /* leaves them: logged by nobody, but out of memory */
}

/* ---- Process Activity (OCSF 1007) ----------------------------------------------------- */

static void
gsandbox_audit(struct gsandbox *sb, enum ocsf_process_activity activity, pid_t pid,
	       const char *name, int exit_code, bool success, const char *detail, bool shell)
{
	struct guestd *g = sb->sbs->g;
	struct ocsf_subject who = { .username = sb->user,
				    .uid = sb->sub,
				    .session_uid = sb->session_id };
	char sbx[128];
	json_t *ev, *proc;

	ev = ocsf_process_activity(activity, &who, (long)pid, name, exit_code, success, detail,
				   ocsf_now_ms());
	if (ev == NULL)
		return;
	proc = json_object_get(ev, "process");
	if (shell && json_is_object(proc)) {
		(void)json_object_set_new(proc, "file",
					  json_pack("{s:s, s:s, s:i, s:s}", "name",
						    gsandbox_basename(sb->shell), "path", sb->shell,
						    "type_id", 1, "type", "Regular File"));
		if (sb->command != NULL) {
			char cmd[GSANDBOX_AUDIT_CMD + 1];

			snprintf(cmd, sizeof(cmd), "%s", sb->command);
			(void)json_object_set_new(proc, "cmd_line", json_string(cmd));
		}
	}
	snprintf(sbx, sizeof(sbx), "%s.%lu", sb->session_id, sb->seq);
	(void)json_object_set_new(
		ev, "unmapped",
		json_pack("{s:s, s:s}", "sandbox", sbx, "role",
			  shell ? (sb->command != NULL ? "command" : "login shell") :
				  "sandbox init"));
	gbroker_audit(g, ev); /* to the broker's audit pipeline (and the journal) */
}

/* A login refused before its sandbox existed (session s is live): a failed Launch. */
static void
gsandbox_audit_refused(struct gsandboxes *sbs, struct gsession *s, const char *command,
		       const char *why)
{
	struct gsandbox tmp;

	memset(&tmp, 0, sizeof(tmp));
	tmp.sbs = sbs;
	tmp.user = s->user;
	tmp.sub = s->sub;
	tmp.session_id = s->id;
	tmp.command = (char *)(uintptr_t)command;
	gsandbox_audit(&tmp, OCSF_PROCESS_LAUNCH, 0, GSANDBOX_INIT_NAME, -1, false, why, false);
}

/* A failed Launch, once per sandbox. */
static void
gsandbox_audit_failed(struct gsandbox *sb, const char *why)
{
	if (sb->launched || sb->launch_failed)
		return;
	sb->launch_failed = true;
	gsandbox_audit(sb, OCSF_PROCESS_LAUNCH, sb->init, GSANDBOX_INIT_NAME, -1, false, why,
		       false);
}

static void
gsandbox_free(struct gsandbox *sb)
{
	struct gsandboxes *sbs = sb->sbs;

	TAILQ_REMOVE(&sbs->list, sb, entry);
	sbs->n--;
	if (sb->ev_conn != NULL)
		event_free(sb->ev_conn);
	if (sb->ev_ctl != NULL)
		event_free(sb->ev_ctl);
	if (sb->ev_monitor != NULL)
		event_free(sb->ev_monitor);
	if (sb->ev_kill != NULL)
		event_free(sb->ev_kill);
	if (sb->conn != -1)
		close(sb->conn);
	if (sb->ctl != -1)
		close(sb->ctl);
	if (sb->monitor_pidfd != -1)
		close(sb->monitor_pidfd);
	if (sb->init_pidfd != -1)
		close(sb->init_pidfd);
	if (sb->decide != NULL)
		glserv_free(sb->decide);
	/* its proxy listeners (and with them the last hold on its network namespace) */
	proxy_unlisten(sbs->g, sb->session_id, sb->seq);
	sb->cgv1[GSANDBOX_CG_V2] = sb->cgroup;
	sb->cgroup = NULL;
	gsandbox_cg_remove(sbs, sb->cgv1); /* takes the strings */
	free(sb->ended);
	free(sb->session_id);
	free(sb->user);
	free(sb->sub);
	free(sb->shell);
	free(sb->command);
	free(sb);
}

/* Kills every process of the sandbox: the whole cgroup at once where cgroup.kill exists,
 * and pid 1 in any case (the kernel then kills the rest of its pid namespace). */
static void
gsandbox_kill(struct gsandbox *sb, const char *reason)
{
	if (reason != NULL && sb->ended == NULL)
		sb->ended = strdup(reason);
	if (sb->cgroup != NULL && gsandbox_cg_write(sb->cgroup, "cgroup.kill", "1") == 0)
		log_debug("sandbox %s.%lu: cgroup.kill", sb->session_id, sb->seq);
	if (sb->init_pidfd != -1 && gsandbox_pidfd_signal(sb->init_pidfd, SIGKILL) != 0 &&
	    errno != ESRCH)
		log_warn("sandbox %s.%lu: SIGKILL", sb->session_id, sb->seq);
}

static void
gsandbox_kill_cb(evutil_socket_t fd, short what, void *arg)
{
	gsandbox_kill(arg, NULL);
}

static void
gsandbox_monitor_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gsandbox *sb = arg;
	pid_t r;
	int st, code;

	if ((r = waitpid(sb->monitor, &st, WNOHANG)) == 0)
		return;
	if (r == -1)
		code = 255;
	else if (WIFEXITED(st))
		code = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		code = 128 + WTERMSIG(st); /* cgroup.kill reaches the monitor too */
	else
		code = 255;
	if (sb->ended != NULL) {
		log_info("sandbox %s.%lu of %s ended: %s", sb->session_id, sb->seq, sb->user,
			 sb->ended);
		gsandbox_send(sb, json_pack("{s:i, s:s}", "exit", 255, "ended", sb->ended));
	} else {
		log_info("sandbox %s.%lu of %s: exit %d", sb->session_id, sb->seq, sb->user, code);
		gsandbox_send(sb, json_pack("{s:i}", "exit", code));
	}
	if (sb->ev_ctl != NULL)
		gsandbox_ctl_cb(sb->ctl, EV_READ, sb); /* a last "E" or "S" not yet read */
	if (sb->launched) {
		char why[300];

		if (sb->ended != NULL)
			snprintf(why, sizeof(why), "ended by saw-guestd: %s", sb->ended);
		else
			snprintf(why, sizeof(why), "exit status %d", code);
		gsandbox_audit(sb, OCSF_PROCESS_TERMINATE, sb->shell_pid,
			       gsandbox_basename(sb->shell), code, true, why, true);
		gsandbox_audit(sb, OCSF_PROCESS_TERMINATE, sb->init, GSANDBOX_INIT_NAME, code, true,
			       why, false);
	} else {
		char why[300];

		snprintf(why, sizeof(why),
			 "the sandbox ended (exit status %d) before the %s started%s%s", code,
			 sb->command != NULL ? "command" : "login shell",
			 sb->ended != NULL ? ": " : "", sb->ended != NULL ? sb->ended : "");
		gsandbox_audit_failed(sb, why);
	}
	/* pid 1 is gone, and with it every process of its pid namespace; the cgroup may hold
	 * a process that left the namespace's tree only through cgroup.kill's reach. */
	if (sb->cgroup != NULL)
		(void)gsandbox_cg_write(sb->cgroup, "cgroup.kill", "1");
	gsandbox_free(sb);
}

static void
gsandbox_ctl_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gsandbox *sb = arg;
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} cm;
	struct ucred cred = { 0, (uid_t)-1, (gid_t)-1 };
	struct cmsghdr *cmsg;
	struct msghdr mh;
	struct iovec iov;
	char msg[512], detail[600];
	ssize_t n;
	int i;

	/* at most a few messages per call: this also runs from gsandbox_monitor_cb */
	for (i = 0; i < 8 && sb->ev_ctl != NULL; i++) {
		memset(&mh, 0, sizeof(mh));
		iov.iov_base = msg;
		iov.iov_len = sizeof(msg) - 1;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		n = sandbox_ctl_recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			log_debug("sandbox %s.%lu: pid 1's socket closed (%s)", sb->session_id,
				  sb->seq, n == 0 ? "EOF" : strerror(errno));
			/* pid 1 and the shell's process have exec'ed (or died): nothing more */
			event_free(sb->ev_ctl);
			sb->ev_ctl = NULL;
			close(sb->ctl);
			sb->ctl = -1;
			return;
		}
		msg[n] = '\0';
		log_debug("sandbox %s.%lu: pid 1 says %c (%zd bytes)", sb->session_id, sb->seq,
			  msg[0], n);
		for (cmsg = CMSG_FIRSTHDR(&mh); cmsg != NULL; cmsg = CMSG_NXTHDR(&mh, cmsg))
			if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_CREDENTIALS &&
			    cmsg->cmsg_len == CMSG_LEN(sizeof(cred)))
				memcpy(&cred, CMSG_DATA(cmsg), sizeof(cred));
		if (msg[0] == 'E') {
			log_warnx("sandbox %s.%lu of %s could not start: %s", sb->session_id,
				  sb->seq, sb->user, msg + 1);
			snprintf(detail, sizeof(detail), "the sandbox could not be built: %s",
				 msg + 1);
			gsandbox_audit_failed(sb, detail);
		} else if (msg[0] == 'W') {
			log_warnx("sandbox %s.%lu of %s: %s", sb->session_id, sb->seq, sb->user,
				  msg + 1);
		} else if (msg[0] == 'S' && n == 1 && !sb->launched && !sb->launch_failed &&
			   cred.pid > 0) {
			/* the shell's process, about to exec: its pid as our namespace sees it */
			sb->shell_pid = cred.pid;
			sb->launched = true;
			snprintf(detail, sizeof(detail), "sandbox of session %s started",
				 sb->session_id);
			gsandbox_audit(sb, OCSF_PROCESS_LAUNCH, sb->init, GSANDBOX_INIT_NAME, -1,
				       true, detail, false);
			gsandbox_audit(sb, OCSF_PROCESS_LAUNCH, sb->shell_pid,
				       gsandbox_basename(sb->shell), -1, true,
				       sb->command != NULL ? "the login's command" :
							     "the login shell",
				       true);
		}
	}
}

/* saw-session forwards SIGHUP/SIGTERM as {"op":"signal","signal":"HUP"}; its EOF means the
 * login is gone: SIGHUP now, everything killed GSANDBOX_KILL_GRACE seconds later. */
static void
gsandbox_conn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gsandbox *sb = arg;
	struct timeval tv = { GSANDBOX_KILL_GRACE, 0 };
	char *nl;
	ssize_t n;

	n = recv(fd, sb->line + sb->linelen, sizeof(sb->line) - 1 - sb->linelen, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || (sb->linelen += (size_t)n) >= sizeof(sb->line) - 1) {
		event_free(sb->ev_conn);
		sb->ev_conn = NULL;
		close(sb->conn);
		sb->conn = -1;
		log_info("sandbox %s.%lu of %s: the login hung up", sb->session_id, sb->seq,
			 sb->user);
		if (sb->init_pidfd != -1)
			(void)gsandbox_pidfd_signal(sb->init_pidfd, SIGHUP);
		if (sb->ev_kill == NULL &&
		    (sb->ev_kill = evtimer_new(sb->sbs->g->base, gsandbox_kill_cb, sb)) != NULL)
			evtimer_add(sb->ev_kill, &tv);
		else
			gsandbox_kill(sb, NULL);
		return;
	}
	while ((nl = memchr(sb->line, '\n', sb->linelen)) != NULL) {
		json_t *req = json_loadb(sb->line, (size_t)(nl - sb->line), 0, NULL);
		const char *name = json_string_value(json_object_get(req, "signal"));
		int sig = 0;

		if (json_is_object(req) && json_is_string(json_object_get(req, "op")) &&
		    strcmp(json_string_value(json_object_get(req, "op")), "signal") == 0 &&
		    name != NULL)
			sig = strcmp(name, "HUP") == 0	 ? SIGHUP :
			      strcmp(name, "TERM") == 0	 ? SIGTERM :
			      strcmp(name, "INT") == 0	 ? SIGINT :
			      strcmp(name, "WINCH") == 0 ? SIGWINCH :
							   0;
		json_decref(req);
		if (sig != 0 && sb->init_pidfd != -1)
			(void)gsandbox_pidfd_signal(sb->init_pidfd, sig);
		sb->linelen -= (size_t)(nl + 1 - sb->line);
		memmove(sb->line, nl + 1, sb->linelen);
	}
}

/* ---- the decision listener inside the sandbox ------------------------------------------ */

/*
 * The DecisionSocket's protocol (guestd-policy.c) on 127.0.0.1:SANDBOX_DECIDE_PORT inside one
 * sandbox's network namespace: only that sandbox's processes can connect, so the connection
 * itself says whose session it is. "session" may be left out; any other session id, and
 * the root-only "user" form, are refused with the same words whether or not that session
 * exists, so nothing about other sessions can be learnt here.
 */
static json_t *
gsandbox_decide_request(struct glserv_peer *peer, const char *line, size_t len, void *arg)
{
	static const char not_ours[] = "not allowed: inside a sandbox, decisions are about its "
				       "own session only";
	struct gsandbox *sb = arg;
	struct guestd *g = sb->sbs->g;
	struct policy_subject subj;
	struct gsession *s;
	json_t *req, *resp = NULL, *v;
	const char *op, *sid;

	(void)peer;
	if ((req = gdecide_parse(line, len, &op, &resp)) == NULL || op == NULL)
		goto out;
	if (strcmp(op, "version") == 0) {
		resp = gdecide_answer(g, op, req, NULL, NULL);
		goto out;
	}
	if (json_object_get(req, "user") != NULL || json_object_get(req, "groups") != NULL ||
	    json_object_get(req, "workspace") != NULL ||
	    ((v = json_object_get(req, "session")) != NULL &&
	     ((sid = json_string_value(v)) == NULL || strcmp(sid, sb->session_id) != 0))) {
		resp = gdecide_error(not_ours);
		goto out;
	}
	if ((s = gsessions_find(&g->sessions, sb->session_id, guestd_now())) == NULL) {
		resp = gdecide_error("this sandbox's session has ended");
		goto out;
	}
	memset(&subj, 0, sizeof(subj));
	subj.workspace = g->cfg.workspace_name;
	subj.user = s->user;
	subj.groups = (const char *const *)s->groups;
	subj.ngroups = s->ngroups;
	resp = gdecide_answer(g, op, req, &subj, sb->session_id);
out:
	json_decref(req);
	return resp != NULL ? resp : gdecide_error("out of memory");
}

/* ---- proxy listeners inside the sandbox's network namespace ----------------------------- */

struct gsandbox_ns_job {
	int pidfd;
	size_t nhttp;			    /* one egress socket per loop of the proxy */
	int http[GUESTD_PROXY_THREADS_MAX]; /* one group on SANDBOX_PROXY_HTTP_PORT */
	int cred, decide;
	int err;
	const char *step;
};

/* A listening socket on 127.0.0.1:port of the caller's network namespace, or -1 (errno). */
static int
gsandbox_ns_listen(int port, bool group)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return proxy_listen_socket((struct sockaddr *)&sin, sizeof(sin), group);
}

/* A socket stays in the network namespace it was created in: make them from a thread that
 * joins the sandbox's namespace, so that guestd's own thread never changes namespace. */
static void *
gsandbox_ns_thread(void *arg)
{
	struct gsandbox_ns_job *job = arg;
	size_t i;

	if (setns(job->pidfd, CLONE_NEWNET) != 0) {
		job->err = errno;
		job->step = "setns";
		return NULL;
	}
	if ((job->err = -sandbox_loopback_up()) != 0) {
		job->step = "bringing up lo";
		return NULL;
	}
	for (i = 0; i < job->nhttp; i++)
		if ((job->http[i] = gsandbox_ns_listen(SANDBOX_PROXY_HTTP_PORT, true)) == -1) {
			job->err = errno;
			job->step = "proxy listener";
			return NULL;
		}
	if ((job->cred = gsandbox_ns_listen(SANDBOX_PROXY_CRED_PORT, false)) == -1) {
		job->err = errno;
		job->step = "proxy listener";
		return NULL;
	}
	if ((job->decide = gsandbox_ns_listen(SANDBOX_DECIDE_PORT, false)) == -1) {
		job->err = errno;
		job->step = "decision listener";
	}
	return NULL;
}

static int
gsandbox_listeners(struct gsandbox *sb)
{
	struct guestd *g = sb->sbs->g;
	struct gsandbox_ns_job job;
	const struct glserv_params params = {
		.what = "the sandbox's decision listener",
		.max_line = GSANDBOX_DECIDE_LINE,
		.timeout_ms = GSANDBOX_DECIDE_MS,
		.max_conns = GSANDBOX_DECIDE_CONNS,
		.max_fds = 0,
		.request = gsandbox_decide_request,
		.arg = sb,
	};
	pthread_t th;
	size_t i;
	int rc = 0;

	memset(&job, 0, sizeof(job));
	job.pidfd = sb->init_pidfd;
	job.nhttp = proxy_loops(g) < GUESTD_PROXY_THREADS_MAX ? proxy_loops(g) :
								GUESTD_PROXY_THREADS_MAX;
	for (i = 0; i < GUESTD_PROXY_THREADS_MAX; i++)
		job.http[i] = -1;
	job.cred = job.decide = -1;
	if ((errno = pthread_create(&th, NULL, gsandbox_ns_thread, &job)) != 0) {
		log_warn("sandbox: thread");
		return -1;
	}
	pthread_join(th, NULL);
	if (job.err != 0) {
		errno = job.err;
		log_warn("sandbox %s.%lu: %s", sb->session_id, sb->seq, job.step);
		for (i = 0; i < job.nhttp; i++)
			if (job.http[i] != -1)
				close(job.http[i]);
		if (job.cred != -1)
			close(job.cred);
		if (job.decide != -1)
			close(job.decide);
		return -1;
	}
	/* glserv_open_fd and proxy_listen_fds own the descriptors in every case */
	if ((sb->decide = glserv_open_fd(g->base, job.decide, &params)) == NULL)
		rc = -1;
	if (proxy_listen_fds(g, job.http, job.nhttp, sb->session_id, sb->seq, PROXY_KIND_HTTP) !=
	    0) {
		log_warnx("sandbox %s.%lu: the egress proxy cannot serve the sandbox",
			  sb->session_id, sb->seq);
		rc = -1;
	}
	if (proxy_listen_fds(g, &job.cred, 1, sb->session_id, sb->seq, PROXY_KIND_CRED) != 0) {
		log_warnx("sandbox %s.%lu: the credential proxy cannot serve the sandbox",
			  sb->session_id, sb->seq);
		rc = -1;
	}
	return rc;
}

/* ---- session_exec --------------------------------------------------------------------- */

static json_t *
gsandbox_error(const char *msg)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

/* Is the peer in our own pid namespace (not inside some sandbox)? */
static bool
gsandbox_peer_outside(pid_t pid)
{
	char path[64];
	struct stat a, b;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	return pid > 0 && stat("/proc/self/ns/pid", &a) == 0 && stat(path, &b) == 0 &&
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static void
gsandbox_cg_name(const char *sid, unsigned long seq, char *out, size_t len)
{
	char safe[65];
	size_t i;

	for (i = 0; sid[i] != '\0' && i < sizeof(safe) - 1; i++)
		safe[i] = ((sid[i] >= 'a' && sid[i] <= 'z') || (sid[i] >= 'A' && sid[i] <= 'Z') ||
			   (sid[i] >= '0' && sid[i] <= '9') || sid[i] == '-') ?
				  sid[i] :
				  '_';
	safe[i] = '\0';
	snprintf(out, len, "%s.%lu", safe, seq);
}

/* One directory of the login below base, and its cgroup.procs opened for writing (-1 on
 * failure, logged). The directory is recorded in *dir for removal. */
static int
gsandbox_cg_mkdir(const char *base, const char *name, char **dir)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", base, name) >= (int)sizeof(path) ||
	    mkdir(path, 0755) != 0) {
		log_warn("sandbox: cgroup %s", path);
		return -1;
	}
	if ((*dir = strdup(path)) == NULL) {
		(void)rmdir(path);
		return -1;
	}
	if (snprintf(path, sizeof(path), "%s/cgroup.procs", *dir) >= (int)sizeof(path) ||
	    (fd = open(path, O_WRONLY | O_CLOEXEC)) == -1) {
		log_warn("sandbox: %s", path);
		return -1;
	}
	return fd;
}

/*
 * The login's cgroups with the policy's limits: v2 (cgroup.kill; pids, memory and cpu where
 * v2 has those controllers), and on a hybrid v1 pids and memory cgroups for what v2 lacks.
 * Fills sp->cgprocs (cgroup.procs of each, for the monitor to join). Returns whether a pids
 * limit is in force (then RLIMIT_NPROC, which counts every process of the user, is not
 * needed).
 */
static bool
gsandbox_cg_create(struct gsandbox *sb, const struct policy_limits *lim, struct gsandbox_spec *sp)
{
	struct gsandboxes *sbs = sb->sbs;
	char name[96], v[64];
	const char *dir;
	bool pids = false;

	gsandbox_cg_name(sb->session_id, sb->seq, name, sizeof(name));
	if (sbs->cgbase[0] != '\0' && (sp->cgprocs[GSANDBOX_CG_V2] = gsandbox_cg_mkdir(
					       sbs->cgbase, name, &sb->cgroup)) != -1) {
		dir = sb->cgroup;
		if (lim != NULL && sbs->cg_pids && lim->nproc > 0) {
			snprintf(v, sizeof(v), "%ld", lim->nproc);
			if (gsandbox_cg_write(dir, "pids.max", v) != 0)
				log_warn("sandbox: %s/pids.max", dir);
			else
				pids = true;
		}
		if (lim != NULL && sbs->cg_memory && lim->memory > 0) {
			snprintf(v, sizeof(v), "%lld", lim->memory);
			if (gsandbox_cg_write(dir, "memory.max", v) != 0)
				log_warn("sandbox: %s/memory.max", dir);
		}
		if (lim != NULL && sbs->cg_cpu && lim->cpu > 0) {
			snprintf(v, sizeof(v), "%lld 100000", (long long)(lim->cpu * 100000.0));
			if (gsandbox_cg_write(dir, "cpu.max", v) != 0)
				log_warn("sandbox: %s/cpu.max", dir);
		}
	}
	/* v1 only for a limit the policy sets: a v1 cgroup cannot kill, so without a limit
	 * it would add nothing */
	if (lim != NULL && lim->nproc > 0 && !sbs->cg_pids &&
	    sbs->cgv1[GSANDBOX_CG_V1_PIDS][0] != '\0' &&
	    (sp->cgprocs[GSANDBOX_CG_V1_PIDS] = gsandbox_cg_mkdir(
		     sbs->cgv1[GSANDBOX_CG_V1_PIDS], name, &sb->cgv1[GSANDBOX_CG_V1_PIDS])) != -1) {
		dir = sb->cgv1[GSANDBOX_CG_V1_PIDS];
		snprintf(v, sizeof(v), "%ld", lim->nproc);
		if (gsandbox_cg_write(dir, "pids.max", v) != 0)
			log_warn("sandbox: %s/pids.max", dir);
		else
			pids = true;
	}
	if (lim != NULL && lim->memory > 0 && !sbs->cg_memory &&
	    sbs->cgv1[GSANDBOX_CG_V1_MEMORY][0] != '\0' &&
	    (sp->cgprocs[GSANDBOX_CG_V1_MEMORY] = gsandbox_cg_mkdir(
		     sbs->cgv1[GSANDBOX_CG_V1_MEMORY], name, &sb->cgv1[GSANDBOX_CG_V1_MEMORY])) !=
		    -1) {
		dir = sb->cgv1[GSANDBOX_CG_V1_MEMORY];
		snprintf(v, sizeof(v), "%lld", lim->memory);
		if (gsandbox_cg_write(dir, "memory.limit_in_bytes", v) != 0)
			log_warn("sandbox: %s/memory.limit_in_bytes", dir);
		/* memory + swap: without it the limit only moves the rest to swap */
		if (sbs->cgv1_memsw &&
		    gsandbox_cg_write(dir, "memory.memsw.limit_in_bytes", v) != 0)
			log_warn("sandbox: %s/memory.memsw.limit_in_bytes", dir);
	}
	return pids;
}

/* Fills sp from the user's account, the session, the policy and the request. */
static json_t *
gsandbox_prepare(struct guestd *g, struct gsandbox *sb, struct gsession *s, const struct passwd *pw,
		 const char *command, const char *term, struct gsandbox_spec *sp)
{
	const struct policy *pol = guestd_policy(g);
	const struct policy_limits *lim = pol != NULL ? policy_limits(pol) : NULL;
	struct sandbox_env_params ep;
	char home[PATH_MAX], hide[PATH_MAX], err[512], *slash;
	const char *shell, **caps = NULL, *eq;
	size_t i, n, k = 0;
	char key[80];

	if (realpath(pw->pw_dir, home) == NULL)
		return gsandbox_error("your home directory does not exist");
	snprintf(hide, sizeof(hide), "%s", g->cfg.control_socket);
	if ((slash = strrchr(hide, '/')) != NULL && slash != hide)
		*slash = '\0';
	if (sandbox_plan_build(&sp->plan, home, pol != NULL ? policy_fs_writable(pol) : NULL,
			       pol != NULL ? policy_fs_protected(pol) : NULL, hide, err,
			       sizeof(err)) != 0) {
		log_warnx("sandbox for %s: %s", pw->pw_name, err);
		return gsandbox_error("the sandbox cannot be built from the policy (see "
				      "saw-guestd's log)");
	}
	/* Landlock: write access exactly where the mounts allow writing. */
	for (i = 0; i < sp->plan.n; i++)
		if (sp->plan.m[i].kind == SANDBOX_MOUNT_WRITABLE ||
		    sp->plan.m[i].kind == SANDBOX_MOUNT_TMPFS)
			sp->writable[k++] = sp->plan.m[i].path;
	sp->writable[k++] = "/dev";
	sp->writable[k] = NULL;

	shell = pw->pw_shell != NULL && pw->pw_shell[0] == '/' ? pw->pw_shell : "/bin/sh";
	if ((sb->shell = strdup(shell)) == NULL)
		return gsandbox_error("out of resources");
	memset(&ep, 0, sizeof(ep));
	ep.user = pw->pw_name;
	ep.home = home;
	ep.shell = shell;
	ep.session_id = s->id;
	ep.term = term;
	sandbox_env_init(&sp->env);
	sandbox_env_base(&sp->env, &ep);
	/* The credential proxy's capabilities (SAW_CAP_<ROUTE>), never secrets. */
	n = cred_session_caps(g, s->id, &caps);
	for (i = 0; i < n && caps != NULL && caps[i] != NULL; i++) {
		if ((eq = strchr(caps[i], '=')) == NULL || (size_t)(eq - caps[i]) >= sizeof(key))
			continue;
		memcpy(key, caps[i], (size_t)(eq - caps[i]));
		key[eq - caps[i]] = '\0';
		sandbox_env_add(&sp->env, key, eq + 1);
	}
	if (caps != NULL) {
		for (i = 0; i < n && caps[i] != NULL; i++)
			explicit_bzero((void *)caps[i], strlen(caps[i]));
		free(caps);
	}
	if (sp->env.error)
		return gsandbox_error("the session's environment could not be built");

	sp->argv[0] = GSANDBOX_INIT_NAME;
	sp->argv[1] = shell;
	if (command != NULL) {
		const char *b = strrchr(shell, '/');

		snprintf(sp->argv0, sizeof(sp->argv0), "%s", b != NULL ? b + 1 : shell);
		sp->argv[2] = sp->argv0;
		sp->argv[3] = "-c";
		sp->argv[4] = command;
		sp->argv[5] = NULL;
	} else {
		const char *b = strrchr(shell, '/');

		/* a login shell, as sshd starts it ("-bash") */
		snprintf(sp->argv0, sizeof(sp->argv0), "-%s", b != NULL ? b + 1 : shell);
		sp->argv[2] = sp->argv0;
		sp->argv[3] = NULL;
	}
	sp->uid = pw->pw_uid;
	sp->gid = pw->pw_gid;
	sp->ngroups = GSANDBOX_MAX_GROUPS;
	if (getgrouplist(pw->pw_name, pw->pw_gid, sp->groups, &sp->ngroups) == -1)
		return gsandbox_error("the user is in too many groups");
	sp->nproc = lim != NULL ? lim->nproc : 0;
	sp->nofile = lim != NULL ? lim->nofile : 0;
	sp->landlock_required = sb->sbs->landlock_required;
	if (gsandbox_cg_create(sb, lim, sp))
		sp->nproc = 0; /* the cgroup's pids.max is the limit */
	sp->guestd = getpid();
	return NULL;
}

json_t *
gsandbox_exec(struct guestd *g, int fd, uid_t uid, pid_t pid, const json_t *req, int *fds,
	      size_t nfds)
{
	struct gsandboxes *sbs = g->sandboxes;
	struct gsandbox_spec *sp = NULL;
	struct gsandbox *sb = NULL;
	struct gsession *s;
	struct passwd *pw;
	const json_t *cmdv = json_object_get(req, "command"), *termv = json_object_get(req, "term");
	const char *user = json_string_value(json_object_get(req, "user"));
	const char *fp = json_string_value(json_object_get(req, "fp"));
	const char *command = NULL, *term = NULL;
	json_t *resp = NULL;
	char msg[1 + sizeof(pid_t) + 512], why[600] = "";
	struct pollfd pfd;
	int sp2[2] = { -1, -1 }, one = 1;
	ssize_t n;
	size_t i;

	if (sbs == NULL || g->shutting_down) {
		resp = gsandbox_error("saw-guestd is stopping");
		goto out;
	}
	if (nfds != 3) {
		resp = gsandbox_error("session_exec needs the login's stdin, stdout and stderr");
		goto out;
	}
	if (user == NULL || fp == NULL) {
		resp = gsandbox_error("user and fp are required");
		goto out;
	}
	if (cmdv != NULL && !json_is_null(cmdv)) {
		if (!json_is_string(cmdv) || json_string_length(cmdv) > GSANDBOX_MAX_COMMAND ||
		    strlen(json_string_value(cmdv)) != json_string_length(cmdv)) {
			resp = gsandbox_error("command must be a string without NUL bytes");
			goto out;
		}
		command = json_string_value(cmdv);
	}
	if (json_is_string(termv))
		term = json_string_value(termv);
	if ((pw = getpwnam(user)) == NULL || pw->pw_uid != uid) {
		resp = gsandbox_error("not allowed: session_exec is for the login's own user");
		goto out;
	}
	if (uid == 0) {
		resp = gsandbox_error("not allowed: root logins cannot be sandboxed");
		goto out;
	}
	if (!gsandbox_peer_outside(pid)) {
		resp = gsandbox_error("not allowed from inside a sandbox");
		goto out;
	}
	if ((s = gsessions_find_key(&g->sessions, user, fp, guestd_now())) == NULL) {
		resp = gsandbox_error("no live brokered session");
		goto out;
	}
	if (sbs->landlock_required && sbs->landlock_abi == 0) {
		resp = gsandbox_error("this workspace's kernel has no Landlock and the "
				      "configuration requires it (SandboxLandlock)");
		gsandbox_audit_refused(sbs, s, command, "no Landlock (SandboxLandlock required)");
		goto out;
	}
	if (sbs->n >= GSANDBOX_MAX) {
		resp = gsandbox_error("too many sandboxes in this workspace");
		gsandbox_audit_refused(sbs, s, command, "too many sandboxes in this workspace");
		goto out;
	}

	if ((sb = calloc(1, sizeof(*sb))) == NULL || (sp = calloc(1, sizeof(*sp))) == NULL)
		goto nomem;
	sb->sbs = sbs;
	sb->conn = sb->ctl = sb->monitor_pidfd = sb->init_pidfd = -1;
	sb->seq = ++sbs->seq;
	if ((sb->session_id = strdup(s->id)) == NULL || (sb->user = strdup(user)) == NULL)
		goto nomem;
	TAILQ_INSERT_TAIL(&sbs->list, sb, entry);
	sbs->n++;
	for (i = 0; i < GSANDBOX_CG_N; i++)
		sp->cgprocs[i] = -1;
	if ((s->sub != NULL && (sb->sub = strdup(s->sub)) == NULL) ||
	    (command != NULL && (sb->command = strdup(command)) == NULL))
		goto nomem;
	if ((resp = gsandbox_prepare(g, sb, s, pw, command, term, sp)) != NULL)
		goto fail;
	for (i = 0; i < 3; i++)
		sp->fds[i] = fds[i];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp2) != 0)
		goto nomem;
	sp->ctl = sp2[1];
	/* the kernel attaches the sender's pid (in our namespace) to what we receive */
	if (setsockopt(sp2[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0)
		goto nomem;

	if ((sb->monitor = fork()) == -1) {
		log_warn("sandbox: fork");
		goto nomem;
	}
	if (sb->monitor == 0)
		gsandbox_monitor(sp, sp2[0]);
	close(sp2[1]);
	sp2[1] = -1;
	sb->ctl = sp2[0];
	sp2[0] = -1;
	for (i = 0; i < GSANDBOX_CG_N; i++)
		if (sp->cgprocs[i] != -1) {
			close(sp->cgprocs[i]);
			sp->cgprocs[i] = -1;
		}
	sb->monitor_pidfd = gsandbox_pidfd_open(sb->monitor);

	/* The monitor reports pid 1 at once (or why it could not). */
	pfd.fd = sb->ctl;
	pfd.events = POLLIN;
	n = -1;
	if (poll(&pfd, 1, GSANDBOX_START_MS) == 1)
		n = recv(sb->ctl, msg, sizeof(msg) - 1, 0);
	if (n == (ssize_t)(1 + sizeof(pid_t)) && msg[0] == 'P') {
		memcpy(&sb->init, msg + 1, sizeof(pid_t));
	} else {
		if (n > 1 && msg[0] == 'E') {
			msg[n] = '\0';
			log_warnx("sandbox %s.%lu of %s could not start: %s", sb->session_id,
				  sb->seq, user, msg + 1);
			snprintf(why, sizeof(why), "the sandbox could not be built: %s", msg + 1);
		} else {
			log_warnx("sandbox %s.%lu of %s: no word from its monitor", sb->session_id,
				  sb->seq, user);
		}
		resp = gsandbox_error("the sandbox could not start (see saw-guestd's log)");
		goto fail;
	}
	if ((sb->init_pidfd = gsandbox_pidfd_open(sb->init)) == -1 || gsandbox_listeners(sb) != 0) {
		resp = gsandbox_error("the sandbox's proxies could not start (see saw-guestd's "
				      "log)");
		goto fail;
	}
	if ((sb->conn = fcntl(fd, F_DUPFD_CLOEXEC, 3)) == -1 ||
	    (sb->ev_conn = event_new(g->base, sb->conn, EV_READ | EV_PERSIST, gsandbox_conn_cb,
				     sb)) == NULL ||
	    (sb->ev_ctl = event_new(g->base, sb->ctl, EV_READ | EV_PERSIST, gsandbox_ctl_cb, sb)) ==
		    NULL ||
	    sb->monitor_pidfd == -1 ||
	    (sb->ev_monitor = event_new(g->base, sb->monitor_pidfd, EV_READ, gsandbox_monitor_cb,
					sb)) == NULL)
		goto nomem;
	if (send(sb->ctl, "G", 1, MSG_NOSIGNAL) != 1) {
		resp = gsandbox_error("the sandbox could not start (see saw-guestd's log)");
		goto fail;
	}
	evutil_make_socket_nonblocking(sb->conn);
	event_add(sb->ev_conn, NULL);
	event_add(sb->ev_ctl, NULL);
	event_add(sb->ev_monitor, NULL);
	gsandbox_send(sb, json_pack("{s:b, s:s, s:I}", "ok", 1, "session", s->id, "expires",
				    (json_int_t)s->expires));
	log_info("sandbox %s.%lu of %s started: pid 1 is %d, %s, cgroup %s%s%s%s%s", sb->session_id,
		 sb->seq, user, (int)sb->init, command != NULL ? "command" : "login shell",
		 sb->cgroup != NULL ? sb->cgroup : "none",
		 sb->cgv1[GSANDBOX_CG_V1_PIDS] != NULL ? ", v1 pids " : "",
		 sb->cgv1[GSANDBOX_CG_V1_PIDS] != NULL ? sb->cgv1[GSANDBOX_CG_V1_PIDS] : "",
		 sb->cgv1[GSANDBOX_CG_V1_MEMORY] != NULL ? ", v1 memory " : "",
		 sb->cgv1[GSANDBOX_CG_V1_MEMORY] != NULL ? sb->cgv1[GSANDBOX_CG_V1_MEMORY] : "");
	sb = NULL;
	goto out;
nomem:
	resp = gsandbox_error("out of resources");
fail:
	if (sb != NULL) {
		if (sb->monitor > 0) {
			gsandbox_kill(sb, NULL);
			kill(sb->monitor, SIGKILL);
			while (waitpid(sb->monitor, NULL, 0) == -1 && errno == EINTR)
				;
		}
		/* the failed Launch says why: pid 1's own words if it sent any */
		while (why[0] == '\0' && sb->ctl != -1 &&
		       (n = sandbox_ctl_recv(sb->ctl, msg, sizeof(msg) - 1, MSG_DONTWAIT)) > 0)
			if (msg[0] == 'E' && n > 1) {
				msg[n] = '\0';
				snprintf(why, sizeof(why), "the sandbox could not be built: %s",
					 msg + 1);
			}
		if (why[0] == '\0')
			snprintf(why, sizeof(why), "%s",
				 resp != NULL && json_string_value(json_object_get(resp, "error")) ?
					 json_string_value(json_object_get(resp, "error")) :
					 "the sandbox could not start");
		if (sb->session_id != NULL && sb->user != NULL)
			gsandbox_audit_failed(sb, why);
		if (sb->sbs != NULL && (sb->session_id == NULL || sb->user == NULL))
			free(sb->session_id), free(sb->user), free(sb), sb = NULL;
		else if (sb->sbs != NULL)
			gsandbox_free(sb);
	}
out:
	if (sp != NULL) {
		for (i = 0; i < GSANDBOX_CG_N; i++)
			if (sp->cgprocs[i] != -1)
				close(sp->cgprocs[i]);
		sandbox_plan_free(&sp->plan);
		sandbox_env_free(&sp->env);
		free(sp);
	}
	if (sp2[0] != -1)
		close(sp2[0]);
	if (sp2[1] != -1)
		close(sp2[1]);
	for (i = 0; i < nfds; i++)
		if (fds[i] != -1) {
			close(fds[i]);
			fds[i] = -1;
		}
	return resp;
}

void
gsandbox_session_end(struct guestd *g, const char *session_id, const char *reason)
{
	struct gsandbox *sb;

	if (g->sandboxes == NULL)
		return;
	TAILQ_FOREACH(sb, &g->sandboxes->list, entry)
		if (strcmp(sb->session_id, session_id) == 0)
			gsandbox_kill(sb, reason);
}

void
gsandbox_free_all(struct guestd *g, const char *reason)
{
	struct gsandboxes *sbs = g->sandboxes;
	struct gsandbox_cgrm *rm;
	struct gsandbox *sb;
	int i;

	if (sbs == NULL)
		return;
	while ((sb = TAILQ_FIRST(&sbs->list)) != NULL) {
		gsandbox_kill(sb, reason);
		if (sb->monitor > 0) {
			kill(sb->monitor, SIGKILL);
			while (waitpid(sb->monitor, NULL, 0) == -1 && errno == EINTR)
				;
		}
		gsandbox_send(sb, json_pack("{s:i, s:s}", "exit", 255, "ended",
					    sb->ended != NULL ? sb->ended : reason));
		gsandbox_free(sb);
	}
	/* no loop turns left: a last try for the cgroups still busy */
	while ((rm = TAILQ_FIRST(&sbs->cgrm)) != NULL) {
		for (i = 0; i < 20 && !gsandbox_cg_rmdirs(rm, false); i++)
			usleep(10 * 1000);
		(void)gsandbox_cg_rmdirs(rm, true);
		gsandbox_cgrm_free(rm);
	}
	free(sbs);
	g->sandboxes = NULL;
}
