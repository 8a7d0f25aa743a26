/*
 * saw-guestd's sandbox launcher (guestd-sandbox.c): every brokered login that sshd hands to
 * saw-session runs in a sandbox that guestd creates, watches and ends (invariant 8: the host
 * owns the lifecycle; the agent never chooses its sandbox or its policy).
 *
 *   saw-session ──ControlSocket── {"op":"session_exec",…} + stdin/stdout/stderr (SCM_RIGHTS)
 *   guestd: checks the peer (SO_PEERCRED uid = the user, not inside a sandbox) and the
 *           session (live, bound to the key the login used), then forks:
 *     monitor (root, guestd's pid ns): joins the login's cgroup, unshares mount/pid/ipc/uts/
 *             net namespaces, forks the sandbox's pid 1, relays its exit status
 *     pid 1   (root → the user): mounts (sandbox.h), takes the terminal, becomes the user,
 *             user namespace, no_new_privs, bounding set, Landlock, seccomp, then execs
 *             saw-sandbox-init (this binary again), which runs the shell and reaps orphans
 *   guestd: creates the proxy listeners inside the sandbox's network namespace
 *           (proxy_listen_fds), says "go", answers {"ok":true,"session":ID}; later
 *           {"exit":N}, or {"exit":255,"ended":REASON} when it ended the sandbox itself.
 *
 * Ending: the session's end (broker END, expiry, revocation), the login's connection closing,
 * or saw-guestd stopping: cgroup.kill where cgroup v2 has it, and SIGKILL to the sandbox's
 * pid 1 (which takes every process of its pid namespace with it) in any case.
 *
 * Ownership: struct gsandboxes belongs to struct guestd (gsandbox_init/gsandbox_free_all).
 */
#ifndef SAW_GUESTD_SANDBOX_GUESTD_H
#define SAW_GUESTD_SANDBOX_GUESTD_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

struct guestd;
struct sandbox_env;

/* The name saw-guestd runs under as the sandbox's init (argv[0]). */
#define GSANDBOX_INIT_NAME "saw-sandbox-init"

int gsandbox_init(struct guestd *g);
/* Ends every sandbox (saw-guestd is stopping) and frees the table. */
void gsandbox_free_all(struct guestd *g, const char *reason);

/*
 * The ControlSocket's session_exec: fd is the client's connection (dup'ed on success), uid and
 * pid its SO_PEERCRED, fds the descriptors it sent (always consumed: closed or kept).
 * Returns NULL when the sandbox started (guestd-sandbox.c answers on its copy of fd from
 * then on), or the error answer to send (new reference).
 */
json_t *gsandbox_exec(struct guestd *g, int fd, uid_t uid, pid_t pid, const json_t *req, int *fds,
		      size_t nfds);

/* The session ended (reason in plain words): end its sandboxes. */
void gsandbox_session_end(struct guestd *g, const char *session_id, const char *reason);

/* How many sandboxes run (status). */
size_t gsandbox_count(struct guestd *g);

/* main() of saw-sandbox-init: run argv[1] with argv[2…] (argv[2] is its argv[0]), forward
 * SIGHUP/SIGTERM/SIGINT/SIGQUIT to it, reap every orphan, exit with its status. */
int gsandbox_init_main(int argc, char **argv);

#endif
