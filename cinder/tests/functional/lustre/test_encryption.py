# Copyright (c) 2026 The Cinder Lustre driver authors
# All Rights Reserved.
#
#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Encrypted volumes on stand-in shares: ciphertext on the share.

The tests act as a hypervisor with QEMU's native LUKS: they attach the
volume, then read and write what the guest sees with qemu-io through a LUKS
layer keyed with the passphrase Nova derives from the volume's key.  The
files on the share are searched for what the guest wrote; they must hold
none of it.
"""

import binascii
import json
import os
import re

from castellan import key_manager
from oslo_config import cfg
from oslo_utils import units

from cinder.db import api as db
from cinder import exception
from cinder.tests.functional.lustre import base
from cinder.volume import volume_utils

MI = units.Mi
FIXED_KEY = '0123456789abcdef' * 4
cfg.CONF.import_opt('fixed_key', 'cinder.keymgr.conf_key_mgr',
                    group='key_manager')


def use_fixed_key(test):
    """Cinder's fixed-key key manager, as the stack configures it."""
    test.override_config('backend',
                         'cinder.keymgr.conf_key_mgr.ConfKeyManager',
                         group='key_manager')
    test.override_config('fixed_key', FIXED_KEY, group='key_manager')
    return key_manager.API(cfg.CONF)


def luks_type(test, name, provisioning='thin'):
    """A volume type with a LUKS encryption spec, as Nova decrypts it."""
    vtype = test.volume_type(name, **{'provisioning:type': provisioning})
    db.volume_type_encryption_create(
        test.context, vtype.id,
        {'provider': 'luks', 'cipher': 'aes-xts-plain64', 'key_size': 256,
         'control_location': 'front-end'})
    return vtype


class LustreEncryptionTestCase(base.LustreFunctionalTestCase):

    def setUp(self):
        super().setUp()
        self.keymgr = use_fixed_key(self)
        self.luks = luks_type(self, 'luks')
        self.luks_thick = luks_type(self, 'luks-thick', 'thick')
        self.key_file = os.path.join(self.tmp, 'passphrase')
        key = self.keymgr.get(self.context, self.new_key(self.luks))
        with open(self.key_file, 'wb') as f:
            f.write(binascii.hexlify(key.get_encoded()))

    def new_key(self, vtype):
        return volume_utils.create_encryption_key(self.context, self.keymgr,
                                                  vtype.id)

    def create_encrypted(self, vtype=None, create=True, **fields):
        vtype = vtype or self.luks
        return self.create_volume(vtype=vtype, create=create,
                                  encryption_key_id=self.new_key(vtype),
                                  **fields)

    # The guest, through QEMU's LUKS layer

    def luks_image(self, volume):
        path, fmt = self.attach(volume)
        self.assertEqual('raw', fmt)
        return ('driver=luks,key-secret=sec0,file.driver=file,'
                'file.filename=%s' % path)

    def qemu_io(self, volume, command, check=True):
        return base.run('qemu-io', '--object',
                        'secret,id=sec0,format=raw,file=%s' % self.key_file,
                        '--image-opts', self.luks_image(volume), '-c',
                        command, check=check)

    def device_size(self, volume):
        path, _fmt = self.attach(volume)
        _status, out = base.run('qemu-img', 'info', '-f', 'luks',
                                '--force-share', '--output=json', path)
        return json.loads(out)['virtual-size']

    def guest_write(self, volume, offset, length, pattern):
        self.qemu_io(volume, 'write -P %d %d %d' % (pattern, offset, length))

    def assertGuestReads(self, volume, *reads):
        """The guest reads each (offset, length, pattern); one LUKS open."""
        args = []
        for offset, length, pattern in reads:
            args += ['-c', 'read -P %d %d %d' % (pattern, offset, length)]
        status, out = base.run(
            'qemu-io', '--object',
            'secret,id=sec0,format=raw,file=%s' % self.key_file,
            '--image-opts', self.luks_image(volume), *args, check=False)
        self.assertEqual(0, status, out)
        self.assertNotIn('Pattern verification failed', out)
        self.assertEqual(len(reads), len(re.findall(r'^read \d+/\d+ bytes',
                                                    out, re.M)), out)

    def assertNoPlaintext(self, volume, *patterns):
        """No file of the volume holds a run of what the guest wrote."""
        mount_point = self.driver._get_mount_point_for_share(
            volume.provider_location)
        runs = [bytes([pattern]) * 4096 for pattern in patterns]
        names = [name for name in os.listdir(mount_point)
                 if name.startswith(volume.name) and
                 not name.endswith('.info')]
        self.assertIn(volume.name, names)
        for name in names:
            with open(os.path.join(mount_point, name), 'rb') as f:
                while True:
                    chunk = f.read(16 * MI)
                    if not chunk:
                        break
                    for run in runs:
                        self.assertNotIn(run, chunk,
                                         '%s holds plaintext' % name)

    # The tests

    def test_new_volume_is_a_luks_device_in_a_raw_file(self):
        # Thin volumes of this backend would be qcow2: encrypted ones are
        # raw, which the hypervisor decrypts.
        self.driver = self.make_driver(lustre_qcow2_volumes=True)
        volume = self.create_encrypted()
        self.assertEqual('raw', volume.admin_metadata['format'])
        path = self.driver.local_path(volume)
        self.assertEqual(units.Gi, os.stat(path).st_size)
        # Sparse: the header is all that is written.
        self.assertLess(os.stat(path).st_blocks * 512, 4 * MI)
        device = self.device_size(volume)
        self.assertLess(device, units.Gi)
        self.assertGreater(device, units.Gi - 16 * MI)
        self.guest_write(volume, 0, MI, 0x5a)
        self.guest_write(volume, device - MI, MI, 0x5b)
        self.assertGuestReads(volume, (0, MI, 0x5a), (device - MI, MI, 0x5b))
        self.assertNoPlaintext(volume, 0x5a, 0x5b)

    def test_wrong_passphrase_reads_nothing(self):
        volume = self.create_encrypted()
        with open(self.key_file, 'wb') as f:
            f.write(b'not-the-key')
        status, out = self.qemu_io(volume, 'read 0 4096', check=False)
        self.assertNotEqual(0, status)
        self.assertIn('Invalid password', out)

    def test_thick_volume_is_allocated_and_encrypted(self):
        volume = self.create_encrypted(vtype=self.luks_thick)
        path = self.driver.local_path(volume)
        self.assertGreaterEqual(os.stat(path).st_blocks * 512, units.Gi)
        self.guest_write(volume, 10 * MI, MI, 0x61)
        self.assertGuestReads(volume, (10 * MI, MI, 0x61))
        self.assertNoPlaintext(volume, 0x61)

    def test_snapshots_clones_and_volumes_from_snapshots(self):
        volume = self.create_encrypted()
        self.guest_write(volume, 0, 2 * MI, 0x31)
        snap1 = self.create_snapshot(volume)
        # Written into the overlay: ciphertext there too.
        self.guest_write_detached_overlay(volume, MI, MI, 0x32)
        snap2 = self.create_snapshot(volume)
        self.guest_write_detached_overlay(volume, 0, MI, 0x33)
        self.assertNoPlaintext(volume, 0x31, 0x32, 0x33)

        from_snap1 = self.create_encrypted(create=False, pool='lfs02')
        from_snap1.update(self.driver.create_volume_from_snapshot(from_snap1,
                                                                  snap1))
        from_snap1.save()
        self.assertGuestReads(from_snap1, (0, 2 * MI, 0x31))
        self.assertNoPlaintext(from_snap1, 0x31)

        from_snap2 = self.create_encrypted(create=False)
        from_snap2.update(self.driver.create_volume_from_snapshot(from_snap2,
                                                                  snap2))
        from_snap2.save()
        self.assertGuestReads(from_snap2, (0, MI, 0x31), (MI, MI, 0x32))

        clone = self.create_encrypted(create=False)
        clone.update(self.driver.create_cloned_volume(clone, volume))
        clone.save()
        self.assertGuestReads(clone, (0, MI, 0x33), (MI, MI, 0x32))
        self.assertNoPlaintext(clone, 0x32, 0x33)

        # Merging the overlays (the middle snapshot first) needs no key
        # and keeps what the guest sees.
        for snapshot in (snap1, snap2):
            self.driver.delete_snapshot(snapshot)
            snapshot.destroy()
            volume.refresh()
        self.assertEqual('raw', volume.admin_metadata['format'])
        self.assertGuestReads(volume, (0, MI, 0x33), (MI, MI, 0x32))
        self.assertNoPlaintext(volume, 0x31, 0x32, 0x33)

    def guest_write_detached_overlay(self, volume, offset, length, pattern):
        """Write through LUKS over the qcow2 chain, as QEMU would.

        The driver refuses to hand an encrypted volume with snapshots to a
        hypervisor; this checks the chain itself holds ciphertext.
        """
        volume.refresh()
        _name, path, fmt, _info = self.driver._chain(volume)[0]
        self.assertEqual('qcow2', fmt)
        base.run('qemu-io', '--object',
                 'secret,id=sec0,format=raw,file=%s' % self.key_file,
                 '--image-opts',
                 'driver=luks,key-secret=sec0,file.driver=qcow2,'
                 'file.file.filename=%s' % path,
                 '-c', 'write -P %d %d %d' % (pattern, offset, length))

    def test_attach_with_snapshots_refused(self):
        volume = self.create_encrypted()
        self.create_snapshot(volume)
        volume.refresh()
        self.assertRaises(exception.InvalidVolume,
                          self.driver.initialize_connection, volume, {})

    def test_extend_keeps_data_and_grows_the_device(self):
        volume = self.create_encrypted()
        old_device = self.device_size(volume)
        self.guest_write(volume, old_device - MI, MI, 0x21)
        self.driver.extend_volume(volume, 2)
        volume.size = 2
        volume.save()
        device = self.device_size(volume)
        self.assertEqual(old_device + units.Gi, device)
        self.guest_write(volume, device - MI, MI, 0x22)
        self.assertGuestReads(volume, (old_device - MI, MI, 0x21),
                              (device - MI, MI, 0x22))
        self.assertNoPlaintext(volume, 0x21, 0x22)

    def test_unencrypted_source_refused(self):
        plain = self.create_volume(vtype=self.thin)
        volume = self.create_encrypted(create=False)
        self.assertRaises(exception.VolumeDriverException,
                          self.driver.create_cloned_volume, volume, plain)
        self.assertEqual([plain.name], self.files())

    def test_image_into_encrypted_volume(self):
        image = os.path.join(self.tmp, 'image.raw')
        with open(image, 'wb') as f:
            f.write(bytes([0x71]) * (3 * MI))
        volume = self.create_encrypted()

        class ImageService(object):
            temp_images = None

            def show(self, context, image_id):
                return {'id': image_id, 'disk_format': 'raw',
                        'container_format': 'bare', 'size': 3 * MI,
                        'status': 'active'}

            def download(self, context, image_id, data=None):
                with open(image, 'rb') as source:
                    data.write(source.read())

        self.driver.copy_image_to_encrypted_volume(
            self.context, volume, ImageService(), 'image-1')
        self.assertGuestReads(volume, (0, 3 * MI, 0x71))
        self.assertNoPlaintext(volume, 0x71)
