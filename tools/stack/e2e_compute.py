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
attached, detach, re-attach; at the end no fileset is left mounted by
Nova.
"""

import os
import re
import time
import xml.etree.ElementTree as ET

import e2e

COMPUTE_VERSION = '2.79'   # networks 'none' (2.37)
NOVA_MNT = os.path.join(e2e.BASE, 'nova-mnt')
GiB = e2e.GiB
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

    def boot(self, image, flavor):
        start = time.time()
        body = {'server': {'name': 'e2e-guest-%s' % self.stamp,
                           'imageRef': image, 'flavorRef': flavor,
                           'networks': 'none'}}
        self.server = self.ncall('POST', '/servers', body)['server']['id']
        server = self.wait_server('ACTIVE')
        self.domain = server['OS-EXT-SRV-ATTR:instance_name']
        up = self.wait_console('lustre-stack guest ready', 300)
        self.require(up is not None,
                     'server %s ACTIVE in %.0f s, guest kernel up %.0f s '
                     'later (domain %s)' % (self.server, time.time() - start
                                            - (up or 0), up or -1,
                                            self.domain))

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

    def nova_detach(self, volume_id, what):
        start = time.time()
        self.ncall('DELETE', '/servers/%s/os-volume_attachments/%s'
                   % (self.server, volume_id))
        self.wait('volume', volume_id, 'available')
        self.check(self.disk(volume_id) is None,
                   '%s: live detach, volume available in %.0f s, the disk '
                   'gone from the domain' % (what, time.time() - start))

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
        snap = self.call('POST', '/snapshots', {'snapshot': {
            'volume_id': vol, 'force': True,
            'name': 'e2e-attached-%s' % self.stamp}})['snapshot']['id']
        self.made.append(('snapshot', snap))
        self.wait('snapshot', snap)
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

    def run(self):
        before = self.share_files()
        try:
            images = self.call('GET', '/v2/images?name=lustre-guest',
                               url=self.glance)['images']
            self.require(images, 'the guest image lustre-guest is in Glance')
            self.boot(images[0]['id'], '42')
            for provisioning in e2e.FORMATS:
                vtype = self.volume_type('lustre1', provisioning)
                try:
                    self.attached_volume(provisioning, vtype)
                except (e2e.CheckFailed, e2e.stackapi.ApiError) as exc:
                    self.check(False, 'attached %s: could not go on: %s'
                               % (provisioning, exc))
                    self.detach_all()
                self.cleanup(('backup', 'snapshot', 'volume'))
            with open('/proc/mounts') as mounts:
                left = [line.split()[1] for line in mounts
                        if line.split()[1].startswith(NOVA_MNT + '/')]
            self.check(not left, 'Nova unmounted the fileset after the last '
                       'detach, snapshots or not (%s)'
                       % (', '.join(left) or 'no mount left'))
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
