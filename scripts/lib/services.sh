# shellcheck shell=bash
# The service framework of scripts/test: installs, starts and stops the servers the test suite
# talks to, each on a free 127.0.0.1 port with its data under one temporary directory.
#
# Sourced, not run. The caller sets LH_TMP (a `mktemp -d` directory) and calls:
#   services_start "postgres redis"   # in parallel; waits until each is ready or fails loudly
#   services_export                   # exports LOCKHOG_TEST_*_URL of what was started
#   services_stop                     # always (from an EXIT trap): stops everything started
#
# Adding a service NAME means writing three functions below:
#   svc_NAME_packages   prints the Debian packages it needs when its binary is missing
#   svc_NAME_start      starts it (in a background subshell: set nothing global, write files),
#                       records each server pid with `svc_pid`, waits until it answers, and
#                       writes its URL with `svc_url VAR URL`
# and listing NAME in LH_KNOWN_SERVICES.

LH_KNOWN_SERVICES="postgres redis redlock memcached etcd mysql"

# How long one server may take to answer before we give up (seconds).
LH_READY_TIMEOUT=${LH_READY_TIMEOUT:-60}

lh_log() { printf '[services] %s\n' "$*" >&2; }
lh_die() {
    printf '[services] ERROR: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Helpers

# free_ports N: prints N distinct free TCP ports on 127.0.0.1, one per line. All sockets are
# held open until every port is picked, so the N ports differ.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# svc_pid NAME PID: remembers a server process to stop later.
svc_pid() { echo "$2" >>"$LH_TMP/pids/$1"; }

# svc_url VAR VALUE: the environment variable to export once every service is up.
svc_url() { printf 'export %s=%q\n' "$1" "$2" >>"$LH_TMP/env/$1"; }

# alive PID: true while the process exists and is not a zombie.
alive() {
    local state
    [[ -r /proc/$1/stat ]] || return 1
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

# wait_ready NAME PID LOG CHECK...: runs CHECK every 0.1 s until it succeeds; fails loudly with
# the server's log when the server dies or LH_READY_TIMEOUT passes.
wait_ready() {
    local name=$1 pid=$2 log=$3
    shift 3
    local deadline=$((SECONDS + LH_READY_TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        if ! alive "$pid"; then
            lh_log "$name (pid $pid) exited before it was ready; its log ($log):"
            tail -n 40 "$log" >&2 || true
            return 1
        fi
        if ((SECONDS >= deadline)); then
            lh_log "$name (pid $pid) not ready after ${LH_READY_TIMEOUT}s; its log ($log):"
            tail -n 40 "$log" >&2 || true
            return 1
        fi
        sleep 0.1
    done
}

# tcp_chat PORT REQUEST EXPECT: sends REQUEST to 127.0.0.1:PORT and succeeds when the first line
# of the answer starts with EXPECT. Pure bash, no client needed.
tcp_chat() {
    local port=$1 request=$2 expect=$3 line
    exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
    printf '%b' "$request" >&3
    IFS= read -r -t 2 line <&3 || {
        exec 3>&-
        return 1
    }
    exec 3>&-
    [[ $line == "$expect"* ]]
}

tcp_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# as_user USER: prints, one per line, the command prefix that runs a command with USER's uid,
# gid and groups. setpriv execs the command, so a background job started with it has the
# server's own pid (a shell function would put a subshell in between).
as_user() {
    printf '%s\n' setpriv "--reuid=$1" "--regid=$1" --init-groups --
}

# ---------------------------------------------------------------------------------------------
# Installation

# services_install "LIST": installs the Debian packages of the listed services whose binaries
# are missing. `apt-get update` runs at most once per scripts/test run.
services_install() {
    local svc pkgs=()
    for svc in $1; do
        # shellcheck disable=SC2207
        pkgs+=($("svc_${svc}_packages"))
    done
    ensure_packages "${pkgs[@]}"
}

LH_APT_UPDATED=0
# ensure_packages PKG...: installs the given Debian packages (already filtered to missing ones
# by the caller, but double-checked with dpkg -s).
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    if ((EUID != 0)); then
        lh_die "missing Debian packages: ${missing[*]} — install them (sudo apt-get install ${missing[*]}) or run as root"
    fi
    command -v apt-get >/dev/null || lh_die "missing ${missing[*]} and no apt-get to install them"
    lh_log "installing ${missing[*]}"
    # Keep package scripts from starting system-wide copies of the servers we are installing.
    local made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    local rc=0
    if ((LH_APT_UPDATED == 0)); then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq || rc=$?
        LH_APT_UPDATED=1
    fi
    if ((rc == 0)); then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
            "${missing[@]}" </dev/null >"${LH_TMP:-/tmp}/apt-install.log" 2>&1 || rc=$?
    fi
    ((made_policy)) && rm -f /usr/sbin/policy-rc.d
    if ((rc != 0)); then
        tail -n 30 "${LH_TMP:-/tmp}/apt-install.log" >&2 2>/dev/null || true
        lh_die "apt-get could not install ${missing[*]}"
    fi
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL: a throwaway cluster run by the `postgres` system user (postgres refuses root).
# URL: postgres://lockhog:lockhog@127.0.0.1:PORT/lockhog (password auth over TCP).
# The same port also serves TLS with a certificate for localhost and 127.0.0.1 signed by a CA
# made here by openssl: LOCKHOG_TEST_POSTGRES_CA is that CA (for sslrootcert=), and the role
# of LOCKHOG_TEST_POSTGRES_TLS_URL may only log in over TLS (pg_hba `hostnossl … reject`), so a
# session it opens proves the connection is encrypted.

pg_bindir() {
    local d best=""
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/postgres ]] && best=$(printf '%s\n%s\n' "$best" "$d" | sort -V | tail -n 1)
    done
    [[ -n $best ]] && echo "$best"
}

svc_postgres_packages() {
    pg_bindir >/dev/null || echo postgresql
    command -v openssl >/dev/null || echo openssl
}

# pg_make_certs DIR USER: a CA (DIR/ca.pem) and a server certificate signed by it for
# localhost and 127.0.0.1 (DIR/server.crt, key DIR/server.key owned by USER, mode 0600).
pg_make_certs() {
    local dir=$1 user=$2
    mkdir -p "$dir"
    chmod 755 "$dir"
    printf '%s\n' 'basicConstraints=critical,CA:FALSE' \
        'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' \
        'subjectAltName=DNS:localhost,IP:127.0.0.1' >"$dir/server.ext"
    {
        openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj '/CN=lockhog test CA' \
            -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign' \
            -keyout "$dir/ca.key" -out "$dir/ca.pem" &&
            openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' \
                -keyout "$dir/server.key" -out "$dir/server.csr" &&
            openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
                -CAcreateserial -days 7 -extfile "$dir/server.ext" -out "$dir/server.crt"
    } >"$dir/openssl.log" 2>&1 </dev/null || {
        tail -n 20 "$dir/openssl.log" >&2
        lh_die "openssl could not make the PostgreSQL test certificates"
    }
    chmod 644 "$dir/ca.pem" "$dir/server.crt"
    chmod 600 "$dir/server.key" "$dir/ca.key"
    chown "$user:" "$dir/server.key" "$dir/server.crt"
}

svc_postgres_start() {
    local bin dir port user=postgres
    bin=$(pg_bindir) || lh_die "PostgreSQL binaries not found under /usr/lib/postgresql"
    if ((EUID == 0)); then
        getent passwd "$user" >/dev/null || lh_die "no '$user' system user to run PostgreSQL as"
    else
        user=$(id -un)
    fi
    dir=$LH_TMP/postgres
    mkdir -p "$dir"
    chown "$user:" "$dir"
    chmod 700 "$dir"
    port=$(free_ports 1)
    echo lockhog >"$dir/pwfile"
    chown "$user:" "$dir/pwfile"
    local as=()
    ((EUID == 0)) && mapfile -t as < <(as_user "$user")
    "${as[@]}" "$bin/initdb" -D "$dir/data" -U lockhog --pwfile="$dir/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 </dev/null ||
        {
            tail -n 30 "$dir/initdb.log" >&2
            lh_die "initdb failed"
        }
    # initdb's `host` lines accept TLS and plain sessions alike; this role only TLS ones.
    {
        echo 'hostnossl all lockhog_tls all reject'
        cat "$dir/data/pg_hba.conf"
    } >"$dir/pg_hba.conf.new" && mv "$dir/pg_hba.conf.new" "$dir/data/pg_hba.conf"
    chown "$user:" "$dir/data/pg_hba.conf"
    local tls=$LH_TMP/postgres-tls
    pg_make_certs "$tls" "$user"
    # `lockhog bench --scale` runs 256 clients, each with a session connection and one
    # waiting in the server's lock wait, beside the test suite's own; and holds 100k advisory
    # locks in one process, which the shared lock table (max_locks_per_transaction ×
    # max_connections slots) must fit.
    "${as[@]}" "$bin/postgres" -D "$dir/data" -p "$port" -h 127.0.0.1 -k "$dir" \
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        -c max_connections=600 -c max_locks_per_transaction=256 -c shared_buffers=32MB \
        -c ssl=on -c "ssl_cert_file=$tls/server.crt" -c "ssl_key_file=$tls/server.key" \
        >"$dir/server.log" 2>&1 </dev/null &
    local pid=$!
    svc_pid postgres "$pid"
    wait_ready postgres "$pid" "$dir/server.log" \
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U lockhog -d postgres || return 1
    "${as[@]}" "$bin/psql" -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U lockhog -d postgres \
        -c 'CREATE DATABASE lockhog' \
        -c "CREATE ROLE lockhog_tls LOGIN SUPERUSER PASSWORD 'tls-only-pw'" \
        >>"$dir/server.log" 2>&1 </dev/null ||
        lh_die "cannot create the lockhog database and roles"
    svc_url LOCKHOG_TEST_POSTGRES_URL "postgres://lockhog:lockhog@127.0.0.1:$port/lockhog"
    svc_url LOCKHOG_TEST_POSTGRES_CA "$tls/ca.pem"
    svc_url LOCKHOG_TEST_POSTGRES_TLS_URL \
        "postgres://lockhog_tls:tls-only-pw@127.0.0.1:$port/lockhog"
}

# ---------------------------------------------------------------------------------------------
# Redis: one node for redis://, three independent nodes for redlock://.

svc_redis_packages() { command -v redis-server >/dev/null || echo redis-server; }
svc_redlock_packages() { svc_redis_packages; }

# start_redis_node TAG PORT: starts one redis-server in the foreground of a background job.
start_redis_node() {
    local tag=$1 port=$2 dir=$LH_TMP/$1
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        --daemonize no --protected-mode no \
        >"$dir/server.log" 2>&1 </dev/null &
    local pid=$!
    svc_pid "$tag" "$pid"
    wait_ready "$tag" "$pid" "$dir/server.log" tcp_chat "$port" 'PING\r\n' '+PONG'
}

svc_redis_start() {
    local port
    port=$(free_ports 1)
    start_redis_node redis "$port" || return 1
    svc_url LOCKHOG_TEST_REDIS_URL "redis://127.0.0.1:$port"
}

svc_redlock_start() {
    local ports i pids=() rc=0
    mapfile -t ports < <(free_ports 3)
    for i in 0 1 2; do
        start_redis_node "redlock$i" "${ports[$i]}" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || rc=1; done
    ((rc == 0)) || return 1
    svc_url LOCKHOG_TEST_REDLOCK_URL \
        "redlock://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
}

# ---------------------------------------------------------------------------------------------
# memcached

svc_memcached_packages() { command -v memcached >/dev/null || echo memcached; }

svc_memcached_start() {
    local port dir=$LH_TMP/memcached as_nobody=()
    mkdir -p "$dir"
    port=$(free_ports 1)
    ((EUID == 0)) && as_nobody=(-u nobody)
    # -c: room for `lockhog bench --scale`'s 256 clients (each a client of a few connections)
    # beside the test suite's own; the default is 1024.
    memcached -l 127.0.0.1 -p "$port" -U 0 -c 4096 "${as_nobody[@]}" >"$dir/server.log" 2>&1 \
        </dev/null &
    local pid=$!
    svc_pid memcached "$pid"
    wait_ready memcached "$pid" "$dir/server.log" tcp_chat "$port" 'version\r\n' 'VERSION' ||
        return 1
    svc_url LOCKHOG_TEST_MEMCACHED_URL "memcached://127.0.0.1:$port"
}

# ---------------------------------------------------------------------------------------------
# etcd: a three-member cluster on 127.0.0.1 (Debian's etcd-server), so tests can stop one
# member and see locks keep working.
#   LOCKHOG_TEST_ETCD_URL      etcd://127.0.0.1:C0,127.0.0.1:C1,127.0.0.1:C2 (client ports)
#   LOCKHOG_TEST_ETCD_MEMBERS  a directory with one subdirectory per member, m0 m1 m2 in the
#                              URL's order, each holding `endpoint` (127.0.0.1:PORT), `pid`
#                              (the running server) and `start` (an executable that starts that
#                              member again on its data dir and returns once it is healthy; the
#                              pid it starts is recorded, so scripts/test still stops it).

svc_etcd_packages() { command -v etcd >/dev/null || echo etcd-server; }

svc_etcd_start() {
    local ports dir=$LH_TMP/etcd i cluster="" jobs=() rc=0
    mkdir -p "$dir"
    mapfile -t ports < <(free_ports 6)
    for i in 0 1 2; do
        cluster+="${cluster:+,}m$i=http://127.0.0.1:${ports[$((i + 3))]}"
    done
    for i in 0 1 2; do
        etcd_member_script "$dir/m$i" "m$i" "${ports[$i]}" "${ports[$((i + 3))]}" "$cluster"
    done
    # Members wait for each other (health needs a leader), so start all three at once.
    for i in 0 1 2; do
        "$dir/m$i/start" &
        jobs+=($!)
    done
    for i in "${jobs[@]}"; do wait "$i" || rc=1; done
    ((rc == 0)) || return 1
    svc_url LOCKHOG_TEST_ETCD_URL \
        "etcd://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
    svc_url LOCKHOG_TEST_ETCD_MEMBERS "$dir"
}

# etcd_member_script DIR NAME CLIENT_PORT PEER_PORT CLUSTER: writes DIR/start, which starts the
# member (the first time it joins the new cluster; later it restarts from its data dir),
# records its pid in DIR/pid and in the framework's pid list, and returns once the member
# reports itself healthy (at most LH_READY_TIMEOUT seconds).
etcd_member_script() {
    local mdir=$1 name=$2 cport=$3 pport=$4 cluster=$5
    mkdir -p "$mdir"
    echo "127.0.0.1:$cport" >"$mdir/endpoint"
    {
        echo '#!/usr/bin/env bash'
        echo 'set -u'
        printf 'mdir=%q pids=%q timeout=%q\n' "$mdir" "$LH_TMP/pids/etcd" "$LH_READY_TIMEOUT"
        printf 'port=%q client=%q peer=%q\n' "$cport" "http://127.0.0.1:$cport" \
            "http://127.0.0.1:$pport"
        printf 'name=%q cluster=%q\n' "$name" "$cluster"
        cat <<'SCRIPT'
etcd --name "$name" --data-dir "$mdir/data" \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "$cluster" --initial-cluster-token lockhog-test \
    --initial-cluster-state new --unsafe-no-fsync --log-outputs stderr \
    >>"$mdir/server.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$mdir/pid"
echo "$pid" >>"$pids"
healthy() {
    local body
    exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
    printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    body=$(timeout 2 cat <&3) || true
    exec 3>&-
    [[ $body == *'"health":"true"'* ]]
}
deadline=$((SECONDS + timeout))
until healthy 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "etcd member $name (pid $pid) exited before it was ready; its log:" >&2
        tail -n 40 "$mdir/server.log" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "etcd member $name (pid $pid) not healthy after ${timeout}s; its log:" >&2
        tail -n 40 "$mdir/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
SCRIPT
    } >"$mdir/start"
    chmod 755 "$mdir/start"
}

# ---------------------------------------------------------------------------------------------
# MariaDB (for mysql:// URLs): a throwaway data dir owned by the `mysql` system user.
# URL: mysql://lockhog:lockhog@127.0.0.1:PORT/lockhog

svc_mysql_packages() {
    command -v mariadbd >/dev/null || command -v mysqld >/dev/null || echo mariadb-server
}

svc_mysql_start() {
    local port dir=$LH_TMP/mysql user=mysql server
    server=$(command -v mariadbd || command -v mysqld) || lh_die "no mariadbd"
    if ((EUID == 0)); then
        getent passwd "$user" >/dev/null || lh_die "no '$user' system user to run MariaDB as"
    else
        user=$(id -un)
    fi
    mkdir -p "$dir/data"
    chown -R "$user:" "$dir"
    port=$(free_ports 1)
    mariadb-install-db --no-defaults --datadir="$dir/data" --user="$user" \
        --auth-root-authentication-method=normal --skip-test-db \
        >"$dir/install.log" 2>&1 </dev/null ||
        {
            tail -n 30 "$dir/install.log" >&2
            lh_die "mariadb-install-db failed"
        }
    cat >"$dir/init.sql" <<'EOF'
CREATE DATABASE IF NOT EXISTS lockhog;
CREATE USER IF NOT EXISTS 'lockhog'@'127.0.0.1' IDENTIFIED BY 'lockhog';
CREATE USER IF NOT EXISTS 'lockhog'@'localhost' IDENTIFIED BY 'lockhog';
GRANT ALL ON *.* TO 'lockhog'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL ON *.* TO 'lockhog'@'localhost' WITH GRANT OPTION;
EOF
    chown "$user:" "$dir/init.sql"
    # max-connections: room for `lockhog bench --scale`'s 256 clients (a session connection
    # and a waiting one each) beside the test suite's own.
    "$server" --no-defaults --datadir="$dir/data" --user="$user" \
        --bind-address=127.0.0.1 --port="$port" --socket="$dir/mysqld.sock" \
        --pid-file="$dir/mysqld.pid" --init-file="$dir/init.sql" \
        --skip-log-bin --innodb-flush-log-at-trx-commit=0 --innodb-buffer-pool-size=64M \
        --max-connections=600 \
        >"$dir/server.log" 2>&1 </dev/null &
    local pid=$!
    svc_pid mysql "$pid"
    wait_ready mysql "$pid" "$dir/server.log" mysql_ready "$dir/mysqld.sock" || return 1
    svc_url LOCKHOG_TEST_MYSQL_URL "mysql://lockhog:lockhog@127.0.0.1:$port/lockhog"
}

mysql_ready() {
    mariadb --no-defaults --socket="$1" -u lockhog -plockhog -e 'SELECT 1' lockhog
}

# ---------------------------------------------------------------------------------------------
# The framework

# services_start "LIST": validates, installs what is missing, then starts every listed service
# in parallel and waits for all of them. Fails (non-zero) when any did not come up.
services_start() {
    local list=$1 svc
    [[ -n ${LH_TMP:-} && -d $LH_TMP ]] || lh_die "LH_TMP is not set to a directory"
    mkdir -p "$LH_TMP/pids" "$LH_TMP/env"
    for svc in $list; do
        [[ " $LH_KNOWN_SERVICES " == *" $svc "* ]] ||
            lh_die "unknown service '$svc' (known: $LH_KNOWN_SERVICES)"
    done
    [[ -z ${list// /} ]] && return 0
    # python3 picks the ports.
    command -v python3 >/dev/null || ensure_packages python3
    services_install "$list"
    # The data dirs are owned by service users, who must be able to reach them.
    chmod 755 "$LH_TMP"
    local jobs=() names=() i rc=0 started=$SECONDS
    for svc in $list; do
        ("svc_${svc}_start") &
        jobs+=($!)
        names+=("$svc")
    done
    for i in "${!jobs[@]}"; do
        if ! wait "${jobs[$i]}"; then
            lh_log "${names[$i]} failed to start"
            rc=1
        fi
    done
    ((rc == 0)) || return 1
    lh_log "started: $list ($((SECONDS - started))s)"
}

# services_export: exports the URLs written by the services that started.
services_export() {
    local f
    [[ -d ${LH_TMP:-}/env ]] || return 0
    for f in "$LH_TMP"/env/*; do
        [[ -e $f ]] || continue
        # shellcheck disable=SC1090
        source "$f"
    done
    restart_export
}

# services_print: prints the exported URLs, one `VAR=URL` per line.
services_print() {
    local f var
    for f in "$LH_TMP"/env/*; do
        [[ -e $f ]] || continue
        var=${f##*/}
        printf '%s=%s\n' "$var" "${!var:-}"
    done
}

# services_stop: stops every recorded server (SIGTERM, then SIGKILL after 15 s). Idempotent.
services_stop() {
    [[ -d ${LH_TMP:-}/pids ]] || return 0
    local f pid pids=()
    for f in "$LH_TMP"/pids/*; do
        [[ -e $f ]] || continue
        while read -r pid; do
            [[ -n $pid ]] && pids+=("$pid")
        done <"$f"
    done
    ((${#pids[@]} == 0)) && return 0
    for pid in "${pids[@]}"; do
        # SIGINT is PostgreSQL's fast shutdown; redis, memcached, etcd and MariaDB take SIGTERM.
        if alive "$pid"; then
            if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == postgres ]]; then
                kill -INT "$pid" 2>/dev/null || true
            else
                kill -TERM "$pid" 2>/dev/null || true
            fi
        fi
    done
    local deadline=$((SECONDS + 15)) left
    while :; do
        left=()
        for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
        ((${#left[@]} == 0)) && break
        if ((SECONDS >= deadline)); then
            lh_log "killing servers that did not stop: ${left[*]}"
            kill -KILL "${left[@]}" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -rf "$LH_TMP/pids"
    lh_log "stopped ${#pids[@]} server process(es)"
}

# ---------------------------------------------------------------------------------------------
# Restarts, for fault tests (`lockhog torture --faults restart`): services_export also exports
# LOCKHOG_TEST_<NAME>_RESTART, a shell command that stops that service's server and starts it
# again on the same port and data, returning once it answers:
#   postgres, mysql, memcached   the server process again, with the arguments, directory and
#                                (for postgres) user it runs with, its output appended to its log
#   redis                        the node again on its port (no persistence: keys and the
#                                fencing counter are lost, as in a real restart of that setup)
#   redlock                      one node chosen at random, kept down for the lease
#                                (LOCKHOG_TORTURE_TTL_MS, else 2 s) before it starts again: the
#                                "delayed restart" Redlock's guarantee assumes
#   etcd                         every member stopped, then all started again on their data
# The new pids are recorded like the first ones, so services_stop still stops them.
# Run as: LH_TMP=DIR bash scripts/lib/services.sh restart NAME

# restart_export: exports LOCKHOG_TEST_<NAME>_RESTART for each service whose URL is exported.
restart_export() {
    local svc var self
    self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/services.sh
    for svc in $LH_KNOWN_SERVICES; do
        var=LOCKHOG_TEST_${svc^^}_URL
        [[ -n ${!var:-} ]] || continue
        printf -v "LOCKHOG_TEST_${svc^^}_RESTART" 'LH_TMP=%q bash %q restart %q' \
            "$LH_TMP" "$self" "$svc"
        export "LOCKHOG_TEST_${svc^^}_RESTART"
    done
}

# live_pid TAG: the running server among the pids recorded for TAG.
live_pid() {
    local p pid=""
    [[ -r $LH_TMP/pids/$1 ]] || return 1
    while read -r p; do
        [[ -n $p ]] && alive "$p" && pid=$p
    done <"$LH_TMP/pids/$1"
    [[ -n $pid ]] && echo "$pid"
}

# stop_pid PID: stops one server (SIGINT for PostgreSQL's fast shutdown, else SIGTERM) and
# waits for it to exit, SIGKILL after 30 s.
stop_pid() {
    local pid=$1 deadline=$((SECONDS + 30))
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == postgres ]]; then
        kill -INT "$pid" 2>/dev/null || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    while alive "$pid"; do
        if ((SECONDS >= deadline)); then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.05
    done
}

# arg_after KEY ARGS…: the value of `KEY VALUE` or `KEY=VALUE` in ARGS.
arg_after() {
    local key=$1
    shift
    while (($#)); do
        case $1 in
        "$key") echo "${2:-}" && return 0 ;;
        "$key"=*) echo "${1#*=}" && return 0 ;;
        esac
        shift
    done
    return 1
}

# restart_process TAG: stops TAG's server and starts the same command line again.
restart_process() {
    local tag=$1 pid argv=() cwd log uid prefix=()
    pid=$(live_pid "$tag") || lh_die "no running $tag server to restart"
    mapfile -d '' -t argv <"/proc/$pid/cmdline"
    cwd=$(readlink "/proc/$pid/cwd")
    log=$(readlink "/proc/$pid/fd/1" 2>/dev/null) || true
    [[ $log == /* && -f $log ]] || log=$LH_TMP/$tag-restart.log
    uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
    if [[ ${argv[0]##*/} == postgres ]] && ((uid != EUID)); then
        mapfile -t prefix < <(as_user "$(id -nu "$uid")")
    fi
    stop_pid "$pid"
    (cd "$cwd" && exec "${prefix[@]}" "${argv[@]}" >>"$log" 2>&1 </dev/null) &
    pid=$!
    svc_pid "$tag" "$pid"
    local port sock
    case $tag in
    postgres)
        port=$(arg_after -p "${argv[@]}")
        wait_ready "$tag" "$pid" "$log" \
            "${argv[0]%/*}/pg_isready" -q -h 127.0.0.1 -p "$port" -U lockhog -d postgres
        ;;
    memcached)
        port=$(arg_after -p "${argv[@]}")
        wait_ready "$tag" "$pid" "$log" tcp_chat "$port" 'version\r\n' 'VERSION'
        ;;
    mysql)
        sock=$(arg_after --socket "${argv[@]}")
        wait_ready "$tag" "$pid" "$log" mysql_ready "$sock"
        ;;
    *) lh_die "no readiness check for $tag" ;;
    esac
}

# restart_redis_node TAG [DELAY]: redis-server rewrites its command line to
# `redis-server HOST:PORT`, so it is started again by start_redis_node on that port.
restart_redis_node() {
    local tag=$1 delay=${2:-0} pid port
    pid=$(live_pid "$tag") || lh_die "no running $tag server to restart"
    # The title is padded with spaces to the length of the original arguments.
    port=$(tr '\0' ' ' <"/proc/$pid/cmdline" | grep -o ':[0-9]\+' | tail -n 1)
    [[ -n $port ]] || lh_die "cannot find the port of $tag (pid $pid)"
    stop_pid "$pid"
    sleep "$delay"
    start_redis_node "$tag" "${port#:}"
}

services_restart() {
    [[ -n ${LH_TMP:-} && -d $LH_TMP/pids ]] || lh_die "LH_TMP has no running services"
    case $1 in
    postgres | mysql | memcached) restart_process "$1" ;;
    redis) restart_redis_node redis ;;
    redlock)
        local ttl_ms=${LOCKHOG_TORTURE_TTL_MS:-2000}
        restart_redis_node "redlock$((RANDOM % 3))" "$(((ttl_ms + 999) / 1000))"
        ;;
    etcd)
        local m jobs=() rc=0
        for m in "$LH_TMP"/etcd/m*/; do
            stop_pid "$(cat "$m/pid")"
        done
        for m in "$LH_TMP"/etcd/m*/; do
            "$m/start" &
            jobs+=($!)
        done
        for m in "${jobs[@]}"; do wait "$m" || rc=1; done
        return "$rc"
        ;;
    *) lh_die "cannot restart '$1' (known: $LH_KNOWN_SERVICES)" ;;
    esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    case ${1:-} in
    restart) services_restart "${2:?a service name}" ;;
    *)
        echo "usage: LH_TMP=DIR bash services.sh restart SERVICE" >&2
        exit 2
        ;;
    esac
fi
