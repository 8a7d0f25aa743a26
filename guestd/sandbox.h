/*
 * The per-login sandbox of a brokered session: the pieces that do not need saw-guestd's
 * event loop (guestd/sandbox.c). guestd-sandbox.c drives them: it builds the mount plan and
 * the environment in guestd, and the sandbox's first process (root, in fresh mount, pid, ipc,
 * uts and net namespaces) applies them before it becomes the user.
 *
 * Layers, outermost first (each one holds if another fails):
 *   namespaces  mount, pid, ipc, uts, net (only loopback) created by root, so that their
 *               mounts and settings belong to the initial user namespace; then a user
 *               namespace mapping only the user's uid and gid, created as the user
 *   filesystem  everything read-only and nosuid (mount_setattr, recursive); writable: the
 *               home, a per-login tmpfs on /tmp and /var/tmp, the policy's writable paths;
 *               protected paths bound read-only over the home; fresh /proc; a minimal /dev;
 *               /run hidden (the control socket, D-Bus and the user's systemd live there)
 *   privileges  no_new_privs, empty capability bounding set, rlimits
 *   Landlock    at the highest ABI the kernel reports (1..7): writes only below the writable
 *               places, signals and abstract unix sockets scoped to the sandbox (ABI 6)
 *   seccomp     a deny list (sandbox_seccomp_rules), EPERM, other architectures killed
 *
 * Ownership: struct sandbox_plan and struct sandbox_env own their strings and are released
 * with sandbox_plan_free() / sandbox_env_free(). Nothing here keeps global state.
 */
#ifndef SAW_GUESTD_SANDBOX_H
#define SAW_GUESTD_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SANDBOX_MAX_MOUNTS 128
#define SANDBOX_MAX_ENV 128
#define SANDBOX_ENV_VALUE_MAX 4096
#define SANDBOX_PROXY_HTTP_PORT 3128
#define SANDBOX_PROXY_CRED_PORT 3129
#define SANDBOX_DECIDE_PORT 3130 /* the per-call decision API, for this sandbox's session */

/* ---- the mount plan ------------------------------------------------------------------- */

enum sandbox_mount_kind {
	SANDBOX_MOUNT_WRITABLE = 1, /* bind the path over itself, read-write, nosuid, nodev */
	SANDBOX_MOUNT_TMPFS,	    /* a fresh tmpfs (1777), nosuid, nodev */
	SANDBOX_MOUNT_HIDE,	    /* an empty read-only tmpfs over a directory */
	SANDBOX_MOUNT_PROTECT,	    /* bind the path over itself, read-only */
};

struct sandbox_mount {
	enum sandbox_mount_kind kind;
	char *path;	 /* absolute, lexically normal (no "//", ".", "..", trailing '/') */
	bool optional;	 /* a missing path is skipped rather than an error */
	bool in_home;	 /* resolved below the home without following symbolic links */
	bool create;	 /* PROTECT in_home: create it empty first if missing (file) */
	bool create_dir; /* … as a directory */
};

struct sandbox_plan {
	struct sandbox_mount m[SANDBOX_MAX_MOUNTS];
	size_t n;
	char *home;
	bool protect_git; /* protect the hooks and config of git repositories in the home */
};

/*
 * The shell start-up files that a login shell reads OUTSIDE the sandbox: sshd runs the
 * ForceCommand as `$SHELL -c saw-session`, and Debian's bash then reads ~/.bashrc, zsh always
 * reads ~/.zshenv, fish and csh their config. An agent that could write them would run code
 * outside the sandbox at the next login, so they are always protected, and created empty
 * (missing and empty mean the same to those shells) if missing. NULL-terminated; entries
 * ending in '/' are directories.
 */
extern const char *const sandbox_builtin_protected[];
/* Start-up files that only run inside the sandbox (login shells): protected when they
 * exist, never created (an empty ~/.bash_profile would hide ~/.profile). */
extern const char *const sandbox_builtin_protected_if_present[];

/*
 * Builds the plan: home (absolute; required), the policy's writable paths (absolute; "/" and
 * the system's own trees are refused) and protected paths (relative: below home; absolute:
 * as given), and hide_dir (the ControlSocket's directory, if it is not below /run or /tmp;
 * may be NULL). 0, or -1 with a sentence in err (the plan is then empty).
 */
int sandbox_plan_build(struct sandbox_plan *p, const char *home, const char *const *writable,
		       const char *const *protect, const char *hide_dir, char *err, size_t errlen);
void sandbox_plan_free(struct sandbox_plan *p);
/* Lexically normalises an absolute path into out (no symlinks are looked at). -1 if path is
 * not absolute, climbs above "/", or does not fit. */
int sandbox_path_normalize(const char *path, char *out, size_t outlen);

/* ---- the environment ------------------------------------------------------------------ */

struct sandbox_env {
	char *v[SANDBOX_MAX_ENV + 1]; /* "KEY=value", NULL-terminated */
	size_t n;
	bool error; /* an add failed: refuse to start rather than run half-configured */
};

void sandbox_env_init(struct sandbox_env *e);
/* Sets (or replaces) KEY: [A-Za-z_][A-Za-z0-9_]*, at most 64 bytes; value at most
 * SANDBOX_ENV_VALUE_MAX bytes. A bad key or value, or a full table, sets e->error. */
void sandbox_env_add(struct sandbox_env *e, const char *k, const char *v);
const char *sandbox_env_get(const struct sandbox_env *e, const char *k);
void sandbox_env_free(struct sandbox_env *e);

struct sandbox_env_params {
	const char *user, *home, *shell;
	const char *session_id;
	const char *term; /* from the client; dropped unless [A-Za-z0-9._+-]{1,64} */
};
/* The base environment of a login: HOME USER LOGNAME SHELL PATH TERM SAW_SESSION, the egress
 * proxy for every common client (HTTP_PROXY HTTPS_PROXY http_proxy https_proxy, NO_PROXY for
 * loopback), SAW_DECISION_ADDR (the decision API's listener, 127.0.0.1:SANDBOX_DECIDE_PORT). Nothing of sshd's or guestd's own environment is passed on. */
void sandbox_env_base(struct sandbox_env *e, const struct sandbox_env_params *p);

/* ---- seccomp -------------------------------------------------------------------------- */

enum sandbox_sc_cmp {
	SANDBOX_SC_ALWAYS = 0,
	SANDBOX_SC_ARG_MASK, /* (arg[argn] & mask) == value */
	SANDBOX_SC_ARG_EQ,   /* arg[argn] == value */
	SANDBOX_SC_SOCKET_NETLINK_NOT_ROUTE,
};

struct sandbox_sc_rule {
	const char *syscall; /* name as libseccomp knows it */
	enum sandbox_sc_cmp cmp;
	unsigned int argn;
	uint64_t mask, value;
	int family;	 /* socket(2) only: also require arg0 == family (0: any family) */
	int err;	 /* errno returned */
	const char *why; /* for the man page and the tests */
};

/* The deny list (static table): n set to its length. */
const struct sandbox_sc_rule *sandbox_seccomp_rules(size_t *n);
/* Loads the filter into the calling thread (no_new_privs must be set). 0 or -errno. */
int sandbox_seccomp_load(char *err, size_t errlen);

/* ---- Landlock ------------------------------------------------------------------------- */

/* The Landlock ABI the kernel offers (0: none / disabled). */
int sandbox_landlock_abi(void);
/* Restricts the calling thread: read and execute everywhere, writes below writable[]
 * (NULL-terminated absolute paths; missing ones are skipped). Returns the ABI used (> 0),
 * 0 if the kernel has no Landlock, or -errno. */
int sandbox_landlock_apply(const char *const *writable, char *err, size_t errlen);
/* The filesystem rights an ABI knows (for tests). */
uint64_t sandbox_landlock_fs_rights(int abi);

/* ---- cgroups --------------------------------------------------------------------------- */

/*
 * Where the cgroup v2 hierarchy is and where this process sits in it, from the text of
 * /proc/self/mountinfo and /proc/self/cgroup: mount point (the unified hierarchy: /sys/fs/cgroup
 * on a pure v2 system, /sys/fs/cgroup/unified on a v1/v2 hybrid) and the "0::/path" line.
 * Writes "<mount><path>" (no trailing '/') into out. 0, or -1 if there is no v2 hierarchy.
 */
int sandbox_cgroup_parse(const char *mountinfo, const char *proc_cgroup, char *out, size_t outlen);
/* Same, reading this process's files. */
int sandbox_cgroup_self(char *out, size_t outlen);
/*
 * The cgroup v1 hierarchy of one controller ("pids", "memory") on a v1/v2 hybrid: the mount
 * of fstype "cgroup" whose options name the controller, and the "N:…controller…:/path" line
 * of /proc/self/cgroup (relative to the mount's root when a subtree is mounted). Writes
 * "<mount><path>" into out. 0, or -1 if that controller has no mounted v1 hierarchy.
 */
int sandbox_cgroup_v1_parse(const char *mountinfo, const char *proc_cgroup, const char *controller,
			    char *out, size_t outlen);
int sandbox_cgroup_v1_self(const char *controller, char *out, size_t outlen);

/* ---- git repositories in the home ----------------------------------------------------- */

/*
 * Hooks run code outside the sandbox the next time the user runs git there, and
 * core.hooksPath in a repository's config (or the global one) moves them. At sandbox start
 * pid 1 looks for repositories below the home (a directory holding a ".git" directory) at
 * most SANDBOX_GIT_DEPTH levels down (the home itself is level 0), visiting at most
 * SANDBOX_GIT_MAX_DIRS directories, without following symbolic links and without entering
 * other hidden directories; for at most SANDBOX_GIT_MAX_REPOS repositories found, ".git/hooks"
 * and ".git/config" are bound read-only. A repository created (or cloned) during the
 * session is not covered until the next login's sandbox.
 */
#define SANDBOX_GIT_DEPTH 4
#define SANDBOX_GIT_MAX_DIRS 4096
#define SANDBOX_GIT_MAX_REPOS 64

/* Calls found(rel, arg) for each repository below the directory dirfd (rel: its path below
 * it, "" for dirfd itself), within the limits above. Returns the number found. */
size_t sandbox_git_scan(int dirfd, void (*found)(const char *rel, void *arg), void *arg);

/* ---- the sandbox's own process -------------------------------------------------------- */

/* Brings up lo in the caller's network namespace. 0 or -errno. */
int sandbox_loopback_up(void);
/* Applies the plan in the caller's (fresh, private) mount namespace; the caller must be pid 1
 * of a fresh pid namespace for /proc. uid/gid own what PROTECT creates. 0 or -1 (err set). */
int sandbox_mounts_apply(const struct sandbox_plan *p, uid_t uid, gid_t gid, char *err,
			 size_t errlen);
/* Drops every capability from the bounding set. 0 or -errno. */
int sandbox_drop_bounding(void);

/* ---- pid 1's control socket (SOCK_SEQPACKET), guestd's end ------------------------------ */

struct msghdr;
/* recvmsg(2) that does not lose pid 1's last words: when pid 1 closed its end with something
 * of guestd's unread (it failed before reading "G"), the kernel reports ECONNRESET once,
 * before the messages still queued (its "E"); those are then read. As recvmsg(2). */
ssize_t sandbox_ctl_recvmsg(int fd, struct msghdr *mh, int flags);
/* The same for one message into buf. */
ssize_t sandbox_ctl_recv(int fd, void *buf, size_t len, int flags);

#endif
