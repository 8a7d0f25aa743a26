#!/usr/bin/env bash
# Issue #5, the sandbox's cgroups, Process Activity audit and protected git repositories,
# inside real brokered logins (sandbox.sh's setup: ssh -J through the netns lab to an sshd
# whose ForceCommand is saw-session). saw-guestd runs in the workspace's network namespace
# but the host's mount namespace (sbx_guestd_hostmnt), so it sees /sys/fs/cgroup: on a
# v1/v2 hybrid the login gets a v2 cgroup (cgroup.kill) and v1 pids and memory cgroups with
# the policy's limits (nproc, memory).
#   - a login whose sandbox cannot be built (a home the user does not own) fails, and the broker's
#     audit log holds a failed Process Activity Launch with the reason;
#   - in a login: the hooks and config of the git repositories in the home are read-only;
#     a fork bomb stops at pids.max (pids.events counts it); a memory hog is killed by the
#     memory cgroup's OOM killer;
#   - the broker's audit log holds Launch events (pid 1 and the command) for the user and
#     the session;
#   - revocation kills every process; the login's cgroup directories (v2, v1 pids, v1
#     memory) are removed; the audit log holds Terminate events with the exit code.
# Without a cgroup hierarchy to use (no v1 pids/memory and no v2 controllers) the limit
# checks are skipped with a message, the rest still runs.
. "$(dirname "$0")/netns-lab.sh"
. "$(dirname "$0")/sandbox-lib.sh"
. "$(dirname "$0")/broker-common.sh"

NPROC=48
MEMORY=96M
MAXFORKS=400

lab_up
cat >"$T/policy.json" <<JSON
{
  "version": 1,
  "profile": "corporate",
  "egress": [],
  "limits": { "nproc": $NPROC, "memory": "$MEMORY" }
}
JSON
chmod 0644 "$T/policy.json"
LAB_GUESTD_EXTRA+=("SandboxLandlock required" "PolicyFile $T/policy.json")
sbx_guestd_hostmnt
lab_saw_up
lab_ws_sshd_sandbox
install -m 0755 -o root -g root "$SAW_SRC/tests/e2e/sandbox-limits.sh" "$LAB_LIBDIR/sandbox-limits.sh"
GLOG=$LAB_DIR/ws/guestd.log

key=$(make_key user)
cfg=$(lab_ssh_config "$key")
jump=$LAB_USER@127.0.0.1:$BROKER_PORT
WS=$LAB_WS_NAME
H=$(getent passwd "$LAB_USER" | cut -d: -f6)

# --- a sandbox that cannot be built: a failed Launch -------------------------------------------
chown root "$H"
rc=0
lab_ssh -F "$cfg" -J "$jump" "$WS" true >"$T/fail.out" 2>"$T/fail.err" || rc=$?
chown "$LAB_USER" "$H"
assert_status "$rc" 255 "a login whose sandbox cannot be built (home owned by root) fails"
assert_contains "$T/fail.err" "sandbox" "the login is told its sandbox could not start"
sid=$(lab_sawctl sessions --user "$LAB_USER" 2>/dev/null | awk 'NR > 1 && $1 != "" { print $1; exit }')
check "sawctl lists the session ($sid)" test -n "$sid"
assert_audit 1 "audit: a failed Process Activity Launch names the reason, the user and the session" \
	class_uid=1007 activity_id=1 status_id=2 actor.user.name="$LAB_USER" \
	actor.session.uid="$sid" "status_detail~must be a directory owned by the user" metadata.product.name=saw-guestd

# --- git repositories in the home ----------------------------------------------------------------
mk_repo() { # DIR [nohooks]
	mkdir -p "$1/.git/objects"
	printf '[core]\n\trepositoryformatversion = 0\n' >"$1/.git/config"
	[ "${2:-}" = nohooks ] || { mkdir -p "$1/.git/hooks"; echo '#!/bin/sh' >"$1/.git/hooks/post-checkout"; }
}
mk_repo "$H/proj/app"
mk_repo "$H/d1/d2/d3/repo" nohooks
mk_repo "$H"
chown -R "$LAB_USER:" "$H/proj" "$H/d1" "$H/.git"
cfg_sum=$(sha256sum "$H/proj/app/.git/config" | cut -d' ' -f1)

# --- one long login: git, the fork bomb, the memory hog, then it waits ---------------------------
SSH_TIMEOUT=120 lab_ssh -F "$cfg" -J "$jump" "$WS" \
	"bash $LAB_LIBDIR/sandbox-limits.sh $MAXFORKS" >"$T/long.out" 2>"$T/long.err" &
longpid=$!
wait_for_text "$T/long.out" "ready" 90 || { show_file "$T/long.err"; show_file "$GLOG"; fail "the login did not get ready"; }
cat "$T/long.out"
val() { sed -n "s/^$1=//p" "$T/long.out" | head -n1; }
assert_eq "$(val git_hook_write)" denied "a new hook in ~/proj/app/.git/hooks cannot be written"
assert_eq "$(val git_hook_existing)" denied "an existing hook cannot be changed"
assert_eq "$(val git_config_write)" denied "the repository's .git/config (core.hooksPath) is read-only"
assert_eq "$(val git_nohooks_write)" denied "a repository 4 levels down without hooks: .git/hooks was made read-only"
assert_eq "$(val git_nohooks_mkdir)" denied "… and nothing can be created in it"
assert_eq "$(val git_top_write)" denied "the home's own repository: ~/.git/hooks is read-only"
assert_eq "$(val gitconfig_write)" denied "the global .gitconfig (core.hooksPath) is read-only"
assert_eq "$(val repo_file_write)" ok "the work tree stays writable"
assert_eq "$(val repo_objects_write)" ok "the rest of .git stays writable (commits work)"
log "a repository created during the session: hooks write $(val git_new_repo_write) (documented limit)"
check "proj/app/.git/config is unchanged" test "$(sha256sum "$H/proj/app/.git/config" | cut -d' ' -f1)" = "$cfg_sum"
check "no pre-commit hook appeared" test ! -e "$H/proj/app/.git/hooks/pre-commit"

cg2=$(sbx_log_cgroup v2)
cgp=$(sbx_log_cgroup pids)
cgm=$(sbx_log_cgroup memory)
log "cgroups of the login: v2 ${cg2:-none}, v1 pids ${cgp:-none}, v1 memory ${cgm:-none}"
forks=$(val forks)
if [ -n "$cgp" ] || grep -q "pids yes" "$GLOG"; then
	pdir=${cgp:-$cg2}
	check "the fork bomb was stopped ($forks forks, $(val fork_error)) below its own bound $MAXFORKS" \
		test "$forks" -lt "$MAXFORKS"
	assert_eq "$(val fork_error)" EAGAIN "fork failed with EAGAIN"
	check "at most nproc=$NPROC processes ran ($forks forks)" test "$forks" -lt "$NPROC"
	ev=$(awk '$1 == "max" { print $2 }' "$pdir/pids.events" 2>/dev/null)
	check "the login's pids cgroup counted refused forks (pids.events max ${ev:-?})" test "${ev:-0}" -ge 1
	assert_eq "$(cat "$pdir/pids.max" 2>/dev/null)" "$NPROC" "pids.max is the policy's nproc"
else
	log "SKIP: no pids cgroup on this machine (forks $forks)"
fi
if [ -n "$cgm" ]; then
	assert_eq "$(val hog_rc)" 137 "the memory hog was killed (SIGKILL by the OOM killer)"
	assert_eq "$(cat "$cgm/memory.limit_in_bytes")" $((96 * 1024 * 1024)) "memory.limit_in_bytes is the policy's memory"
	oom=$(awk '$1 == "oom_kill" { print $2 }' "$cgm/memory.oom_control" 2>/dev/null)
	fc=$(cat "$cgm/memory.failcnt" 2>/dev/null)
	check "the login's memory cgroup OOM-killed in it (oom_kill ${oom:-?}, failcnt ${fc:-?})" test "${oom:-0}" -ge 1
elif grep -q "memory yes" "$GLOG"; then
	assert_eq "$(val hog_rc)" 137 "the memory hog was killed (cgroup v2 memory.max)"
else
	log "SKIP: no memory cgroup on this machine (hog exit $(val hog_rc))"
fi

ok=0
for ((i = 0; i < 100; i++)); do
	[ "$(pgrep -u "$LAB_USER" -x sleep | wc -l)" -ge 4 ] && ok=1 && break
	sleep 0.1
done
check "the login's background processes run" test "$ok" = 1
for d in "$cg2" "$cgp" "$cgm"; do
	[ -n "$d" ] || continue
	check "$d holds the sandbox's processes" test -n "$(cat "$d/cgroup.procs" 2>/dev/null)"
done
assert_audit 2 "audit: Process Activity Launch of pid 1 and of the command, for the user and session" \
	class_uid=1007 activity_id=1 status_id=1 actor.user.name="$LAB_USER" actor.session.uid="$sid"
assert_audit 1 "audit: the Launch of pid 1 names saw-sandbox-init" \
	class_uid=1007 activity_id=1 status_id=1 process.name=saw-sandbox-init actor.session.uid="$sid"
assert_audit 1 "audit: the Launch of the command names the shell and the command line" \
	class_uid=1007 activity_id=1 status_id=1 process.name=bash "process.cmd_line~sandbox-limits.sh"

# --- revocation: every process killed, the cgroups removed -----------------------------------------
lab_sawctl revoke "$sid" --message "sandbox cgroup test" >"$T/revoke.out" 2>&1 ||
	{ show_file "$T/revoke.out"; fail_soft "sawctl revoke $sid"; }
if sbx_wait_no_user_procs 10; then
	pass "every process of $LAB_USER is gone after the revocation"
else
	fail_soft "processes of $LAB_USER are left after the revocation"
	sbx_user_procs
fi
rc=0
wait "$longpid" || rc=$?
assert_status "$rc" 255 "the revoked login's ssh exits 255"
for d in "$cg2" "$cgp" "$cgm"; do
	[ -n "$d" ] || continue
	gone=0
	for ((i = 0; i < 50; i++)); do
		[ -d "$d" ] || { gone=1; break; }
		sleep 0.1
	done
	check "the login's cgroup $d is removed" test "$gone" = 1
done
# the exit code is 137 (SIGKILL) or 129 (SIGHUP: the broker may cut the login's connection
# before guestd's kill arrives, and the sandbox's init forwards the hang-up)
assert_audit 2 "audit: Process Activity Terminate (pid 1 and the command) with an exit code and why" \
	class_uid=1007 activity_id=2 actor.session.uid="$sid" "exit_code~" "status_detail~ended by saw-guestd: revoked"
n137=$(audit_count class_uid=1007 activity_id=2 actor.session.uid="$sid" exit_code=137)
n129=$(audit_count class_uid=1007 activity_id=2 actor.session.uid="$sid" exit_code=129)
check "the Terminate events' exit code says how it ended (137: $n137, 129: $n129)" test $((n137 + n129)) -ge 2
finish
