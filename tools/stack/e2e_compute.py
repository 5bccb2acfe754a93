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
"""The compute part of e2e.py: volumes attached to a real guest by Nova.

Where e2e.py acts as the hypervisor itself, this part boots the stack's
guest (stack.sh, build-guest.sh) and lets Nova attach, Cinder call Nova
for assisted snapshots and online extend, and QEMU hold the files.  The
guest's bytes are read and written inside the running QEMU, through the
monitor's ``qemu-io`` on the disk's device (what the guest itself would
read), and QEMU's idea of a disk's capacity comes from ``virsh
domblkinfo``; the guest kernel's view from its serial console.

For thin (qcow2) and thick (raw) volumes of lustre1: attach, write,
snapshot while attached (Nova-assisted), more writes, a volume from the
snapshot, assisted delete of the snapshot, forced backup and clone of the
attached volume (restored and cloned bytes checked), extend while
attached, detach, re-attach.  Then: multiattach (every pool reports it; a
new thin volume of a multiattach type is a sparse raw file; a thin qcow2
volume retyped to that type becomes raw in place, then is shared by two
guests: the disk shareable in both domains with share-rw, bytes written
by one read by the other, QEMU's image locks held by both and refusing a
QEMU that would not share writing, one detach then the other); a
server booted from a Lustre volume made from an image (the image's bytes
on its root disk); nova-compute restarted under attached volumes, one of
them on a snapshot overlay (bytes, assisted snapshot delete and detach
afterwards).  At the end no fileset is left mounted by Nova.
"""

import contextlib
import datetime
import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import time
import urllib.request
import xml.etree.ElementTree as ET

import e2e

COMPUTE_VERSION = '2.79'   # networks 'none' (2.37)
# Linux's F_OFD_GETLK, which older Pythons' fcntl does not name.
F_OFD_GETLK = getattr(fcntl, 'F_OFD_GETLK', 36)
NOVA_MNT = os.path.join(e2e.BASE, 'nova-mnt')
RUN = os.path.join(e2e.BASE, 'run')
GiB = e2e.GiB
MiB = e2e.MiB
SECTORS_PER_GIB = GiB // 512


def virsh(*args):
    return e2e.run('virsh', '-c', 'qemu:///system', *args)


class ComputeSuite(e2e.Suite):

    def __init__(self):
        super(ComputeSuite, self).__init__()
        self.nova = self.api.endpoints['compute']
        self.server = None
        self.domain = None

    # --- Nova ----------------------------------------------------------------

    def ncall(self, method, path, body=None, missing_ok=False):
        return self.api.call(method, path, body, missing_ok=missing_ok,
                             url=self.nova,
                             version='compute ' + COMPUTE_VERSION)

    def wait_server(self, status, timeout=e2e.TIMEOUT):
        deadline = time.time() + timeout
        while time.time() < deadline:
            server = self.ncall('GET', '/servers/%s' % self.server,
                                missing_ok=status == 'DELETED')
            if server is None:
                return None
            server = server['server']
            if server['status'] == status:
                return server
            if server['status'] == 'ERROR':
                raise e2e.CheckFailed('server in ERROR: %s'
                                      % server.get('fault'))
            time.sleep(2)
        raise e2e.CheckFailed('server not %s after %d s' % (status, timeout))

    def console(self):
        return self.ncall('POST', '/servers/%s/action' % self.server,
                          {'os-getConsoleOutput': {'length': -1}})['output']

    def wait_console(self, pattern, timeout=120):
        """Seconds until the guest's console matches, or None."""
        start = time.time()
        while time.time() - start < timeout:
            if re.search(pattern, self.console()):
                return time.time() - start
            time.sleep(2)
        return None

    def boot(self, image, flavor, name='guest', **server):
        """Boot a server, make it the current one, wait for its guest.

        server: more of the request's server, such as a
        block_device_mapping_v2 (then image may be None).
        """
        start = time.time()
        body = {'server': dict(name='e2e-%s-%s' % (name, self.stamp),
                               flavorRef=flavor, networks='none', **server)}
        if image:
            body['server']['imageRef'] = image
        self.server = self.ncall('POST', '/servers', body)['server']['id']
        server = self.wait_server('ACTIVE')
        self.domain = server['OS-EXT-SRV-ATTR:instance_name']
        up = self.wait_console('lustre-stack guest ready', 300)
        self.require(up is not None,
                     'server %s ACTIVE in %.0f s, guest kernel up %.0f s '
                     'later (domain %s)' % (self.server, time.time() - start
                                            - (up or 0), up or -1,
                                            self.domain))

    @contextlib.contextmanager
    def on_server(self, server, domain):
        """Make another server the current one for a while."""
        saved = self.server, self.domain
        self.server, self.domain = server, domain
        try:
            yield
        finally:
            self.server, self.domain = saved

    def delete_server(self):
        if not self.server:
            return
        self.ncall('DELETE', '/servers/%s' % self.server, missing_ok=True)
        self.wait_server('DELETED')
        self.server = None

    def attach(self, volume_id):
        start = time.time()
        self.ncall('POST', '/servers/%s/os-volume_attachments' % self.server,
                   {'volumeAttachment': {'volumeId': volume_id}})
        self.wait('volume', volume_id, 'in-use')
        disk = self.disk(volume_id)
        self.require(disk is not None, 'attached %s: in-use in %.0f s, a '
                     'disk of the domain' % (volume_id, time.time() - start))
        sectors = self.wait_console(r'%s:\d+' % disk['target'], 60)
        self.check(sectors is not None, '  the guest kernel sees %s (%s s '
                   'after in-use)' % (disk['target'], sectors and
                                      round(sectors)))
        return disk

    def nova_detach(self, volume_id, what, others=0):
        """Detach from the current server; ``others`` stay attached."""
        start = time.time()
        self.ncall('DELETE', '/servers/%s/os-volume_attachments/%s'
                   % (self.server, volume_id))
        if not others:
            self.wait('volume', volume_id, 'available')
        deadline = time.time() + e2e.TIMEOUT
        while others and time.time() < deadline:
            found = self.get('volume', volume_id)
            if (found['status'] == 'in-use' and
                    len(found['attachments']) == others):
                break
            time.sleep(1)
        outcome = ('volume in-use by the other server(s)' if others else
                   'volume available')
        self.check(self.disk(volume_id) is None,
                   '%s: live detach, %s in %.0f s, the disk gone from the '
                   'domain' % (what, outcome, time.time() - start))

    def detach_all(self):
        """Detach what a failed step left attached, so it can be deleted."""
        for att in self.ncall('GET', '/servers/%s/os-volume_attachments'
                              % self.server)['volumeAttachments']:
            try:
                self.nova_detach(att['volumeId'], 'clean-up')
            except (e2e.CheckFailed, e2e.stackapi.ApiError) as exc:
                print('  could not detach %s: %s' % (att['volumeId'], exc))

    def disk(self, volume_id):
        """The domain's disk of the volume: target, source, format, alias."""
        domain = ET.fromstring(virsh('dumpxml', self.domain))
        for disk in domain.iter('disk'):
            if disk.findtext('serial') == volume_id:
                return {'target': disk.find('target').get('dev'),
                        'source': disk.find('source').get('file'),
                        'format': disk.find('driver').get('type'),
                        'cache': disk.find('driver').get('cache'),
                        'shareable': disk.find('shareable') is not None,
                        'alias': disk.find('alias').get('name')}
        return None

    def qemu_io(self, disk, *commands):
        """Commands of qemu-io on the guest's device, inside QEMU.

        The device's block backend belongs to the virtio device inside the
        PCI proxy that carries libvirt's alias.  QEMU 7.2 prints what
        qemu-io says on its own standard output, which libvirt keeps in the
        domain's log, not on the monitor.
        """
        log = '/var/log/libvirt/qemu/%s.log' % self.domain
        ok = True
        for command in commands:
            start = os.path.getsize(log)
            reply = virsh('qemu-monitor-command', '--hmp', self.domain,
                          'qemu-io -d %s/virtio-backend "%s"'
                          % (disk['alias'], command))
            out = ''
            for _i in range(50):
                with open(log, errors='replace') as f:
                    f.seek(start)
                    out = f.read()
                if re.search(r'^(read|wrote) \d+/', out, re.M):
                    break
                time.sleep(0.2)
            out = reply + out
            if (not re.search(r'^(read|wrote) \d+/', out, re.M) or
                    re.search(r'fail|error', out, re.I)):
                print('    qemu-io %s: %s' % (command, out.strip()[-300:]))
                ok = False
        return ok

    def capacity(self, disk):
        out = virsh('domblkinfo', self.domain, disk['target'])
        return int(re.search(r'Capacity:\s+(\d+)', out).group(1))

    def forced_snapshot(self, volume_id, name):
        """A snapshot of an attached volume (Nova-assisted)."""
        snap = self.call('POST', '/snapshots', {'snapshot': {
            'volume_id': volume_id, 'force': True,
            'name': 'e2e-%s-%s' % (name, self.stamp)}})['snapshot']['id']
        self.made.append(('snapshot', snap))
        self.wait('snapshot', snap)
        return snap

    # --- the checks ----------------------------------------------------------

    def attached_volume(self, provisioning, vtype):
        fmt = e2e.FORMATS[provisioning]
        print('\n== attached to a guest: %s volume (%s) ==' % (
            provisioning, fmt))
        vol = self.volume('attached-' + provisioning, vtype)
        disk = self.attach(vol)
        self.same(disk['format'], fmt, 'attached as a file disk of the '
                  'volume format')
        self.require(self.qemu_io(disk, 'write -P 0x61 0 1M',
                                  'write -P 0x62 1023M 1M'),
                     'QEMU writes 0x61@0, 0x62@1023M')
        self.check(self.qemu_io(disk, 'read -P 0x61 0 1M',
                                'read -P 0x62 1023M 1M'),
                   'QEMU reads them back')

        print('-- snapshot while attached (Nova-assisted)')
        start = time.time()
        snap = self.forced_snapshot(vol, 'attached')
        disk = self.disk(vol)
        self.check(disk['source'].endswith('.' + snap) and
                   disk['format'] == 'qcow2',
                   'snapshot available in %.0f s; QEMU writes to the '
                   'overlay (%s, %s)' % (time.time() - start,
                                         os.path.basename(disk['source']),
                                         disk['format']))
        self.check(self.qemu_io(disk, 'read -P 0x61 0 1M',
                                'read -P 0x62 1023M 1M'),
                   'after the snapshot QEMU reads the same bytes')
        self.require(self.qemu_io(disk, 'write -P 0x63 1M 1M'),
                     'QEMU writes 0x63@1M after the snapshot')
        from_snap = self.volume('from-attached-snap', vtype,
                                snapshot_id=snap)
        with self.attached(from_snap) as hv_disk:
            self.check(hv_disk.io('read -P 0x61 0 1M', 'read -P 0 1M 1M',
                                  'read -P 0x62 1023M 1M'),
                       'volume from the snapshot: its point in time '
                       '(0x61@0, zeros@1M, 0x62@1023M)')
        self.forget('volume', from_snap)

        print('-- delete the snapshot while attached (Nova-assisted merge)')
        start = time.time()
        self.forget('snapshot', snap)
        disk = self.disk(vol)
        self.check(self.qemu_io(disk, 'read -P 0x61 0 1M',
                                'read -P 0x63 1M 1M',
                                'read -P 0x62 1023M 1M'),
                   'snapshot deleted in %.0f s; QEMU reads 0x61@0, 0x63@1M, '
                   '0x62@1023M (disk %s)' % (
                       time.time() - start, os.path.basename(disk['source'])))

        print('-- forced backup and clone of the attached volume')
        start = time.time()
        backup = self.backup(vol, 'attached', force=True)
        self.same(self.get('volume', vol)['status'], 'in-use',
                  'forced backup in %.0f s; volume status after it'
                  % (time.time() - start))
        restored = self.restore(backup, name='attached-restored')
        clone = self.volume('attached-clone', vtype, source_volid=vol)
        for name, copy in (('backup restored', restored), ('clone', clone)):
            with self.attached(copy) as hv_disk:
                self.check(hv_disk.io('read -P 0x61 0 1M',
                                      'read -P 0x63 1M 1M',
                                      'read -P 0x62 1023M 1M'),
                           '%s of the attached volume holds its bytes'
                           % name)
            self.forget('volume', copy)
        self.forget('backup', backup)

        print('-- extend while attached')
        disk = self.disk(vol)
        start = time.time()
        self.action(vol, 'os-extend', {'new_size': 2})
        grown = None
        while time.time() - start < 300:
            if self.capacity(disk) == 2 * GiB:
                grown = time.time() - start
                break
            time.sleep(1)
        self.check(grown is not None, 'QEMU sees 2 GiB (virsh domblkinfo) '
                   '%s s after the extend request'
                   % (grown and round(grown, 1)))
        self.wait('volume', vol, 'in-use')
        self.same(self.get('volume', vol)['size'], 2, 'Cinder size after '
                  'the extend')
        seen = self.wait_console(
            r'%s: detected capacity change from %d to %d' % (
                disk['target'], SECTORS_PER_GIB, 2 * SECTORS_PER_GIB), 60)
        self.check(seen is not None, 'the guest kernel reports the capacity '
                   'change of %s on its console' % disk['target'])
        self.check(self.qemu_io(disk, 'read -P 0x61 0 1M',
                                'read -P 0x62 1023M 1M',
                                'read -P 0 1024M 1M',
                                'write -P 0x64 2047M 1M',
                                'read -P 0x64 2047M 1M'),
                   'old data intact, the new space zeros, its last MiB '
                   'writable')

        print('-- detach, re-attach')
        self.nova_detach(vol, provisioning)
        disk = self.attach(vol)
        self.check(self.qemu_io(disk, 'read -P 0x61 0 1M',
                                'read -P 0x63 1M 1M',
                                'read -P 0x62 1023M 1M',
                                'read -P 0x64 2047M 1M'),
                   're-attached: every pattern where it was written')
        self.same(self.capacity(disk), 2 * GiB, 're-attached: capacity')
        self.nova_detach(vol, provisioning + ' again')
        self.forget('volume', vol)

    def check_unmounted(self, what):
        with open('/proc/mounts') as mounts:
            left = [line.split()[1] for line in mounts
                    if line.split()[1].startswith(NOVA_MNT + '/')]
        self.check(not left, 'Nova unmounted the filesets after the last '
                   'detach, %s (%s)' % (what, ', '.join(left) or
                                        'no mount left'))

    def part(self, what, checks, *args):
        """Run one part of the checks; a failed part lets the next run."""
        start = time.time()
        try:
            checks(*args)
        except (e2e.CheckFailed, e2e.stackapi.ApiError) as exc:
            self.check(False, '%s: could not go on: %s' % (what, exc))
            self.detach_all()
        self.cleanup(('image', 'backup', 'snapshot', 'volume'))
        print('-- %s: %.0f s' % (what, time.time() - start))

    def multiattach(self, image, thin_type, backend='lustre1'):
        """A qcow2 volume retyped to multiattach, shared by two guests.

        The stack's backends make thin volumes qcow2 files; a multiattach
        type's are raw all the same, and a qcow2 volume retyped to one
        becomes raw in place.
        """
        print('\n== multiattach: a raw volume shared by two guests ==')
        pools = [pool for pool in self.call(
            'GET', '/scheduler-stats/get_pools?detail=true')['pools']
            if '@%s#' % backend in pool['name']]
        self.require(pools and all(pool['capabilities'].get('multiattach')
                                   for pool in pools),
                     'every pool of %s reports multiattach (%s)'
                     % (backend, ', '.join(pool['name'] for pool in pools)))
        name = 'e2e-multiattach-%s' % self.stamp
        specs = {'volume_backend_name': backend, 'multiattach': '<is> True',
                 'provisioning:type': 'thin'}
        vtype = self.call('POST', '/types', {'volume_type': {
            'name': name, 'extra_specs': specs}})['volume_type']['id']
        self.made.append(('type', vtype))
        self.type_names[vtype] = name
        new = self.volume('multiattach-new', vtype)
        with self.attached(new, 'raw') as disk:
            allocated = os.stat(disk.path).st_blocks * 512
            self.check(allocated < MiB, 'a new thin multiattach volume is a '
                       'sparse raw file (%d bytes allocated)' % allocated)
        self.forget('volume', new)
        vol = self.volume('multiattach', thin_type)
        with self.attached(vol, 'qcow2') as disk:
            disk.write('write -P 0x70 3M 1M')
        found = self.retype(vol, name)
        self.require(found['status'] == 'available' and
                     found['volume_type'] == name and found['multiattach']
                     and not found.get('migration_status'),
                     'thin (qcow2) volume retyped to %s in place: %s, '
                     'multiattach %s, migration %s'
                     % (name, found['status'], found['multiattach'],
                        found.get('migration_status')))
        with self.attached(vol, 'raw') as disk:
            self.check(disk.io('read -P 0x70 3M 1M'),
                       'retyped: a raw file holding what was written before')
        first = self.server, self.domain
        try:
            self.server = self.domain = None
            self.boot(image, '42', name='guest-b')
            second = self.server, self.domain
            with self.on_server(*first):
                self.shared_volume(vol, first, second)
        finally:
            self.delete_server()
            self.server, self.domain = first

    def shared_volume(self, vol, first, second):
        disks = []
        for server in (first, second):
            with self.on_server(*server):
                disks.append(self.attach(vol))
        self.check(all(d['shareable'] and d['format'] == 'raw' and
                       d['cache'] == 'none' for d in disks) and
                   disks[0]['source'] == disks[1]['source'],
                   'both domains have the same raw file as a shareable '
                   'disk, cache=none (%s)' % os.path.basename(
                       disks[0]['source']))
        self.check(all(self.share_rw(server[1], disk['alias'])
                       for server, disk in zip((first, second), disks)),
                   "both QEMUs have the disk with share-rw=on (QEMU's "
                   'image locks let the two writers share it)')
        with self.on_server(*second):
            self.check(self.qemu_io(disks[1], 'read -P 0x70 3M 1M'),
                       'guest B reads what was written before the retype')
        with self.on_server(*first):
            self.require(self.qemu_io(disks[0], 'write -P 0x71 0 1M'),
                         'guest A writes 0x71@0')
        with self.on_server(*second):
            self.check(self.qemu_io(disks[1], 'read -P 0x71 0 1M'),
                       'guest B reads 0x71@0')
            self.require(self.qemu_io(disks[1], 'write -P 0x72 1M 1M'),
                         'guest B writes 0x72@1M')
        with self.on_server(*first):
            self.check(self.qemu_io(disks[0], 'read -P 0x72 1M 1M'),
                       'guest A reads 0x72@1M')
        path = disks[0]['source']
        holders, unsharing = self.image_locks(path)
        self.check(holders == 2 and not unsharing,
                   "QEMU's image locks on the file: %d QEMUs hold the lock "
                   "of the 'write' permission, %d the lock that would "
                   'refuse other writers' % (holders, unsharing))
        self.check(self.write_lock_refused(path),
                   "a QEMU that would not share writing is refused: the "
                   "test of the 'write' lock that it makes fails")
        shared = self.host_qemu_io(path, 'read -P 0x71 0 1M',
                                   'read -P 0x72 1M 1M', share=True)
        self.check(shared.returncode == 0 and
                   'fail' not in shared.stdout.lower(),
                   'a read-only reader sharing the file on the compute '
                   'host sees both writes')
        with self.on_server(*first):
            self.nova_detach(vol, 'multiattach, guest A', others=1)
        with self.on_server(*second):
            self.check(self.qemu_io(disks[1], 'read -P 0x71 0 1M',
                                    'write -P 0x73 2M 1M',
                                    'read -P 0x73 2M 1M'),
                       'guest B still reads and writes after A detached')
            self.nova_detach(vol, 'multiattach, guest B')
        with self.attached(vol, 'raw') as disk:
            self.check(disk.io('read -P 0x71 0 1M', 'read -P 0x72 1M 1M',
                               'read -P 0x73 2M 1M'),
                       'detached: the file holds what both guests wrote')
        self.forget('volume', vol)

    @staticmethod
    def share_rw(domain, alias):
        """Whether QEMU's device of a disk has share-rw on (QOM)."""
        reply = virsh('qemu-monitor-command', domain, json.dumps({
            'execute': 'qom-get', 'arguments': {
                'path': '/machine/peripheral/%s' % alias,
                'property': 'share-rw'}}))
        return json.loads(reply).get('return') is True

    # QEMU's image locks (file-posix): an open file takes OFD read locks
    # on byte 100 + n for each permission n it holds, and on byte 200 + n
    # for each it refuses to share; 'write' is permission 1.
    LOCK_WRITE_PERM, LOCK_WRITE_UNSHARED = 101, 201

    def image_locks(self, path):
        """(QEMUs holding 'write', QEMUs refusing to share it) on a file."""
        inode = os.stat(path)
        dev = '%02x:%02x:%d' % (os.major(inode.st_dev),
                                os.minor(inode.st_dev), inode.st_ino)
        holders = unsharing = 0
        with open('/proc/locks') as locks:
            for line in locks:
                fields = line.split()
                if 'OFDLCK' not in fields or dev not in fields:
                    continue
                start, end = int(fields[-2]), fields[-1]
                end = float('inf') if end == 'EOF' else int(end)
                holders += start <= self.LOCK_WRITE_PERM <= end
                unsharing += start <= self.LOCK_WRITE_UNSHARED <= end
        return holders, unsharing

    def write_lock_refused(self, path):
        """Whether a QEMU that would not share writing is refused.

        Such a QEMU first tests an exclusive lock of the 'write' byte.
        """
        fd = os.open(path, os.O_RDONLY)
        try:
            # struct flock: l_type, l_whence, l_start, l_len, l_pid.
            lock = struct.pack('hhqqixxxx', fcntl.F_WRLCK, os.SEEK_SET,
                               self.LOCK_WRITE_PERM, 1, 0)
            reply = fcntl.fcntl(fd, F_OFD_GETLK, lock)
            return struct.unpack('hhqqixxxx', reply)[0] != fcntl.F_UNLCK
        finally:
            os.close(fd)

    @staticmethod
    def host_qemu_io(path, *commands, share=False):
        """qemu-io on the compute host, outside the guests' QEMUs."""
        args = ['qemu-io', '-f', 'raw']
        if share:
            args += ['-r', '-U']
        for command in commands:
            args += ['-c', command]
        return subprocess.run(args + [path], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)

    @staticmethod
    def qemu_command(domain):
        """The command line of a domain's QEMU, '' if not found."""
        try:
            with open('/run/libvirt/qemu/%s.pid' % domain) as f:
                pid = int(f.read())
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                return f.read().replace(b'\0', b' ').decode()
        except (OSError, ValueError):
            return ''

    def pattern_image(self, guest):
        """An image of 1 MiB of 0x6b that boots the guest's kernel."""
        body = {'name': 'e2e-bfv-%s' % self.stamp, 'disk_format': 'raw',
                'container_format': 'bare'}
        for prop in ('kernel_id', 'ramdisk_id', 'os_command_line'):
            if guest.get(prop):
                body[prop] = guest[prop]
        image = self.call('POST', '/v2/images', body,
                          url=self.glance)['id']
        self.made.append(('image', image))
        req = urllib.request.Request(
            '%s/v2/images/%s/file' % (self.glance, image), method='PUT',
            data=b'\x6b' * MiB,
            headers={'X-Auth-Token': self.api.token,
                     'Content-Type': 'application/octet-stream'})
        urllib.request.urlopen(req, timeout=60).close()
        self.require(self.wait_image(image) == 'active',
                     'image %s of 1 MiB of 0x6b, with the guest kernel'
                     % image)
        return image

    def boot_from_volume(self, guest, provisioning, vtype):
        print('\n== boot from a Lustre volume (%s) ==' % provisioning)
        image = self.pattern_image(guest)
        start = time.time()
        vol = self.volume('boot-' + provisioning, vtype, imageRef=image)
        self.check(True, 'volume from the image in %.0f s'
                   % (time.time() - start))
        self.forget('image', image)
        first = self.server, self.domain
        try:
            self.server = self.domain = None
            self.boot(None, '42', name='boot-from-volume',
                      block_device_mapping_v2=[{
                          'boot_index': 0, 'uuid': vol,
                          'source_type': 'volume',
                          'destination_type': 'volume',
                          'delete_on_termination': False}])
            disk = self.disk(vol)
            self.require(disk is not None, 'the volume is a disk of the '
                         'domain (%s)' % (disk and disk['target']))
            self.same((disk['target'], disk['format']),
                      ('vda', e2e.FORMATS[provisioning]),
                      'the root disk, in the volume format')
            self.check(self.qemu_io(disk, 'read -P 0x6b 0 1M',
                                    'read -P 0 1M 1M',
                                    'read -P 0 1023M 1M'),
                       "QEMU reads the image's bytes on the root disk "
                       '(0x6b@0, zeros after)')
            self.require(self.qemu_io(disk, 'write -P 0x6c 2M 1M'),
                         'QEMU writes 0x6c@2M on the root disk')
        finally:
            self.delete_server()
            self.server, self.domain = first
        self.wait('volume', vol)
        with self.attached(vol, e2e.FORMATS[provisioning]) as disk:
            self.check(disk.io('read -P 0x6b 0 1M', 'read -P 0x6c 2M 1M'),
                       'server deleted, volume kept: it holds the image '
                       'and what the guest wrote')
        self.forget('volume', vol)

    def restart_compute(self):
        """Stop nova-compute and start it again as stack.sh started it."""
        pid_file = os.path.join(RUN, 'nova-compute.pid')
        with open(pid_file) as f:
            pid = int(f.read())
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            argv = [arg.decode() for arg in f.read().split(b'\0') if arg]
        with open('/proc/%d/environ' % pid, 'rb') as f:
            env = dict(item.decode(errors='replace').split('=', 1)
                       for item in f.read().split(b'\0') if b'=' in item)
        cwd = os.readlink('/proc/%d/cwd' % pid)
        # Its user and groups: stack.sh runs it unprivileged.
        as_user = e2e.credentials(pid)
        start = time.time()
        os.killpg(pid, signal.SIGTERM)
        for _i in range(60):
            if not os.path.exists('/proc/%d' % pid):
                break
            time.sleep(0.5)
        else:
            # nova-compute sometimes ignores SIGTERM.
            os.killpg(pid, signal.SIGKILL)
        stopped = time.time() - start
        since = datetime.datetime.utcnow()
        with open(os.path.join(e2e.BASE, 'logs', 'nova-compute.log'),
                  'ab') as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT,
                                    env=env, cwd=cwd,
                                    start_new_session=True, **as_user)
        with open(pid_file, 'w') as f:
            f.write('%d\n' % proc.pid)
        for _i in range(120):
            services = self.ncall('GET', '/os-services?binary=nova-compute')
            up = [svc for svc in services['services']
                  if svc['state'] == 'up' and svc['updated_at'] and
                  datetime.datetime.fromisoformat(
                      svc['updated_at'].rstrip('Z')) > since]
            if up:
                break
            time.sleep(1)
        self.require(bool(up), 'nova-compute stopped in %.0f s, up again '
                     '%.0f s after its start' % (stopped,
                                                 time.time() - start -
                                                 stopped))

    def compute_restart(self, types):
        print('\n== nova-compute restarted under attached volumes ==')
        vols, disks = {}, {}
        for provisioning, vtype in types.items():
            vols[provisioning] = self.volume('restart-' + provisioning,
                                             vtype)
            disk = self.attach(vols[provisioning])
            self.require(self.qemu_io(disk, 'write -P 0x81 0 1M'),
                         '%s: QEMU writes 0x81@0' % provisioning)
        thin = vols['thin']
        snap = self.forced_snapshot(thin, 'restart')
        disk = self.disk(thin)
        self.require(self.qemu_io(disk, 'write -P 0x82 1M 1M'),
                     'thin: on its snapshot overlay (%s), QEMU writes '
                     '0x82@1M' % os.path.basename(disk['source']))
        self.restart_compute()
        for provisioning, vol in vols.items():
            disks[provisioning] = disk = self.disk(vol)
            self.check(self.qemu_io(disk, 'read -P 0x81 0 1M',
                                    'write -P 0x83 2M 1M',
                                    'read -P 0x83 2M 1M'),
                       '%s: after the restart QEMU reads 0x81@0 and writes'
                       % provisioning)
        self.check(self.qemu_io(disks['thin'], 'read -P 0x82 1M 1M'),
                   'thin: and the write on the overlay')
        start = time.time()
        self.forget('snapshot', snap)
        self.check(self.qemu_io(self.disk(thin), 'read -P 0x81 0 1M',
                                'read -P 0x82 1M 1M', 'read -P 0x83 2M 1M'),
                   'thin: snapshot deleted through the restarted Nova in '
                   '%.0f s, the merged disk holds every write'
                   % (time.time() - start))
        for provisioning, vol in vols.items():
            self.nova_detach(vol, '%s, after the restart' % provisioning)
            with self.attached(vol) as disk:
                self.check(disk.io('read -P 0x81 0 1M', 'read -P 0x83 2M 1M'),
                           '%s: detached, the file holds the writes'
                           % provisioning)
            self.forget('volume', vol)

    def run(self):
        before = self.share_files()
        try:
            images = self.call('GET', '/v2/images?name=lustre-guest',
                               url=self.glance)['images']
            self.require(images, 'the guest image lustre-guest is in Glance')
            self.boot(images[0]['id'], '42')
            types = {}
            for provisioning in e2e.FORMATS:
                vtype = types[provisioning] = self.volume_type(
                    'lustre1', provisioning)
                self.part('attached %s' % provisioning,
                          self.attached_volume, provisioning, vtype)
            self.part('multiattach', self.multiattach, images[0]['id'],
                      types['thin'])
            self.part('boot from volume', self.boot_from_volume, images[0],
                      'thin', types['thin'])
            self.check_unmounted('snapshots or not')
            self.part('nova-compute restart', self.compute_restart, types)
            self.check_unmounted('attached before nova-compute restarted')
        except (e2e.CheckFailed, e2e.stackapi.ApiError) as exc:
            self.check(False, 'compute part could not go on: %s' % exc)
        finally:
            print('\n== end of the compute part ==')
            try:
                self.delete_server()
            except (e2e.CheckFailed, e2e.stackapi.ApiError) as exc:
                self.check(False, 'server deleted (%s)' % exc)
            self.cleanup()
            self.check_leftovers(before)


def available(api):
    """True if the stack runs Nova (STACK_NOVA=0 leaves it out)."""
    return 'compute' in api.endpoints
