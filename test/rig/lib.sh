# Shared helpers for the local rig. Sourced by rig.sh and every parts/*.sh.
# Everything the rig starts listens on 127.0.0.1 only; slow builds live in RIG_CACHE (outside the
# checkout) so a fresh clone reuses them; pid files, logs and generated config live in RIG_STATE.
set -euo pipefail

RIG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$RIG_DIR/../.." && pwd)
SHARED_DIR=${RIG_SHARED_DIR:-$(cd "$REPO_ROOT/.." && pwd)/shared}
export RIG_CACHE=${RIG_CACHE:-/var/cache/mlflow-k8s-deploy-rig}
export RIG_STATE=${RIG_STATE:-$RIG_CACHE/state}
RIG_ENV_FILE=$RIG_STATE/rig.env
mkdir -p "$RIG_CACHE" "$RIG_STATE/pids" "$RIG_STATE/logs"

# Fixed loopback ports: one place to read them, overridable by env.
: "${RIG_REGISTRY_PORT:=5001}"        # open OCI registry
: "${RIG_REGISTRY_AUTH_PORT:=5002}"   # OCI registry with htpasswd auth
: "${RIG_REGISTRY_TOKEN_PORT:=5003}"  # OCI registry with Bearer-token auth
: "${RIG_TOKEN_SERVER_PORT:=5004}"    # its token server
: "${RIG_ETCD_PORT:=23790}"
: "${RIG_ETCD_PEER_PORT:=23800}"
: "${RIG_APISERVER_PORT:=16443}"
: "${RIG_MLFLOW_PORT:=5050}"          # plain MLflow
: "${RIG_MLFLOW_BASIC_PORT:=5051}"    # MLflow --app-name basic-auth
: "${RIG_MLFLOW_OIDC_PORT:=5052}"     # MLflow --app-name oidc-auth
: "${RIG_OIDC_PORT:=5062}"            # oidc-provider (the IdP). Not 5060/5061: fetch() refuses those (SIP, on the Fetch spec's bad-port list)
: "${RIG_GHA_OIDC_PORT:=5063}"        # GitHub-style ACTIONS_ID_TOKEN_REQUEST_URL endpoint

# One scikit-learn everywhere: the fixture models are pickled with it and MLServer (host venv and
# serving base image) must unpickle them.
: "${RIG_SKLEARN_VERSION:=1.6.1}"
# Python for host venvs (MLServer needs < 3.13).
: "${RIG_PYTHON:=$(command -v python3.11 || command -v python3)}"

# Node 24 from the project's own devDependency `node`, never the machine's Node 20.
NODE24=$REPO_ROOT/node_modules/node/bin/node
[ -x "$NODE24" ] || NODE24=$REPO_ROOT/node_modules/.bin/node

log() { printf '[rig %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- packages -----------------------------------------------------------------------------
# apt-get waits for the dpkg lock (several parts may install at once) and refreshes lists once a day.
apt_update_once() {
  local stamp=$RIG_CACHE/.apt-updated
  if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440 2>/dev/null)" ]; then
    apt-get -o DPkg::Lock::Timeout=900 update -qq && touch "$stamp"
  fi
}
apt_install() { # apt_install pkg...   (installs only what is missing)
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_update_once
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
# trixie served at a low pin so only what we ask for by `-t trixie` comes from it.
trixie_source() {
  local list=/etc/apt/sources.list.d/rig-trixie.sources pin=/etc/apt/preferences.d/rig-trixie
  [ -f "$list" ] && return 0
  local mirror
  mirror=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$mirror" ] || mirror=$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" >"$list"
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 50\n' >"$pin"
  rm -f "$RIG_CACHE/.apt-updated"
}
apt_install_trixie() { # apt_install_trixie pkg...
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  trixie_source; apt_update_once
  log "apt-get install -t trixie ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends -t trixie "${missing[@]}" >/dev/null
}

# requirements_pin FILE NAME : the version NAME==<version> pins in a requirements file.
requirements_pin() { grep -iE "^$2==" "$1" | head -1 | cut -d= -f3; }
# image_recipe FILE... : what an image is made of (its files and the host's extra CAs); a change
# means a rebuild.
image_recipe() { cat "$@" /usr/local/share/ca-certificates/*.crt 2>/dev/null | sha256sum | cut -c1-16; }

# --- processes ----------------------------------------------------------------------------
pidfile() { echo "$RIG_STATE/pids/$1.pid"; }
logfile() { echo "$RIG_STATE/logs/$1.log"; }
is_running() { # is_running name
  local f; f=$(pidfile "$1")
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}
# start_bg name cmd... : start in its own session, record its pid, log to logs/name.log.
start_bg() {
  local name=$1; shift
  if is_running "$name"; then log "$name already running (pid $(cat "$(pidfile "$name")"))"; return 0; fi
  log "starting $name"
  setsid "$@" >>"$(logfile "$name")" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}
# stop_bg name : TERM the process group we started, then KILL after 10 s.
stop_bg() {
  local name=$1 f pid i
  f=$(pidfile "$name")
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}
# stop_if_stale name binary : a running process started from another binary (a rebuilt or
# upgraded controller) is stopped, so the part's up starts the new one.
stop_if_stale() {
  local f exe
  is_running "$1" || return 0
  f=$(pidfile "$1")
  exe=$(readlink "/proc/$(cat "$f")/exe" 2>/dev/null) || return 0
  [ "$exe" = "$(readlink -f "$2")" ] && return 0
  log "$1 runs $exe, not $2: restarting it"
  stop_bg "$1"
}
# rig_locked LOCKFILE FUNC... : run FUNC holding LOCKFILE, so two `rig.sh up` at once (several
# developers' test runs share one rig) do not start, write or clean up the same things twice.
# The lock is on fd 9: start servers without it (`9>&-`), else a server that inherited it would
# hold the lock for as long as it runs.
rig_locked() {
  local lock=$1 rc=0; shift
  mkdir -p "$(dirname "$lock")"
  exec 9>"$lock"
  flock -w 1200 9 || die "timed out waiting for $lock"
  "$@" || rc=$?
  exec 9>&-
  return $rc
}
# wait_http url [seconds] [curl args...] : until the URL answers 2xx (or the log shows death).
wait_http() {
  local url=$1 secs=${2:-60}; shift 2 || shift $#
  local deadline=$((SECONDS + secs))
  until curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.3
  done
}
wait_port() { # wait_port port [seconds]
  local port=$1 secs=${2:-60} deadline=$((SECONDS + ${2:-60}))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}
# --- connection facts ---------------------------------------------------------------------
# env_set KEY VALUE : record a fact for tests in rig.env (KEY=VALUE lines, no quoting needed:
# values never contain newlines).
env_set() {
  touch "$RIG_ENV_FILE"
  local tmp; tmp=$(mktemp)
  grep -v "^$1=" "$RIG_ENV_FILE" >"$tmp" || true
  printf '%s=%s\n' "$1" "$2" >>"$tmp"
  mv "$tmp" "$RIG_ENV_FILE"
}
env_get() { grep "^$1=" "$RIG_ENV_FILE" 2>/dev/null | tail -1 | cut -d= -f2-; }

# --- Go builds of upstream commands ----------------------------------------------------------
# A group NAME is built in one wrapper module (one go.mod and go.sum) from the Go module proxy:
#   <NAME>_GO_MODULES   "module version" entries the wrapper requires
#   <NAME>_GO_COMMANDS  "binary=package" entries it builds
#   <name>_go_mod_extra (optional function) lines appended to the wrapper's go.mod before tidy
#   <name>_go_patch     (optional function, run in the module dir after tidy) a documented change
#   <NAME>_GO_PATCH     (optional) bump when the patch changes
#   <NAME>_GO_LDFLAGS   (optional) more -ldflags, e.g. -X of a version variable
# Binaries land in $RIG_CACHE/bin/<name>-<id>, the id hashing modules and patch version.
go_group_upper() { tr '[:lower:]-' '[:upper:]_' <<<"$1"; }
go_group_id() {
  local up; up=$(go_group_upper "$1")
  local -n mods="${up}_GO_MODULES"
  local patch="${up}_GO_PATCH" ldflags="${up}_GO_LDFLAGS"
  { printf '%s\n' "${mods[@]}" "patch ${!patch:-0}"; [ -z "${!ldflags:-}" ] || printf 'ldflags %s\n' "${!ldflags}"; } |
    sha256sum | cut -c1-12
}
go_group_bin_dir() { echo "$RIG_CACHE/bin/$1-$(go_group_id "$1")"; }
go_group_build_dir() { echo "$RIG_CACHE/build/$1-$(go_group_id "$1")"; }
go_group_module_dir() { # go_group_module_dir group module-path -> its extracted zip in the module cache
  local up m; up=$(go_group_upper "$1")
  local -n mods="${up}_GO_MODULES"
  for m in "${mods[@]}"; do
    [ "${m% *}" = "$2" ] && { echo "$RIG_CACHE/go/mod/$2@${m#* }"; return 0; }
  done
  return 1
}
go_group_build() { # go_group_build name
  local name=$1 up wd bin t0=$SECONDS m c
  up=$(go_group_upper "$name"); wd=$(go_group_build_dir "$name"); bin=$(go_group_bin_dir "$name")
  local -n mods="${up}_GO_MODULES" cmds="${up}_GO_COMMANDS"
  local missing=0 ldflags="${up}_GO_LDFLAGS"
  for c in "${cmds[@]}"; do [ -x "$bin/${c%%=*}" ] || missing=1; done
  [ $missing = 0 ] && return 0
  log "building ${cmds[*]%%=*} from the Go module proxy (log: $(logfile "$name-build"))"
  mkdir -p "$wd/out" "$bin"
  ( cd "$wd" && kube_go mod download -json "${mods[@]// /@}" >/dev/null ) || die "cannot download ${mods[*]}"
  { printf 'module rig.local/%s\n\ngo 1.26.0\n\nrequire (\n' "$name"
    for m in "${mods[@]}"; do printf '\t%s\n' "$m"; done
    printf ')\n\n'
    if declare -F "${name}_go_mod_extra" >/dev/null; then "${name}_go_mod_extra"; fi
  } >"$wd/go.mod"
  { printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "${cmds[@]}"; do printf '\t_ "%s"\n' "${c#*=}"; done
    printf ')\n'; } >"$wd/tools.go"
  # Niced: two cores are shared with everything else the rig runs.
  ( renice -n 10 -p "$BASHPID" >/dev/null; cd "$wd" && kube_go mod tidy &&
    if declare -F "${name}_go_patch" >/dev/null; then "${name}_go_patch"; fi &&
    for c in "${cmds[@]}"; do
      CGO_ENABLED=0 kube_go build -trimpath -ldflags "-s -w ${!ldflags:-}" -o "out/${c%%=*}" "${c#*=}" || exit 1
    done ) >>"$(logfile "$name-build")" 2>&1 || { tail -20 "$(logfile "$name-build")" >&2; die "$name build failed"; }
  for c in "${cmds[@]}"; do mv "$wd/out/${c%%=*}" "$bin/${c%%=*}"; done
  log "built ${cmds[*]%%=*} in $((SECONDS - t0)) s"
}
