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
# The main job: bring up a real Cinder on Lustre (tools/stack/stack.sh up),
# then do what an operator does with the openstack and cinder CLIs, and act
# as the hypervisor to write and read guest data (attachments API, then
# qemu-io on the file the connection info names, in the format it names).
# Tempest checks statuses; this checks the data.  The stack stays up.
#
# Usage (as root):  tools/stack/demo.sh       exit status 0 if all passed

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BASE=${STACK_BASE:-/var/tmp/cinder-lustre-stack}
WORK=$BASE/demo                 # ids, checksums, connection infos
RESULTS=$WORK/results
GiB=1073741824
MiB=1048576

"$HERE/stack.sh" up
# shellcheck disable=SC1091
. "$BASE/openrc"
rm -rf "$WORK"
mkdir -p "$WORK/ids"
: > "$RESULTS"
DEMO_START=$SECONDS
# Types and images of an earlier, interrupted demo may still exist.
T=$(date +%H%M%S)

api() { /usr/bin/python3 "$HERE/stackapi.py" "$@"; }

# Show the operator's command, then run it.
cli() { printf '  $ %s\n' "$*" >&2; "$@"; }

save_id() { echo "$2" > "$WORK/ids/$1"; }
idof() {
    [ -s "$WORK/ids/$1" ] || { echo "  (no $1: an earlier step failed)" >&2; return 1; }
    cat "$WORK/ids/$1"
}

check() {
    local what=$1
    shift
    if "$@"; then
        echo "  PASS  $what"; echo "PASS  $what" >> "$RESULTS"
    else
        echo "  FAIL  $what"; echo "FAIL  $what" >> "$RESULTS"
    fi
}

# A step runs in its own shell with errexit, in the background, so that a
# failing command ends that step only, and the demo goes on with the next.
step() {
    local title=$1 fn=$2 start=$SECONDS
    printf '\n=== %s\n' "$title"
    ( set -e; trap hv_cleanup EXIT; "$fn" ) &
    if wait $!; then
        printf '  (%d s)\n' $((SECONDS - start))
    else
        echo "  FAIL  step '$title': a command failed (see above, and $BASE/logs)"
        echo "FAIL  step: $title" >> "$RESULTS"
    fi
}

volume_create() {   # NAME ARGS...
    local name=$1 vid
    shift
    vid=$(cli openstack volume create --size 1 "$@" "$name" -f value -c id)
    save_id "$name" "$vid"
    api wait volume "$vid" available
}

# The file of a volume on the volume service's mount: the pool is the
# fileset, the shares files give its device, os-brick's hash the mount.
volume_file() {
    local vid pool device
    vid=$(idof "$1")
    pool=$(api get volume "$vid" os-vol-host-attr:host)
    pool=${pool#*#}
    device=$(awk -v p="$pool" '{d = $1; sub(/^.*:\//, "", d); if (d == p) print $1}' \
        "$BASE"/etc/cinder/lustre*_shares | head -1)
    echo "$BASE/mnt/$(printf %s "$device" | md5sum | cut -d' ' -f1)/volume-$vid"
}

# --- the hypervisor ------------------------------------------------------

# Attach as Nova would: an attachment with our connector, then mount the
# export at our own mount point (as Nova's Lustre volume driver does) and
# open the named file in the named format.  Sets HV_* for the step.
hv_attach() {
    local conn
    conn=$(api attach "$(idof "$1")")
    echo "$conn" > "$WORK/$1.connection.json"
    eval "$(python3 - "$conn" <<'EOF'
import json, shlex, sys
c = json.loads(sys.argv[1])
# The attachments API flattens the driver's {driver_volume_type, data}.
info = c['connection_info']
data = info.get('data', info)
for key, value in (('HV_ATT', c['attachment_id']),
                   ('HV_TYPE', info['driver_volume_type']),
                   ('HV_EXPORT', data['export']), ('HV_NAME', data['name']),
                   ('HV_FMT', data['format']),
                   ('HV_OPTS', data.get('options', ''))):
    print('%s=%s' % (key, shlex.quote(value)))
EOF
)"
    HV_MP=$BASE/hypervisor-mnt/$(printf %s "$HV_EXPORT" | md5sum | cut -d' ' -f1)
    HV_PATH=$HV_MP/$HV_NAME
    mkdir -p "$HV_MP"
    if ! mountpoint -q "$HV_MP"; then
        # shellcheck disable=SC2086
        mount -t lustre $HV_OPTS "$HV_EXPORT" "$HV_MP"
    fi
    echo "  hypervisor: $HV_TYPE $HV_EXPORT $HV_NAME ($HV_FMT)" >&2
}

hv_detach() {
    umount "$HV_MP"
    api detach "$HV_ATT"
    HV_ATT=
}

# A step that fails while attached must not leave the volume in-use.
hv_cleanup() {
    [ -n "${HV_ATT:-}" ] || return 0
    umount "$HV_MP" 2>/dev/null || true
    api detach "$HV_ATT" || true
}

# qemu-io as the guest: fails on an I/O error or a pattern mismatch.
guest_io() {
    local out
    out=$(qemu-io -f "$HV_FMT" "${@/#/-c}" "$HV_PATH" 2>&1) || { echo "$out"; return 1; }
    ! grep -qiE 'fail|error' <<<"$out" || { echo "$out"; return 1; }
}

# Checksum of everything the guest sees (not of the file: a qcow2 file's
# bytes are not the guest's).
guest_sha() {
    qemu-img convert -f "$HV_FMT" -O raw "$HV_PATH" "$WORK/guest.raw"
    sha256sum "$WORK/guest.raw" | cut -c1-16
    rm -f "$WORK/guest.raw"
}

virtual_size() {
    qemu-img info -f "$HV_FMT" --force-share --output=json "$HV_PATH" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'
}

same_sha() { [ "$(guest_sha)" = "$(cat "$WORK/sha.$1")" ]; }

# --- the walkthrough -----------------------------------------------------

s_types() {
    cli openstack volume type create --property volume_backend_name=lustre1 \
        --property provisioning:type=thin demo-thin-$T >/dev/null
    cli openstack volume type create --property volume_backend_name=lustre1 \
        --property provisioning:type=thick demo-thick-$T >/dev/null
    # No backend: the scheduler may then move its volumes anywhere.
    cli openstack volume type create --property provisioning:type=thin \
        demo-anywhere-$T >/dev/null
    grep -q '^\[lustre2\]' "$BASE/etc/cinder/cinder.conf" &&
        cli openstack volume type create --property volume_backend_name=lustre2 \
            demo-lustre2-$T >/dev/null
    cli openstack volume type list --long
}

s_create() {
    volume_create thin --type demo-thin-$T
    volume_create thick --type demo-thick-$T
    cli openstack volume list --long
    local thin thick
    thin=$(volume_file thin)
    thick=$(volume_file thick)
    # Thin volumes are qcow2 files (stack.sh sets lustre_qcow2_volumes):
    # small until the guest writes.
    check "thin volume file is small ($(du -B1 "$thin" | cut -f1) bytes allocated)" \
        test "$(du -B1 "$thin" | cut -f1)" -lt $MiB
    check "thick volume file is preallocated ($(du -B1 "$thick" | cut -f1) bytes)" \
        test "$(du -B1 "$thick" | cut -f1)" -ge $GiB
}

s_write() {
    hv_attach thin
    check "connection type is lustre, format qcow2 (a thin volume)" \
        test "$HV_TYPE/$HV_FMT" = lustre/qcow2
    guest_io "write -P 0xa1 0 1M" "write -P 0xa2 768M 1M"
    check "guest reads back what it wrote" guest_io "read -P 0xa1 0 1M" "read -P 0xa2 768M 1M"
    guest_sha > "$WORK/sha.v1"
    echo "  guest data v1: sha256 $(cat "$WORK/sha.v1")..."
    hv_detach
}

s_snapshot() {
    local sid
    sid=$(cli openstack volume snapshot create --volume "$(idof thin)" snap1 -f value -c id)
    save_id snap1 "$sid"
    api wait snapshot "$sid" available
    hv_attach thin
    check "after a snapshot the volume is attached as its qcow2 overlay" \
        test "$HV_FMT:$HV_NAME" = "qcow2:volume-$(idof thin).$sid"
    check "the guest still sees v1" same_sha v1
    guest_io "write -P 0xb1 0 1M"
    guest_sha > "$WORK/sha.v2"
    echo "  guest data v2 (after the snapshot): sha256 $(cat "$WORK/sha.v2")..."
    hv_detach
}

s_from_snapshot() {
    volume_create fromsnap --type demo-thin-$T --snapshot "$(idof snap1)"
    hv_attach fromsnap
    check "volume from the snapshot holds v1 (the snapshot's point in time)" same_sha v1
    hv_detach
}

s_clone() {
    volume_create clone --type demo-thin-$T --source "$(idof thin)"
    hv_attach clone
    check "clone holds v2 (the source now)" same_sha v2
    hv_detach
}

s_extend() {
    cli openstack volume set --size 2 "$(idof clone)"
    api wait volume "$(idof clone)" available
    hv_attach clone
    check "extended volume is 2 GiB to the guest" test "$(virtual_size)" -eq $((2 * GiB))
    check "its first GiB is unchanged and the new GiB reads zeros" \
        guest_io "read -P 0xb1 0 1M" "read -P 0xa2 768M 1M" "read -P 0 1G 1G"
    hv_detach
}

s_backup() {
    local bid
    bid=$(cli openstack volume backup create --name full1 "$(idof thin)" -f value -c id)
    save_id full1 "$bid"
    api wait backup "$bid" available 600
    hv_attach thin
    guest_io "write -P 0xc1 256M 1M"
    guest_sha > "$WORK/sha.v3"
    echo "  guest data v3 (after the full backup): sha256 $(cat "$WORK/sha.v3")..."
    hv_detach
    bid=$(cli openstack volume backup create --incremental --name inc1 "$(idof thin)" -f value -c id)
    save_id inc1 "$bid"
    api wait backup "$bid" available 600
    cli openstack volume backup list
}

restore() {   # BACKUP NEW_VOLUME
    local vid
    vid=$(cli cinder backup-restore --name "$2" "$(idof "$1")" | awk '$2 == "volume_id" {print $4}')
    save_id "$2" "$vid"
    api wait volume "$vid" available 600
}

s_restore() {
    restore full1 restored-full
    hv_attach restored-full
    check "restored volume is raw, as the guest's data (not a qcow2 container)" \
        test "$HV_FMT" = raw
    check "restored full backup holds v2" same_sha v2
    check "restored volume file is its full size ($(stat -c %s "$HV_PATH") bytes)" \
        test "$(stat -c %s "$HV_PATH")" -eq $GiB
    hv_detach
    restore inc1 restored-inc
    hv_attach restored-inc
    check "restored incremental backup holds v3" same_sha v3
    hv_detach
}

s_revert() {
    cli cinder --os-volume-api-version 3.40 revert-to-snapshot "$(idof snap1)"
    api wait volume "$(idof thin)" available
    hv_attach thin
    check "reverted volume holds v1 again" same_sha v1
    hv_detach
}

s_retype() {
    hv_attach thick
    guest_io "write -P 0xd1 0 1M" "write -P 0xd2 1023M 1M"
    guest_sha > "$WORK/sha.thick"
    hv_detach
    cli openstack volume set --type demo-lustre2-$T --migration-policy on-demand "$(idof thick)"
    local i host=
    for i in $(seq 180); do
        host=$(api get volume "$(idof thick)" os-vol-host-attr:host)
        [ "$(api get volume "$(idof thick)" status)" = available ] &&
            [[ $host == *@lustre2* ]] && break
        [ "$(api get volume "$(idof thick)" migration_status)" = error ] && break
        sleep 1
    done
    check "retyped volume moved to backend lustre2 ($host)" test "${host#*@}" = lustre2#lfs02/cinder
    hv_attach thick
    check "retyped volume kept its data" same_sha thick
    hv_detach
}

s_migrate() {
    # Its type names no backend (one that does keeps the scheduler from
    # moving it): move it to the backend it is not on.
    local dest=lustre-stack@lustre2#lfs02/cinder i status=
    [[ $(api get volume "$(idof fromimage)" os-vol-host-attr:host) == *@lustre2* ]] &&
        dest=lustre-stack@lustre1#lfs01/cinder2
    cli openstack volume migrate --host "$dest" "$(idof fromimage)"
    for i in $(seq 180); do
        status=$(api get volume "$(idof fromimage)" migration_status)
        [ "$status" = success ] || [ "$status" = error ] && break
        sleep 1
    done
    check "migration finished ($status)" test "$status" = success
    check "volume is on $dest" test "$(api get volume "$(idof fromimage)" os-vol-host-attr:host)" = "$dest"
    hv_attach fromimage
    check "migrated volume kept its data (v2)" same_sha v2
    hv_detach
}

s_image() {
    local i status=
    cli openstack image create --volume "$(idof restored-full)" --disk-format raw \
        --container-format bare demo-image-$T >/dev/null
    for i in $(seq 120); do
        status=$(openstack image show demo-image-$T -f value -c status)
        [ "$status" = active ] && break
        sleep 2
    done
    api wait volume "$(idof restored-full)" available
    check "volume uploaded to Glance (image $status)" test "$status" = active
    volume_create fromimage --type demo-anywhere-$T --image demo-image-$T
    hv_attach fromimage
    check "volume created from that image holds v2" same_sha v2
    hv_detach
}

s_delete() {
    local name
    for name in inc1 full1; do
        [ -s "$WORK/ids/$name" ] || continue
        cli openstack volume backup delete "$(idof $name)"
        api wait backup "$(idof $name)" deleted
    done
    if [ -s "$WORK/ids/snap1" ]; then
        cli openstack volume snapshot delete "$(idof snap1)"
        api wait snapshot "$(idof snap1)" deleted
    fi
    for name in thin thick fromsnap clone restored-full restored-inc fromimage; do
        [ -s "$WORK/ids/$name" ] || continue
        cli openstack volume delete "$(idof $name)"
    done
    for name in thin thick fromsnap clone restored-full restored-inc fromimage; do
        [ -s "$WORK/ids/$name" ] || continue
        api wait volume "$(idof $name)" deleted
    done
    cli openstack image delete demo-image-$T || true
    cli openstack volume type delete demo-thin-$T demo-thick-$T demo-anywhere-$T
    openstack volume type delete demo-lustre2-$T 2>/dev/null || true
    local left
    left=$(find "$BASE"/mnt/*/ -maxdepth 1 -name 'volume-*' | wc -l)
    check "no volume file left on the shares ($left)" test "$left" -eq 0
    left=$(find "$BASE"/backup-mnt/*/ -type f | wc -l)
    check "no backup file left on the backup share ($left)" test "$left" -eq 0
}

step "Volume types: thin and thick on lustre1, one on lustre2" s_types
step "Thin and thick volumes" s_create
step "Write guest data (v1) as a hypervisor" s_write
step "Snapshot, then the guest writes v2 over the volume" s_snapshot
step "Volume from the snapshot" s_from_snapshot
step "Clone of the volume" s_clone
step "Extend the clone to 2 GiB" s_extend
step "Full backup of the volume with a snapshot, guest writes v3, incremental backup" s_backup
step "Restore both backups to new volumes" s_restore
step "Revert the volume to its snapshot" s_revert
step "Upload a volume to Glance, create a volume from the image" s_image
if grep -q '^\[lustre2\]' "$BASE/etc/cinder/cinder.conf"; then
    step "Retype the thick volume to lustre2 (generic migration)" s_retype
    step "Migrate the volume from the image to the other backend" s_migrate
else
    printf '\n=== Retype and migration: SKIPPED, only one backend (set LUSTRE_SHARE2)\n'
fi
step "Delete everything" s_delete

# Mounts the hypervisor may have left after a failed step.
for mp in $(awk -v b="$BASE/hypervisor-mnt/" 'index($2, b) == 1 {print $2}' /proc/mounts); do
    umount "$mp" || true
done

passed=$(grep -c '^PASS' "$RESULTS" || true)
failed=$(grep -c '^FAIL' "$RESULTS" || true)
printf '\n=== Summary (%d s)\n' $((SECONDS - DEMO_START))
cat "$RESULTS"
cat <<EOF

demo: $passed passed, $failed failed

The stack is still running.  Use it with:
    source $BASE/openrc
    openstack volume service list; openstack volume create --size 1 myvol; cinder get-pools
Logs: $BASE/logs.   Stop it with:  $HERE/stack.sh down
EOF
[ "$failed" -eq 0 ]
