#!/bin/bash
# buildattack.sh BUILD_DIR CACHE_DIR ENV_DIR: bin/compile of a buildpack that attacks the
# grid from inside its build dyno, and prints what it got. Its targets come in ENV_DIR:
#   PROBE_TARGETS  NAME=HOST:PORT ...: "net NAME open" or "net NAME closed" for each;
#   PROBE_READ     paths: "read PATH ok" or "read PATH refused" for each;
#   PROBE_WRITE    directories: "write DIR ok" or "write DIR refused" for each (a file
#                  named attack-<pid> in it);
#   PROBE_SECRET_A, PROBE_SECRET_B  the two halves of a string of another app's build
#                  cache (whole, it is in none of this app's files): "secret found in DIR"
#                  for each place the build can read that holds it, "secret not found"
#                  otherwise.
# Then "token NAME" for each variable of its environment that holds a token, and "jwt
# FILE" for each file of /secrets, /local and /alloc that holds a JSON web token
# (Nomad's workload identities are ones), "tokens none" when it found neither.
cache=$2 env=$3
for t in $(cat "$env/PROBE_TARGETS"); do
	name=${t%%=*} addr=${t#*=}
	if timeout 3 bash -c "exec 3<>/dev/tcp/${addr%:*}/${addr##*:}" 2>/dev/null; then
		echo "net $name open"
	else
		echo "net $name closed"
	fi
done
for p in $(cat "$env/PROBE_READ"); do
	if cat "$p" >/dev/null 2>&1 || ls "$p" >/dev/null 2>&1; then echo "read $p ok"; else echo "read $p refused"; fi
done
for d in $(cat "$env/PROBE_WRITE"); do
	if (echo attack >"$d/attack-$$") 2>/dev/null; then echo "write $d ok"; else echo "write $d refused"; fi
done
secret=$(cat "$env/PROBE_SECRET_A")$(cat "$env/PROBE_SECRET_B")
found=0
for p in "$cache" /app /alloc /local /secrets /etc /tmp /var; do
	if grep -rqsF "$secret" "$p" 2>/dev/null; then
		echo "secret found in $p"
		found=1
	fi
done
[ "$found" = 1 ] || echo "secret not found"
tokens=0
for v in $(env | cut -d= -f1 | grep -iE 'token|secret_id|consul_http_auth'); do
	echo "token $v"
	tokens=1
done
for f in $(grep -rlsE 'eyJ[A-Za-z0-9_-]{10,}\.' /secrets /local /alloc 2>/dev/null); do
	echo "jwt $f"
	tokens=1
done
[ "$tokens" = 1 ] || echo "tokens none"
exit 0
