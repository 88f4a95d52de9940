# A three-member cluster on loopback (three instance managers and the
# controller), for scripts/demo.sh and bench/failover.sh. Source it after
# setting CL_DIR (data and logs; reused when it exists), CL_PREFIX (member
# name prefix), CL_PG (first postgres port), CL_HTTP (first API port) and
# CL_CTL (the controller's port); the binaries come from build/.

cl_names=("$CL_PREFIX-1" "$CL_PREFIX-2" "$CL_PREFIX-3")
declare -gA cl_pid  # -g: also when sourced inside a function (bench-lib.sh)
cl_run=()
# postgres refuses to run as root: everything runs as the postgres user then.
[[ $(id -u) -eq 0 ]] && cl_run=(setpriv --reuid=postgres --regid=postgres --init-groups --reset-env --)
cl_im="$CL_DIR/bin/instance-manager"
cl_ctl="http://127.0.0.1:$CL_CTL"

cl_setup() {
  mkdir -p "$CL_DIR/bin" "$CL_DIR/secrets"
  # A copy the postgres user can always run, wherever the checkout lives.
  install -m 755 build/instance-manager build/instance-probe "$CL_DIR/bin/"
  # One API token and one set of passwords for the whole cluster.
  local f
  for f in api-token app.password replication.password; do
    [[ -s "$CL_DIR/secrets/$f" ]] || head -c 24 /dev/urandom | base64 | tr '+/' '-_' > "$CL_DIR/secrets/$f"
  done
  chmod 700 "$CL_DIR/secrets"; chmod 600 "$CL_DIR"/secrets/*
  [[ $(id -u) -eq 0 ]] && chown -R postgres: "$CL_DIR"
  return 0
}

cl_pg_port() { echo $((CL_PG + $1)); }
cl_api() { echo "http://127.0.0.1:$((CL_HTTP + $1))"; }
cl_index() { local i; for i in 0 1 2; do if [[ ${cl_names[$i]} == "$1" ]]; then echo "$i"; fi; done; }

cl_start_member() {  # index [extra manager args...]
  local i=$1; shift
  local name=${cl_names[$i]} dir="$CL_DIR/${cl_names[$i]}"
  mkdir -p "$dir"; [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
  local extra=()
  # The first start of members 2 and 3 clones member 1; afterwards each data
  # directory knows its role and the controller says whom to follow.
  [[ $i -gt 0 ]] && extra=(--primary-conninfo "host=127.0.0.1 port=$(cl_pg_port 0)")
  "${cl_run[@]}" "$cl_im" run --name "$name" --pgdata "$dir/data" --pg-port "$(cl_pg_port "$i")" \
    --socket-dir "$dir" --http-listen "127.0.0.1:$((CL_HTTP + i))" \
    --api-token-file "$CL_DIR/secrets/api-token" \
    --app-password-file "$CL_DIR/secrets/app.password" \
    --replication-password-file "$CL_DIR/secrets/replication.password" \
    "${extra[@]}" "$@" >>"$dir/manager.log" 2>&1 &
  cl_pid[$name]=$!
  echo $! > "$dir/manager.pid"
}

cl_wait_ready() {  # index
  local _
  for _ in $(seq 1 240); do
    "$CL_DIR/bin/instance-probe" --url "$(cl_api "$1")" --timeout 1s readyz 2>/dev/null && return 0
    kill -0 "${cl_pid[${cl_names[$1]}]}" 2>/dev/null || {
      echo "${cl_names[$1]}'s manager exited; its log:"; tail -30 "$CL_DIR/${cl_names[$1]}/manager.log"; return 1; }
    sleep 0.5
  done
  echo "${cl_names[$1]} did not become ready"; return 1
}

cl_start_members() {  # [extra manager args...]
  local i
  if [[ -d "$CL_DIR/${cl_names[1]}/data" ]]; then
    # A cluster from an earlier run: all members at once, the controller sorts the roles out.
    for i in 0 1 2; do cl_start_member "$i" "$@"; done
  else
    cl_start_member 0 "$@"; cl_wait_ready 0 || return 1
    cl_start_member 1 "$@"; cl_start_member 2 "$@"
  fi
  for i in 0 1 2; do cl_wait_ready "$i" || return 1; done
}

cl_start_controller() {  # [extra controller args...]
  local members=() i
  for i in 0 1 2; do members+=(--member "${cl_names[$i]}=$(cl_api "$i")"); done
  "${cl_run[@]}" "$cl_im" controller "${members[@]}" --api-token-file "$CL_DIR/secrets/api-token" \
    --listen "127.0.0.1:$CL_CTL" "$@" >>"$CL_DIR/controller.log" 2>&1 &
  cl_pid[controller]=$!
}

# Until the controller holds a primary and both replicas stream from it.
cl_wait_converged() {
  local _ json
  for _ in $(seq 1 240); do
    json=$("$cl_im" status --controller "$cl_ctl" --json 2>/dev/null || true)
    [[ $(grep -o '"streaming": true' <<<"$json" | wc -l) -eq 2 ]] && return 0
    sleep 0.25
  done
  echo "the cluster did not converge"; return 1
}

cl_primary() { "$cl_im" status --controller "$cl_ctl" --json | sed -n 's/^  "primary": "\(.*\)",*$/\1/p'; }

cl_stop_all() {
  kill -TERM "${cl_pid[controller]:-}" 2>/dev/null || true
  local n
  for n in "${cl_names[@]}"; do kill -TERM "${cl_pid[$n]:-}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
