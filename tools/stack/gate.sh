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
#
# The gate (tox -e gate): the stack of stack.sh driven by Tempest's volume
# API tests and cinder-tempest-plugin's, as an OpenStack CI job would, then
# by e2e.py, which checks the guest's data where Tempest checks statuses.
# As root.  Fails if either fails; always stops the stack, also on failure.
#
# Usage: tools/stack/gate.sh [TEST_REGEX]
#   default regex: ^(tempest\.api\.volume|cinder_tempest_plugin\.api),
#   and with Nova (STACK_NOVA in stack.sh) also Nova's volume API tests
#   (tempest\.api\.compute\.volumes) and the volume scenario tests that
#   need no SSH (boot from volume, encrypted volumes).  e2e.py runs every
#   part, its compute part too when the stack runs Nova, unless E2E_PARTS
#   names some.
#   The test classes that boot servers run in a second Tempest process, at
#   the same time as the first (see NETWORK_CLASSES below); with
#   GATE_SERVER_CLASSES=0 they do not run.
# Tests excluded from the run are in tempest-exclude.txt (in the cluster
# layout, stack.sh's default, in tempest-exclude-cluster.txt too, and
# without Nova in tempest-exclude-nonova.txt too),
# and every test that skips must be in tempest-skips.txt; all with a reason
# on each line.
# Logs: $STACK_BASE/logs/tempest-*.txt, tempest*.log, e2e.txt,
# e2e-results.txt, gate-memory.txt.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BASE=${STACK_BASE:-/var/tmp/cinder-lustre-stack}
PASSWORD=${STACK_PASSWORD:-stackpass}
if [ "${STACK_NOVA:-1}" != 0 ]; then
    NOVA=true
    DEFAULT_REGEX='^(tempest\.api\.(volume|compute\.volumes)|tempest\.scenario\.(test_volume_boot_pattern|test_encrypted_cinder_volumes)|cinder_tempest_plugin\.api)'
else
    NOVA=false
    DEFAULT_REGEX='^(tempest\.api\.volume|cinder_tempest_plugin\.api)'
fi
REGEX=${1:-$DEFAULT_REGEX}
TVENV=$BASE/venv-tempest
WORKSPACE=$BASE/tempest
SERVERS_WORKSPACE=$BASE/tempest-servers
LOGS=$BASE/logs
CONCURRENCY=2
START=$SECONDS
SETUP_TIME=- TEMPEST_TIME=- COUNTS="tempest did not run"
E2E_TIME=- E2E_COUNTS="e2e did not run"

say() { printf '[gate %(%H:%M:%S)T] %s\n' -1 "$*"; }

# Memory of what the stack runs: its services' sessions (stack.sh starts
# each with setsid), PostgreSQL's processes, and anything else running from
# the stack's directory (privsep daemons, epmd is tiny and left out).
report_memory() {
    echo "--- memory (free -m) ---"
    free -m
    echo "--- RSS of the stack's processes (MiB) ---"
    python3 - "$BASE" <<'EOF'
import os
import sys

base = sys.argv[1]
run = os.path.join(base, 'run')
sessions = {}
for name in os.listdir(run):
    if name.endswith('.pid'):
        try:
            sessions[int(open(os.path.join(run, name)).read())] = name[:-4]
        except ValueError:
            pass
try:
    postmaster = int(open(base + '/pgsql/data/postmaster.pid').readline())
except (OSError, ValueError):
    postmaster = None
groups = {}
for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
        stat = open('/proc/%s/stat' % pid).read()
        cmd = open('/proc/%s/cmdline' % pid).read().replace('\0', ' ')
        rss = next(int(line.split()[1]) for line in
                   open('/proc/%s/status' % pid) if line.startswith('VmRSS'))
    except (OSError, StopIteration):
        continue
    fields = stat.rsplit(')', 1)[1].split()
    ppid, sid = int(fields[1]), int(fields[3])
    if sid in sessions:
        group = sessions[sid]
    elif postmaster in (int(pid), ppid):
        group = 'postgresql'
    elif base in cmd and 'privsep-helper' in cmd:
        group = 'privsep-helper'
    else:
        continue
    count, total = groups.get(group, (0, 0))
    groups[group] = (count + 1, total + rss)
for group, (count, total) in sorted(groups.items()):
    print('  %-17s %3d processes %7.0f MiB' % (group, count, total / 1024))
print('  %-17s %3d processes %7.0f MiB' % (
    'total', sum(c for c, _t in groups.values()),
    sum(t for _c, t in groups.values()) / 1024))
EOF
}

finish() {
    local rc=$?
    trap - EXIT INT TERM
    # Killed while the stack came up or Tempest ran: stop that first.
    if [ -n "${child:-}" ] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    # Tempest's processes (two passes may run at once), by their venv.
    pkill -TERM -f "^$TVENV/bin/" 2>/dev/null || true
    if "$HERE/stack.sh" status >/dev/null 2>&1; then
        report_memory 2>&1 | tee "$LOGS/gate-memory.txt"
    fi
    say "stopping the stack"
    "$HERE/stack.sh" down || rc=1
    echo
    echo "gate: set-up ${SETUP_TIME} s, tempest ${TEMPEST_TIME} s, e2e ${E2E_TIME} s, total $((SECONDS - START)) s"
    echo "gate: $COUNTS"
    echo "gate: $E2E_COUNTS"
    [ $rc -eq 0 ] && echo "gate: PASSED" || echo "gate: FAILED (status $rc)"
    exit $rc
}
trap finish EXIT
# A signal must end in finish too, with a failing status.  Long commands
# run in the background (bash acts on a signal only between commands).
trap 'exit 130' INT
trap 'exit 143' TERM
in_background() {
    "$@" &
    child=$!
    wait $child
}

[ "$(id -u)" -eq 0 ] || { echo "gate: run as root" >&2; exit 1; }
mkdir -p "$LOGS"

# Tempest's virtualenv is made while the stack comes up.
make_tempest_venv() {
    [ -f "$TVENV/.complete" ] && return 0
    rm -rf "$TVENV"
    /usr/bin/python3 -m venv "$TVENV" &&
        "$TVENV/bin/pip" install -q --upgrade pip &&
        "$TVENV/bin/pip" install -q tempest==47.0.0 cinder-tempest-plugin==1.23.0 &&
        touch "$TVENV/.complete"
}
say "bringing the stack up; installing Tempest 47 and cinder-tempest-plugin 1.23"
# (Its log is not in $LOGS, which a fresh stack starts anew.)
mkdir -p "$WORKSPACE"
make_tempest_venv >"$WORKSPACE/pip-venv-tempest.log" 2>&1 &
venv_pid=$!
in_background "$HERE/stack.sh" up
wait $venv_pid || { say "Tempest install failed, see $WORKSPACE/pip-venv-tempest.log"; exit 1; }

# shellcheck disable=SC1091
. "$BASE/openrc"
BACKENDS=$(awk -F' *= *' '$1 == "enabled_backends" {print $2}' "$BASE/etc/cinder/cinder.conf")
case $BACKENDS in *,*) MULTI_BACKEND=true ;; *) MULTI_BACKEND=false ;; esac
# The layout (stack.sh's STACK_CLUSTER): the Cinder cluster, if any.
CLUSTER=$(awk -F' *= *' '$1 == "cluster" {print $2}' "$BASE/etc/cinder/cinder.conf")
# Tests excluded in every layout, those excluded in a cluster only, and
# those excluded without Nova only.
EXCLUDE=$WORKSPACE/exclude.txt
cat "$HERE/tempest-exclude.txt" > "$EXCLUDE"
[ -z "$CLUSTER" ] || cat "$HERE/tempest-exclude-cluster.txt" >> "$EXCLUDE"
[ "$NOVA" = true ] || cat "$HERE/tempest-exclude-nonova.txt" >> "$EXCLUDE"

# An image for the tests that create volumes from images: a small qcow2
# with some data, so that the conversion to the volume format is real.
rm -rf "$WORKSPACE/etc" "$WORKSPACE"/*.subunit
mkdir -p "$WORKSPACE/etc"
qemu-img create -q -f qcow2 "$WORKSPACE/image.qcow2" 64M
qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' "$WORKSPACE/image.qcow2" >/dev/null
IMAGE=$(openstack image create --public --disk-format qcow2 --container-format bare \
    --file "$WORKSPACE/image.qcow2" gate-image -f value -c id)
# With Nova, servers boot the stack's guest (stack.sh, build-guest.sh):
# volume-from-image tests then use that image, a 1 MiB raw disk.
if [ "$NOVA" = true ]; then
    IMAGE=$(openstack image show lustre-guest -f value -c id)
fi
# Multiattach volumes (raw files on every pool of the Lustre backends),
# for the tests that attach one volume to two servers, and Cinder's retype
# into and out of a multiattach type (volume_multiattach enables both).
openstack volume type create --public --property multiattach='<is> True' \
    --property volume_backend_name=lustre1 gate-multiattach >/dev/null

# What the drivers support today, and no more: the manage features are
# asked of the driver class itself (a method that the driver or a RemoteFS
# mixin implements, not cinder.volume.driver's abstract one), so that the
# gate follows the driver as it evolves.  The driver reports online
# extend (the hypervisor grows the attached file): tested with Nova.
# oslo.config takes no comment after a value: comments on
# their own lines.
eval "$("$BASE/venv/bin/python" - 2>/dev/null <<'EOF'
import inspect
from cinder.volume.drivers import lustre


def implemented(*names):
    for name in names:
        owner = next((c for c in lustre.LustreDriver.__mro__
                      if name in vars(c)), None)
        if owner is None or owner.__module__ == 'cinder.volume.driver':
            return 'false'
        body = inspect.getsource(vars(owner)[name])
        if 'raise NotImplementedError' in body:
            return 'false'
    return 'true'


print('MANAGE_VOLUME=%s' % implemented('manage_existing',
                                       'manage_existing_get_size',
                                       'unmanage'))
print('MANAGE_SNAPSHOT=%s' % implemented('manage_existing_snapshot',
                                         'unmanage_snapshot'))
print('REVERT=%s' % implemented('revert_to_snapshot'))
EOF
)"
# The driver names a file to manage SHARE/FILE; untyped volumes are on
# the first share of lustre1 (stack.sh's default type).
ONLINE_EXTEND=$NOVA
MANAGE_SHARE=$(head -1 "$BASE/etc/cinder/lustre1_shares" | cut -d' ' -f1)
say "driver features: manage_volume=$MANAGE_VOLUME manage_snapshot=$MANAGE_SNAPSHOT volume_revert=$REVERT extend_attached_volume=$ONLINE_EXTEND; compute: $NOVA; cluster: ${CLUSTER:-none}"
write_tempest_conf() {   # FILE NEUTRON DYNAMIC_CREDENTIALS LOG_FILE
    cat > "$1" <<EOF
[DEFAULT]
log_dir = $LOGS
log_file = $4

[oslo_concurrency]
lock_path = $WORKSPACE/locks

[auth]
admin_username = admin
admin_password = $PASSWORD
admin_project_name = admin
admin_domain_name = Default
use_dynamic_credentials = $3
test_accounts_file = $WORKSPACE/etc/accounts.yaml
create_isolated_networks = false

[identity]
uri_v3 = http://127.0.0.1:5000/v3
auth_version = v3
region = RegionOne

[service_available]
cinder = true
glance = true
nova = $NOVA
neutron = $2
swift = false
horizon = false

[compute]
image_ref = $IMAGE
image_ref_alt = $IMAGE
# The stack's guest: 128 MiB, a kernel and a busybox initramfs (TCG on
# this kind of machine, so builds take tens of seconds).
flavor_ref = 42
flavor_ref_alt = 84
build_timeout = 300
# Tests that need a microversion (shelve 2.20, multiattach 2.60) skip
# without a range.
min_microversion = 2.1
max_microversion = latest

[compute-feature-enabled]
console_output = true
# LUKS volumes, decrypted by QEMU (stack.sh sets up the key managers).
attach_encrypted_volume = true
# A raw file shared by two guests; also enables the volume API's retype
# into and out of a multiattach type (no server).  Without Nova the
# tests skip (tempest-skips.txt).
volume_multiattach = $NOVA

[image-feature-enabled]
api_v2 = true

[validation]
run_validation = false

[volume]
catalog_type = block-storage
region = RegionOne
backend_names = $BACKENDS
storage_protocol = lustre
vendor_name = Open Source
volume_size = 1
build_timeout = 300
manage_volume_ref = source-name,$MANAGE_SHARE/volume-%s
volume_type_multiattach = gate-multiattach
min_microversion = 3.0
max_microversion = latest

[volume-feature-enabled]
multi_backend = $MULTI_BACKEND
backup = true
snapshot = true
clone = true
volume_revert = $REVERT
manage_volume = $MANAGE_VOLUME
manage_snapshot = $MANAGE_SNAPSHOT
extend_attached_volume = $ONLINE_EXTEND
extend_attached_encrypted_volume = true
consistency_group = false
api_extensions = all
EOF
}
write_tempest_conf "$WORKSPACE/etc/tempest.conf" false true tempest.log
# Tempest skips a whole class that asks for a default network when Neutron
# is off, although these need no network: their servers boot with none.
# They run in a second pass told that Neutron exists (the stack's bare
# Neutron API has no network, so Nova gives their servers no port).  That
# pass uses accounts made here: dynamic credentials would make networks,
# and delete security groups, through a Neutron with no mechanism driver.
(. "$BASE/openrc" && "$BASE/venv/bin/python" - "$PASSWORD" "$WORKSPACE/etc/accounts.yaml" <<'EOF'
import sys
import openstack

password, path = sys.argv[1:]
ident = openstack.connect().identity
roles = {r.name: r for r in ident.roles()}
accounts = []
# Two classes at a time: each locks a member and a reader of the member's
# project (Tempest asks for one, though it uses it only with enforce_scope),
# and perhaps an admin.
for name, project_name, role in [
        (name % n, 'gate-project-%d' % n, role)
        for n in (1, 2, 3)
        for name, role in (('gate-member-%d', 'member'),
                           ('gate-reader-%d', 'reader'),
                           ('gate-admin-%d', 'admin'))]:
    if role == 'admin':
        project_name = name
    project = (ident.find_project(project_name, domain_id='default') or
               ident.create_project(name=project_name, domain_id='default'))
    user = ident.create_user(name=name, password=password,
                             domain_id='default')
    ident.assign_project_role_to_user(project, user, roles[role])
    accounts.append("- username: '%s'\n  project_name: '%s'\n"
                    "  password: '%s'\n  roles: ['%s']\n%s"
                    % (name, project_name, password, role,
                       "  types: ['admin']\n" if role == 'admin' else ''))
with open(path, 'w') as out:
    out.write(''.join(accounts))
EOF
) > "$LOGS/tempest-accounts.log" 2>&1
NETWORK_CLASSES='^tempest\.api\.(volume\.(test_volumes_snapshots\.VolumesSnapshotTestJSON|test_volumes_backup\.VolumesBackupsTest|test_volumes_actions\.VolumesActionsTest|admin\.test_volumes_actions\.VolumesActionsTest|test_volumes_extend\.VolumesExtendAttachedTest|admin\.test_encrypted_volumes_extend\.EncryptedVolumesExtendAttachedTest)|compute\.volumes\.test_attach_volume(_negative)?\.[A-Za-z]+)\b'
write_tempest_conf "$WORKSPACE/etc/tempest-network-classes.conf" true false \
    tempest-network-classes.log

SETUP_TIME=$((SECONDS - START))
say "set-up done in $SETUP_TIME s; running Tempest (concurrency $CONCURRENCY): $REGEX"
if [ "$NOVA" = true ] && [ "${GATE_SERVER_CLASSES:-1}" = 1 ]; then
    say "and at the same time the classes that boot servers (concurrency $CONCURRENCY, log $LOGS/tempest-network-classes.txt)"
fi
cd "$WORKSPACE"
# Tempest keeps a list of workspaces under HOME; stack.sh made ours $BASE/home.
export HOME=$BASE/home
tempest_start=$SECONDS
run_tempest() {   # NAME WORKSPACE CONF ARGS...
    local name=$1 dir=$2 conf=$3
    shift 3
    (cd "$dir" &&
        "$TVENV/bin/tempest" run --config-file "$conf" \
            --exclude-list "$EXCLUDE" --concurrency $CONCURRENCY \
            "$@" > "$LOGS/tempest-$name.txt" 2>&1
     "$TVENV/bin/stestr" last --subunit > "$WORKSPACE/$name.subunit" \
            2>/dev/null) || true
    tail -3 "$LOGS/tempest-$name.txt"
}
# The classes that boot servers run in a workspace of their own, at the
# same time as the rest: most of their time is spent waiting for servers
# and attachments, and run one after the other the two passes would take
# the whole suite past the hour.
servers=
rm -f "$WORKSPACE/network-classes.subunit"
if [ "$NOVA" = true ] && [ "${GATE_SERVER_CLASSES:-1}" = 1 ]; then
    rm -rf "$SERVERS_WORKSPACE"
    mkdir -p "$SERVERS_WORKSPACE"
    run_tempest network-classes "$SERVERS_WORKSPACE" \
        "$WORKSPACE/etc/tempest-network-classes.conf" \
        --regex "(?=$REGEX)$NETWORK_CLASSES" &
    servers=$!
fi
in_background run_tempest run "$WORKSPACE" "$WORKSPACE/etc/tempest.conf" \
    --regex "$REGEX" --exclude-regex "$NETWORK_CLASSES"
if [ -n "$servers" ]; then
    child=$servers
    wait "$servers"
fi
TEMPEST_TIME=$((SECONDS - tempest_start))
set +e
cat "$WORKSPACE/run.subunit" "$WORKSPACE"/network-classes.subunit 2>/dev/null |
    "$TVENV/bin/python" "$HERE/tempest_results.py" "$HERE/tempest-skips.txt" |
    tee "$LOGS/tempest-results.txt"
results=${PIPESTATUS[1]}
set -e
COUNTS=$(tail -1 "$LOGS/tempest-results.txt")

# The data checks run whatever Tempest found: they see what it cannot.
say "running the end-to-end data checks (e2e.py, log in $LOGS/e2e.txt)"
rm -f "$LOGS/e2e-results.txt"
e2e_start=$SECONDS
e2e=0
# The cluster part's load: 30 creates and clones here (100 by default).
export E2E_CLUSTER_N=${E2E_CLUSTER_N:-30}
# Two of the volume part's four journeys, one per backend and format (each
# migrates to the other backend), to keep the whole suite within the hour;
# E2E_JOURNEYS=all walks the four.
E2E_JOURNEYS=${E2E_JOURNEYS:-lustre1:thin lustre2:thick}
[ "$E2E_JOURNEYS" = all ] && E2E_JOURNEYS=
export E2E_JOURNEYS
# E2E_PARTS (e.g. "volume compute") runs some parts only, as e2e.py PART...
# shellcheck disable=SC2086
in_background /usr/bin/python3 "$HERE/e2e.py" ${E2E_PARTS:-} > "$LOGS/e2e.txt" 2>&1 || e2e=$?
E2E_TIME=$((SECONDS - e2e_start))
grep -E '^(==|  FAIL)' "$LOGS/e2e.txt" || true
if [ -s "$LOGS/e2e-results.txt" ]; then
    E2E_COUNTS=$(tail -1 "$LOGS/e2e-results.txt")
else
    E2E_COUNTS="e2e did not finish (status $e2e), see $LOGS/e2e.txt"
fi
echo "$E2E_COUNTS"
[ "$results" -eq 0 ] && [ "$e2e" -eq 0 ] || exit 1
