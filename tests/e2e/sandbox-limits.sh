#!/bin/bash
# Runs INSIDE a brokered login's sandbox (tests/e2e/sandbox-cgroup.sh): git repositories'
# hooks and config are read-only, then a bounded fork bomb and a memory hog against the
# policy's limits; prints "name=value" lines, then "ready", and waits to be killed.
# Argument: MAXFORKS (the fork bomb's own bound, above the policy's nproc).
maxforks=$1
try() { if "$@" >/dev/null 2>&1; then echo ok; else echo denied; fi; }
echo "git_hook_write=$(try sh -c 'echo "#!/bin/sh" >"$HOME/proj/app/.git/hooks/pre-commit"')"
echo "git_hook_existing=$(try sh -c 'echo "evil" >>"$HOME/proj/app/.git/hooks/post-checkout"')"
echo "git_config_write=$(try sh -c 'printf "[core]\n\thooksPath = /tmp\n" >>"$HOME/proj/app/.git/config"')"
echo "git_nohooks_write=$(try sh -c 'echo x >"$HOME/d1/d2/d3/repo/.git/hooks/pre-push"')"
echo "git_nohooks_mkdir=$(try mkdir "$HOME/d1/d2/d3/repo/.git/hooks/x")"
# a repository made during the session is not protected (saw-policy(5)): reported only
echo "git_new_repo_write=$(try sh -c 'mkdir -p "$HOME/newrepo/.git/hooks" && echo x >"$HOME/newrepo/.git/hooks/pre-commit"')"
echo "git_top_write=$(try sh -c 'echo x >"$HOME/.git/hooks/pre-commit"')"
echo "gitconfig_write=$(try sh -c 'echo "[core]" >>"$HOME/.gitconfig"')"
echo "repo_file_write=$(try touch "$HOME/proj/app/README")"
echo "repo_objects_write=$(try touch "$HOME/proj/app/.git/objects/x")"
# The fork bomb: children that sleep until killed; count until fork fails or the bound.
/usr/bin/python3 - "$maxforks" <<'PY'
import errno, os, sys, time
n, err, children = 0, "none", []
for _ in range(int(sys.argv[1])):
    try:
        pid = os.fork()
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno))
        break
    if pid == 0:
        time.sleep(3600)
        os._exit(0)
    n += 1
    children.append(pid)
print("forks=%d" % n)
print("fork_error=%s" % err)
sys.stdout.flush()
for pid in children:
    os.kill(pid, 9)
for pid in children:
    os.waitpid(pid, 0)
PY
# The memory hog: touches 512 MiB.
/usr/bin/python3 -c 'x = b"x" * (512 << 20); print(len(x))' >/dev/null 2>&1
echo "hog_rc=$?"
# processes that the session's end must kill
sleep 601 &
(setsid sleep 602 &)
nohup sleep 603 >/dev/null 2>&1 &
echo ready
exec sleep 600
