#!/bin/bash
# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

usage() {
    cat <<EOF
A real single-node Cinder on Lustre, on loopback, for demos and the gate.

Usage (as root, Debian 12):  tools/stack/stack.sh up|down|status

  up      Install what is missing (Debian packages, virtualenvs from PyPI),
          then start PostgreSQL, RabbitMQ, Keystone, Glance,
          cinder-api/scheduler/volume/backup with this repository's drivers,
          and (unless STACK_NOVA=0) libvirtd, Placement, the Neutron API and
          Nova (api, conductor, scheduler, compute) with a small guest image.
          A stack that is already up is left alone; a partly running or
          stopped one is stopped and started afresh (empty databases).
  down    Stop every process the stack started, unmount every Lustre mount
          under the stack's mount bases, uninstall the Lustre stand-in if
          the stack installed it.  Works after a failed 'up' too.
  status  What runs; exit status 0 only if everything does.

Environment:
  STACK_BASE     where everything lives (default /var/tmp/cinder-lustre-stack):
                 virtualenvs, configuration, databases, logs (\$STACK_BASE/logs),
                 the stand-in's images and the mount points
  LUSTRE_SHARE   a real Lustre fileset (MGSNID:/FSNAME[/SUBDIR]) for backend
                 lustre1, mounted with the Lustre client of this host.  Then
                 the stand-in is not used: backend lustre2 exists only if
                 LUSTRE_SHARE2 names a second fileset (on another filesystem,
                 for migrations), and backups go to LUSTRE_BACKUP_SHARE,
                 by default LUSTRE_SHARE itself (in per-backup directories).
                 Without LUSTRE_SHARE, the stand-in (tools/lustre-standin)
                 provides lfs01 (filesets /cinder and /cinder2: backend
                 lustre1 with two pools), lfs02 (/cinder: lustre2) and
                 lfs03 (/backup: the backup driver).
  STACK_PASSWORD password of every account and database (default stackpass)
  STACK_USER     the unprivileged user Cinder's and Nova's services run as
                 (default stack; created if absent, and left in place); they
                 reach root only through sudo and cinder-rootwrap or
                 nova-rootwrap, as in a deployment
  STACK_NOVA     0: no compute side (no libvirt, Placement, Neutron, Nova,
                 guest); about 2 minutes less set-up and 1.5 GiB less memory
  STACK_VIRT_TYPE kvm, qemu (TCG) or auto (default: KVM if it boots the
                 guest within 24 s, else TCG)
  STACK_CLUSTER  1 (default): etcd and two cinder-volume services (hosts
                 lustre-stack and lustre-stack-2, each with its own state
                 directory and file locks, as on two nodes) serve every
                 backend as the one cluster lustre-cluster, coordinated
                 through etcd.  0: one cinder-volume service, no etcd.
                 status and down follow the running stack's layout.

Listens on 127.0.0.1 only: Keystone 5000, Glance 9292, Cinder 8776,
RabbitMQ 5672 (+ epmd 4369, 25672), PostgreSQL 5433, etcd 2379 (+ 2380)
with the cluster; with Nova also
Nova 8774, Placement 8778, Neutron 9696 (libvirtd on its UNIX socket).
Use it with:  source \$STACK_BASE/openrc; openstack volume list
EOF
}

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BASE=${STACK_BASE:-/var/tmp/cinder-lustre-stack}
PASSWORD=${STACK_PASSWORD:-stackpass}
VENV=$BASE/venv                 # cinder + clients + our drivers
KS_VENV=$BASE/venv-keystone
GL_VENV=$BASE/venv-glance
ETC=$BASE/etc
LOGS=$BASE/logs
RUN=$BASE/run                   # pid files and "we did this" markers
STATE=$BASE/state
PG_PORT=5433                    # not 5432: leave a system cluster alone
DB=postgresql+psycopg2://openstack:$PASSWORD@127.0.0.1:$PG_PORT
SUDOERS=/etc/sudoers.d/cinder-lustre-stack
# Cinder's and Nova's services run as this user.  Their configuration is
# named through a link under /etc, where Cinder's and Nova's own rootwrap
# filters accept the privsep helper's --config-file.
SERVICE_USER=${STACK_USER:-stack}
ETC_LINK=/etc/cinder-lustre-stack
STANDIN=$REPO/tools/lustre-standin
HOST=lustre-stack               # cinder's "host": lustre-stack@lustre1#pool
# Mount bases: the volume drivers (and cinder-backup's os-brick, which
# reuses their mounts), the backup driver, the demo's "hypervisor" and
# Nova's libvirt driver.
MOUNT_BASES=("$BASE/mnt" "$BASE/backup-mnt" "$BASE/hypervisor-mnt" "$BASE/nova-mnt")
CINDER_SERVICES=(cinder-api cinder-scheduler cinder-volume cinder-backup)
# Active/active: the second volume service is "another node" of the cluster.
CLUSTER=lustre-cluster
ETCD_URL=http://127.0.0.1:2379
# up makes the layout asked for; status and down, unless told, find the
# one the running stack was started with.
LAYOUT_FILE=$RUN/stack-cluster
if [ "${1:-}" != up ] && [ -z "${STACK_CLUSTER:-}" ] && [ -f "$LAYOUT_FILE" ]; then
    STACK_CLUSTER=$(cat "$LAYOUT_FILE")
fi
cluster_enabled() { [ "${STACK_CLUSTER:-1}" != 0 ]; }
layout() { if cluster_enabled; then echo 1; else echo 0; fi; }
cluster_enabled && CINDER_SERVICES+=(cinder-volume-2)
APT_PACKAGES=(rabbitmq-server postgresql qemu-utils sudo python3-venv
              e2fsprogs patch curl iproute2 procps)
cluster_enabled && APT_PACKAGES+=(etcd-server)
# The service processes get this HOME, so that what they write there
# (Erlang cookie, Tempest's workspace list, caches) stays in the stack's
# directory; pip's cache stays where it was, to survive a new base.
export PIP_CACHE_DIR=${PIP_CACHE_DIR:-$HOME/.cache/pip}
export HOME=$BASE/home

# shellcheck source=tools/stack/lib-nova.sh
. "$REPO/tools/stack/lib-nova.sh"

say() { printf '[stack %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { say "ERROR: $*" >&2; exit 1; }

# --- processes -----------------------------------------------------------

# PID 1 here does not reap orphans: a dead service stays a zombie.
alive() {
    local state
    state=$(sed -E 's/.*\) (.).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }

running() {
    local pid
    pid=$(pid_of "$1")
    [ -n "$pid" ] && alive "$pid"
}

# Start a long-running command in its own session (so that its process
# group is exactly what it spawned) and record its PID.
spawn() {
    local name=$1
    shift
    setsid "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
    echo $! > "$RUN/$name.pid"
}

# spawn_unprivileged NAME COMMAND...: spawn, as the service user with its
# groups, in /.  setpriv and env execute the command in place, so the PID
# recorded is the service's own; the log file, which oslo.log opens too, is
# the user's.
spawn_unprivileged() {
    local name=$1
    shift
    touch "$LOGS/$name.log"
    chown "$SERVICE_USER:$SERVICE_USER" "$LOGS/$name.log"
    spawn "$name" setpriv --reuid "$SERVICE_USER" --regid "$SERVICE_USER" \
        --init-groups -- env --chdir=/ "$@"
}

# Stop what spawn started: its whole process group, politely first.
stop_pid_group() {
    local name=$1 pid i
    pid=$(pid_of "$name")
    [ -n "$pid" ] || return 0
    if alive "$pid"; then
        say "stopping $name (pid $pid)"
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 60); do alive "$pid" || break; sleep 0.5; done
        if alive "$pid"; then
            say "$name did not stop in 30 s, killing it"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$RUN/$name.pid"
}

# Processes that escaped their group (privsep daemons run through sudo in
# a session of their own) are found by the stack's paths on their command
# line: nothing else on the machine has them.
stop_strays() {
    local pid cmd
    for pid in $(ls /proc | grep -E '^[0-9]+$'); do
        [ "$pid" = $$ ] && continue
        cmd=$(tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline") || continue
        case $cmd in
            *"$BASE/"*)
                case $cmd in *stack.sh*|*demo.sh*|*gate.sh*) continue ;; esac
                alive "$pid" || continue
                say "stopping leftover pid $pid: ${cmd:0:100}"
                kill -TERM "$pid" 2>/dev/null || true ;;
        esac
    done
    sleep 1
    for pid in $(ls /proc | grep -E '^[0-9]+$'); do
        cmd=$(tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline") || continue
        case $cmd in
            *stack.sh*|*demo.sh*|*gate.sh*) ;;
            *"$BASE/"*) alive "$pid" && kill -KILL "$pid" 2>/dev/null || true ;;
        esac
    done
}

# Wait until a command succeeds; curl always with --max-time (a crash-looping
# server otherwise hangs a plain curl forever).
wait_for() {
    local what=$1 seconds=$2 i
    shift 2
    for i in $(seq "$seconds"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 1
    done
    die "$what not ready after $seconds s (see $LOGS)"
}

http_ok() { curl -sf --max-time 5 -o /dev/null "$1"; }

# --- installation --------------------------------------------------------

install_debian_packages() {
    local missing=() pkg wanted=("${APT_PACKAGES[@]}")
    nova_enabled && wanted+=("${NOVA_APT_PACKAGES[@]}")
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null |
            grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "apt-get install ${missing[*]}"
    # policy-rc.d-less images would start the services: we start our own.
    DEBIAN_FRONTEND=noninteractive apt-get update -q >"$LOGS/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 \
        install -y -q --no-install-recommends "${missing[@]}" \
        >>"$LOGS/apt.log" 2>&1 || die "apt-get failed, see $LOGS/apt.log"
}

# make_venv DIR PACKAGE... : a virtualenv, made once (a marker file says
# it is complete, so an interrupted install is redone).
make_venv() {
    local dir=$1
    shift
    [ -f "$dir/.complete" ] && return 0
    rm -rf "$dir"
    /usr/bin/python3 -m venv "$dir" || return 1
    "$dir/bin/pip" install -q --upgrade pip || return 1
    "$dir/bin/pip" install -q "$@" || return 1
    touch "$dir/.complete"
}

install_venvs() {
    local started=$SECONDS i rc=0
    VENV_PIDS=() VENV_NAMES=()
    # pip spends its time waiting on the network and unpacking: three at once.
    make_venv "$VENV" 'cinder>=29,<30' python-cinderclient \
        python-openstackclient psycopg2-binary etcd3gw >"$LOGS/pip-venv.log" 2>&1 &
    VENV_PIDS+=($!); VENV_NAMES+=(venv)
    make_venv "$KS_VENV" 'keystone>=30,<31' gunicorn psycopg2-binary \
        >"$LOGS/pip-venv-keystone.log" 2>&1 &
    VENV_PIDS+=($!); VENV_NAMES+=(venv-keystone)
    make_venv "$GL_VENV" 'glance>=33,<34' gunicorn psycopg2-binary \
        >"$LOGS/pip-venv-glance.log" 2>&1 &
    VENV_PIDS+=($!); VENV_NAMES+=(venv-glance)
    nova_enabled && nova_make_venvs
    for i in "${!VENV_PIDS[@]}"; do
        wait "${VENV_PIDS[$i]}" || { say "pip failed for ${VENV_NAMES[$i]}: see $LOGS/pip-${VENV_NAMES[$i]}.log"; rc=1; }
    done
    [ $rc -eq 0 ] || exit 1
    # tooz's etcd driver, also in a virtualenv made before it was listed.
    "$VENV/bin/python" -c 'import etcd3gw' 2>/dev/null ||
        "$VENV/bin/pip" install -q etcd3gw >>"$LOGS/pip-venv.log" 2>&1 ||
        die "pip install etcd3gw failed, see $LOGS/pip-venv.log"
    # Non-editable, every time: the stack runs the tree as it is now.
    "$VENV/bin/pip" install -q --no-deps --force-reinstall "$REPO" \
        >"$LOGS/pip-repo.log" 2>&1 || die "pip install $REPO failed"
    say "virtualenvs ready ($((SECONDS - started)) s): $($VENV/bin/pip list 2>/dev/null |
        awk '$1 ~ /^(cinder|cinder-lustre|os-brick)$/ {printf "%s %s  ", $1, $2}')"
}

apply_os_brick_patch() {
    local venvs=("$VENV") ok=1 v
    nova_enabled && venvs+=("$NOVA_VENV")
    for v in "${venvs[@]}"; do
        "$REPO/contrib/apply-os-brick.sh" "$v" >>"$LOGS/apply-os-brick.log" 2>&1 || ok=0
    done
    if [ $ok = 1 ]; then
        rm -f "$RUN/os-brick-unpatched"
        say "os-brick: contrib patches applied ($(tail -1 "$LOGS/apply-os-brick.log"))"
    else
        touch "$RUN/os-brick-unpatched"
        cat <<EOF >&2

!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!  The contrib os-brick patch could NOT be applied (see
!!  $LOGS/apply-os-brick.log).
!!  cinder-backup, migration and retype cannot attach 'lustre' volumes:
!!  they will fail with InvalidConnectorProtocol.
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!

EOF
    fi
}

# --- PostgreSQL: a cluster of the stack's own, in $BASE ---------------------

pg_bin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1; }

start_postgresql() {
    local bin
    bin=$(pg_bin)
    rm -rf "$BASE/pgsql"
    mkdir -p "$BASE/pgsql/run"
    chown -R postgres:postgres "$BASE/pgsql"
    runuser -u postgres -- "$bin/initdb" -D "$BASE/pgsql/data" -U postgres \
        --auth-local=trust --auth-host=scram-sha-256 >"$LOGS/initdb.log" 2>&1
    runuser -u postgres -- "$bin/pg_ctl" -D "$BASE/pgsql/data" -w \
        -l "$BASE/pgsql/postgresql.log" \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $BASE/pgsql/run -c max_connections=300" \
        start >/dev/null
    # The server writes as postgres, which cannot write to $LOGS.
    ln -sf "$BASE/pgsql/postgresql.log" "$LOGS/postgresql.log"
    runuser -u postgres -- psql -q -h "$BASE/pgsql/run" -p $PG_PORT -d postgres \
        -c "CREATE ROLE openstack LOGIN PASSWORD '$PASSWORD'" \
        -c "CREATE DATABASE cinder OWNER openstack" \
        -c "CREATE DATABASE keystone OWNER openstack" \
        -c "CREATE DATABASE glance OWNER openstack"
    nova_enabled && create_nova_databases
    say "PostgreSQL on 127.0.0.1:$PG_PORT (data in $BASE/pgsql)"
}

stop_postgresql() {
    [ -f "$BASE/pgsql/data/postmaster.pid" ] || return 0
    say "stopping PostgreSQL"
    runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$BASE/pgsql/data" -m fast \
        -w stop >/dev/null 2>&1 || true
}

# --- RabbitMQ, with its node, data, logs and cookie in $BASE ----------------

rabbit_env() {
    export RABBITMQ_CONF_ENV_FILE=$ETC/rabbitmq/rabbitmq-env.conf
    export ERL_EPMD_ADDRESS=127.0.0.1
}

start_rabbitmq() {
    mkdir -p "$ETC/rabbitmq" "$STATE/rabbitmq"
    cat > "$ETC/rabbitmq/rabbitmq-env.conf" <<EOF
NODENAME=rabbit@localhost
NODE_IP_ADDRESS=127.0.0.1
NODE_PORT=5672
MNESIA_BASE=$STATE/rabbitmq/mnesia
LOG_BASE=$LOGS/rabbitmq
PID_FILE=$RUN/rabbitmq.beam.pid
CONFIG_FILE=$ETC/rabbitmq/rabbitmq.conf
ADVANCED_CONFIG_FILE=$ETC/rabbitmq/advanced.config
ENABLED_PLUGINS_FILE=$ETC/rabbitmq/enabled_plugins
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
    echo '# defaults; the listener address is in rabbitmq-env.conf' > "$ETC/rabbitmq/rabbitmq.conf"
    echo '[].' > "$ETC/rabbitmq/enabled_plugins"
    echo '[].' > "$ETC/rabbitmq/advanced.config"
    rabbit_env
    # epmd is started by the first Erlang node and outlives it; stop it
    # at 'down' only if it was not there before.
    if ! ss -Hltn 'sport = :4369' | grep -q .; then
        touch "$RUN/epmd-ours"
    fi
    spawn rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server
    wait_for "RabbitMQ" 60 /usr/lib/rabbitmq/bin/rabbitmqctl -q await_startup
    say "RabbitMQ on 127.0.0.1:5672"
}

stop_rabbitmq() {
    rabbit_env
    if running rabbitmq; then
        say "stopping RabbitMQ"
        /usr/lib/rabbitmq/bin/rabbitmqctl -q stop >/dev/null 2>&1 || true
    fi
    stop_pid_group rabbitmq
    if [ -f "$RUN/epmd-ours" ]; then
        # epmd refuses to die while a node is still unregistering.
        local i
        for i in $(seq 10); do
            ss -Hltn 'sport = :4369' | grep -q . || break
            epmd -kill >/dev/null 2>&1 || true
            sleep 1
        done
        rm -f "$RUN/epmd-ours"
    fi
}

# --- Lustre ------------------------------------------------------------------

# Shares of each backend and of the backup driver, stand-in or real.
lustre_layout() {
    if [ -n "${LUSTRE_SHARE:-}" ]; then
        SHARES1=("$LUSTRE_SHARE")
        SHARES2=(${LUSTRE_SHARE2:+"$LUSTRE_SHARE2"})
        BACKUP_SHARE=${LUSTRE_BACKUP_SHARE:-$LUSTRE_SHARE}
    else
        SHARES1=(127.0.0.1@tcp:/lfs01/cinder 127.0.0.1@tcp:/lfs01/cinder2)
        SHARES2=(127.0.0.1@tcp:/lfs02/cinder)
        BACKUP_SHARE=127.0.0.1@tcp:/lfs03/backup
    fi
    if [ ${#SHARES2[@]} -gt 0 ]; then BACKENDS=(lustre1 lustre2); else BACKENDS=(lustre1); fi
}

# The stand-in's own configuration and state for this stack, apart from any
# other user of the stand-in on this machine.  mount.lustre and lfs find it
# through the environment, which the services pass on (and sudo keeps, for
# the privsep daemons: see setup_rootwrap).
[ -n "${LUSTRE_SHARE:-}" ] || export LUSTRE_STANDIN_CONF=$ETC/lustre-standin.conf

setup_lustre() {
    if [ -n "${LUSTRE_SHARE:-}" ]; then
        [ -x /sbin/mount.lustre ] || die "LUSTRE_SHARE is set but /sbin/mount.lustre is missing: install the Lustre client"
        say "using the real Lustre shares ${SHARES1[*]} ${SHARES2[*]:-} (backups: $BACKUP_SHARE)"
        return 0
    fi
    if [ ! -e /sbin/mount.lustre ]; then
        "$STANDIN/install" >"$LOGS/standin-install.log" 2>&1 ||
            die "the Lustre stand-in would not install: $(cat "$LOGS/standin-install.log")"
        touch "$RUN/standin-ours"
    elif ! grep -q 'lustre-standin' /sbin/mount.lustre; then
        die "a real Lustre client is installed: set LUSTRE_SHARE to a fileset to use it"
    else
        say "the Lustre stand-in is installed already: using it, and leaving it installed"
    fi
    cat > "$LUSTRE_STANDIN_CONF" <<EOF
# The Lustre stand-in as this stack uses it (tools/lustre-standin/README.rst)
[standin]
state_dir = $STATE/lustre-standin
image_size = 20G
osts = 4
auto_create = no

[fs:lfs01]
pools = fast:0-1 slow:2-3
mgs = 127.0.0.1@tcp

[fs:lfs02]
mgs = 127.0.0.1@tcp

[fs:lfs03]
mgs = 127.0.0.1@tcp
EOF
    # As an operator prepares a fileset for Cinder: the service user's,
    # closed to every other user of the filesystem.  With Nova, its group
    # is QEMU's (libvirt-qemu), which must reach the volume files on the
    # compute host, and new files inherit it.
    local fileset group=$SERVICE_USER
    nova_enabled && group=libvirt-qemu
    for fileset in lfs01:/cinder lfs01:/cinder2 lfs02:/cinder lfs03:/backup; do
        lustre-standin mkdir --owner "$SERVICE_USER:$group" --mode 2770 \
            "${fileset%%:*}" "${fileset#*:}" >>"$LOGS/standin-install.log" 2>&1 ||
            die "lustre-standin mkdir $fileset failed, see $LOGS/standin-install.log"
    done
    say "Lustre stand-in: lfs01 (/cinder, /cinder2; OST pools fast, slow), lfs02 (/cinder), lfs03 (/backup); images in $STATE/lustre-standin"
}

# The stand-in's administration command, from the tree: it works whether
# the stand-in is installed or not (another test run may have removed it),
# and its unmount works on real Lustre mounts too.
standin_admin() {
    /usr/bin/python3 "$STANDIN/lustre-standin" "$@"
}

unmount_lustre() {
    local base
    for base in "${MOUNT_BASES[@]}"; do
        standin_admin unmount "$base" ||
            say "WARNING: could not unmount everything under $base"
    done
}

teardown_lustre() {
    unmount_lustre
    if [ -f "$ETC/lustre-standin.conf" ]; then
        # The "servers": image mounts and loop devices of our filesystems.
        standin_admin --config "$ETC/lustre-standin.conf" cleanup >/dev/null ||
            say "WARNING: lustre-standin cleanup reported a problem"
    fi
    rm -rf "$STATE/lustre-standin" "$ETC/lustre-standin.conf" ||
        say "WARNING: a stand-in filesystem is still mounted under $STATE/lustre-standin"
    if [ -f "$RUN/standin-ours" ]; then
        say "uninstalling the Lustre stand-in"
        "$STANDIN/uninstall" || say "WARNING: the stand-in's uninstall reported a problem"
        rm -f "$RUN/standin-ours"
    fi
}

# --- the service user and its root helpers ---------------------------------

# DevStack's convention: one unprivileged user for the OpenStack services.
# With Nova it talks to libvirtd (group libvirt) and reaches the files of
# attached volumes, which libvirt gives to QEMU's user and group while QEMU
# holds them (group libvirt-qemu; their mode stays 0660).
setup_service_user() {
    if ! getent passwd "$SERVICE_USER" >/dev/null; then
        useradd --system --user-group --home-dir "$BASE/home" --no-create-home \
            --shell /usr/sbin/nologin "$SERVICE_USER" || die "could not create user $SERVICE_USER"
        say "created the system user $SERVICE_USER"
    fi
    if nova_enabled; then
        usermod -a -G libvirt,libvirt-qemu "$SERVICE_USER" ||
            die "could not add $SERVICE_USER to the groups libvirt and libvirt-qemu"
    fi
    echo "$SERVICE_USER" > "$RUN/service-user"
}

# owned DIR...: directories of the service user, closed to others.
# What an earlier stack left there (lock files of services run as root)
# becomes the user's too.
owned() {
    install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0750 "$@"
    chown -R "$SERVICE_USER:$SERVICE_USER" "$@"
}

# The services reach root only as a deployment's do: "sudo cinder-rootwrap
# ROOTWRAP.CONF COMMAND..." (and nova-rootwrap), which runs only what the
# installed, unedited filter files allow: Cinder's volume.filters, this
# repository's lustre.filters (setup.cfg installs both into the
# virtualenv), Nova's compute.filters.  privsep daemons start the same
# way, and the privsep rules of those filters accept only a configuration
# file under /etc: the services are given theirs through the link
# $ETC_LINK -> $ETC.
setup_rootwrap() {
    if [ -e "$ETC_LINK" ] || [ -L "$ETC_LINK" ]; then
        [ "$(readlink "$ETC_LINK")" = "$ETC" ] ||
            die "$ETC_LINK exists and is not the stack's link to $ETC"
    fi
    ln -sfn "$ETC" "$ETC_LINK"
    touch "$RUN/etc-link-ours"
    rm -rf "$ETC/cinder/rootwrap.d"     # the edited copy of earlier stacks
    [ -f "$VENV/etc/cinder/rootwrap.d/lustre.filters" ] ||
        die "lustre.filters is not installed in $VENV/etc/cinder/rootwrap.d"
    write_rootwrap_conf cinder "$VENV"
    nova_enabled && write_rootwrap_conf nova "$NOVA_VENV"
    # sudo resets PATH (the services call "sudo cinder-rootwrap" by name)
    # and the environment (the stand-in's configuration is named there).
    local secure_path=$VENV/bin
    nova_enabled && secure_path+=:$NOVA_VENV/bin
    {
        echo "Defaults:$SERVICE_USER secure_path=\"$secure_path:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\""
        echo "Defaults:$SERVICE_USER env_keep += \"LUSTRE_STANDIN_CONF\""
        echo "$SERVICE_USER ALL = (root) NOPASSWD: $VENV/bin/cinder-rootwrap $ETC_LINK/cinder/rootwrap.conf *"
        if nova_enabled; then
            echo "$SERVICE_USER ALL = (root) NOPASSWD: $NOVA_VENV/bin/nova-rootwrap $ETC_LINK/nova/rootwrap.conf *"
        fi
    } > "$SUDOERS.tmp"
    chmod 0440 "$SUDOERS.tmp"
    visudo -cqf "$SUDOERS.tmp" || die "bad sudoers line"
    mv "$SUDOERS.tmp" "$SUDOERS"
    touch "$RUN/sudoers-ours"
}

# write_rootwrap_conf PROJECT VENV: the filters the project's package
# installed in VENV; commands from VENV first (privsep-helper).
write_rootwrap_conf() {
    install -d "$ETC/$1"
    cat > "$ETC/$1/rootwrap.conf" <<EOF
[DEFAULT]
filters_path = $2/etc/$1/rootwrap.d
exec_dirs = $2/bin,/sbin,/usr/sbin,/bin,/usr/bin,/usr/local/bin,/usr/local/sbin
use_syslog = False
daemon_timeout = 600
EOF
}

# --- Keystone ----------------------------------------------------------------

start_keystone() {
    install -d "$ETC/keystone" "$STATE/keystone"
    cat > "$ETC/keystone/keystone.conf" <<EOF
[DEFAULT]
log_file = $LOGS/keystone.log
[database]
connection = $DB/keystone
[token]
provider = fernet
[fernet_tokens]
key_repository = $STATE/keystone/fernet-keys
[credential]
key_repository = $STATE/keystone/credential-keys
EOF
    # keystone's WSGI app parses sys.argv with oslo.config, and gunicorn's
    # arguments are not keystone's.
    cat > "$STATE/keystone/keystone_wsgi.py" <<'EOF'
import sys
sys.argv = sys.argv[:1]
from keystone.wsgi.api import application  # noqa: E402,F401
EOF
    local manage=("$KS_VENV/bin/keystone-manage" --config-file "$ETC/keystone/keystone.conf")
    {
        "${manage[@]}" db_sync &&
        "${manage[@]}" fernet_setup --keystone-user root --keystone-group root &&
        "${manage[@]}" credential_setup --keystone-user root --keystone-group root &&
        "${manage[@]}" bootstrap --bootstrap-password "$PASSWORD" \
            --bootstrap-admin-url http://127.0.0.1:5000/v3 \
            --bootstrap-public-url http://127.0.0.1:5000/v3 \
            --bootstrap-internal-url http://127.0.0.1:5000/v3 \
            --bootstrap-region-id RegionOne
    } >"$LOGS/keystone-manage.log" 2>&1 || die "keystone-manage failed, see $LOGS/keystone-manage.log"
    spawn keystone env OS_KEYSTONE_CONFIG_DIR="$ETC/keystone" \
        OS_KEYSTONE_CONFIG_FILES=keystone.conf \
        "$KS_VENV/bin/gunicorn" --no-control-socket \
        --bind 127.0.0.1:5000 --workers 2 --timeout 120 \
        --pythonpath "$STATE/keystone" keystone_wsgi:application
    wait_for Keystone 60 http_ok http://127.0.0.1:5000/v3
    say "Keystone on 127.0.0.1:5000"
}

write_openrc() {
    cat > "$BASE/openrc" <<EOF
# source this file to use the stack's CLIs (openstack, cinder) as admin
export PATH=$VENV/bin:\$PATH
export OS_AUTH_URL=http://127.0.0.1:5000/v3
export OS_IDENTITY_API_VERSION=3
export OS_USERNAME=admin
export OS_PASSWORD=$PASSWORD
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=RegionOne
export OS_VOLUME_API_VERSION=3.70
EOF
    # mount -t lustre by hand (as the demo's "hypervisor" does) needs it.
    [ -n "${LUSTRE_SHARE:-}" ] ||
        echo "export LUSTRE_STANDIN_CONF=$LUSTRE_STANDIN_CONF" >> "$BASE/openrc"
}

# Users and the catalog, in one openstacksdk session (a dozen CLI calls
# would take 25 s).  Cinder is both volumev3 and block-storage: Tempest 47
# looks for the latter, the clients for the former.
make_catalog() {
    # shellcheck disable=SC1091
    (. "$BASE/openrc" && "$VENV/bin/python" - "$PASSWORD" "${STACK_NOVA:-1}" <<'EOF'
import sys
import openstack

password = sys.argv[1]
with_nova = sys.argv[2] != '0'
conn = openstack.connect()
ident = conn.identity
service_project = (ident.find_project('service', domain_id='default') or
                   ident.create_project(name='service', domain_id='default'))
roles = {r.name: r for r in ident.roles()}
for name in ('service', 'member', 'reader'):
    if name not in roles:
        roles[name] = ident.create_role(name=name)
users = ['cinder', 'glance']
if with_nova:
    users += ['nova', 'placement', 'neutron']
for user_name in users:
    user = ident.create_user(name=user_name, password=password,
                             domain_id='default',
                             default_project_id=service_project.id)
    for role in ('admin', 'service'):
        ident.assign_project_role_to_user(service_project, user, roles[role])
catalog = [('cinderv3', 'volumev3', 'http://127.0.0.1:8776/v3'),
           ('cinder', 'block-storage', 'http://127.0.0.1:8776/v3'),
           ('glance', 'image', 'http://127.0.0.1:9292')]
if with_nova:
    catalog += [('nova', 'compute', 'http://127.0.0.1:8774/v2.1'),
                ('placement', 'placement', 'http://127.0.0.1:8778'),
                ('neutron', 'network', 'http://127.0.0.1:9696')]
for name, stype, url in catalog:
    service = ident.create_service(name=name, type=stype)
    for interface in ('public', 'internal', 'admin'):
        ident.create_endpoint(service_id=service.id, interface=interface,
                              url=url, region_id='RegionOne')
EOF
    ) >"$LOGS/catalog.log" 2>&1 || die "creating the catalog failed: $(tail -3 "$LOGS/catalog.log")"
    say "Keystone catalog: service project, service users, volumev3 + block-storage + image$(nova_enabled && echo ' + compute + placement + network') endpoints"
}

# The [DEFAULT] lines Cinder and Nova share.
default_section() {
    cat <<EOF
[DEFAULT]
host = $HOST
my_ip = 127.0.0.1
debug = true
log_dir = $LOGS
transport_url = rabbit://guest:guest@127.0.0.1:5672/
EOF
}

# service_auth SECTION USER: password auth as USER of project service.
service_auth() {
    cat <<EOF
[$1]
auth_url = http://127.0.0.1:5000
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $2
password = $PASSWORD
region_name = RegionOne
EOF
}

# authtoken_section USER: how the API of service USER checks tokens.
authtoken_section() {
    service_auth keystone_authtoken "$1"
    echo "www_authenticate_uri = http://127.0.0.1:5000"
}

# --- Glance ----------------------------------------------------------------

start_glance() {
    install -d "$ETC/glance" "$STATE/glance/images" "$STATE/glance/staging" "$STATE/glance/tasks"
    cp "$GL_VENV/etc/glance/glance-api-paste.ini" "$ETC/glance/"
    {
        cat <<EOF
[DEFAULT]
log_file = $LOGS/glance-api.log
enabled_backends = file1:file
[database]
connection = $DB/glance
[glance_store]
default_backend = file1
[file1]
filesystem_store_datadir = $STATE/glance/images
[os_glance_staging_store]
filesystem_store_datadir = $STATE/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $STATE/glance/tasks
[paste_deploy]
flavor = keystone
[oslo_concurrency]
lock_path = $STATE/glance/lock
EOF
        authtoken_section glance
    } > "$ETC/glance/glance-api.conf"
    "$GL_VENV/bin/glance-manage" --config-file "$ETC/glance/glance-api.conf" db_sync \
        >"$LOGS/glance-manage.log" 2>&1 || die "glance db_sync failed, see $LOGS/glance-manage.log"
    # Glance 33 runs only under a WSGI server.
    spawn glance env OS_GLANCE_CONFIG_DIR="$ETC/glance" "$GL_VENV/bin/gunicorn" \
        --no-control-socket --bind 127.0.0.1:9292 --workers 1 --timeout 300 \
        glance.wsgi.api:application
    wait_for Glance 60 http_ok http://127.0.0.1:9292/versions
    say "Glance on 127.0.0.1:9292 (file store in $STATE/glance/images)"
}

# --- etcd (Cinder's coordination when clustered) ----------------------------

start_etcd() {
    rm -rf "$STATE/etcd"
    spawn etcd /usr/bin/etcd --name stack --data-dir "$STATE/etcd" \
        --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
        --listen-peer-urls http://127.0.0.1:2380 \
        --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster stack=http://127.0.0.1:2380
    wait_for etcd 30 http_ok "$ETCD_URL/health"
    say "etcd on 127.0.0.1:2379 (data in $STATE/etcd)"
}

# --- Cinder ----------------------------------------------------------------

# Encrypted volumes: Cinder and Nova share one fixed key (the fixed-key key
# manager each of them ships, for tests only), made at the first start.
key_manager_section() {
    local project=$1 key_file=$ETC/fixed-key
    [ -s "$key_file" ] || (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$key_file")
    cat <<EOF
[key_manager]
backend = $project.keymgr.conf_key_mgr.ConfKeyManager
fixed_key = $(cat "$key_file")
EOF
}

write_cinder_conf() {
    local conf=$ETC/cinder/cinder.conf backend
    # The service user's: its state, and the mount points the drivers and
    # os-brick make (as the user) under the mount bases.  The demo's
    # hypervisor is root.
    owned "$STATE/cinder" "$BASE/mnt" "$BASE/backup-mnt"
    install -d "$BASE/hypervisor-mnt"
    cp "$VENV/etc/cinder/api-paste.ini" "$VENV/etc/cinder/resource_filters.json" "$ETC/cinder/"
    printf '%s\n' "${SHARES1[@]}" > "$ETC/cinder/lustre1_shares"
    [ ${#SHARES2[@]} -eq 0 ] || printf '%s\n' "${SHARES2[@]}" > "$ETC/cinder/lustre2_shares"
    {
        default_section
        cat <<EOF
state_path = $STATE/cinder
auth_strategy = keystone
rootwrap_config = $ETC_LINK/cinder/rootwrap.conf
api_paste_config = $ETC/cinder/api-paste.ini
resource_query_filters_file = $ETC/cinder/resource_filters.json
osapi_volume_listen = 127.0.0.1
osapi_volume_workers = 2
enabled_backends = $(IFS=,; echo "${BACKENDS[*]}")
default_volume_type = lustre
backup_driver = cinder.backup.drivers.lustre.LustreBackupDriver
backup_lustre_share = $BACKUP_SHARE
backup_lustre_mount_point_base = $BASE/backup-mnt
# The backup driver stores no zero block; compressing the rest costs CPU
# this 2-core machine does not have.
backup_compression_algorithm = none
[database]
connection = $DB/cinder
[oslo_concurrency]
lock_path = $STATE/cinder/lock
[oslo_messaging_notifications]
driver = noop
EOF
        cluster_enabled && cat <<EOF
[DEFAULT]
cluster = $CLUSTER
[coordination]
backend_url = etcd3+$ETCD_URL
EOF
        authtoken_section cinder
        key_manager_section cinder
        cinder_nova_section
        for backend in "${BACKENDS[@]}"; do
            cat <<EOF
[$backend]
volume_driver = cinder.volume.drivers.lustre.LustreDriver
volume_backend_name = $backend
lustre_shares_config = $ETC/cinder/${backend}_shares
lustre_mount_point_base = $BASE/mnt
lustre_mount_options = flock
lustre_sparsed_volumes = true
# Thin volumes are qcow2 files and thick ones (provisioning:type=thick)
# raw, on every backend: e2e.py and Tempest then cover both formats, and
# the qcow2 paths (backup, restore, revert, migration) are the risky ones.
lustre_qcow2_volumes = true
# Volume files are the service user's, mode 0660: file operations run as
# that user, only mounts and qemu-img info as root.
nas_secure_file_operations = true
nas_secure_file_permissions = true
EOF
        done
    } > "$conf"
    chgrp "$SERVICE_USER" "$ETC/cinder" && chmod 0750 "$ETC/cinder"
    cluster_enabled || return 0
    # The second node: what differs between two hosts of one cluster.  The
    # backends stay the same, mount point base included, as on every host
    # of a cluster (on one machine, the two share the mounts).  One file,
    # as each host would have: the privsep helper is given the service's
    # configuration files, and Cinder's filter allows one.
    owned "$STATE/cinder-2"
    {
        cat "$conf"
        cat <<EOF
[DEFAULT]
host = $HOST-2
state_path = $STATE/cinder-2
log_file = cinder-volume-2.log
[oslo_concurrency]
lock_path = $STATE/cinder-2/lock
EOF
    } > "$ETC/cinder/cinder-volume-2.conf"
}

volume_services() { if cluster_enabled; then echo 2; else echo 1; fi; }

cinder_services_up() {
    local n
    n=$(. "$BASE/openrc" && openstack volume service list -f value -c Binary -c State 2>/dev/null |
        awk '$2 == "up"' | wc -l)
    [ "$n" -ge $((2 + $(volume_services) * ${#BACKENDS[@]})) ]
}

start_cinder() {
    "$VENV/bin/cinder-manage" --config-file "$ETC/cinder/cinder.conf" db sync \
        >"$LOGS/cinder-manage.log" 2>&1 || die "cinder db sync failed, see $LOGS/cinder-manage.log"
    local svc
    for svc in "${CINDER_SERVICES[@]}"; do
        if [ "$svc" = cinder-volume-2 ]; then
            spawn_unprivileged "$svc" "$VENV/bin/cinder-volume" \
                --config-file "$ETC_LINK/cinder/cinder-volume-2.conf"
        else
            spawn_unprivileged "$svc" "$VENV/bin/$svc" \
                --config-file "$ETC_LINK/cinder/cinder.conf"
        fi
    done
    wait_for cinder-api 60 http_ok http://127.0.0.1:8776/
    wait_for "cinder services" 90 cinder_services_up
    # The default type places volumes on the first share of lustre1, so
    # that a volume's file can be named by SHARE/FILE without asking where
    # it went (Tempest's manage test does); typed volumes go anywhere.
    local pool=${SHARES1[0]#*:/}
    (. "$BASE/openrc" && openstack volume type create --public \
        --property volume_backend_name=lustre1 --property "pool_name=$pool" \
        --description "Lustre, pool $pool" lustre) >"$LOGS/volume-type.log" 2>&1 ||
        die "could not create the default volume type, see $LOGS/volume-type.log"
    # Encrypted volumes: LUKS, which QEMU decrypts (Nova's native LUKS).
    (. "$BASE/openrc" && openstack volume type create --public \
        --property volume_backend_name=lustre1 \
        --encryption-provider luks --encryption-cipher aes-xts-plain64 \
        --encryption-key-size 256 --encryption-control-location front-end \
        --description "Lustre, LUKS-encrypted" lustre-luks) >>"$LOGS/volume-type.log" 2>&1 ||
        die "could not create the volume type lustre-luks, see $LOGS/volume-type.log"
    say "Cinder on 127.0.0.1:8776: api, scheduler, volume (${BACKENDS[*]}), backup; default type 'lustre' on pool $pool, encrypted type 'lustre-luks'"
    if cluster_enabled; then
        say "cluster $CLUSTER: cinder-volume on hosts $HOST and $HOST-2, locks in etcd"
    fi
}

# --- commands ----------------------------------------------------------------

SERVICES=(rabbitmq keystone glance "${CINDER_SERVICES[@]}")
PORTS=(5000 9292 8776 5672 4369 25672 $PG_PORT 2379 2380 "${NOVA_PORTS[@]}")
cluster_enabled && SERVICES+=(etcd)
nova_enabled && SERVICES+=("${NOVA_SERVICES[@]}")

# The cluster as Cinder sees it, and its members (volume API 3.7).
cluster_status() {
    echo "  Cinder clusters and their cinder-volume members:"
    (. "$BASE/openrc" && export OS_VOLUME_API_VERSION=3.7 &&
        "$VENV/bin/cinder" cluster-list --detailed &&
        "$VENV/bin/cinder" service-list --binary cinder-volume) 2>&1 |
        sed -n 's/^/    /p' || true
}

cmd_status() {
    local name ok=0 pid
    for name in "${SERVICES[@]}"; do
        pid=$(pid_of "$name")
        if running "$name"; then
            printf '  %-17s running (pid %s, user %s)\n' "$name" "$pid" \
                "$(stat -c %U "/proc/$pid" 2>/dev/null)"
        else
            printf '  %-17s STOPPED\n' "$name"; ok=1
        fi
    done
    if [ -f "$BASE/pgsql/data/postmaster.pid" ] &&
            alive "$(head -1 "$BASE/pgsql/data/postmaster.pid")"; then
        printf '  %-17s running (pid %s)\n' postgresql "$(head -1 "$BASE/pgsql/data/postmaster.pid")"
    else
        printf '  %-17s STOPPED\n' postgresql; ok=1
    fi
    cluster_enabled && cluster_status
    if [ -f "$RUN/os-brick-unpatched" ]; then
        echo "  WARNING: os-brick is NOT patched: backups and migrations of Lustre volumes fail"
    fi
    echo "  Lustre mounts:"
    awk -v b="$BASE/" 'index($2, b) == 1 {print "    " $2}' /proc/mounts
    return $ok
}

cmd_up() {
    [ "$(id -u)" -eq 0 ] || die "run as root"
    mkdir -p "$BASE" "$LOGS" "$RUN" "$STATE" "$ETC/cinder" "$HOME"
    chmod 755 "$BASE"
    lustre_layout
    if cmd_status >/dev/null 2>&1 && [ "$(cat "$LAYOUT_FILE" 2>/dev/null)" = "$(layout)" ]; then
        say "the stack is already up (tools/stack/stack.sh status)"
        return 0
    fi
    local started=$SECONDS
    if compgen -G "$RUN/*.pid" >/dev/null || compgen -G "$RUN/*-ours" >/dev/null ||
            [ -f "$BASE/pgsql/data/postmaster.pid" ] || [ -f "$ETC/lustre-standin.conf" ]; then
        say "a previous stack is partly there: stopping it first"
        cmd_down
    fi
    # A fresh stack, fresh logs; the last ones are kept beside them.
    rm -rf "$BASE/logs.previous"
    mv "$LOGS" "$BASE/logs.previous"
    mkdir -p "$LOGS"
    say "bringing the stack up in $BASE (logs in $LOGS)"
    install_debian_packages
    install_venvs
    apply_os_brick_patch
    if nova_enabled; then
        apply_nova_patch
        build_guest
        choose_virt_type
    fi
    setup_service_user
    setup_rootwrap
    setup_lustre
    start_postgresql
    start_rabbitmq
    write_openrc
    start_keystone
    make_catalog
    start_glance
    if nova_enabled; then
        write_nova_conf
        start_libvirt
    fi
    write_cinder_conf
    layout > "$LAYOUT_FILE"
    cluster_enabled && start_etcd
    start_cinder
    if nova_enabled; then
        start_nova
        register_guest
    fi
    [ -f "$RUN/os-brick-unpatched" ] && say "WARNING: os-brick is NOT patched (see above)"
    say "stack up in $((SECONDS - started)) s.  Use it with:  source $BASE/openrc"
    say "stop it with:  $REPO/tools/stack/stack.sh down"
}

cmd_down() {
    local name
    # Whatever STACK_NOVA says now: the compute side may have been started.
    stop_nova
    for name in "${CINDER_SERVICES[@]}" cinder-volume-2 etcd glance keystone; do
        stop_pid_group "$name"
    done
    stop_rabbitmq
    stop_postgresql
    stop_strays
    teardown_lustre
    unmount_nova_base
    if [ -f "$RUN/sudoers-ours" ]; then
        rm -f "$SUDOERS" "$RUN/sudoers-ours"
    fi
    if [ -f "$RUN/etc-link-ours" ]; then
        [ -L "$ETC_LINK" ] && rm -f "$ETC_LINK"
        rm -f "$RUN/etc-link-ours"
    fi
    rm -f "$LAYOUT_FILE"
    local busy
    busy=$(ss -Hltn | awk '{print $4}' | grep -E ":($(IFS='|'; echo "${PORTS[*]}"))$" || true)
    if [ -n "$busy" ]; then
        say "WARNING: still listening: $busy"
        return 1
    fi
    say "stack down: no process, mount or port of the stack left"
}

case ${1:-} in
    up) cmd_up ;;
    down) [ "$(id -u)" -eq 0 ] || die "run as root"; mkdir -p "$RUN"; cmd_down ;;
    status) cmd_status ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
esac
