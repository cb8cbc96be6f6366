#!/bin/sh
# transfer: the cosmos example's end-to-end test, run by devenv test (and by
# devenv up after each update of account or transfermoney). It moves 1 from
# A-1 to A-2 (the accounts the account service seeds; A-1 starts at 1000)
# through transfermoney, which withdraws, deposits through account and
# publishes the transfer to Kafka, and expects 201 with the transfer's id.
#
# devenv sets DEVENV_SERVICE_TRANSFERMONEY_URL (the service's port forwarded
# to 127.0.0.1). POSIX sh and curl only.
set -u

fail() {
	echo "transfer: FAIL: $*" >&2
	exit 1
}

base=${DEVENV_SERVICE_TRANSFERMONEY_URL:-}
[ -n "$base" ] || fail "DEVENV_SERVICE_TRANSFERMONEY_URL is not set; run this through devenv test"
command -v curl >/dev/null 2>&1 || fail "curl is not installed"

body='{"from":"A-1","to":"A-2","amount":1}'
out=$(mktemp) || fail "mktemp failed"
trap 'rm -f "$out"' EXIT

# On a cluster created a moment ago, transfermoney may not reach account yet
# (cluster DNS still settling): a 502/503 is tried again for up to a minute.
tries=0
while :; do
	echo "POST $base/transfers $body"
	code=$(curl -sS -o "$out" -w '%{http_code}' --max-time 30 \
		-H 'Content-Type: application/json' -d "$body" "$base/transfers") ||
		fail "curl could not reach $base/transfers (exit $?)"
	answer=$(cat "$out")
	echo "HTTP $code $answer"
	case $code in 502 | 503) ;; *) break ;; esac
	tries=$((tries + 1))
	[ "$tries" -lt 30 ] || break
	sleep 2
done

[ "$code" = 201 ] || fail "expected HTTP 201, got $code: $answer"
# The answer is the transfer event: {"id":"...","from":"A-1",...}.
printf '%s' "$answer" | grep -Eq '"id"[[:space:]]*:[[:space:]]*"[^"]+"' ||
	fail "expected a JSON body with an \"id\", got: $answer"
echo "transfer: ok"
