#!/usr/bin/env bash
# saw-brokerd's configuration check from the command line (saw-broker.conf(5)):
#  - `-t -f good.conf` exits 0 (the config the other e2e tests run with, plus every optional
#    keyword);
#  - a bad config exits 1 and names every error with file:line and the keyword, all in one run
#    (unknown keyword, bad duration, duration out of range, plain-http issuer that is not
#    loopback, alg "none"); a config without OIDCIssuer names the missing keyword;
#  - `-T` prints the effective config; that output passes -t and dumps to itself.
# No IdP or network needed: -t/-T only read the file.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-common.sh"

bin=$SAW_BUILD/broker/saw-brokerd
[ -x "$bin" ] || fail "no broker binary at $bin (build first, or set SAW_BUILD_DIR)"
IDP_URL=http://127.0.0.1:9 # write_broker_config wants an issuer; nothing is contacted

# brokerd NAME ARGS...: run saw-brokerd, stdout/stderr to $T/NAME.{out,err}; prints the status.
brokerd() {
	local name=$1 rc=0
	shift
	timeout -k 2 20 "$bin" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null || rc=$?
	SAW_LOGS+=("$T/$name.err")
	echo "$rc"
}

# --- a good config --------------------------------------------------------------------------
echo secret >"$T/client-secret"
chmod 0600 "$T/client-secret"
write_broker_config \
	"# every optional keyword, in mixed case, with comments and quotes" \
	"oidcclientsecretfile $T/client-secret" \
	"OIDCScopes openid profile groups email" \
	"OIDCUsernameClaim \"preferred_username\"   # quoted" \
	"OIDCGroupsClaim groups" \
	"OIDCAllowedAlgorithms RS256 ES256" \
	"OIDCTimeout 15s" \
	"SessionMaxLifetime 10h" \
	"SessionIdleTimeout 45m" \
	"LoginGraceTime 2m" \
	"MaxStartups 10:30:60" \
	"PerSourceMaxStartups 5" \
	"MaxAuthTries 4" \
	"PerSourcePenalty 3 90s"
cp "$BROKER_CONF" "$T/good.conf"
rc=$(brokerd good -t -f "$T/good.conf")
assert_status "$rc" 0 "saw-brokerd -t -f good.conf"
check "-t on a good config prints no error" bash -c "! grep -qi error '$T/good.err'"

# --- a bad config: every error, each with file:line and the keyword -------------------------
cat >"$T/bad.conf" <<EOF
# line 1: a comment
ListenAddress 127.0.0.1:2222
HostKey $BROKER_HOSTKEY
Frobnicate yes
SessionMaxLifetime 5x
OIDCIssuer http://idp.example.com/realms/corp
OIDCClientID saw-broker
SessionIdleTimeout 8d
RequiredGroup saw-users
OIDCAllowedAlgorithms RS256 none
EOF
rc=$(brokerd bad -t -f "$T/bad.conf")
assert_status "$rc" 1 "saw-brokerd -t -f bad.conf"
assert_contains "$T/bad.err" "$T/bad.conf:4: Frobnicate" "unknown keyword reported at bad.conf:4"
assert_contains "$T/bad.err" "unknown keyword" "… as an unknown keyword"
assert_contains "$T/bad.err" "$T/bad.conf:5: SessionMaxLifetime" "bad duration reported at bad.conf:5"
assert_contains "$T/bad.err" '"5x" is not a duration' "… saying it is not a duration"
assert_contains "$T/bad.err" "$T/bad.conf:6: OIDCIssuer" "http:// issuer reported at bad.conf:6"
assert_contains "$T/bad.err" "must use https://" "… saying https:// is required"
assert_contains "$T/bad.err" "$T/bad.conf:8: SessionIdleTimeout" "out-of-range duration reported at bad.conf:8"
assert_contains "$T/bad.err" "out of range" "… saying it is out of range"
assert_contains "$T/bad.err" "$T/bad.conf:10: OIDCAllowedAlgorithms" "alg none reported at bad.conf:10"
assert_contains "$T/bad.err" "never allowed" "… saying it is never allowed"
assert_eq "$(grep -c "^$T/bad.conf:[0-9]*: " "$T/bad.err" || true)" 5 \
	"exactly the five bad lines are reported, in one run"

# Missing required keyword: named (a missing keyword has no line).
grep -v '^OIDCIssuer' "$T/good.conf" >"$T/noissuer.conf"
rc=$(brokerd noissuer -t -f "$T/noissuer.conf")
assert_status "$rc" 1 "saw-brokerd -t -f noissuer.conf"
assert_contains "$T/noissuer.err" "$T/noissuer.conf" "the missing keyword's error names the file"
assert_contains "$T/noissuer.err" "OIDCIssuer is required" "… and says OIDCIssuer is required"

# A loopback http:// issuer is fine (tests, a local proxy); so are localhost and [::1].
for iss in http://127.0.0.1:8080 http://localhost:8080/realms/x "http://[::1]:8080"; do
	sed "s|^OIDCIssuer .*|OIDCIssuer $iss|" "$T/good.conf" >"$T/loop.conf"
	rc=$(brokerd loop -t -f "$T/loop.conf")
	assert_status "$rc" 0 "loopback issuer $iss accepted"
done

# A file that does not exist.
rc=$(brokerd missing -t -f "$T/no-such.conf")
assert_status "$rc" 1 "saw-brokerd -t -f on a missing file"
assert_contains "$T/missing.err" "$T/no-such.conf" "the missing file is named"

# --- -T: the effective configuration, dumped and parsed back to itself ----------------------
rc=$(brokerd dump1 -T -f "$T/good.conf")
assert_status "$rc" 0 "saw-brokerd -T -f good.conf"
cp "$T/dump1.out" "$T/dump1.conf"
for want in "SessionMaxLifetime 10h" "SessionIdleTimeout 45m" "LoginGraceTime 2m" \
	"MaxStartups 10:30:60" "PerSourceMaxStartups 5" "PerSourcePenalty 3 " \
	"OIDCIssuer $IDP_URL" "OIDCTimeout 15s" "MaxAuthTries 4"; do
	check "-T shows '$want'" grep -qiF -- "$want" "$T/dump1.conf"
done
check "-T shows the email scope" grep -qiE '^OIDCScopes .*email' "$T/dump1.conf"
check "-T shows defaults too (OIDCGroupsClaim)" grep -qi '^OIDCGroupsClaim groups' "$T/dump1.conf"
rc=$(brokerd redump -t -f "$T/dump1.conf")
assert_status "$rc" 0 "the -T output passes -t"
rc=$(brokerd dump2 -T -f "$T/dump1.conf")
assert_status "$rc" 0 "saw-brokerd -T on the -T output"
if cmp -s "$T/dump1.out" "$T/dump2.out"; then
	pass "dumping the dump gives identical output"
else
	fail_soft "dumping the dump gives identical output"
	diff -u "$T/dump1.out" "$T/dump2.out" || true
fi
# The defaults-only dump round-trips too.
# (with a value that needs quotes, as in the man page's example)
printf 'HostKey %s\nOIDCIssuer %s\nOIDCClientID c\nRequiredGroup "SAW users"\n' \
	"$BROKER_HOSTKEY" "$IDP_URL" >"$T/minimal.conf"
rc=$(brokerd min1 -T -f "$T/minimal.conf")
assert_status "$rc" 0 "saw-brokerd -T on a minimal config"
cp "$T/min1.out" "$T/min1.conf"
rc=$(brokerd min2 -T -f "$T/min1.conf")
assert_status "$rc" 0 "saw-brokerd -T on the minimal config's dump"
check "the minimal config's dump round-trips" cmp -s "$T/min1.out" "$T/min2.out"
check "defaults are printed (SessionMaxLifetime 8h)" grep -qi '^SessionMaxLifetime 8h' "$T/min1.out"
check "a value with a space is dumped quoted" grep -qF 'RequiredGroup "SAW users"' "$T/min1.out"

finish
