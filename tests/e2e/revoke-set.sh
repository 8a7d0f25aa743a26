#!/usr/bin/env bash
# End to end: Security Event Tokens pushed per RFC 8935 to POST /v1/revocation/events, signed
# by a test SSF transmitter whose JWKS a loopback web server serves (SSFTransmitterIssuer,
# SSFTransmitterJWKS). Real logins (device flow) make the sessions; held `ssh -N`
# connections show the effect.
#  - each event type: CAEP session-revoked, credential-change, token-claims-change (group kept:
#    nothing; group gone: revoked), RISC account-disabled and account-purged (revoked and
#    locked), SSF verification (202, nothing);
#  - each subject format: iss_sub, email, opaque (a broker session id), complex, and the older
#    events[…].subject;
#  - refused with the RFC 8935 error codes, nothing revoked, the broker alive: forged
#    signature, unsigned, wrong key, unknown kid, wrong aud, wrong iss, expired, too old,
#    malformed, wrong Content-Type, oversized; a replay is acknowledged (202) and does nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker-common.sh"
. "$(dirname "$0")/revoke-common.sh"
# `set_claims … | push NAME`: push runs in this shell, so HTTP_STATUS reaches the checks
shopt -s lastpipe

SIGN=$SAW_SRC/tests/tools/set-sign
SSF_ISS=https://ssf.test.example
EV=https://schemas.openid.net/secevent

# the transmitter: a key, and its JWKS on a loopback web server
"$SIGN" keygen "$T/ssf" --kid ssf-1
"$SIGN" keygen "$T/other" --kid ssf-1 # same kid, another key: a forger's
"$SIGN" keygen "$T/other2" --kid ssf-unknown
serve_dir "$T/ssf"
JWKS_PORT=$SERVE_PORT

start_idp
revoke_broker "OIDCScopes openid profile groups email" "SSFTransmitterIssuer $SSF_ISS" \
	"SSFTransmitterJWKS http://127.0.0.1:$JWKS_PORT/jwks.json"
start_broker
wait_for_text "$BROKER_LOG" "SSF transmitter $SSF_ISS: 1 signing keys" 10 ||
	fail "the broker did not fetch the transmitter's keys"
pass "the broker fetched the transmitter's JWKS"

# set_claims EVENT_URI SUBJECT_JSON [EVENT_PAYLOAD_JSON] [EXTRA_CLAIMS_JSON]: SET claims
# with sub_id (a fresh jti each time) on stdout.
set_claims() {
	python3 - "$1" "$2" "${3:-{\}}" "${4:-{\}}" "$SSF_ISS" <<'PY'
import json, sys, uuid
ev, sub, payload, extra, iss = sys.argv[1:6]
jti = str(uuid.uuid4())
c = {"iss": iss, "aud": "saw-broker", "iat": "@now", "jti": jti,
     "sub_id": json.loads(sub), "events": {ev: json.loads(payload)}}
c.update(json.loads(extra))
print(json.dumps(c))
PY
}

# push NAME [set-sign options...] < CLAIMS: sign with the transmitter key (unless --key/--kid
# override), POST it; the JWS goes to $T/NAME.jws, the answer to HTTP_STATUS / $T/http.body.
push() {
	local name=$1 key=$T/ssf/key.pem kid=ssf-1
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--key) key=$2; shift 2 ;;
		--kid) kid=$2; shift 2 ;;
		*) break ;;
		esac
	done
	"$SIGN" sign "$key" "$kid" "$@" >"$T/$name.jws" || fail "set-sign failed"
	push_file "$T/$name.jws"
}

# push_file FILE [Content-Type]: POST FILE as it is.
push_file() {
	http POST /v1/revocation/events -H "Content-Type: ${2:-application/secevent+jwt}" \
		--data-binary "@$1"
}

# expect_err STATUS CODE DESC: the last answer was STATUS with {"err": CODE}.
expect_err() {
	assert_eq "$HTTP_STATUS" "$1" "$3: HTTP $1"
	[ -z "$2" ] || assert_eq "$(json_field "$T/http.body" err 2>/dev/null)" "$2" "$3: err $2"
}

iss_sub() { echo "{\"format\":\"iss_sub\",\"iss\":\"$IDP_URL\",\"sub\":\"$1\"}"; }

# --- sessions: users 1..7 log in and hold a connection each ----------------------------------
declare -A SID
for u in 1 2 3 4 5 6 7; do
	SID[$u]=$(login "u$u-login" "user$u")
	hold "u$u" "user$u"
done
for u in 1 2 3 4 5 6 7; do wait_held "u$u" "${SID[$u]}"; done
assert_eq "$(live_sessions)" 7 "seven live sessions"

# --- session-revoked, iss_sub ------------------------------------------------------------------
set_claims "$EV/caep/event-type/session-revoked" "$(iss_sub user1)" \
	'{"event_timestamp":1700000000,"reason_admin":{"en":"test"}}' >"$T/c1.json"
"$SIGN" sign "$T/ssf/key.pem" ssf-1 <"$T/c1.json" >"$T/s1.jws"
t0=$(date +%s%3N)
push_file "$T/s1.jws"
assert_eq "$HTTP_STATUS" 202 "session-revoked (iss_sub): 202"
if ended_within u1 "$t0" 1000; then
	pass "user1's connection closed ${ENDED_MS} ms after the SET was sent"
else
	fail_soft "user1's connection closed within 1 s of the SET (${ENDED_MS:-not at all})"
fi
assert_contains "$T/u1.err" "Your SAW session was revoked (session revoked by the identity provider)" \
	"user1's ssh shows the sentence"
assert_eq "$(db "SELECT state FROM sessions WHERE id = '${SID[1]}';")" 2 "user1's session is revoked"
check "user2's connection is untouched" still_held u2

# --- credential-change, email ------------------------------------------------------------------
set_claims "$EV/caep/event-type/credential-change" \
	'{"format":"email","email":"user2@example.test"}' \
	'{"credential_type":"password","change_type":"update"}' | push s2
assert_eq "$HTTP_STATUS" 202 "credential-change (email): 202"
ended_within u2 "$(date +%s%3N)" 1000 && pass "user2's connection closed" ||
	fail_soft "user2's connection closed"
assert_contains "$T/u2.err" "(your credentials changed)" "user2's ssh shows the sentence"

# --- token-claims-change, opaque (the broker's session id): group kept, then gone --------------
opaque3="{\"format\":\"opaque\",\"id\":\"${SID[3]}\"}"
set_claims "$EV/caep/event-type/token-claims-change" "$opaque3" \
	'{"claims":{"groups":["saw-users","developers"]}}' | push s3a
assert_eq "$HTTP_STATUS" 202 "token-claims-change keeping the group: 202"
sleep 0.3
check "user3 keeps the session while still in the group" still_held u3
assert_eq "$(live_sessions "id = '${SID[3]}'")" 1 "user3's session is still live"
set_claims "$EV/caep/event-type/token-claims-change" "$opaque3" \
	'{"claims":{"groups":["developers"]}}' | push s3b
assert_eq "$HTTP_STATUS" 202 "token-claims-change without the group (opaque): 202"
ended_within u3 "$(date +%s%3N)" 1000 && pass "user3's connection closed" ||
	fail_soft "user3's connection closed"
assert_contains "$T/u3.err" "(you are no longer in the group saw-users)" "user3's ssh shows the sentence"

# --- account-disabled, complex (user + session): revoked and locked ---------------------------
set_claims "$EV/risc/event-type/account-disabled" \
	"{\"format\":\"complex\",\"user\":$(iss_sub user4),\"session\":{\"format\":\"opaque\",\"id\":\"${SID[4]}\"},\"device\":{\"format\":\"opaque\",\"id\":\"laptop\"}}" \
	'{"reason":"hijacking"}' | push s4
assert_eq "$HTTP_STATUS" 202 "account-disabled (complex): 202"
ended_within u4 "$(date +%s%3N)" 1000 && pass "user4's connection closed" ||
	fail_soft "user4's connection closed"
assert_contains "$T/u4.err" "(access locked: your account was disabled at the identity provider)" \
	"user4's ssh shows the sentence"
"$SAW_BUILD/broker/sawctl" -s "$BROKER_DIR/admin.sock" locks >"$T/locks.out" 2>&1 || true
assert_contains "$T/locks.out" "sub:user4" "user4 is locked"
rc=0
ssh_login user4 -- true >"$T/u4-again.out" 2>"$T/u4-again.err" || rc=$?
check "user4 cannot log in again (exit $rc)" [ "$rc" -ne 0 ]
assert_contains "$T/u4-again.err" "Your access to SAW is locked" "the refusal says the account is locked"

# --- account-purged, iss_sub ---------------------------------------------------------------------
set_claims "$EV/risc/event-type/account-purged" "$(iss_sub user5)" | push s5
assert_eq "$HTTP_STATUS" 202 "account-purged (iss_sub): 202"
ended_within u5 "$(date +%s%3N)" 1000 && pass "user5's connection closed" ||
	fail_soft "user5's connection closed"
"$SAW_BUILD/broker/sawctl" -s "$BROKER_DIR/admin.sock" locks >"$T/locks.out" 2>&1 || true
assert_contains "$T/locks.out" "sub:user5" "user5 is locked"

# --- the older events[…].subject (session-revoked, email) ---------------------------------------
python3 - "$SSF_ISS" >"$T/c6.json" <<PY
import json, sys
print(json.dumps({"iss": sys.argv[1], "aud": ["other", "saw-broker"], "iat": "@now", "jti": "legacy-$$",
  "events": {"$EV/caep/event-type/session-revoked":
    {"subject": {"format": "email", "email": "user6@example.test"}}}}))
PY
push s6 <"$T/c6.json"
assert_eq "$HTTP_STATUS" 202 "session-revoked with events[].subject (email): 202"
ended_within u6 "$(date +%s%3N)" 1000 && pass "user6's connection closed" ||
	fail_soft "user6's connection closed"

# --- verification: answered, nothing done ---------------------------------------------------------
python3 - "$SSF_ISS" <<PY | push sv
import json, sys
print(json.dumps({"iss": sys.argv[1], "aud": "saw-broker", "iat": "@now", "jti": "verify-$$",
  "events": {"$EV/ssf/event-type/verification": {"state": "abc"}}}))
PY
assert_eq "$HTTP_STATUS" 202 "SSF verification: 202"

# --- refusals: user7 must survive all of them ----------------------------------------------------
s7=$(iss_sub user7)
RV=$EV/caep/event-type/session-revoked
set_claims "$RV" "$s7" >"$T/c7.json"

"$SIGN" sign "$T/ssf/key.pem" ssf-1 <"$T/c7.json" >"$T/good7.jws"
python3 - "$T/good7.jws" >"$T/forged.jws" <<'PY'
import sys, base64, json
h, p, s = open(sys.argv[1]).read().strip().split(".")
claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
claims["sub_id"]["sub"] = "user1"   # payload changed after signing
p2 = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
print(f"{h}.{p2}.{s}")
PY
push_file "$T/forged.jws"
expect_err 400 invalid_key "a forged payload (signature does not verify)"
push unsigned --none <"$T/c7.json"
expect_err 400 invalid_key "an unsigned SET (alg none)"
push wrongkey --key "$T/other/key.pem" <"$T/c7.json"
expect_err 400 invalid_key "signed with another key under the same kid"
push unknownkid --key "$T/other2/key.pem" --kid ssf-unknown <"$T/c7.json"
expect_err 400 invalid_key "signed with a key the transmitter does not publish (unknown kid)"
set_claims "$RV" "$s7" '{}' '{"aud":"someone-else"}' | push wrongaud
expect_err 400 invalid_audience "wrong aud"
set_claims "$RV" "$s7" '{}' "{\"iss\":\"$IDP_URL\"}" | push wrongiss
expect_err 400 invalid_issuer "wrong iss"
set_claims "$RV" "$s7" '{}' '{"exp":"@now-3600"}' | push expired
expect_err 400 invalid_request "expired (exp in the past)"
set_claims "$RV" "$s7" '{}' '{"iat":"@now-172800"}' | push old
expect_err 400 invalid_request "issued two days ago"
push typ --typ JWT <"$T/c7.json"
expect_err 400 invalid_request "header typ JWT, not secevent+jwt"
printf 'this is not a JWS' >"$T/garbage"
push_file "$T/garbage"
expect_err 400 invalid_request "a malformed body"
printf '{"events":{}}' >"$T/json"
push_file "$T/json"
expect_err 400 invalid_request "a JSON body"
push_file "$T/good7.jws" application/json
expect_err 400 invalid_request "Content-Type application/json"
head -c 70000 /dev/zero | tr '\0' 'a' >"$T/big"
push_file "$T/big"
expect_err 413 "" "a 70 KB body"
set_claims "$RV" '{"format":"account","uri":"acct:user7@example.test"}' | push account
expect_err 400 invalid_request "an unsupported subject format (account)"
set_claims "$RV" '{"format":"iss_sub","iss":"x"}' | push badsub
expect_err 400 invalid_request "an iss_sub subject without sub"
sleep 0.3
check "user7's connection survived every refused SET" still_held u7
assert_eq "$(live_sessions "id = '${SID[7]}'")" 1 "user7's session is still live"

# --- a replay: acknowledged, acts on nothing ----------------------------------------------------
n1=$(login u1-again user1)
hold u1b user1
wait_held u1b "$n1"
push_file "$T/s1.jws"
assert_eq "$HTTP_STATUS" 202 "the first SET replayed: 202 (a retransmission is not an error)"
sleep 0.3
check "the replay did not revoke user1's new session" still_held u1b
assert_eq "$(live_sessions "id = '$n1'")" 1 "user1's new session is still live"
assert_contains "$BROKER_LOG" "already processed (duplicate)" "the broker logged the duplicate"

check "the broker is alive" broker_alive
finish
