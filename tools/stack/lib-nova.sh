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
# The compute side of the stack, sourced by stack.sh: libvirt and QEMU from
# Debian, Placement, Nova (api, conductor, scheduler, compute with the
# libvirt driver and this repository's Nova patch), the bare Neutron API
# Nova's server views need, and the guest image (build-guest.sh).
# STACK_NOVA=0 leaves all of it out.
#
# Facts and traps behind the choices here: tools/stack/README.rst ("Nova").

NOVA_VENV=$BASE/venv-nova          # nova, placement, libvirt-python
NEUTRON_VENV=$BASE/venv-neutron    # neutron (its API only)
NOVA_MNT=$BASE/nova-mnt            # [libvirt] lustre_mount_point_base
NOVA_SPEC=nova==34.0.0
# cryptsetup: Nova checks that an encrypted volume is LUKS (isLuks) before
# QEMU opens it with the key.
NOVA_APT_PACKAGES=(libvirt-daemon-system libvirt-clients libvirt-dev
                   pkg-config qemu-system-x86 busybox-static cpio
                   cryptsetup-bin)
NOVA_SERVICES=(virtlogd libvirtd placement-api neutron-api nova-api
               nova-conductor nova-scheduler nova-compute)
NOVA_PORTS=(8774 8778 9696)
GUEST_DIR=$STATE/guest

nova_enabled() { [ "${STACK_NOVA:-1}" != 0 ]; }

# Started before the other venvs are waited for (stack.sh install_venvs).
nova_make_venvs() {
    make_venv "$NOVA_VENV" "$NOVA_SPEC" 'openstack-placement==16.0.0' \
        libvirt-python gunicorn psycopg2-binary >"$LOGS/pip-venv-nova.log" 2>&1 &
    VENV_PIDS+=($!); VENV_NAMES+=(venv-nova)
    make_venv "$NEUTRON_VENV" 'neutron==29.0.0' gunicorn psycopg2-binary \
        >"$LOGS/pip-venv-neutron.log" 2>&1 &
    VENV_PIDS+=($!); VENV_NAMES+=(venv-neutron)
}

# Our Nova patch, on the installed nova (its code, not its tests).  An
# installed nova carrying another version of the patch is reinstalled
# first, so that a changed patch always lands on a clean nova.
apply_nova_patch() {
    local patch=$REPO/contrib/nova/0001-libvirt-Add-Lustre-volume-driver.patch
    local site part
    site=$("$NOVA_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    part=$RUN/nova-patch.diff
    awk '/^diff --git / {keep = ($3 !~ /^a\/(nova\/tests|releasenotes)\//)}
         /^-- $/ {keep = 0}
         keep' "$patch" > "$part"
    if patch -p1 -d "$site" -R -f --dry-run -s < "$part" >/dev/null 2>&1; then
        say "Nova: the contrib patch is applied already"
        return 0
    fi
    if ! patch -p1 -d "$site" -N -f --dry-run -s < "$part" >/dev/null 2>&1; then
        say "Nova: another version of the patch is installed: reinstalling $NOVA_SPEC"
        # pip leaves the files the patch created (they are in no RECORD).
        awk '/^diff --git / {f = substr($4, 3)} /^new file mode/ {print f}' "$part" |
            while read -r f; do rm -f "$site/$f"; done
        "$NOVA_VENV/bin/pip" install -q --force-reinstall --no-deps "$NOVA_SPEC" \
            >>"$LOGS/pip-venv-nova.log" 2>&1 || die "could not reinstall $NOVA_SPEC"
    fi
    patch -p1 -d "$site" -N -t -s --no-backup-if-mismatch < "$part" \
        >"$LOGS/apply-nova.log" 2>&1 || die "the Nova patch does not apply, see $LOGS/apply-nova.log"
    "$NOVA_VENV/bin/python" -c 'import nova.virt.libvirt.volume.lustre' ||
        die "nova.virt.libvirt.volume.lustre does not import after patching"
    say "Nova: contrib patch applied to $(basename "$site")/nova"
}

# --- libvirt -----------------------------------------------------------------

# KVM only where it boots the guest: nested KVM on this kind of machine
# hangs the guest after the kernel is decompressed.  STACK_VIRT_TYPE=kvm or
# qemu skips the probe.
choose_virt_type() {
    VIRT_TYPE=${STACK_VIRT_TYPE:-auto}
    if [ "$VIRT_TYPE" = auto ]; then
        VIRT_TYPE=qemu
        if [ -c /dev/kvm ]; then
            rm -f "$RUN/kvm-probe.log"
            timeout 25 qemu-system-x86_64 -machine q35,accel=kvm -cpu kvm64 -m 128 \
                -kernel "$GUEST_DIR/vmlinuz" -initrd "$GUEST_DIR/initrd" \
                -append 'console=ttyS0 panic=-1' -display none -no-reboot \
                -serial "file:$RUN/kvm-probe.log" >/dev/null 2>&1 &
            local probe=$! i
            for i in $(seq 24); do
                grep -q 'guest ready' "$RUN/kvm-probe.log" 2>/dev/null && { VIRT_TYPE=kvm; break; }
                sleep 1
            done
            kill "$probe" 2>/dev/null || true
            wait "$probe" 2>/dev/null || true
        fi
        say "virt_type = $VIRT_TYPE ($([ $VIRT_TYPE = kvm ] && echo 'KVM booted the guest' ||
            echo 'KVM absent or did not boot the guest in 24 s: TCG'))"
    fi
    # What udev would do: QEMU runs as libvirt-qemu, in group kvm.  Also
    # under TCG: libvirt probes QEMU's capabilities as root, who can open
    # /dev/kvm, and checks them against what libvirt-qemu can open; while
    # the two differ it probes again on every look-up (about 25 probes,
    # 55 s, in each server build and each start of nova-compute).
    # stack.sh down puts back the owner and mode found here.
    if [ -c /dev/kvm ]; then
        [ -f "$RUN/kvm-mode" ] || stat -c '%g %a' /dev/kvm > "$RUN/kvm-mode"
        chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
    fi
}

start_libvirt() {
    install -d "$ETC/libvirt"
    # Nova (the service user) makes its mount points and instance
    # directories there; QEMU (libvirt-qemu) must traverse both.
    owned "$NOVA_MNT" "$STATE/nova/instances"
    chmod 0755 "$NOVA_MNT" "$STATE/nova" "$STATE/nova/instances"
    # QEMU runs in a mount namespace of its own: a fileset Nova mounts
    # after a guest started must propagate into it.
    if ! awk -v m="$NOVA_MNT" '$2 == m' /proc/mounts | grep -q .; then
        mount --bind "$NOVA_MNT" "$NOVA_MNT"
    fi
    mount --make-shared "$NOVA_MNT"
    # Without polkit (no D-Bus here), the socket's group decides who may
    # manage guests, as Debian's packaging intends: group libvirt, of which
    # the service user is a member.
    cat > "$ETC/libvirt/libvirtd.conf" <<EOF
unix_sock_group = "libvirt"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
EOF
    spawn virtlogd /usr/sbin/virtlogd
    spawn libvirtd /usr/sbin/libvirtd --config "$ETC/libvirt/libvirtd.conf"
    wait_for libvirtd 30 virsh -c qemu:///system version
    say "libvirtd $(virsh -c qemu:///system version | awk '/Running hypervisor/ {print $NF}') (QEMU), virtlogd"
}

# --- configuration -------------------------------------------------------------

write_nova_conf() {
    install -d "$ETC/nova" "$ETC/placement" "$ETC/neutron" "$STATE/neutron"
    owned "$STATE/nova"
    cp "$NOVA_VENV/etc/nova/api-paste.ini" "$ETC/nova/"
    cp "$NEUTRON_VENV/etc/neutron/api-paste.ini" "$ETC/neutron/"
    {
        default_section
        cat <<EOF
state_path = $STATE/nova
instances_path = $STATE/nova/instances
rootwrap_config = $ETC_LINK/nova/rootwrap.conf
compute_driver = libvirt.LibvirtDriver
# The stack's guest does not act on ACPI power button presses: stop
# servers at once instead of waiting a minute for a clean shutdown.
shutdown_timeout = 0
# nova-compute waits for its threads on SIGTERM for as long as this, and
# never stopped within 30 s here: stack.sh down then killed it.
graceful_shutdown_timeout = 5
# Two cores: one API worker, one conductor, one scheduler.
osapi_compute_workers = 1
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = -1
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = $ETC/nova/api-paste.ini
[api_database]
connection = $DB/nova_api
[database]
connection = $DB/nova
[oslo_concurrency]
lock_path = $STATE/nova/lock
[oslo_messaging_notifications]
driver = noop
[libvirt]
virt_type = $VIRT_TYPE
cpu_mode = $([ "$VIRT_TYPE" = kvm ] && echo custom || echo none)
$([ "$VIRT_TYPE" = kvm ] && echo 'cpu_models = kvm64')
lustre_mount_point_base = $NOVA_MNT
# Free PCIe root ports for hot-plugged volumes on q35 guests.
num_pcie_ports = 12
[workarounds]
skip_cpu_compare_at_startup = True
[vnc]
enabled = false
[spice]
enabled = false
[cinder]
os_region_name = RegionOne
catalog_info = volumev3:cinderv3:publicURL
[glance]
region_name = RegionOne
EOF
        authtoken_section nova
        key_manager_section nova
        service_auth placement placement
        service_auth neutron neutron
        service_auth service_user nova
        echo "send_service_user_token = true"
    } > "$ETC/nova/nova.conf"
    {
        cat <<EOF
[DEFAULT]
log_file = $LOGS/placement-api.log
debug = true
[api]
auth_strategy = keystone
[placement_database]
connection = $DB/placement
EOF
        authtoken_section placement
    } > "$ETC/placement/placement.conf"
    {
        cat <<EOF
[DEFAULT]
log_file = $LOGS/neutron-api.log
core_plugin = ml2
service_plugins =
auth_strategy = keystone
api_paste_config = $ETC/neutron/api-paste.ini
state_path = $STATE/neutron
transport_url = rabbit://guest:guest@127.0.0.1:5672/
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
api_workers = 1
rpc_workers = 0
[database]
connection = $DB/neutron
[ml2]
type_drivers = flat
tenant_network_types =
mechanism_drivers =
extension_drivers =
[oslo_concurrency]
lock_path = $STATE/neutron/lock
[oslo_messaging_notifications]
driver = noop
EOF
        authtoken_section neutron
    } > "$ETC/neutron/neutron.conf"
    chgrp "$SERVICE_USER" "$ETC/nova" && chmod 0750 "$ETC/nova"
}

# Cinder calls Nova (assisted snapshots of attached volumes, extend of
# attached volumes) as a service user, so that a project member's snapshot
# of an attached volume passes Nova's policy.
cinder_nova_section() {
    nova_enabled || return 0
    service_auth nova cinder
    echo "interface = public"
}

create_nova_databases() {
    runuser -u postgres -- psql -q -h "$BASE/pgsql/run" -p $PG_PORT -d postgres \
        -c "CREATE DATABASE nova_api OWNER openstack" \
        -c "CREATE DATABASE nova_cell0 OWNER openstack" \
        -c "CREATE DATABASE nova OWNER openstack" \
        -c "CREATE DATABASE placement OWNER openstack" \
        -c "CREATE DATABASE neutron OWNER openstack"
}

# gunicorn passes its own arguments, which these WSGI apps would parse.
write_wsgi_wrappers() {
    cat > "$STATE/nova/nova_wsgi.py" <<'EOF'
import sys
sys.argv = sys.argv[:1]
from nova.wsgi.osapi_compute import application  # noqa: E402,F401
EOF
    cat > "$STATE/nova/placement_wsgi.py" <<'EOF'
import sys
sys.argv = sys.argv[:1]
from placement.wsgi.api import application  # noqa: E402,F401
EOF
    # The bare API loads no service plugin and no mechanism driver, whose
    # models Port's relationships name (port forwardings, distributed port
    # bindings): load every model, as the migrations do.
    cat > "$STATE/neutron/neutron_wsgi.py" <<'EOF'
import sys
sys.argv = sys.argv[:1]
from neutron.db.migration.models import head  # noqa: E402,F401
from sqlalchemy import orm  # noqa: E402
orm.configure_mappers()
from neutron.wsgi.api import application  # noqa: E402,F401
EOF
}

start_nova() {
    local started=$SECONDS
    local nm=("$NOVA_VENV/bin/nova-manage" --config-file "$ETC/nova/nova.conf")
    local ndm=("$NEUTRON_VENV/bin/neutron-db-manage" --config-file "$ETC/neutron/neutron.conf")
    write_wsgi_wrappers
    {
        "$NOVA_VENV/bin/placement-manage" --config-file "$ETC/placement/placement.conf" db sync &&
        "${nm[@]}" api_db sync &&
        "${nm[@]}" cell_v2 map_cell0 --database_connection "$DB/nova_cell0" &&
        "${nm[@]}" cell_v2 create_cell --name cell1 --database_connection "$DB/nova" \
            --transport-url rabbit://guest:guest@127.0.0.1:5672/ &&
        "${nm[@]}" db sync
    } >"$LOGS/nova-manage.log" 2>&1 || die "nova/placement db sync failed, see $LOGS/nova-manage.log"
    # Migration d553edeb540f converts a table with MySQL-only SQL.
    {
        "${ndm[@]}" upgrade ad80a9f07c5c &&
        "${ndm[@]}" stamp d553edeb540f &&
        "${ndm[@]}" upgrade heads
    } >"$LOGS/neutron-db-manage.log" 2>&1 || die "neutron db migration failed, see $LOGS/neutron-db-manage.log"
    spawn placement-api env OS_PLACEMENT_CONFIG_DIR="$ETC/placement" \
        "$NOVA_VENV/bin/gunicorn" --no-control-socket --bind 127.0.0.1:8778 \
        --workers 1 --timeout 120 --pythonpath "$STATE/nova" placement_wsgi:application
    spawn neutron-api env OS_NEUTRON_CONFIG_DIR="$ETC/neutron" OS_NEUTRON_CONFIG_FILES=neutron.conf \
        "$NEUTRON_VENV/bin/gunicorn" --no-control-socket --bind 127.0.0.1:9696 \
        --workers 1 --timeout 120 --pythonpath "$STATE/neutron" neutron_wsgi:application
    # Nova's services run as the service user (they share its state
    # directory and file locks).  nova-api's oslo.log file is named after
    # its program, gunicorn.
    touch "$LOGS/gunicorn.log"
    chown "$SERVICE_USER:$SERVICE_USER" "$LOGS/gunicorn.log"
    spawn_unprivileged nova-api env OS_NOVA_CONFIG_DIR="$ETC_LINK/nova" \
        "$NOVA_VENV/bin/gunicorn" --no-control-socket --bind 127.0.0.1:8774 \
        --workers 1 --timeout 300 --pythonpath "$STATE/nova" nova_wsgi:application
    local svc
    for svc in nova-conductor nova-scheduler nova-compute; do
        spawn_unprivileged "$svc" "$NOVA_VENV/bin/$svc" \
            --config-file "$ETC_LINK/nova/nova.conf"
    done
    wait_for placement-api 60 http_ok http://127.0.0.1:8778/
    wait_for neutron-api 90 http_ok http://127.0.0.1:9696/
    wait_for nova-api 90 http_ok http://127.0.0.1:8774/
    wait_for "nova-compute" 120 nova_compute_up
    # The service is up before its compute node record exists, and only a
    # compute node can be mapped to the cell.
    wait_for "the compute host mapped to cell1" 120 nova_host_mapped
    say "Nova ($VIRT_TYPE) on 127.0.0.1:8774, Placement :8778, Neutron API :9696 ($((SECONDS - started)) s)"
}

nova_host_mapped() {
    local nm=("$NOVA_VENV/bin/nova-manage" --config-file "$ETC/nova/nova.conf")
    "${nm[@]}" cell_v2 discover_hosts >>"$LOGS/nova-manage.log" 2>&1 &&
        "${nm[@]}" cell_v2 list_hosts 2>/dev/null | grep -q " $HOST "
}

nova_compute_up() {
    (. "$BASE/openrc" && openstack compute service list --service nova-compute \
        -f value -c State) 2>/dev/null | grep -qx up
}

# The guest (build-guest.sh), a flavor for it, and the images Tempest and
# the demo boot: kernel and ramdisk, and a 1 MiB raw "machine" image that
# names them (Nova boots the kernel directly; the disk stays unused).
register_guest() {
    local started=$SECONDS
    # shellcheck disable=SC1091
    (. "$BASE/openrc" && "$VENV/bin/python" - "$GUEST_DIR" <<'EOF'
import os
import sys

import openstack

guest_dir = sys.argv[1]
conn = openstack.connect()
kernel = conn.image.create_image(
    name='lustre-guest-kernel', filename=os.path.join(guest_dir, 'vmlinuz'),
    disk_format='aki', container_format='aki', visibility='public',
    wait=True)
ramdisk = conn.image.create_image(
    name='lustre-guest-initrd', filename=os.path.join(guest_dir, 'initrd'),
    disk_format='ari', container_format='ari', visibility='public',
    wait=True)
disk = os.path.join(guest_dir, 'disk.raw')
with open(disk, 'wb') as f:
    f.truncate(1024 * 1024)
image = conn.image.create_image(
    name='lustre-guest', filename=disk, disk_format='raw',
    container_format='bare', visibility='public', wait=True,
    kernel_id=kernel.id, ramdisk_id=ramdisk.id,
    os_command_line='console=ttyS0 panic=-1')
for img in (kernel, ramdisk, image):
    if conn.image.get_image(img.id).visibility != 'public':
        conn.image.update_image(img.id, visibility='public')
    print('%s %s' % (img.name, img.id))
conn.compute.create_flavor(name='lustre-guest', ram=128, vcpus=1, disk=1,
                           id='42')
conn.compute.create_flavor(name='lustre-guest-alt', ram=192, vcpus=1,
                           disk=1, id='84')
print(image.id)
EOF
    ) >"$LOGS/guest-image.log" 2>&1 || die "registering the guest failed: $(tail -3 "$LOGS/guest-image.log")"
    say "guest image 'lustre-guest' $(tail -1 "$LOGS/guest-image.log"), flavors lustre-guest (42: 128 MiB) and lustre-guest-alt (84) ($((SECONDS - started)) s)"
}

build_guest() {
    if [ -f "$GUEST_DIR/vmlinuz" ] && [ -f "$GUEST_DIR/initrd" ] &&
            [ "$GUEST_DIR/initrd" -nt "$REPO/tools/stack/build-guest.sh" ]; then
        return 0
    fi
    "$REPO/tools/stack/build-guest.sh" "$GUEST_DIR" >"$LOGS/build-guest.log" 2>&1 ||
        die "building the guest failed, see $LOGS/build-guest.log"
    say "$(tail -1 "$LOGS/build-guest.log")"
}

stop_nova() {
    local name
    for name in nova-compute nova-scheduler nova-conductor nova-api neutron-api placement-api; do
        stop_pid_group "$name"
    done
    # Guests the stack started; then libvirt itself.
    if running libvirtd; then
        local dom
        for dom in $(virsh -c qemu:///system list --all --name 2>/dev/null); do
            say "destroying guest $dom"
            virsh -c qemu:///system destroy "$dom" >/dev/null 2>&1 || true
            virsh -c qemu:///system undefine --nvram "$dom" >/dev/null 2>&1 ||
                virsh -c qemu:///system undefine "$dom" >/dev/null 2>&1 || true
        done
    fi
    stop_pid_group libvirtd
    stop_pid_group virtlogd
    if [ -f "$RUN/kvm-mode" ]; then
        local group mode
        read -r group mode < "$RUN/kvm-mode"
        [ -c /dev/kvm ] && chgrp "$group" /dev/kvm && chmod "$mode" /dev/kvm
        rm -f "$RUN/kvm-mode"
    fi
}

unmount_nova_base() {
    while awk -v m="$NOVA_MNT" '$2 == m' /proc/mounts | grep -q .; do
        umount "$NOVA_MNT" 2>/dev/null || umount -l "$NOVA_MNT" || break
    done
}
