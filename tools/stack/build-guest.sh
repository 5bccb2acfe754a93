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
# Build the stack's guest from Debian packages: the kernel of
# linux-image-cloud-amd64 and an initramfs holding busybox (busybox-static)
# and the kernel's virtio modules.  Nothing else: no disk image, no network.
#
# Usage: build-guest.sh OUTDIR     (writes OUTDIR/vmlinuz, OUTDIR/initrd)
#
# What the guest is for: a real kernel that answers PCI hot-plug and
# hot-unplug (so Nova's live attach and detach of volumes complete as in a
# cloud) and prints every change of a disk's capacity on its serial
# console (virtio_blk: "capacity change from X to Y"), in a 128 MiB flavor.
# Its /init loads the modules, says "lustre-stack guest ready" and then
# reports the block devices it sees whenever they change.

set -euo pipefail

out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The metapackage names the kernel package of the current point release.
kpkg=$(apt-cache depends linux-image-cloud-amd64 |
    awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "build-guest: no linux-image-cloud-amd64 in apt" >&2; exit 1; }
(cd "$work" && apt-get download -q "$kpkg" busybox-static >/dev/null 2>&1) || {
    apt-get update -q >/dev/null 2>&1
    (cd "$work" && apt-get download -q "$kpkg" busybox-static >/dev/null)
}
mkdir "$work/pkg" "$work/initrd"
for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$work/pkg"
done
kver=${kpkg#linux-image-}
cp "$work/pkg/boot/vmlinuz-$kver" "$out/vmlinuz"

cd "$work/initrd"
mkdir -p bin dev proc sys modules
cp "$work/pkg/bin/busybox" bin/busybox
# In dependency order (no modprobe, no modules.dep): the virtio core, the
# PCI transport, then the devices Nova gives a guest.  Hot-plug itself is
# built into this kernel (PCIe native and ACPI hot-plug).
modules="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev
         virtio_pci virtio_blk virtio_console virtio_balloon"
for m in $modules; do
    f=$(find "$work/pkg/lib/modules/$kver" -name "$m.ko*" | head -1)
    [ -n "$f" ] || { echo "build-guest: module $m missing from $kpkg" >&2; exit 1; }
    cp "$f" modules/
done
cat > init <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(echo $modules); do
    insmod /modules/\$m.ko* 2>/dev/null || echo "guest: insmod \$m failed"
done
echo "lustre-stack guest ready (kernel \$(uname -r))"
last=
while :; do
    now=\$(cd /sys/block && for d in vd* sd*; do
        [ -e "\$d/size" ] && echo "\$d:\$(cat \$d/size)"; done | tr '\n' ' ')
    if [ "\$now" != "\$last" ]; then
        echo "guest: block devices (512-byte sectors): \$now"
        last=\$now
    fi
    sleep 2
done
EOF
chmod 755 init bin/busybox
find . | cpio -o -H newc --quiet | gzip -9 > "$out/initrd"
echo "build-guest: $kpkg + busybox-static: $(du -h "$out/vmlinuz" | cut -f1) kernel," \
    "$(du -h "$out/initrd" | cut -f1) initrd in $out"
