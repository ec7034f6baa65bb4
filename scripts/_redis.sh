# Sourced by scripts/test: the store's tests need a Redis server at FLOWENGINE_REDIS_URL (default
# redis://127.0.0.1:6379/0) and fail without one. If none answers there, this starts a private
# one on a free loopback port (nothing kept on disk), points the tests at it, and stops it when
# the run ends. FLOWENGINE_REDIS_URL=off leaves Redis out (its tests are then skipped).

url="${FLOWENGINE_REDIS_URL:-redis://127.0.0.1:6379/0}"

# PING over plain TCP (bash's /dev/tcp): true when a Redis answers at host $1, port $2.
redis_answers() {
  local reply=""
  { exec 3<>"/dev/tcp/$1/$2"; } 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  IFS= read -r -t 2 reply <&3 || true
  exec 3<&- 3>&-
  # -NOAUTH: a Redis with a password; the URL carries it, the tests will use it.
  [[ "$reply" == +PONG* || "$reply" == -NOAUTH* ]]
}

if [[ "$url" != off ]]; then
  hostport="${url#*://}"; hostport="${hostport##*@}"; hostport="${hostport%%/*}"
  hostport="${hostport%%\?*}"
  host="${hostport%:*}"; port="${hostport##*:}"
  [[ "$hostport" == *:* ]] || port=6379
  if [[ "$url" == redis://* ]] && redis_answers "$host" "$port"; then
    echo "== redis: using the server at $host:$port"
  elif [[ "$url" != redis://* ]]; then
    echo "== redis: using $url as given"
  else
    if ! command -v redis-server >/dev/null; then
      echo "No Redis answers at $url and redis-server is not installed." >&2
      echo "Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install" \
        "redis) or point FLOWENGINE_REDIS_URL at a running server." >&2
      exit 1
    fi
    dir="$(mktemp -d)"
    port="$("${PYTHON:-python3}" -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    stop_redis() {
      if [[ -s "$dir/redis.pid" ]]; then
        kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
        for _ in $(seq 50); do  # up to 5 s for it to let go of the port
          redis_answers 127.0.0.1 "$port" || break
          sleep 0.1
        done
      fi
      rm -rf "$dir"
    }
    trap stop_redis EXIT
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize yes \
      --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
    for _ in $(seq 50); do
      redis_answers 127.0.0.1 "$port" && break
      sleep 0.1
    done
    if ! redis_answers 127.0.0.1 "$port"; then
      echo "redis-server did not start on 127.0.0.1:$port:" >&2
      cat "$dir/redis.log" >&2 || true
      exit 1
    fi
    export FLOWENGINE_REDIS_URL="redis://127.0.0.1:$port/0"
    echo "== redis: nothing at $url; started one at $FLOWENGINE_REDIS_URL for this run"
  fi
fi

