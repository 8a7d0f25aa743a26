/*
 * The per-login sandbox's building blocks (sandbox.h): the mount plan, the environment, the
 * seccomp deny list, Landlock, cgroup v2 and v1 discovery, git repositories in the home, and
 * what the sandbox's first process runs in its fresh namespaces.
 *
 * The functions under "the sandbox's own process" run in a child forked by glibc's fork()
 * from a single thread, so they may allocate; they never touch saw-guestd's event loop.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/landlock.h>
#include <linux/netlink.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "guestd/sandbox.h"

/* ---- the mount plan ------------------------------------------------------------------- */

const char *const sandbox_builtin_protected[] = {
	".bashrc",
	".zshenv",
	".cshrc",
	".tcshrc",
	/* git's global configuration can set core.hooksPath for every repository */
	".gitconfig",
	".config/git/",
	NULL,
};

const char *const sandbox_builtin_protected_if_present[] = {
	".bash_profile", ".bash_login", ".bash_logout", ".profile",	    ".zshrc", ".zprofile",
	".zlogin",	 ".zlogout",	".config/fish", ".pam_environment", ".ssh",   NULL,
};

/* Writable paths a policy may not name: the system itself, and the kernel's interfaces. */
static const char *const sandbox_system_trees[] = {
	"/",	 "/bin", "/boot", "/etc",  "/lib",  "/lib32", "/lib64", "/libx32",
	"/sbin", "/usr", "/var",  "/home", "/root", "/run",   "/opt",	NULL,
};
static const char *const sandbox_kernel_trees[] = { "/proc", "/sys", "/dev", NULL };

int
sandbox_path_normalize(const char *path, char *out, size_t outlen)
{
	size_t n = 0, seglen;
	const char *p = path, *seg;

	if (path == NULL || path[0] != '/' || outlen < 2)
		return -1;
	while (*p != '\0') {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		seg = p;
		while (*p != '\0' && *p != '/')
			p++;
		seglen = (size_t)(p - seg);
		if (seglen == 1 && seg[0] == '.')
			continue;
		if (seglen == 2 && seg[0] == '.' && seg[1] == '.') {
			if (n == 0)
				return -1; /* above "/" */
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--; /* the '/' before the dropped segment */
			continue;
		}
		if (n + 1 + seglen + 1 > outlen)
			return -1;
		out[n++] = '/';
		memcpy(out + n, seg, seglen);
		n += seglen;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	return 0;
}

static bool
sandbox_path_below(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* A relative home entry: no empty, "." or ".." segment, no control bytes. */
static bool
sandbox_rel_ok(const char *rel)
{
	const char *p = rel, *seg;
	size_t len;

	if (rel[0] == '\0' || rel[0] == '/' || strlen(rel) > PATH_MAX / 2)
		return false;
	for (p = rel; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	p = rel;
	while (*p != '\0') {
		seg = p;
		while (*p != '\0' && *p != '/')
			p++;
		len = (size_t)(p - seg);
		if (len == 0 && *p == '/')
			return false;
		if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		if (*p == '/')
			p++;
	}
	return true;
}

static int
sandbox_plan_add(struct sandbox_plan *p, enum sandbox_mount_kind kind, const char *path,
		 bool optional, bool in_home, bool create, bool create_dir)
{
	struct sandbox_mount *m;
	size_t i;

	for (i = 0; i < p->n; i++)
		if (p->m[i].kind == kind && strcmp(p->m[i].path, path) == 0)
			return 0; /* named twice: once is enough */
	if (p->n >= SANDBOX_MAX_MOUNTS)
		return -1;
	m = &p->m[p->n];
	memset(m, 0, sizeof(*m));
	if ((m->path = strdup(path)) == NULL)
		return -1;
	m->kind = kind;
	m->optional = optional;
	m->in_home = in_home;
	m->create = create;
	m->create_dir = create_dir;
	p->n++;
	return 0;
}

static int
sandbox_plan_protect_rel(struct sandbox_plan *p, const char *rel, bool create, char *err,
			 size_t errlen)
{
	char buf[PATH_MAX], norm[PATH_MAX];
	size_t len = strlen(rel);
	bool dir = len > 0 && rel[len - 1] == '/';

	if (len >= sizeof(buf))
		goto bad;
	memcpy(buf, rel, len + 1);
	while (len > 0 && buf[len - 1] == '/')
		buf[--len] = '\0';
	if (!sandbox_rel_ok(buf))
		goto bad;
	if (snprintf(norm, sizeof(norm), "%s/%s", p->home, buf) >= (int)sizeof(norm))
		goto bad;
	if (sandbox_plan_add(p, SANDBOX_MOUNT_PROTECT, norm, !create, true, create && !dir,
			     create && dir) != 0) {
		snprintf(err, errlen, "too many sandbox mounts");
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen,
		 "protected path \"%.100s\" is not a plain path below the home (no \"..\", no "
		 "empty or \".\" parts)",
		 rel);
	return -1;
}

int
sandbox_plan_build(struct sandbox_plan *p, const char *home, const char *const *writable,
		   const char *const *protect, const char *hide_dir, char *err, size_t errlen)
{
	char norm[PATH_MAX];
	size_t i;

	memset(p, 0, sizeof(*p));
	if (home == NULL || sandbox_path_normalize(home, norm, sizeof(norm)) != 0 ||
	    strcmp(norm, "/") == 0) {
		snprintf(err, errlen, "the user's home directory must be an absolute path below /");
		return -1;
	}
	for (i = 0; sandbox_system_trees[i] != NULL; i++)
		if (strcmp(norm, sandbox_system_trees[i]) == 0) {
			snprintf(err, errlen,
				 "the user's home directory %s is a system directory: give the "
				 "account a home of its own",
				 norm);
			return -1;
		}
	p->protect_git = true;
	if ((p->home = strdup(norm)) == NULL ||
	    sandbox_plan_add(p, SANDBOX_MOUNT_WRITABLE, p->home, false, false, false, false) != 0)
		goto nomem;
	for (i = 0; writable != NULL && writable[i] != NULL; i++) {
		size_t j;
		bool bad = sandbox_path_normalize(writable[i], norm, sizeof(norm)) != 0;

		for (j = 0; !bad && sandbox_system_trees[j] != NULL; j++)
			bad = strcmp(norm, sandbox_system_trees[j]) == 0;
		for (j = 0; !bad && sandbox_kernel_trees[j] != NULL; j++)
			bad = sandbox_path_below(norm, sandbox_kernel_trees[j]);
		if (!bad && hide_dir != NULL)
			bad = sandbox_path_below(norm, hide_dir) ||
			      sandbox_path_below(hide_dir, norm);
		if (bad) {
			snprintf(err, errlen,
				 "writable path \"%.200s\" is refused: it must be absolute and "
				 "must not be \"/\", a top-level system directory, below /proc, "
				 "/sys or /dev, or hold saw-guestd's control socket",
				 writable[i]);
			goto fail;
		}
		if (sandbox_plan_add(p, SANDBOX_MOUNT_WRITABLE, norm, true, false, false, false) !=
		    0)
			goto nomem;
	}
	if (sandbox_plan_add(p, SANDBOX_MOUNT_TMPFS, "/tmp", false, false, false, false) != 0 ||
	    sandbox_plan_add(p, SANDBOX_MOUNT_TMPFS, "/var/tmp", true, false, false, false) != 0 ||
	    sandbox_plan_add(p, SANDBOX_MOUNT_HIDE, "/run", true, false, false, false) != 0)
		goto nomem;
	if (hide_dir != NULL && sandbox_path_normalize(hide_dir, norm, sizeof(norm)) == 0 &&
	    strcmp(norm, "/") != 0 && !sandbox_path_below(norm, "/run") &&
	    !sandbox_path_below(norm, "/tmp") && !sandbox_path_below(norm, "/var/tmp") &&
	    sandbox_plan_add(p, SANDBOX_MOUNT_HIDE, norm, true, false, false, false) != 0)
		goto nomem;
	for (i = 0; sandbox_builtin_protected[i] != NULL; i++)
		if (sandbox_plan_protect_rel(p, sandbox_builtin_protected[i], true, err, errlen) !=
		    0)
			goto fail;
	for (i = 0; sandbox_builtin_protected_if_present[i] != NULL; i++)
		if (sandbox_plan_protect_rel(p, sandbox_builtin_protected_if_present[i], false, err,
					     errlen) != 0)
			goto fail;
	for (i = 0; protect != NULL && protect[i] != NULL; i++) {
		if (protect[i][0] != '/') {
			if (sandbox_plan_protect_rel(p, protect[i], false, err, errlen) != 0)
				goto fail;
			continue;
		}
		if (sandbox_path_normalize(protect[i], norm, sizeof(norm)) != 0 ||
		    strcmp(norm, "/") == 0) {
			snprintf(err, errlen, "protected path \"%.200s\" is not a usable path",
				 protect[i]);
			goto fail;
		}
		if (sandbox_plan_add(p, SANDBOX_MOUNT_PROTECT, norm, true, false, false, false) !=
		    0)
			goto nomem;
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory (or more than %d sandbox mounts)", SANDBOX_MAX_MOUNTS);
fail:
	sandbox_plan_free(p);
	return -1;
}

void
sandbox_plan_free(struct sandbox_plan *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		free(p->m[i].path);
	free(p->home);
	memset(p, 0, sizeof(*p));
}

/* ---- the environment ------------------------------------------------------------------ */

void
sandbox_env_init(struct sandbox_env *e)
{
	memset(e, 0, sizeof(*e));
}

static bool
sandbox_env_key_ok(const char *k)
{
	size_t i;

	if (k == NULL || k[0] == '\0' || strlen(k) > 64 || (k[0] >= '0' && k[0] <= '9'))
		return false;
	for (i = 0; k[i] != '\0'; i++)
		if (!((k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= 'a' && k[i] <= 'z') ||
		      (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
			return false;
	return true;
}

void
sandbox_env_add(struct sandbox_env *e, const char *k, const char *v)
{
	size_t i, klen;
	char *s;

	if (e == NULL)
		return;
	if (!sandbox_env_key_ok(k) || v == NULL || strlen(v) > SANDBOX_ENV_VALUE_MAX) {
		e->error = true;
		return;
	}
	klen = strlen(k);
	if (asprintf(&s, "%s=%s", k, v) < 0) {
		e->error = true;
		return;
	}
	for (i = 0; i < e->n; i++)
		if (strncmp(e->v[i], k, klen) == 0 && e->v[i][klen] == '=') {
			explicit_bzero(e->v[i], strlen(e->v[i]));
			free(e->v[i]);
			e->v[i] = s;
			return;
		}
	if (e->n >= SANDBOX_MAX_ENV) {
		free(s);
		e->error = true;
		return;
	}
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
}

const char *
sandbox_env_get(const struct sandbox_env *e, const char *k)
{
	size_t i, klen = strlen(k);

	for (i = 0; i < e->n; i++)
		if (strncmp(e->v[i], k, klen) == 0 && e->v[i][klen] == '=')
			return e->v[i] + klen + 1;
	return NULL;
}

void
sandbox_env_free(struct sandbox_env *e)
{
	size_t i;

	/* Capabilities (SAW_CAP_*) are bearer tokens for the credential proxy. */
	for (i = 0; i < e->n; i++) {
		explicit_bzero(e->v[i], strlen(e->v[i]));
		free(e->v[i]);
	}
	memset(e, 0, sizeof(*e));
}

static bool
sandbox_term_ok(const char *t)
{
	size_t i;

	if (t == NULL || t[0] == '\0' || strlen(t) > 64)
		return false;
	for (i = 0; t[i] != '\0'; i++)
		if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z') ||
		      (t[i] >= '0' && t[i] <= '9') || t[i] == '.' || t[i] == '_' || t[i] == '+' ||
		      t[i] == '-'))
			return false;
	return true;
}

void
sandbox_env_base(struct sandbox_env *e, const struct sandbox_env_params *p)
{
	char proxy[64];

	snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", SANDBOX_PROXY_HTTP_PORT);
	sandbox_env_add(e, "HOME", p->home);
	sandbox_env_add(e, "USER", p->user);
	sandbox_env_add(e, "LOGNAME", p->user);
	sandbox_env_add(e, "SHELL", p->shell);
	sandbox_env_add(e, "PATH", "/usr/local/bin:/usr/bin:/bin");
	if (sandbox_term_ok(p->term))
		sandbox_env_add(e, "TERM", p->term);
	sandbox_env_add(e, "SAW_SESSION", p->session_id);
	sandbox_env_add(e, "HTTP_PROXY", proxy);
	sandbox_env_add(e, "HTTPS_PROXY", proxy);
	sandbox_env_add(e, "http_proxy", proxy);
	sandbox_env_add(e, "https_proxy", proxy);
	/* Loopback inside the sandbox is the sandbox's own (its network namespace): local dev
	 * servers are reached directly; the proxy would refuse loopback anyway. */
	sandbox_env_add(e, "NO_PROXY", "localhost,127.0.0.1,::1");
	sandbox_env_add(e, "no_proxy", "localhost,127.0.0.1,::1");
	snprintf(proxy, sizeof(proxy), "127.0.0.1:%d", SANDBOX_DECIDE_PORT);
	sandbox_env_add(e, "SAW_DECISION_ADDR", proxy);
}

/* ---- seccomp -------------------------------------------------------------------------- */

#ifndef SOCK_PACKET
#define SOCK_PACKET 10
#endif

#define SC_ALWAYS(name, e, w)                             \
	{                                                 \
		name, SANDBOX_SC_ALWAYS, 0, 0, 0, 0, e, w \
	}
#define SC_MASK(name, n, m, v, w)                               \
	{                                                       \
		name, SANDBOX_SC_ARG_MASK, n, m, v, 0, EPERM, w \
	}
/* socket(family, type & 0xf == t): the type may carry SOCK_NONBLOCK | SOCK_CLOEXEC */
#define SC_SOCKTYPE(fam, t, w)                                          \
	{                                                               \
		"socket", SANDBOX_SC_ARG_MASK, 1, 0xf, t, fam, EPERM, w \
	}

/* One argument comparison, every field set (libseccomp's SCMP_CMP64 leaves datum_b unset for
 * the two-operand forms, which clang rightly warns about). */
static struct scmp_arg_cmp
sandbox_cmp(unsigned int arg, enum scmp_compare op, uint64_t a, uint64_t b)
{
	struct scmp_arg_cmp c = { .arg = arg, .op = op, .datum_a = a, .datum_b = b };

	return c;
}

/*
 * Deny list. Return EPERM (programs report "Operation not permitted" and go on) rather than
 * kill. clone3 gets ENOSYS: its flags are in memory that a seccomp filter cannot read, and
 * every libc falls back to clone(2), whose flags we can check.
 * On x86_64 and aarch64 clone's flags are argument 0 (s390 would need argument 1).
 */
static const struct sandbox_sc_rule sandbox_sc_rules[] = {
	SC_ALWAYS("ptrace", EPERM, "inspecting or controlling other processes"),
	SC_ALWAYS("process_vm_readv", EPERM, "reading other processes' memory"),
	SC_ALWAYS("process_vm_writev", EPERM, "writing other processes' memory"),
	SC_ALWAYS("mount", EPERM, "changing the sandbox's filesystem view"),
	SC_ALWAYS("umount2", EPERM, "uncovering what the sandbox's mounts hide"),
	SC_ALWAYS("fsopen", EPERM, "new mount API"),
	SC_ALWAYS("fsconfig", EPERM, "new mount API"),
	SC_ALWAYS("fsmount", EPERM, "new mount API"),
	SC_ALWAYS("fspick", EPERM, "new mount API"),
	SC_ALWAYS("move_mount", EPERM, "new mount API"),
	SC_ALWAYS("open_tree", EPERM, "new mount API"),
	SC_ALWAYS("mount_setattr", EPERM, "new mount API"),
	SC_ALWAYS("pivot_root", EPERM, "changing the root"),
	SC_ALWAYS("bpf", EPERM, "kernel programs"),
	SC_ALWAYS("kexec_load", EPERM, "loading a kernel"),
	SC_ALWAYS("kexec_file_load", EPERM, "loading a kernel"),
	SC_ALWAYS("init_module", EPERM, "kernel modules"),
	SC_ALWAYS("finit_module", EPERM, "kernel modules"),
	SC_ALWAYS("delete_module", EPERM, "kernel modules"),
	SC_ALWAYS("io_uring_setup", EPERM, "io_uring bypasses this filter for the calls it runs"),
	SC_ALWAYS("io_uring_enter", EPERM, "io_uring"),
	SC_ALWAYS("io_uring_register", EPERM, "io_uring"),
	SC_ALWAYS("keyctl", EPERM, "the kernel keyring is not namespaced"),
	SC_ALWAYS("add_key", EPERM, "the kernel keyring is not namespaced"),
	SC_ALWAYS("request_key", EPERM, "the kernel keyring is not namespaced"),
	SC_ALWAYS("userfaultfd", EPERM, "a classic exploitation aid"),
	SC_ALWAYS("perf_event_open", EPERM, "kernel and hardware performance counters"),
	SC_ALWAYS("open_by_handle_at", EPERM, "opening files by handle bypasses paths"),
	SC_ALWAYS("setns", EPERM, "joining other namespaces"),
	SC_ALWAYS("clone3", ENOSYS, "flags unreadable by seccomp: libc falls back to clone"),
	SC_MASK("unshare", 0, CLONE_NEWUSER, CLONE_NEWUSER, "new user namespaces"),
	SC_MASK("clone", 0, CLONE_NEWUSER, CLONE_NEWUSER, "new user namespaces"),
	SC_MASK("ioctl", 1, 0xffffffffu, TIOCSTI, "typing into the terminal's input (TIOCSTI)"),
	SC_MASK("ioctl", 1, 0xffffffffu, TIOCLINUX, "console tricks (TIOCLINUX)"),
	{ "socket", SANDBOX_SC_ARG_EQ, 0, 0, AF_PACKET, 0, EPERM, "packet sockets" },
	SC_SOCKTYPE(AF_INET, SOCK_RAW, "raw IPv4 sockets"),
	SC_SOCKTYPE(AF_INET6, SOCK_RAW, "raw IPv6 sockets"),
	SC_SOCKTYPE(AF_INET, SOCK_PACKET, "obsolete packet sockets"),
	SC_SOCKTYPE(AF_INET6, SOCK_PACKET, "obsolete packet sockets"),
	{ "socket", SANDBOX_SC_SOCKET_NETLINK_NOT_ROUTE, 0, 0, 0, 0, EPERM,
	  "netlink other than NETLINK_ROUTE (audit, netfilter, uevents …)" },
};

const struct sandbox_sc_rule *
sandbox_seccomp_rules(size_t *n)
{
	*n = sizeof(sandbox_sc_rules) / sizeof(sandbox_sc_rules[0]);
	return sandbox_sc_rules;
}

int
sandbox_seccomp_load(char *err, size_t errlen)
{
	const struct sandbox_sc_rule *r;
	struct scmp_arg_cmp cmp[3];
	scmp_filter_ctx ctx;
	size_t i, n;
	int nr, rc = 0, ncmp;

	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL) {
		snprintf(err, errlen, "seccomp_init failed");
		return -ENOMEM;
	}
	r = sandbox_seccomp_rules(&n);
	for (i = 0; i < n; i++) {
		nr = seccomp_syscall_resolve_name(r[i].syscall);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not a system call on this architecture */
		ncmp = 0;
		if (r[i].family != 0)
			cmp[ncmp++] = sandbox_cmp(0, SCMP_CMP_EQ, (uint64_t)r[i].family, 0);
		switch (r[i].cmp) {
		case SANDBOX_SC_ALWAYS:
			break;
		case SANDBOX_SC_ARG_MASK:
			cmp[ncmp++] =
				sandbox_cmp(r[i].argn, SCMP_CMP_MASKED_EQ, r[i].mask, r[i].value);
			break;
		case SANDBOX_SC_ARG_EQ:
			cmp[ncmp++] = sandbox_cmp(r[i].argn, SCMP_CMP_EQ, r[i].value, 0);
			break;
		case SANDBOX_SC_SOCKET_NETLINK_NOT_ROUTE:
			cmp[ncmp++] = sandbox_cmp(0, SCMP_CMP_EQ, AF_NETLINK, 0);
			cmp[ncmp++] = sandbox_cmp(2, SCMP_CMP_NE, NETLINK_ROUTE, 0);
			break;
		}
		if ((rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(r[i].err), nr, (unsigned)ncmp,
						 cmp)) != 0) {
			if (nr < 0)
				continue; /* a pseudo number libseccomp cannot place here */
			snprintf(err, errlen, "seccomp rule for %s: %s", r[i].syscall,
				 strerror(-rc));
			goto out;
		}
	}
	if ((rc = seccomp_load(ctx)) != 0)
		snprintf(err, errlen, "cannot load the seccomp filter: %s", strerror(-rc));
out:
	seccomp_release(ctx);
	return rc;
}

/* ---- Landlock ------------------------------------------------------------------------- */

/* Debian 12's headers know ABI 2; the kernels we run offer up to 7. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

/* struct landlock_ruleset_attr as of ABI 6 (the kernel accepts the prefix older ABIs know). */
struct sandbox_ll_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4; left 0: the network namespace does that job */
	uint64_t scoped;	     /* ABI 6 */
};

#define SANDBOX_LL_READ \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)

uint64_t
sandbox_landlock_fs_rights(int abi)
{
	uint64_t r = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */

	if (abi < 1)
		return 0;
	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return r;
}

int
sandbox_landlock_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return abi < 0 ? 0 : (int)abi;
}

static int
sandbox_landlock_rule(int rfd, const char *path, uint64_t access, char *err, size_t errlen)
{
	struct landlock_path_beneath_attr pb;
	int fd, rc = 0;

	if ((fd = open(path, O_PATH | O_CLOEXEC)) == -1)
		return errno == ENOENT ?
			       0 :
			       (snprintf(err, errlen, "landlock: %s: %s", path, strerror(errno)),
				-errno);
	memset(&pb, 0, sizeof(pb));
	pb.parent_fd = fd;
	pb.allowed_access = access;
	/* A file (not a directory) only takes the rights that make sense for files. */
	{
		struct stat sb;

		if (fstat(fd, &sb) == 0 && !S_ISDIR(sb.st_mode))
			pb.allowed_access &= LANDLOCK_ACCESS_FS_EXECUTE |
					     LANDLOCK_ACCESS_FS_WRITE_FILE |
					     LANDLOCK_ACCESS_FS_READ_FILE |
					     LANDLOCK_ACCESS_FS_TRUNCATE |
					     LANDLOCK_ACCESS_FS_IOCTL_DEV;
	}
	if (syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0) {
		rc = -errno;
		snprintf(err, errlen, "landlock rule for %s: %s", path, strerror(errno));
	}
	close(fd);
	return rc;
}

int
sandbox_landlock_apply(const char *const *writable, char *err, size_t errlen)
{
	struct sandbox_ll_attr attr;
	size_t size;
	uint64_t all;
	int abi = sandbox_landlock_abi(), rfd = -1, rc = 0, i;

	if (abi < 1)
		return 0;
	all = sandbox_landlock_fs_rights(abi);
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = all;
	size = sizeof(attr.handled_access_fs);
	if (abi >= 4)
		size = offsetof(struct sandbox_ll_attr, scoped);
	if (abi >= 6) {
		/* Signals and abstract unix sockets only within the sandbox. */
		attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	if ((rfd = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0)) < 0) {
		rc = -errno;
		snprintf(err, errlen, "landlock_create_ruleset (ABI %d): %s", abi, strerror(errno));
		return rc;
	}
	if ((rc = sandbox_landlock_rule(rfd, "/", SANDBOX_LL_READ, err, errlen)) != 0)
		goto out;
	for (i = 0; writable != NULL && writable[i] != NULL; i++)
		if ((rc = sandbox_landlock_rule(rfd, writable[i], all, err, errlen)) != 0)
			goto out;
	if (syscall(SYS_landlock_restrict_self, rfd, 0) != 0) {
		rc = -errno;
		snprintf(err, errlen, "landlock_restrict_self: %s", strerror(errno));
		goto out;
	}
	rc = abi;
out:
	close(rfd);
	return rc;
}

/* ---- cgroups --------------------------------------------------------------------------- */

int
sandbox_cgroup_parse(const char *mountinfo, const char *proc_cgroup, char *out, size_t outlen)
{
	char best[PATH_MAX] = "", mnt[PATH_MAX], fstype[64];
	const char *line, *nl, *sep, *path = NULL;
	size_t len;
	int rank = 0;

	/* mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS… - FSTYPE SOURCE SUPEROPTS" */
	for (line = mountinfo; line != NULL && *line != '\0'; line = nl != NULL ? nl + 1 : NULL) {
		char l[1024];
		int r;

		nl = strchr(line, '\n');
		len = nl != NULL ? (size_t)(nl - line) : strlen(line);
		if (len >= sizeof(l))
			continue;
		memcpy(l, line, len);
		l[len] = '\0';
		if ((sep = strstr(l, " - ")) == NULL || sscanf(sep + 3, "%63s", fstype) != 1 ||
		    strcmp(fstype, "cgroup2") != 0)
			continue;
		if (sscanf(l, "%*s %*s %*s %*s %4095s", mnt) != 1 || strchr(mnt, '\\') != NULL)
			continue;
		r = strcmp(mnt, "/sys/fs/cgroup") == 0	       ? 3 :
		    strcmp(mnt, "/sys/fs/cgroup/unified") == 0 ? 2 :
								 1;
		if (r > rank) {
			rank = r;
			snprintf(best, sizeof(best), "%s", mnt);
		}
	}
	if (rank == 0)
		return -1;
	for (line = proc_cgroup; line != NULL && *line != '\0'; line = nl != NULL ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (strncmp(line, "0::/", 4) == 0) {
			path = line + 3;
			len = nl != NULL ? (size_t)(nl - path) : strlen(path);
			break;
		}
	}
	if (path == NULL || memchr(path, '\\', len) != NULL)
		return -1;
	/* "(deleted)" or a path with ".." is not somewhere we create cgroups */
	{
		char p[PATH_MAX];

		if (len >= sizeof(p))
			return -1;
		memcpy(p, path, len);
		p[len] = '\0';
		if (strstr(p, "/..") != NULL || strstr(p, " (deleted)") != NULL)
			return -1;
		while (len > 1 && p[len - 1] == '/')
			p[--len] = '\0';
		if (snprintf(out, outlen, "%s%s", best, strcmp(p, "/") == 0 ? "" : p) >=
		    (int)outlen)
			return -1;
	}
	return 0;
}

static char *
sandbox_read_file(const char *path, size_t max)
{
	char *buf;
	size_t n = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	if ((buf = malloc(max + 1)) == NULL) {
		close(fd);
		return NULL;
	}
	while (n < max && (r = read(fd, buf + n, max - n)) > 0)
		n += (size_t)r;
	close(fd);
	buf[n] = '\0';
	return buf;
}

int
sandbox_cgroup_self(char *out, size_t outlen)
{
	char *mi = sandbox_read_file("/proc/self/mountinfo", 1024 * 1024);
	char *cg = sandbox_read_file("/proc/self/cgroup", 64 * 1024);
	int rc = -1;

	if (mi != NULL && cg != NULL)
		rc = sandbox_cgroup_parse(mi, cg, out, outlen);
	free(mi);
	free(cg);
	return rc;
}

/* Is tok one of the comma-separated words of list (len bytes)? */
static bool
sandbox_word_in(const char *list, size_t len, const char *tok)
{
	size_t tl = strlen(tok), i = 0, j;

	while (i < len) {
		for (j = i; j < len && list[j] != ','; j++)
			;
		if (j - i == tl && memcmp(list + i, tok, tl) == 0)
			return true;
		i = j + 1;
	}
	return false;
}

int
sandbox_cgroup_v1_parse(const char *mountinfo, const char *proc_cgroup, const char *controller,
			char *out, size_t outlen)
{
	char mnt[PATH_MAX] = "", root[PATH_MAX] = "", l[1024], m[PATH_MAX], r[PATH_MAX];
	char fstype[64], src[256], opts[512], p[PATH_MAX];
	const char *line, *nl, *c1, *c2;
	size_t len, rl;
	int rank = 0, rk;

	if (controller == NULL || controller[0] == '\0')
		return -1;
	for (line = mountinfo; line != NULL && *line != '\0'; line = nl != NULL ? nl + 1 : NULL) {
		const char *sep;

		nl = strchr(line, '\n');
		len = nl != NULL ? (size_t)(nl - line) : strlen(line);
		if (len >= sizeof(l))
			continue;
		memcpy(l, line, len);
		l[len] = '\0';
		if ((sep = strstr(l, " - ")) == NULL ||
		    sscanf(sep + 3, "%63s %255s %511s", fstype, src, opts) != 3 ||
		    strcmp(fstype, "cgroup") != 0 ||
		    !sandbox_word_in(opts, strlen(opts), controller))
			continue;
		if (sscanf(l, "%*s %*s %*s %4095s %4095s", r, m) != 2 || strchr(m, '\\') != NULL ||
		    strchr(r, '\\') != NULL)
			continue;
		/* the usual place first; a second mount of the same hierarchy elsewhere is a
		 * bind that we would only use if there is no other */
		rk = strncmp(m, "/sys/fs/cgroup/", 15) == 0 ? 2 : 1;
		if (rk > rank) {
			rank = rk;
			snprintf(mnt, sizeof(mnt), "%s", m);
			snprintf(root, sizeof(root), "%s", r);
		}
	}
	if (rank == 0)
		return -1;
	/* /proc/self/cgroup: "ID:CONTROLLERS:/path" */
	for (line = proc_cgroup; line != NULL && *line != '\0'; line = nl != NULL ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		len = nl != NULL ? (size_t)(nl - line) : strlen(line);
		if ((c1 = memchr(line, ':', len)) == NULL ||
		    (c2 = memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line))) == NULL ||
		    !sandbox_word_in(c1 + 1, (size_t)(c2 - c1 - 1), controller))
			continue;
		len -= (size_t)(c2 + 1 - line);
		if (len == 0 || len >= sizeof(p) || c2[1] != '/' ||
		    memchr(c2 + 1, '\\', len) != NULL)
			return -1;
		memcpy(p, c2 + 1, len);
		p[len] = '\0';
		if (strstr(p, "/..") != NULL || strstr(p, " (deleted)") != NULL)
			return -1;
		while (len > 1 && p[len - 1] == '/')
			p[--len] = '\0';
		/* the mount shows the hierarchy from root: our path must be below it */
		rl = strlen(root);
		while (rl > 1 && root[rl - 1] == '/')
			root[--rl] = '\0';
		if (strcmp(root, "/") != 0) {
			if (strncmp(p, root, rl) != 0 || (p[rl] != '\0' && p[rl] != '/'))
				return -1;
			memmove(p, p + rl, strlen(p + rl) + 1);
			if (p[0] == '\0')
				snprintf(p, sizeof(p), "/");
		}
		if (snprintf(out, outlen, "%s%s", mnt, strcmp(p, "/") == 0 ? "" : p) >= (int)outlen)
			return -1;
		return 0;
	}
	return -1;
}

int
sandbox_cgroup_v1_self(const char *controller, char *out, size_t outlen)
{
	char *mi = sandbox_read_file("/proc/self/mountinfo", 1024 * 1024);
	char *cg = sandbox_read_file("/proc/self/cgroup", 64 * 1024);
	int rc = -1;

	if (mi != NULL && cg != NULL)
		rc = sandbox_cgroup_v1_parse(mi, cg, controller, out, outlen);
	free(mi);
	free(cg);
	return rc;
}

/* ---- git repositories in the home ----------------------------------------------------- */

struct sandbox_git_walk {
	void (*found)(const char *rel, void *arg);
	void *arg;
	size_t dirs, repos;
};

static void
sandbox_git_walk(struct sandbox_git_walk *w, int dirfd, char *rel, size_t rellen, int depth)
{
	struct stat sb;
	struct dirent *de;
	DIR *d;
	int fd, sub;
	size_t nl;

	if (w->repos >= SANDBOX_GIT_MAX_REPOS)
		return;
	if (fstatat(dirfd, ".git", &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode)) {
		w->repos++;
		w->found(rel, w->arg);
	}
	if (depth >= SANDBOX_GIT_DEPTH)
		return;
	if ((fd = dup(dirfd)) == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL && w->repos < SANDBOX_GIT_MAX_REPOS &&
	       w->dirs < SANDBOX_GIT_MAX_DIRS) {
		/* hidden directories (.git itself, caches, .config …) are not entered */
		if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
			continue;
		nl = strlen(de->d_name);
		if (rellen + 1 + nl >= PATH_MAX)
			continue;
		sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub == -1)
			continue;
		w->dirs++;
		if (rellen > 0)
			rel[rellen] = '/';
		memcpy(rel + rellen + (rellen > 0), de->d_name, nl + 1);
		sandbox_git_walk(w, sub, rel, rellen + (rellen > 0) + nl, depth + 1);
		rel[rellen] = '\0';
		close(sub);
	}
	closedir(d);
}

size_t
sandbox_git_scan(int dirfd, void (*found)(const char *rel, void *arg), void *arg)
{
	struct sandbox_git_walk w = { found, arg, 0, 0 };
	char rel[PATH_MAX] = "";

	sandbox_git_walk(&w, dirfd, rel, 0, 0);
	return w.repos;
}

/* ---- the sandbox's own process -------------------------------------------------------- */

int
sandbox_loopback_up(void)
{
	struct ifreq ifr;
	int fd, rc = 0;

	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
		rc = -errno;
	} else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
			rc = -errno;
	}
	close(fd);
	return rc;
}

int
sandbox_drop_bounding(void)
{
	int cap;

	for (cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
			return -errno;
	return 0;
}

/* Binds the object at fd over itself with attributes set/cleared (non-recursive, so that
 * what is mounted below keeps its own flags). */
static int
sandbox_rebind(int fd, uint64_t set, uint64_t clr, bool recursive)
{
	struct mount_attr attr;
	int tfd, rc = 0;

	tfd = open_tree(fd, "",
			OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH |
				(recursive ? AT_RECURSIVE : 0));
	if (tfd == -1)
		return -errno;
	memset(&attr, 0, sizeof(attr));
	attr.attr_set = set;
	attr.attr_clr = clr;
	if (mount_setattr(tfd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0 ||
	    move_mount(tfd, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
		rc = -errno;
	close(tfd);
	return rc;
}

/* Binds the object at src over the file or directory at dst. */
static int
sandbox_bind_fd(int src, const char *dst)
{
	int tfd, rc = 0;

	if ((tfd = open_tree(src, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH)) == -1)
		return -errno;
	if (move_mount(tfd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) != 0)
		rc = -errno;
	close(tfd);
	return rc;
}

/* Opens rel below dirfd without following any symbolic link and without leaving dirfd. */
static int
sandbox_open_beneath(int dirfd, const char *rel, int flags)
{
	struct open_how how;

	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW);
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	return (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
}

static int
sandbox_protect_home(int homefd, const struct sandbox_mount *m, size_t homelen, uid_t uid,
		     gid_t gid, char *err, size_t errlen)
{
	const char *rel = m->path + homelen;
	char parent[PATH_MAX];
	const char *base;
	int fd, pfd, rc;

	while (*rel == '/')
		rel++;
	fd = sandbox_open_beneath(homefd, rel, O_PATH);
	if (fd == -1 && errno == ENOENT && (m->create || m->create_dir)) {
		/* Create it (the parent must exist; nothing else is created). */
		snprintf(parent, sizeof(parent), "%s", rel);
		base = strrchr(parent, '/');
		if (base != NULL) {
			parent[base - parent] = '\0';
			base = rel + (base - parent) + 1;
			pfd = sandbox_open_beneath(homefd, parent, O_PATH | O_DIRECTORY);
		} else {
			base = rel;
			pfd = dup(homefd);
		}
		if (pfd == -1)
			return 0; /* no parent: nothing there to protect */
		if (m->create_dir) {
			if (mkdirat(pfd, base, 0755) == 0)
				(void)!fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW);
		} else {
			int cfd = openat(pfd, base,
					 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
					 0644);

			if (cfd != -1) {
				(void)!fchown(cfd, uid, gid);
				close(cfd);
			}
		}
		close(pfd);
		fd = sandbox_open_beneath(homefd, rel, O_PATH);
	}
	/* O_PATH | O_NOFOLLOW opens a symbolic link itself: binding over the link would leave
	 * its target writable */
	if (fd != -1) {
		struct stat st;

		if (fstat(fd, &st) != 0 || S_ISLNK(st.st_mode)) {
			close(fd);
			fd = -1;
			errno = ELOOP;
		}
	}
	if (fd == -1) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		snprintf(err, errlen, "cannot protect %s: %s%s", m->path, strerror(errno),
			 errno == ELOOP || errno == EXDEV ?
				 " (a symbolic link: replace it with the file itself, or the "
				 "sandbox cannot keep it read-only)" :
				 "");
		return -1;
	}
	rc = sandbox_rebind(fd, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, true);
	close(fd);
	if (rc != 0) {
		snprintf(err, errlen, "cannot protect %s: %s", m->path, strerror(-rc));
		return -1;
	}
	return 0;
}

static const char *const sandbox_dev_nodes[] = {
	"null", "zero", "full", "random", "urandom", "tty", "ptmx", NULL,
};

static int
sandbox_dev(const int *nodefd, int ptsfd, char *err, size_t errlen)
{
	char path[64];
	struct mount_attr attr;
	size_t i;
	int fd, rc;

	if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") != 0) {
		snprintf(err, errlen, "tmpfs on /dev: %s", strerror(errno));
		return -1;
	}
	for (i = 0; sandbox_dev_nodes[i] != NULL; i++) {
		if (nodefd[i] == -1)
			continue;
		snprintf(path, sizeof(path), "/dev/%s", sandbox_dev_nodes[i]);
		if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666)) == -1 ||
		    close(fd) != 0 || (rc = sandbox_bind_fd(nodefd[i], path)) != 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(fd == -1 ? errno : -rc));
			return -1;
		}
	}
	if (ptsfd != -1 &&
	    (mkdir("/dev/pts", 0755) != 0 || (rc = sandbox_bind_fd(ptsfd, "/dev/pts")) != 0)) {
		snprintf(err, errlen, "/dev/pts: %s", strerror(errno));
		return -1;
	}
	if (symlink("/proc/self/fd", "/dev/fd") != 0 ||
	    symlink("/proc/self/fd/0", "/dev/stdin") != 0 ||
	    symlink("/proc/self/fd/1", "/dev/stdout") != 0 ||
	    symlink("/proc/self/fd/2", "/dev/stderr") != 0 || mkdir("/dev/shm", 01777) != 0 ||
	    chmod("/dev/shm", 01777) != 0 ||
	    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
		snprintf(err, errlen, "/dev: %s", strerror(errno));
		return -1;
	}
	memset(&attr, 0, sizeof(attr));
	attr.attr_set = MOUNT_ATTR_RDONLY;
	if (mount_setattr(AT_FDCWD, "/dev", 0, &attr, sizeof(attr)) != 0) {
		snprintf(err, errlen, "read-only /dev: %s", strerror(errno));
		return -1;
	}
	return 0;
}

struct sandbox_git_protect {
	int homefd;
	uid_t uid;
	gid_t gid;
	char *err;
	size_t errlen;
	int rc;
};

/* sandbox_git_scan's callback in pid 1: <repo>/.git/hooks (created if missing, so that the
 * sandbox cannot create it) and <repo>/.git/config, read-only. */
static void
sandbox_git_protect_cb(const char *rel, void *arg)
{
	struct sandbox_git_protect *gp = arg;
	struct sandbox_mount m;
	char path[PATH_MAX];
	int i;

	if (gp->rc != 0)
		return;
	for (i = 0; i < 2; i++) {
		memset(&m, 0, sizeof(m));
		if (snprintf(path, sizeof(path), "/%s%s.git/%s", rel, rel[0] != '\0' ? "/" : "",
			     i == 0 ? "hooks" : "config") >= (int)sizeof(path))
			return;
		m.kind = SANDBOX_MOUNT_PROTECT;
		m.path = path;
		m.in_home = true;
		m.create_dir = i == 0;
		m.create = i == 1;
		if (sandbox_protect_home(gp->homefd, &m, 0, gp->uid, gp->gid, gp->err,
					 gp->errlen) != 0) {
			gp->rc = -1;
			return;
		}
	}
}

int
sandbox_mounts_apply(const struct sandbox_plan *p, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	int nodefd[sizeof(sandbox_dev_nodes) / sizeof(sandbox_dev_nodes[0])];
	struct mount_attr attr;
	struct stat sb;
	size_t i, homelen = strlen(p->home);
	int ptsfd = -1, homefd = -1, fd, rc = -1, r;

	for (i = 0; i < sizeof(nodefd) / sizeof(nodefd[0]); i++)
		nodefd[i] = -1;
	/* Private, not slave: a mount the host makes later must not appear in here, writable. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		snprintf(err, errlen, "making / private: %s", strerror(errno));
		goto out;
	}
	for (i = 0; sandbox_dev_nodes[i] != NULL; i++) {
		char path[64];

		snprintf(path, sizeof(path), "/dev/%s", sandbox_dev_nodes[i]);
		nodefd[i] = open(path, O_PATH | O_CLOEXEC | O_NOFOLLOW);
		if (nodefd[i] != -1 && (fstat(nodefd[i], &sb) != 0 || !S_ISCHR(sb.st_mode))) {
			close(nodefd[i]);
			nodefd[i] = -1;
		}
	}
	ptsfd = open("/dev/pts", O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

	memset(&attr, 0, sizeof(attr));
	attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID;
	if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &attr, sizeof(attr)) != 0) {
		snprintf(err, errlen, "making the filesystem read-only: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < p->n; i++) {
		const struct sandbox_mount *m = &p->m[i];

		switch (m->kind) {
		case SANDBOX_MOUNT_WRITABLE:
			fd = open(m->path, O_PATH | O_CLOEXEC | O_NOFOLLOW);
			if (fd == -1 && m->optional && errno == ENOENT)
				break;
			if (fd == -1 || fstat(fd, &sb) != 0) {
				snprintf(err, errlen, "writable %s: %s", m->path, strerror(errno));
				goto out;
			}
			if (S_ISLNK(sb.st_mode) ||
			    (i == 0 && (!S_ISDIR(sb.st_mode) || sb.st_uid != uid))) {
				close(fd);
				snprintf(err, errlen,
					 i == 0 ? "home %s must be a directory owned by the user" :
						  "writable %s is a symbolic link",
					 m->path);
				goto out;
			}
			r = sandbox_rebind(fd, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
					   MOUNT_ATTR_RDONLY, true);
			close(fd);
			if (r != 0) {
				snprintf(err, errlen, "writable %s: %s", m->path, strerror(-r));
				goto out;
			}
			break;
		case SANDBOX_MOUNT_TMPFS:
		case SANDBOX_MOUNT_HIDE:
			if (stat(m->path, &sb) != 0 && m->optional)
				break;
			if (mount("tmpfs", m->path, "tmpfs",
				  MS_NOSUID | MS_NODEV |
					  (m->kind == SANDBOX_MOUNT_HIDE ? MS_RDONLY | MS_NOEXEC :
									   0),
				  m->kind == SANDBOX_MOUNT_HIDE ? "mode=0755,size=4k" :
								  "mode=1777") != 0) {
				snprintf(err, errlen, "tmpfs on %s: %s", m->path, strerror(errno));
				goto out;
			}
			break;
		case SANDBOX_MOUNT_PROTECT:
			if (m->in_home) {
				/* the home as mounted now (the writable bind above) */
				if (homefd == -1 &&
				    (homefd = open(p->home, O_PATH | O_DIRECTORY | O_CLOEXEC)) ==
					    -1) {
					snprintf(err, errlen, "%s: %s", p->home, strerror(errno));
					goto out;
				}
				if (sandbox_protect_home(homefd, m, homelen, uid, gid, err,
							 errlen) != 0)
					goto out;
				break;
			}
			fd = open(m->path, O_PATH | O_CLOEXEC | O_NOFOLLOW);
			if (fd == -1 && errno == ENOENT)
				break;
			r = fd == -1 ? -errno :
				       sandbox_rebind(fd,
						      MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
							      MOUNT_ATTR_NODEV,
						      0, true);
			if (fd != -1)
				close(fd);
			if (r != 0) {
				snprintf(err, errlen, "cannot protect %s: %s", m->path,
					 strerror(-r));
				goto out;
			}
			break;
		}
	}
	if (p->protect_git) {
		struct sandbox_git_protect gp = { -1, uid, gid, err, errlen, 0 };
		int scanfd;

		if (homefd == -1 &&
		    (homefd = open(p->home, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
			snprintf(err, errlen, "%s: %s", p->home, strerror(errno));
			goto out;
		}
		gp.homefd = homefd;
		if ((scanfd = openat(homefd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
			(void)sandbox_git_scan(scanfd, sandbox_git_protect_cb, &gp);
			close(scanfd);
		}
		if (gp.rc != 0)
			goto out;
	}
	if (sandbox_dev(nodefd, ptsfd, err, errlen) != 0)
		goto out;
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
		snprintf(err, errlen, "fresh /proc: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	for (i = 0; i < sizeof(nodefd) / sizeof(nodefd[0]); i++)
		if (nodefd[i] != -1)
			close(nodefd[i]);
	if (ptsfd != -1)
		close(ptsfd);
	if (homefd != -1)
		close(homefd);
	return rc;
}

ssize_t
sandbox_ctl_recvmsg(int fd, struct msghdr *mh, int flags)
{
	ssize_t n = recvmsg(fd, mh, flags);

	if (n < 0 && errno == ECONNRESET)
		n = recvmsg(fd, mh, flags);
	return n;
}

ssize_t
sandbox_ctl_recv(int fd, void *buf, size_t len, int flags)
{
	struct iovec iov = { buf, len };
	struct msghdr mh;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	return sandbox_ctl_recvmsg(fd, &mh, flags);
}
