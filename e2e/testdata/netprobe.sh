#!/bin/bash
# netprobe.sh NAME=HOST:PORT...: tries a TCP connection to each target from inside a
# dyno and prints "NAME open" or "NAME closed"; then checks the app's add-ons.
for t in "$@"; do
  name=${t%%=*} addr=${t#*=}
  if timeout 3 bash -c "exec 3<>/dev/tcp/${addr%:*}/${addr##*:}" 2>/dev/null; then
    echo "$name open"
  else
    echo "$name closed"
  fi
done
if [ -n "$DATABASE_URL" ]; then
  echo "postgres says $(timeout 10 psql "$DATABASE_URL" -tAc 'select 6*7' 2>&1)"
fi
if [ -n "$MEMCACHED_SERVERS" ]; then
  exec 3<>"/dev/tcp/${MEMCACHED_SERVERS%:*}/${MEMCACHED_SERVERS##*:}"
  cred="$MEMCACHED_USERNAME $MEMCACHED_PASSWORD"
  printf 'set auth 0 0 %d\r\n%s\r\n' "${#cred}" "$cred" >&3
  read -r -t 5 line <&3
  echo "memcached says ${line%$'\r'}"
fi
