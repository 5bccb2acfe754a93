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

"""Backups and restores through both drivers, as cinder-backup runs them.

Each backup goes the way the backup manager takes: the volume driver picks
the device (get_backup_device), cinder-backup attaches it
(initialize_connection), opens the file the connection names and hands it
to the backup driver, then detaches (terminate_connection).  A restore
opens the volume's file for writing ('wb', which truncates it), as the
manager does.  The guest's bytes are compared before and after.
"""

import os

import ddt
from oslo_utils import units

from cinder.backup.drivers import lustre as lustre_backup
from cinder import exception
from cinder import objects
from cinder.tests.functional.lustre import base
from cinder.tests.functional.lustre import test_encryption
from cinder.volume import volume_utils

MI = units.Mi


@ddt.ddt
class LustreBackupTestCase(base.LustreFunctionalTestCase):

    def setUp(self):
        super().setUp()
        self.backup_driver = self.make_backup_driver()
        self.backup_driver.check_for_setup_error()

    def new_backup(self, volume, parent=None, snapshot=None):
        backup = objects.Backup(
            context=self.context, volume_id=volume.id, size=volume.size,
            status='creating', user_id='user', project_id='project',
            parent_id=parent.id if parent else None,
            snapshot_id=snapshot.id if snapshot else None)
        backup.create()
        return backup

    def back_up(self, volume, parent=None, snapshot=None):
        """Back up a volume as the backup manager does; return the backup."""
        backup = self.new_backup(volume, parent, snapshot)
        volume.previous_status = volume.status
        volume.status = 'backing-up'
        volume.save()
        device, is_snapshot = self.driver.get_backup_device(self.context,
                                                            backup)
        self.assertFalse(is_snapshot)
        path, fmt = self.attach(device)
        # cinder-backup reads the device as a raw disk.
        self.assertEqual('raw', fmt)
        with open(path, 'rb') as volume_file:
            self.backup_driver.backup(backup, volume_file)
        self.driver.terminate_connection(device, {})
        if device.id != volume.id:
            self.driver.delete_volume(device)
        volume.status = volume.previous_status
        volume.save()
        backup.status = 'available'
        backup.save()
        return backup

    def restore(self, backup, volume, is_new=True):
        volume.status = 'restoring-backup'
        volume.save()
        backup.status = 'restoring'
        backup.save()
        path, fmt = self.attach(volume)
        self.assertEqual('raw', fmt)
        with open(path, 'wb') as volume_file:
            self.backup_driver.restore(backup, volume.id, volume_file,
                                       is_new)
        self.driver.terminate_connection(volume, {})
        volume.status = 'available'
        volume.save()
        backup.status = 'available'
        backup.save()

    @ddt.data(False, True)
    def test_encrypted_volume_round_trips_its_ciphertext(self, snapshot):
        keymgr = test_encryption.use_fixed_key(self)
        vtype = test_encryption.luks_type(self, 'luks')
        volume = self.create_volume(
            vtype=vtype, encryption_key_id=volume_utils.create_encryption_key(
                self.context, keymgr, vtype.id))
        path = self.driver.local_path(volume)
        with open(path, 'r+b') as f:
            header = f.read(4096)
            f.seek(300 * MI)
            f.write(os.urandom(MI))
        self.assertTrue(header.startswith(b'LUKS\xba\xbe'))
        if snapshot:
            # Backed up through a temporary copy of its qcow2 chain.
            self.create_snapshot(volume)
            volume.refresh()
        backup = self.back_up(volume)
        restored = self.create_volume(
            vtype=vtype, encryption_key_id=volume_utils.create_encryption_key(
                self.context, keymgr, vtype.id))
        self.restore(backup, restored)
        # Byte for byte: the header, its key slots and the ciphertext.
        status, out = base.run('cmp', path, self.driver.local_path(restored),
                               check=False)
        self.assertEqual(0, status, out)

    def stored_bytes(self, backup):
        metadata = self.backup_driver._read_metadata(backup)
        return sum(obj['length'] for item in metadata['objects']
                   for obj in item.values())

    @ddt.data(('raw', 'none', 0), ('qcow2', 'none', 1), ('raw', 'zstd', 0),
              ('qcow2', 'zlib', 3), ('raw', 'bz2', 2))
    @ddt.unpack
    def test_full_backup_and_restore(self, fmt, compression, threads):
        self.override_config('backup_compression_algorithm', compression)
        self.override_config('backup_lustre_threads', threads)
        self.backup_driver = lustre_backup.LustreBackupDriver(self.context)
        self.driver = self.make_driver(lustre_qcow2_volumes=fmt == 'qcow2')
        volume = self.create_volume(size=2, vtype=self.thin)
        self.guest_write(volume, 0, MI, 0x11)
        self.guest_write(volume, units.Gi + 7, 3 * MI, 0x12)
        self.guest_write(volume, 2 * units.Gi - MI, MI, 0x13)
        backup = self.back_up(volume)
        # A mostly empty volume costs its data, not its size.
        self.assertLess(self.stored_bytes(backup), 8 * MI)
        new = self.create_volume(size=2, vtype=self.thin)
        self.restore(backup, new)
        self.assertGuestSees(new, self.model(volume))

    def test_backup_of_a_volume_with_snapshots_sees_guest_data(self):
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, 2 * MI, 0x21)
        self.create_snapshot(volume)
        self.guest_write(volume, MI, 2 * MI, 0x22)
        backup = self.back_up(volume)
        new = self.create_volume(vtype=self.thin)
        self.restore(backup, new)
        self.assertGuestSees(new, self.model(volume))
        # The temporary raw copy is gone; the volume keeps its snapshot.
        self.assertEqual(sorted([volume.name, new.name, volume.name + '.' +
                                 volume.snapshots[0].id,
                                 volume.name + '.info']), self.files())

    def test_incremental_backups(self):
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, 4 * MI, 0x31)
        full = self.back_up(volume)
        self.guest_write(volume, MI, MI, 0x32)
        self.create_snapshot(volume)
        self.guest_write(volume, 600 * MI, MI, 0x33)
        incremental = self.back_up(volume, parent=full)
        self.assertLess(self.stored_bytes(incremental), 4 * MI)
        self.guest_write(volume, 0, MI, 0x34)
        second = self.back_up(volume, parent=incremental)
        new = self.create_volume(vtype=self.thin)
        self.restore(second, new)
        self.assertGuestSees(new, self.model(volume))

    def test_backup_of_a_snapshot(self):
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, MI, 0x41)
        snapshot = self.create_snapshot(volume)
        self.guest_write(volume, 0, MI, 0x42)
        backup = self.back_up(volume, snapshot=snapshot)
        new = self.create_volume(vtype=self.thin)
        self.restore(backup, new)
        self.assertGuestSees(new, self.model_path(snapshot.id))

    def test_restore_into_the_original_volume(self):
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, MI, 0x51)
        self.guest_write(volume, 900 * MI, MI, 0x52)
        backup = self.back_up(volume)
        base.run('cp', '--sparse=always', self.model(volume),
                 self.model_path('at-backup'))
        self.guest_write(volume, 0, 3 * MI, 0x53)
        self.guest_write(volume, 300 * MI, MI, 0x54)
        self.restore(backup, volume, is_new=False)
        self.assertGuestSees(volume, self.model_path('at-backup'))

    def test_restore_into_a_qcow2_volume_makes_it_raw(self):
        self.driver = self.make_driver(lustre_qcow2_volumes=True)
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, MI, 0x61)
        backup = self.back_up(volume)
        new = self.create_volume(vtype=self.thin)
        self.assertEqual('qcow2', new.admin_metadata['format'])
        self.restore(backup, new)
        new.refresh()
        self.assertEqual('raw', new.admin_metadata['format'])
        self.assertGuestSees(new, self.model(volume))

    def test_restore_into_a_volume_with_snapshots_is_refused(self):
        volume = self.create_volume(vtype=self.thin)
        backup = self.back_up(volume)
        target = self.create_volume(vtype=self.thin)
        self.guest_write(target, 0, MI, 0x71)
        self.create_snapshot(target)
        target.status = 'restoring-backup'
        self.assertRaises(exception.InvalidVolume,
                          self.driver.initialize_connection, target, {})
        target.status = 'available'
        self.assertGuestSees(target)
        self.assertEqual('available', backup.status)

    def test_backup_directories_are_striped(self):
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, MI, 0x81)
        backup = self.back_up(volume)
        container = os.path.join(self.backup_driver.backup_path,
                                 backup.container)
        _status, out = base.run('lfs', 'getstripe', '-d', container)
        self.assertIn('stripe_count:  4', out)
        self.assertIn('stripe_size:   4194304', out)
        chunk = [name for name in os.listdir(container)
                 if not name.endswith(('_metadata', '_sha256file'))][0]
        _status, out = base.run('lfs', 'getstripe', '-c',
                                os.path.join(container, chunk))
        self.assertEqual('4', out.split()[0])

    def test_unmountable_backup_share(self):
        self.override_config('backup_lustre_share',
                             '%s:/lfs03/missing' % base.MGS)
        exc = self.assertRaises(exception.BackupDriverException,
                                lustre_backup.LustreBackupDriver,
                                self.context)
        self.assertIn('No such file or directory', str(exc))

    def test_backup_share_mount_retried(self):
        self.override_config('backup_lustre_mount_point_base',
                             os.path.join(self.tmp, 'backup_mount2'))
        self.standin.fault('lfs03', 'fail', '2')
        driver = lustre_backup.LustreBackupDriver(self.context)
        self.assertTrue(os.path.ismount(driver.backup_path))
