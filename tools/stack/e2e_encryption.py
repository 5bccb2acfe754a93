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
"""The encryption part of e2e.py: LUKS volumes in a real guest.

Volumes of the stack's encrypted type (``lustre-luks``: LUKS, Cinder's and
Nova's fixed-key key managers) are attached by Nova to the stack's guest;
QEMU decrypts them (Nova's native LUKS).  The guest's bytes are written and
read inside the running QEMU (monitor ``qemu-io``, as e2e_compute.py does);
the volume's file on the share is then searched for what the guest wrote,
which must not be there, and read with the key (qemu-io through a LUKS
layer, the passphrase Nova derives from the fixed key) where it should be.

Create, attach, write, extend while attached, detach, snapshot, a volume
from the snapshot, a clone, a backup restored into a new volume, an upload
to Glance and a volume from that image: each copy is attached to the guest
and must hold the bytes.  A snapshot of the attached volume is refused.
The time of an encrypted clone is printed beside that of an unencrypted
one of the same size, and the time of the online extend.
"""

import glob
import os
import re
import subprocess
import time

import e2e
import e2e_compute

GiB = e2e.GiB
MiB = e2e.MiB
KEY_FILE = os.path.join(e2e.BASE, 'etc', 'fixed-key')
CINDER_MNT = os.path.join(e2e.BASE, 'mnt')


class EncryptionSuite(e2e_compute.ComputeSuite):

    def share_file(self, volume_id):
        """The volume's file as Cinder keeps it on the share."""
        found = glob.glob(os.path.join(CINDER_MNT, '*',
                                       'volume-%s' % volume_id))
        self.require(len(found) == 1, 'the file of %s is on the share'
                     % volume_id)
        return found[0]

    def no_plaintext(self, volume_id, patterns, what):
        path = self.share_file(volume_id)
        runs = [bytes([p]) * 4096 for p in patterns]
        found = []
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(16 * MiB), b''):
                found += [hex(p) for p, run in zip(patterns, runs)
                          if run in chunk]
        self.check(not found, '%s: the share file holds no plaintext of '
                   '%s (found: %s)' % (what, ', '.join(map(hex, patterns)),
                                       ', '.join(found) or 'none'))

    def read_with_key(self, volume_id, *commands):
        """qemu-io through LUKS on the share file, read-only, shared."""
        args = ['qemu-io', '-r', '-U', '--object',
                'secret,id=sec0,format=raw,file=%s' % KEY_FILE,
                '--image-opts', 'driver=luks,key-secret=sec0,'
                'file.filename=%s' % self.share_file(volume_id)]
        for command in commands:
            args += ['-c', command]
        proc = subprocess.run(args, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        if proc.returncode or re.search(r'fail|error', proc.stdout, re.I):
            print('    qemu-io: %s' % proc.stdout.strip()[-300:])
            return False
        return True

    def timed_volume(self, name, vtype, **source):
        start = time.time()
        vol = self.volume(name, vtype, **source)
        return vol, time.time() - start

    def in_guest(self, volume_id, what, *reads):
        """Attach to the guest, read, detach."""
        disk = self.attach(volume_id)
        self.check(self.qemu_io(disk, *reads), '%s: the guest reads %s'
                   % (what, ', '.join(reads)))
        self.nova_detach(volume_id, what)

    def encrypted_volume(self, luks, plain):
        print('\n== encrypted volume (lustre-luks) attached to the guest ==')
        vol = self.volume('luks', luks)
        self.check(self.get('volume', vol)['encrypted'],
                   'the volume is encrypted')
        path = self.share_file(vol)
        info = e2e.json.loads(e2e.run('qemu-img', 'info', '--force-share',
                                      '--output=json', path))
        self.check(info['format'] == 'luks' and
                   os.stat(path).st_size == GiB,
                   'its file is a 1 GiB LUKS device (%s, %d bytes)'
                   % (info['format'], os.stat(path).st_size))
        disk = self.attach(vol)
        xml = e2e_compute.virsh('dumpxml', self.domain)
        self.check(disk['format'] == 'raw' and
                   "<encryption format='luks'" in xml,
                   'Nova attached a raw file disk that QEMU decrypts '
                   '(driver %s, libvirt <encryption format=luks>)'
                   % disk['format'])
        size = self.capacity(disk)
        self.check(GiB - 16 * MiB < size < GiB, 'the guest sees the volume '
                   'less the LUKS header (%d bytes)' % size)
        last = size // MiB - 1
        self.require(self.qemu_io(disk, 'write -P 0x71 0 1M',
                                  'write -P 0x72 %dM 1M' % last),
                     'QEMU writes 0x71@0, 0x72 in the last MiB')
        self.check(self.qemu_io(disk, 'read -P 0x71 0 1M',
                                'read -P 0x72 %dM 1M' % last),
                   'QEMU reads them back')
        self.no_plaintext(vol, (0x71, 0x72), 'attached volume')
        self.check(self.read_with_key(vol, 'read -P 0x71 0 1M',
                                      'read -P 0x72 %dM 1M' % last),
                   'the share file decrypts with the key to what the '
                   'guest wrote')

        print('-- snapshot of the attached encrypted volume: refused')
        snap = self.call('POST', '/snapshots', {'snapshot': {
            'volume_id': vol, 'force': True,
            'name': 'e2e-luks-attached-%s' % self.stamp}})['snapshot']['id']
        self.made.append(('snapshot', snap))
        try:
            self.wait('snapshot', snap)
            refused = False
        except e2e.stackapi.ApiError:
            refused = True
        self.check(refused and self.disk(vol)['source'] == disk['source'],
                   'the snapshot ends in error and the guest stays on its '
                   'raw file (no plaintext overlay)')
        self.forget('snapshot', snap)

        print('-- extend while attached')
        start = time.time()
        self.action(vol, 'os-extend', {'new_size': 2})
        grown = None
        while time.time() - start < 300:
            if self.capacity(disk) == size + GiB:
                grown = time.time() - start
                break
            time.sleep(0.5)
        self.check(grown is not None, 'online extend: QEMU sees %d bytes '
                   '%s s after the request' % (size + GiB,
                                               grown and round(grown, 1)))
        self.wait('volume', vol, 'in-use')
        self.same(os.stat(path).st_size, 2 * GiB, 'the share file after '
                  'the online extend')
        new_last = (size + GiB) // MiB - 1
        self.check(self.qemu_io(disk, 'read -P 0x71 0 1M',
                                'read -P 0x72 %dM 1M' % last,
                                'write -P 0x73 %dM 1M' % new_last,
                                'read -P 0x73 %dM 1M' % new_last),
                   'old data intact, the new last MiB writable')
        self.nova_detach(vol, 'encrypted')
        self.no_plaintext(vol, (0x71, 0x72, 0x73), 'extended volume')
        reads = ('read -P 0x71 0 1M', 'read -P 0x72 %dM 1M' % last,
                 'read -P 0x73 %dM 1M' % new_last)

        print('-- snapshot, volume from it, clone (detached)')
        snap = self.snapshot(vol, 'luks')
        from_snap = self.volume('luks-from-snap', luks, size=2,
                                snapshot_id=snap)
        self.no_plaintext(from_snap, (0x71, 0x72, 0x73), 'from snapshot')
        self.in_guest(from_snap, 'volume from the snapshot', *reads)
        self.forget('volume', from_snap)
        self.forget('snapshot', snap)
        clone, luks_time = self.timed_volume('luks-clone', luks,
                                             source_volid=vol, size=2)
        self.in_guest(clone, 'clone', *reads)
        self.forget('volume', clone)
        plain_vol = self.volume('plain', plain, size=2)
        plain_clone, plain_time = self.timed_volume(
            'plain-clone', plain, source_volid=plain_vol, size=2)
        self.check(True, 'timing: clone of a 2 GiB encrypted volume %.1f s, '
                   'of a 2 GiB unencrypted one %.1f s; online extend %.1f s'
                   % (luks_time, plain_time, grown or -1))
        self.forget('volume', plain_clone)
        self.forget('volume', plain_vol)

        # Cinder restores an encrypted backup only into a volume of the
        # source's type; one the restore creates gets the default type.
        print('-- backup, restore into a new volume of the encrypted type')
        backup = self.backup(vol, 'luks')
        restored = self.restore(backup, self.volume('luks-restored', luks,
                                                    size=2))
        self.same(self.get('volume', restored)['encrypted'], True,
                  'the restored volume is encrypted')
        self.same(e2e.run('sha256sum', self.share_file(restored)).split()[0],
                  e2e.run('sha256sum', path).split()[0],
                  'the restored file is the ciphertext of the source, byte '
                  'for byte')
        self.in_guest(restored, 'restored volume', *reads)
        self.forget('volume', restored)
        self.forget('backup', backup)

        print('-- upload to Glance, volume from the image')
        image = self.action(vol, 'os-volume_upload_image', {
            'image_name': 'e2e-luks-%s' % self.stamp, 'disk_format': 'raw',
            'container_format': 'bare', 'force': False}
        )['os-volume_upload_image']['image_id']
        self.made.append(('image', image))
        self.wait('volume', vol)
        status = self.wait_image(image)
        meta = self.call('GET', '/v2/images/%s' % image, url=self.glance)
        if self.check(status == 'active' and
                      meta.get('cinder_encryption_key_id'),
                      'uploaded as an image that names its key (%s)'
                      % status):
            from_image = self.volume('luks-from-image', luks, size=2,
                                     imageRef=image)
            self.no_plaintext(from_image, (0x71, 0x72, 0x73),
                              'volume from the image')
            self.in_guest(from_image, 'volume from the image', *reads)
            self.forget('volume', from_image)
        self.forget('image', image)
        self.forget('volume', vol)

    def run(self):
        before = self.share_files()
        errors = (e2e.CheckFailed, e2e.stackapi.ApiError)
        try:
            try:
                self.in_booted_guest()
            except errors as exc:
                self.check(False, 'encryption part could not go on: %s'
                           % exc)
        finally:
            print('\n== end of the encryption part ==')
            self.leave_nothing(before, errors)

    def in_booted_guest(self):
        types = self.call('GET', '/types')['volume_types']
        luks = next((t['id'] for t in types
                     if t['name'] == 'lustre-luks'), None)
        self.require(luks, 'the stack has the volume type lustre-luks')
        plain = self.volume_type('lustre1', 'thin')
        images = self.call('GET', '/v2/images?name=lustre-guest',
                           url=self.glance)['images']
        self.require(images, 'the guest image lustre-guest is in Glance')
        self.boot(images[0]['id'], '42')
        try:
            self.encrypted_volume(luks, plain)
        except (e2e.CheckFailed, e2e.stackapi.ApiError) as exc:
            self.check(False, 'encrypted: could not go on: %s' % exc)
            self.detach_all()

    def leave_nothing(self, before, errors):
        """The server and everything made go, whatever happened."""
        try:
            self.delete_server()
        except errors as exc:
            self.check(False, 'server deleted (%s)' % exc)
        self.cleanup()
        self.check_leftovers(before)
