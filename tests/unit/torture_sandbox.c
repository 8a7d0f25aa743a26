/*
 * guestd/sandbox.c: the pure helpers of the per-login sandbox.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <linux/netlink.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "guestd/sandbox.h"

static const struct sandbox_mount *
find(const struct sandbox_plan *p, enum sandbox_mount_kind k, const char *path)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (p->m[i].kind == k && strcmp(p->m[i].path, path) == 0)
			return &p->m[i];
	return NULL;
}

static void
test_normalize(void **state)
{
	char out[64];

	assert_int_equal(sandbox_path_normalize("/a//b/./c/", out, sizeof(out)), 0);
	assert_string_equal(out, "/a/b/c");
	assert_int_equal(sandbox_path_normalize("/a/b/../c", out, sizeof(out)), 0);
	assert_string_equal(out, "/a/c");
	assert_int_equal(sandbox_path_normalize("/", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(sandbox_path_normalize("/..", out, sizeof(out)), -1);
	assert_int_equal(sandbox_path_normalize("relative", out, sizeof(out)), -1);
	assert_int_equal(sandbox_path_normalize("/aaaaaaaaaa", out, 5), -1);
}

static void
test_plan(void **state)
{
	const char *writable[] = { "/srv/data/", "/srv/data", NULL };
	const char *protect[] = { ".git/hooks", "/srv/data/ro", ".bashrc", NULL };
	struct sandbox_plan p;
	const struct sandbox_mount *m;
	char err[256];

	assert_int_equal(sandbox_plan_build(&p, "/home/alice/", writable, protect, "/var/lib/saw",
					    err, sizeof(err)),
			 0);
	assert_string_equal(p.home, "/home/alice");
	/* the home first, writable and required */
	assert_int_equal(p.m[0].kind, SANDBOX_MOUNT_WRITABLE);
	assert_string_equal(p.m[0].path, "/home/alice");
	assert_false(p.m[0].optional);
	/* "/srv/data/" and "/srv/data" are one mount */
	assert_non_null(m = find(&p, SANDBOX_MOUNT_WRITABLE, "/srv/data"));
	assert_true(m->optional);
	assert_non_null(find(&p, SANDBOX_MOUNT_TMPFS, "/tmp"));
	assert_non_null(find(&p, SANDBOX_MOUNT_TMPFS, "/var/tmp"));
	assert_non_null(find(&p, SANDBOX_MOUNT_HIDE, "/run"));
	assert_non_null(find(&p, SANDBOX_MOUNT_HIDE, "/var/lib/saw"));
	/* built-in: .bashrc created if missing; .profile only if present */
	assert_non_null(m = find(&p, SANDBOX_MOUNT_PROTECT, "/home/alice/.bashrc"));
	assert_true(m->in_home);
	assert_true(m->create);
	assert_non_null(m = find(&p, SANDBOX_MOUNT_PROTECT, "/home/alice/.profile"));
	assert_false(m->create);
	assert_true(m->optional);
	assert_non_null(m = find(&p, SANDBOX_MOUNT_PROTECT, "/home/alice/.git/hooks"));
	assert_true(m->in_home);
	assert_non_null(m = find(&p, SANDBOX_MOUNT_PROTECT, "/srv/data/ro"));
	assert_false(m->in_home);
	/* protected after writable: the read-only binds go on top */
	assert_true(find(&p, SANDBOX_MOUNT_PROTECT, "/home/alice/.bashrc") >
		    find(&p, SANDBOX_MOUNT_WRITABLE, "/home/alice"));
	sandbox_plan_free(&p);

	/* a control socket below /run or /tmp is hidden anyway: no second mount */
	assert_int_equal(
		sandbox_plan_build(&p, "/home/bob", NULL, NULL, "/run/saw", err, sizeof(err)), 0);
	assert_null(find(&p, SANDBOX_MOUNT_HIDE, "/run/saw"));
	sandbox_plan_free(&p);
}

static void
test_plan_refusals(void **state)
{
	static const char *const bad_writable[] = {
		"/", "/etc", "/usr", "/proc/sys", "/dev/shm", "relative", "/var/lib/saw/x", NULL
	};
	static const char *const bad_protect[] = { "../x", "a/../b", "./a", "a//b", NULL };
	struct sandbox_plan p;
	char err[256];
	size_t i;

	for (i = 0; bad_writable[i] != NULL; i++) {
		const char *w[] = { bad_writable[i], NULL };

		assert_int_equal(sandbox_plan_build(&p, "/home/a", w, NULL, "/var/lib/saw", err,
						    sizeof(err)),
				 -1);
		assert_non_null(strstr(err, "refused"));
		assert_int_equal(p.n, 0);
	}
	for (i = 0; bad_protect[i] != NULL; i++) {
		const char *pr[] = { bad_protect[i], NULL };

		assert_int_equal(
			sandbox_plan_build(&p, "/home/a", NULL, pr, NULL, err, sizeof(err)), -1);
	}
	assert_int_equal(sandbox_plan_build(&p, "/", NULL, NULL, NULL, err, sizeof(err)), -1);
	assert_int_equal(sandbox_plan_build(&p, "/etc", NULL, NULL, NULL, err, sizeof(err)), -1);
	assert_int_equal(sandbox_plan_build(&p, NULL, NULL, NULL, NULL, err, sizeof(err)), -1);
}

static void
test_env(void **state)
{
	struct sandbox_env e;
	struct sandbox_env_params p = { "alice", "/home/alice", "/bin/bash", "s1",
					"xterm-256color" };
	size_t i;

	sandbox_env_init(&e);
	sandbox_env_base(&e, &p);
	assert_false(e.error);
	assert_string_equal(sandbox_env_get(&e, "HOME"), "/home/alice");
	assert_string_equal(sandbox_env_get(&e, "USER"), "alice");
	assert_string_equal(sandbox_env_get(&e, "SAW_SESSION"), "s1");
	assert_string_equal(sandbox_env_get(&e, "HTTP_PROXY"), "http://127.0.0.1:3128");
	assert_string_equal(sandbox_env_get(&e, "https_proxy"), "http://127.0.0.1:3128");
	assert_string_equal(sandbox_env_get(&e, "TERM"), "xterm-256color");
	assert_null(sandbox_env_get(&e, "LD_PRELOAD"));
	assert_null(e.v[e.n]);
	/* the credential proxy's hook: added, replaced, never a bad key */
	sandbox_env_add(&e, "SAW_CAP_OPENAI", "tok1");
	sandbox_env_add(&e, "SAW_CAP_OPENAI", "tok2");
	assert_string_equal(sandbox_env_get(&e, "SAW_CAP_OPENAI"), "tok2");
	for (i = 0; i < e.n; i++)
		assert_false(strcmp(e.v[i], "SAW_CAP_OPENAI=tok1") == 0);
	assert_false(e.error);
	sandbox_env_add(&e, "BAD=KEY", "x");
	assert_true(e.error);
	sandbox_env_free(&e);

	/* a TERM with shell metacharacters is dropped */
	p.term = "xterm;rm -rf ~";
	sandbox_env_init(&e);
	sandbox_env_base(&e, &p);
	assert_null(sandbox_env_get(&e, "TERM"));
	assert_false(e.error);
	sandbox_env_free(&e);

	/* a full table is an error, not a silent drop */
	sandbox_env_init(&e);
	for (i = 0; i <= SANDBOX_MAX_ENV; i++) {
		char k[16];

		snprintf(k, sizeof(k), "K%zu", i);
		sandbox_env_add(&e, k, "v");
	}
	assert_true(e.error);
	assert_int_equal(e.n, SANDBOX_MAX_ENV);
	sandbox_env_free(&e);
}

static const struct sandbox_sc_rule *
rule(const char *name, uint64_t value)
{
	const struct sandbox_sc_rule *r;
	size_t i, n;

	r = sandbox_seccomp_rules(&n);
	for (i = 0; i < n; i++)
		if (strcmp(r[i].syscall, name) == 0 && (value == 0 || r[i].value == value))
			return &r[i];
	return NULL;
}

static void
test_seccomp_table(void **state)
{
	static const char *const denied[] = {
		"ptrace",
		"mount",
		"umount2",
		"bpf",
		"kexec_load",
		"kexec_file_load",
		"init_module",
		"finit_module",
		"delete_module",
		"io_uring_setup",
		"io_uring_enter",
		"io_uring_register",
		"process_vm_readv",
		"process_vm_writev",
		"pivot_root",
		"keyctl",
		"userfaultfd",
		"perf_event_open",
		NULL,
	};
	const struct sandbox_sc_rule *r;
	size_t i;

	for (i = 0; denied[i] != NULL; i++) {
		assert_non_null(r = rule(denied[i], 0));
		assert_int_equal(r->cmp, SANDBOX_SC_ALWAYS);
		assert_int_equal(r->err, EPERM);
	}
	assert_null(rule("memfd_create", 0)); /* GPU stacks need it */
	/* ioctl's command is 32 bits: the mask keeps garbage in the upper half from slipping by */
	assert_non_null(r = rule("ioctl", TIOCSTI));
	assert_int_equal(r->mask, 0xffffffffu);
	assert_non_null(r = rule("unshare", CLONE_NEWUSER));
	assert_int_equal(r->mask, CLONE_NEWUSER);
	assert_non_null(r = rule("clone", CLONE_NEWUSER));
	assert_non_null(r = rule("clone3", 0));
	assert_int_equal(r->err, ENOSYS);
}

/* The filter itself, loaded in a child (it cannot be unloaded). */
static void
test_seccomp_load(void **state)
{
	char err[256];
	pid_t pid;
	int st;

	if ((pid = fork()) == 0) {
		int fd, bad = 0;

		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
		    sandbox_seccomp_load(err, sizeof(err)) != 0)
			_exit(100);
#define DENIED(expr) ((expr) == -1 && errno == EPERM)
		bad |= !DENIED(unshare(CLONE_NEWUSER)) << 0;
		bad |= !DENIED(socket(AF_PACKET, SOCK_RAW, 0)) << 1;
		bad |= !DENIED(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, 1)) << 2;
		bad |= !DENIED(socket(AF_INET6, SOCK_RAW, 58)) << 3;
		bad |= !DENIED(socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT)) << 4;
		bad |= !DENIED(ioctl(0, TIOCSTI, "x")) << 5;
		if ((fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)) < 0)
			bad |= 1 << 6;
		else
			close(fd);
		if ((fd = memfd_create("t", 0)) < 0)
			bad |= 1 << 7;
		else
			close(fd);
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
			bad |= 1 << 8;
		else
			close(fd);
		_exit(bad);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void
test_landlock_rights(void **state)
{
	assert_int_equal(sandbox_landlock_fs_rights(0), 0);
	assert_int_equal(sandbox_landlock_fs_rights(1), (1ULL << 13) - 1);
	assert_int_equal(sandbox_landlock_fs_rights(2), (1ULL << 14) - 1);
	assert_int_equal(sandbox_landlock_fs_rights(3), (1ULL << 15) - 1);
	assert_int_equal(sandbox_landlock_fs_rights(4), (1ULL << 15) - 1);
	assert_int_equal(sandbox_landlock_fs_rights(5), (1ULL << 16) - 1);
	assert_int_equal(sandbox_landlock_fs_rights(7), (1ULL << 16) - 1);
	assert_true(sandbox_landlock_abi() >= 0);
}

static void
test_cgroup_parse(void **state)
{
	static const char hybrid[] =
		"25 1 0:22 / /sys rw,nosuid - sysfs sysfs rw\n"
		"30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
		"31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"
		"32 30 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
	static const char pure[] = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
	static const char v1only[] = "32 30 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw\n";
	char out[256];

	assert_int_equal(sandbox_cgroup_parse(hybrid, "8:pids:/x\n0::/\n", out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup/unified");
	assert_int_equal(sandbox_cgroup_parse(pure, "0::/system.slice/saw-guestd.service\n", out,
					      sizeof(out)),
			 0);
	assert_string_equal(out, "/sys/fs/cgroup/system.slice/saw-guestd.service");
	assert_int_equal(sandbox_cgroup_parse(v1only, "0::/\n", out, sizeof(out)), -1);
	assert_int_equal(sandbox_cgroup_parse(pure, "4:memory:/x\n", out, sizeof(out)), -1);
	assert_int_equal(sandbox_cgroup_parse(pure, "0::/a/../b\n", out, sizeof(out)), -1);
	assert_int_equal(sandbox_cgroup_parse(pure, "0::/x\n", out, 10), -1);
}

static void
test_cgroup_v1_parse(void **state)
{
	static const char hybrid[] =
		"30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
		"31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"
		"32 30 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
		"33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
		"34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
	/* a container that sees only its own subtree of the memory hierarchy */
	static const char sub[] = "33 30 0:29 /lxc/c1 /sys/fs/cgroup/memory rw - cgroup cgroup "
				  "rw,memory\n";
	static const char pcg[] = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/ab12\n"
				  "2:cpu,cpuacct:/x\n0::/\n";
	char out[256];

	assert_int_equal(sandbox_cgroup_v1_parse(hybrid, pcg, "pids", out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup/pids");
	assert_int_equal(sandbox_cgroup_v1_parse(hybrid, pcg, "memory", out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup/memory/process_api/ab12");
	/* "cpu" is a word of "cpu,cpuacct", "cpuac" is not */
	assert_int_equal(sandbox_cgroup_v1_parse(hybrid, pcg, "cpu", out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup/cpu,cpuacct/x");
	assert_int_equal(sandbox_cgroup_v1_parse(hybrid, pcg, "cpuac", out, sizeof(out)), -1);
	/* no v1 hierarchy of that controller mounted, or no line for it */
	assert_int_equal(sandbox_cgroup_v1_parse(hybrid, pcg, "blkio", out, sizeof(out)), -1);
	assert_int_equal(sandbox_cgroup_v1_parse(hybrid, "0::/\n", "pids", out, sizeof(out)), -1);
	/* the cgroup2 mount never counts as v1 */
	assert_int_equal(sandbox_cgroup_v1_parse("31 30 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 "
						 "rw\n",
						 "0::/\n", "pids", out, sizeof(out)),
			 -1);
	/* a subtree mount: the path is relative to the mount's root */
	assert_int_equal(
		sandbox_cgroup_v1_parse(sub, "4:memory:/lxc/c1/job\n", "memory", out, sizeof(out)),
		0);
	assert_string_equal(out, "/sys/fs/cgroup/memory/job");
	assert_int_equal(
		sandbox_cgroup_v1_parse(sub, "4:memory:/other\n", "memory", out, sizeof(out)), -1);
	assert_int_equal(
		sandbox_cgroup_v1_parse(hybrid, "8:pids:/a/../b\n", "pids", out, sizeof(out)), -1);
	assert_int_equal(sandbox_cgroup_v1_parse(hybrid, pcg, "memory", out, 20), -1);
}

static void
test_git_found(const char *rel, void *arg)
{
	char *acc = arg;

	strcat(acc, "[");
	strcat(acc, rel);
	strcat(acc, "]");
}

static void
test_git_scan(void **state)
{
	char dir[] = "/tmp/torture-sandbox-git.XXXXXX", path[512], acc[4096] = "";
	static const char *const dirs[] = {
		".git",
		"a",
		"a/r1",
		"a/r1/.git",
		"a/r1/sub",
		"a/r1/sub/.git",
		".hidden",
		".hidden/r2",
		".hidden/r2/.git",
		"b",
		"b/c",
		"b/c/d",
		"b/c/d/r3",
		"b/c/d/r3/.git",
		"b/c/d/r3/e",
		"b/c/d/r3/e/r4",
		"b/c/d/r3/e/r4/.git",
		"f",
		"f/r5",
		NULL,
	};
	size_t i, n;
	int fd;

	assert_non_null(mkdtemp(dir));
	for (i = 0; dirs[i] != NULL; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, dirs[i]);
		assert_int_equal(mkdir(path, 0700), 0);
	}
	/* a .git that is a file (a worktree) is not a repository here; a symbolic link to a
	 * repository is not followed */
	snprintf(path, sizeof(path), "%s/f/r5/.git", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/link", dir);
	assert_int_equal(symlink("a/r1", path), 0);
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	n = sandbox_git_scan(fd, test_git_found, acc);
	close(fd);
	/* the home itself, nested repositories, depth 4 (b/c/d/r3) but not 6; not .hidden */
	assert_int_equal(n, 4);
	assert_non_null(strstr(acc, "[]"));
	assert_non_null(strstr(acc, "[a/r1]"));
	assert_non_null(strstr(acc, "[a/r1/sub]"));
	assert_non_null(strstr(acc, "[b/c/d/r3]"));
	assert_null(strstr(acc, "r4"));
	assert_null(strstr(acc, "hidden"));
	assert_null(strstr(acc, "r5"));
	assert_null(strstr(acc, "link"));
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

/* pid 1 fails before it reads guestd's "G": it sends its "E" and closes with "G" unread. The
 * kernel then reports ECONNRESET to guestd before the queued "E"; the "E" must still be read
 * (the failed Launch event names its reason), then EOF. */
static void
test_ctl_recv_reset(void **state)
{
	char buf[64];
	int sp[2];
	ssize_t n;

	(void)state;
	/* the kernel's behaviour, with a plain recv: the reset first, the message after it */
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(send(sp[0], "G", 1, MSG_NOSIGNAL), 1);
	assert_int_equal(send(sp[1], "Eno", 3, MSG_NOSIGNAL), 3);
	close(sp[1]);
	assert_int_equal(recv(sp[0], buf, sizeof(buf), MSG_DONTWAIT), -1);
	assert_int_equal(errno, ECONNRESET);
	assert_int_equal(recv(sp[0], buf, sizeof(buf), MSG_DONTWAIT), 3);
	close(sp[0]);

	/* the helper reads the message at once */
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(send(sp[0], "G", 1, MSG_NOSIGNAL), 1);
	assert_int_equal(send(sp[1], "Ehome must be owned", 19, MSG_NOSIGNAL), 19);
	close(sp[1]);
	n = sandbox_ctl_recv(sp[0], buf, sizeof(buf), MSG_DONTWAIT);
	assert_int_equal(n, 19);
	assert_memory_equal(buf, "Ehome must be owned", 19);
	assert_int_equal(sandbox_ctl_recv(sp[0], buf, sizeof(buf), MSG_DONTWAIT), 0); /* EOF */
	close(sp[0]);

	/* without a reset: messages, then EOF; an empty queue is EAGAIN, not a reset */
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(sandbox_ctl_recv(sp[0], buf, sizeof(buf), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(send(sp[1], "S", 1, MSG_NOSIGNAL), 1);
	close(sp[1]);
	assert_int_equal(sandbox_ctl_recv(sp[0], buf, sizeof(buf), MSG_DONTWAIT), 1);
	assert_int_equal(buf[0], 'S');
	assert_int_equal(sandbox_ctl_recv(sp[0], buf, sizeof(buf), MSG_DONTWAIT), 0);
	close(sp[0]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),	cmocka_unit_test(test_plan),
		cmocka_unit_test(test_plan_refusals),	cmocka_unit_test(test_env),
		cmocka_unit_test(test_seccomp_table),	cmocka_unit_test(test_seccomp_load),
		cmocka_unit_test(test_landlock_rights), cmocka_unit_test(test_cgroup_parse),
		cmocka_unit_test(test_cgroup_v1_parse), cmocka_unit_test(test_git_scan),
		cmocka_unit_test(test_ctl_recv_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
