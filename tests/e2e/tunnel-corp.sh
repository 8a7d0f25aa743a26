#!/usr/bin/env bash
# Issue #3, Flow 2 end to end in the netns lab: a process in the workspace namespace reaches
# the corp web server (which only the jump hosts can reach) through saw-guestd's CONNECT proxy,
# the per-session tunnel, the broker and the jump-host pair, only while a brokered session is
# live, and never a destination outside the allowlist; the corp address directly from ws is
# unreachable; killing j1's sshd sends new requests through j2 within 2 s (measured), and so
# does cutting j2 off the network (after j1 is back) the other way; after the session's
# absolute lifetime the proxy refuses.
. "$(dirname "$0")/netns-lab.sh"

LIFETIME=25 # seconds: SessionMaxLifetime; everything before the expiry check takes ~5-10 s

lab_up
mapfile -t jump_lines < <(lab_jump_lines)
lab_saw_up "SessionMaxLifetime ${LIFETIME}s" "WorkspaceKeepalive 2s" "${jump_lines[@]}"
check "the broker is up with j1 (active) and j2" \
	wait_for_text "$BROKER_LOG" "jump host $LAB_J2_ADDR:22 is up" 15

key=$(make_key user)
cfg=$(lab_ssh_config "$key")
jump=$LAB_USER@127.0.0.1:$BROKER_PORT
WS=$LAB_WS_NAME
CORP_URL=http://$LAB_CORP_ADDR:$LAB_CORP_PORT/file
HTTP_LOG=$LAB_DIR/corp/http.log

# proxy_get URL [MAX_TIME=5] [OUT]: GET URL from ws through guestd's proxy, forced CONNECT (-p).
# Prints "HTTP_CODE CONNECT_CODE CURL_EXIT".
proxy_get() {
	local url=$1 mt=${2:-5} out=${3:-/dev/null} codes rc=0
	# lib.sh exports NO_PROXY=*, which curl applies to -x as well: drop it for these.
	codes=$(lab_exec ws env -u NO_PROXY -u no_proxy curl -sS -p --max-time "$mt" -x http://127.0.0.1:3128 "$url" -o "$out" \
		-w '%{http_code} %{http_connect}' 2>>"$T/curl.err") || rc=$?
	echo "${codes:-000 000} $rc"
}

# last_corp_client: the client address of the corp web server's last request (which jump host).
last_corp_client() {
	awk '/"GET /{a=$1} END{print a}' "$HTTP_LOG"
}

# --- no session yet: the proxy refuses ----------------------------------------------------------
read -r code conn rc <<<"$(proxy_get "$CORP_URL")"
assert_eq "$conn" 403 "before any brokered session, CONNECT to the corp service is refused (403)"

# --- a live session, attached to the workspace --------------------------------------------------
rc=0
lab_ssh -F "$cfg" -J "$jump" "$WS" 'id -un' >"$T/login.out" 2>"$T/login.err" || rc=$?
t_login=$SECONDS
assert_status "$rc" 0 "login through the broker (the session attaches to $WS)"
[ "$rc" -eq 0 ] || { show_file "$T/login.err"; fail "no session, the rest is moot"; }

ok=0
for ((i = 0; i < 50; i++)); do
	read -r code conn rc <<<"$(proxy_get "$CORP_URL" 5 "$T/got")"
	[ "$code" = 200 ] && ok=1 && break
	sleep 0.2
done
check "a process in ws reaches the corp service through the proxy (HTTP $code, CONNECT $conn)" \
	test "$ok" = 1
assert_eq "$(sha256sum <"$T/got" | cut -d' ' -f1)" "$LAB_CORP_SHA" "the corp file arrived intact"
assert_eq "$(last_corp_client)" "$LAB_J1_CORP_ADDR" "the request came through j1 (the active jump host)"
read -r code conn rc <<<"$(proxy_get "http://api:$LAB_CORP_PORT/file")"
assert_eq "$code" 200 "the corp service by its CorpService name (api:$LAB_CORP_PORT)"

# --- outside the allowlist: 403 -----------------------------------------------------------------
for dest in "$LAB_CORP_ADDR:8081" "$LAB_J1_ADDR:22" "127.0.0.1:22" "$LAB_B_WS_ADDR:$BROKER_PORT"; do
	read -r code conn rc <<<"$(proxy_get "http://$dest/")"
	assert_eq "$conn" 403 "CONNECT $dest (not in the allowlist) is refused with 403"
done

# --- the corp address directly from ws: unreachable ------------------------------------------------
rc=0
lab_exec ws curl -sS --max-time 3 "$CORP_URL" -o "$T/direct" 2>"$T/direct.err" || rc=$?
check "ws cannot reach $LAB_CORP_ADDR:$LAB_CORP_PORT directly (curl exit $rc: $(head -c 120 "$T/direct.err"))" \
	test "$rc" -ne 0
check "nothing came back directly" test ! -s "$T/direct"

# --- j1's sshd killed: new requests go through j2 within 2 s ---------------------------------------
check "kill every sshd process of j1" lab_kill_sshd j1
t0=$(date +%s%N)
ok=0
for ((i = 0; i < 100; i++)); do
	read -r code conn rc <<<"$(proxy_get "$CORP_URL" 2)"
	[ "$code" = 200 ] && ok=1 && break
	sleep 0.05
done
ms=$((($(date +%s%N) - t0) / 1000000))
echo "failover j1 killed -> first successful request via j2 after $ms ms ($((i + 1)) attempts)"
check "after j1's sshd is killed a new request succeeds within 2 s ($ms ms)" \
	test "$ok" = 1 -a "$ms" -le 2000
assert_eq "$(last_corp_client)" "$LAB_J2_CORP_ADDR" "the request came through j2"

# wait_for_more FILE TEXT N SECONDS: wait until FILE has more than N lines containing TEXT.
wait_for_more() {
	local i
	for ((i = 0; i < $4 * 10; i++)); do
		[ "$(grep -cF -- "$2" "$1" 2>/dev/null || true)" -gt "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

# --- j1 back; j2 cut off the network (no FIN, no RST): the health check must notice ----------------
ups=$(grep -cF "jump host $LAB_J1_ADDR:22 is up" "$BROKER_LOG" || true)
lab_start_jump j1
# shellcheck disable=SC2154 # set by lab_start_jump
lab_wait_listen j1 22 10 "$LAB_SSHD_PID_j1" || fail_soft "j1's sshd did not come back"
check "the broker reconnects to j1 by itself (within 20 s)" \
	wait_for_more "$BROKER_LOG" "jump host $LAB_J1_ADDR:22 is up" "$ups" 20
lab_exec j2 ip link set eth0 down
t0=$(date +%s%N)
ok=0
for ((i = 0; i < 60; i++)); do
	read -r code conn rc <<<"$(proxy_get "$CORP_URL" 1)"
	[ "$code" = 200 ] && ok=1 && break
	sleep 0.05
done
ms=$((($(date +%s%N) - t0) / 1000000))
echo "failover j2 unreachable -> first successful request via j1 after $ms ms ($((i + 1)) attempts)"
check "after j2 drops off the network a new request succeeds within 2 s ($ms ms)" \
	test "$ok" = 1 -a "$ms" -le 2000
assert_eq "$(last_corp_client)" "$LAB_J1_CORP_ADDR" "the request came through j1"
lab_exec j2 ip link set eth0 up

# --- the session expires: the proxy refuses ------------------------------------------------------
left=$((t_login + LIFETIME - SECONDS))
[ "$left" -gt 2 ] || fail_soft "the checks above took longer than the session lifetime (${LIFETIME}s)"
read -r code conn rc <<<"$(proxy_get "$CORP_URL")"
assert_eq "$code" 200 "still served ${left}s before the session expires"
refused=0
for ((i = 0; i < (left + 15) * 4; i++)); do
	read -r code conn rc <<<"$(proxy_get "$CORP_URL" 2)"
	[ "$code" != 200 ] && refused=1 && break
	sleep 0.25
done
late=$((SECONDS - t_login - LIFETIME))
echo "after expiry: HTTP $code, CONNECT $conn, curl exit $rc, ${late}s after the session's lifetime"
check "after the session expired the proxy refuses (CONNECT $conn)" test "$refused" = 1
check "refused within 5 s of the expiry (${late}s)" test "$late" -le 5
assert_eq "$conn" 403 "the refusal after expiry is a 403"
finish
