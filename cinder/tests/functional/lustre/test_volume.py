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

"""The volume driver on stand-in shares: the guest's bytes, read back."""

import os
import time

import ddt
from oslo_utils import units

from cinder import exception
from cinder.tests.functional.lustre import base
from cinder.volume.drivers import lustre_client

MI = units.Mi


@ddt.ddt
class LustreVolumeTestCase(base.LustreFunctionalTestCase):

    def allocated(self, volume):
        path = self.driver.local_path(volume)
        return os.stat(path).st_blocks * 512

    def test_thick_volume_is_preallocated(self):
        volume = self.create_volume(vtype=self.thick)
        self.assertGreaterEqual(self.allocated(volume), units.Gi)
        self.assertEqual('raw', volume.admin_metadata['format'])
        self.assertGuestSees(volume)

    def test_thin_raw_volume_is_sparse(self):
        volume = self.create_volume(vtype=self.thin)
        self.assertLess(self.allocated(volume), MI)
        self.assertGuestSees(volume)

    def test_thin_qcow2_volume(self):
        self.driver = self.make_driver(lustre_qcow2_volumes=True)
        volume = self.create_volume(vtype=self.thin)
        self.assertEqual('qcow2', volume.admin_metadata['format'])
        self.assertLess(self.allocated(volume), 2 * MI)
        self.guest_write(volume, 0, MI, 0x11)
        self.assertGuestSees(volume)

    @ddt.data('raw', 'qcow2')
    def test_write_and_read_back_including_the_last_mib(self, fmt):
        self.driver = self.make_driver(lustre_qcow2_volumes=fmt == 'qcow2')
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, 4096, 0x01)
        self.guest_write(volume, 300 * MI + 512, 3 * MI, 0x02)
        self.guest_write(volume, units.Gi - MI, MI, 0x03)
        self.assertGuestSees(volume)

    @ddt.data(('raw', 'thin'), ('raw', 'thick'), ('qcow2', 'thin'))
    @ddt.unpack
    def test_extend_keeps_data(self, fmt, provisioning):
        self.driver = self.make_driver(lustre_qcow2_volumes=fmt == 'qcow2')
        vtype = self.thin if provisioning == 'thin' else self.thick
        volume = self.create_volume(vtype=vtype)
        self.guest_write(volume, units.Gi - MI, MI, 0x21)
        self.driver.extend_volume(volume, 2)
        volume.size = 2
        volume.save()
        with open(self.model(volume), 'r+b') as f:
            f.truncate(2 * units.Gi)
        self.guest_write(volume, 2 * units.Gi - MI, MI, 0x22)
        self.assertGuestSees(volume)
        if provisioning == 'thick':
            self.assertGreaterEqual(self.allocated(volume), 2 * units.Gi)

    @ddt.data('raw', 'qcow2')
    def test_snapshots_keep_their_point_in_time(self, fmt):
        self.driver = self.make_driver(lustre_qcow2_volumes=fmt == 'qcow2')
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, 2 * MI, 0x31)
        snap1 = self.create_snapshot(volume)
        self.guest_write(volume, MI, 2 * MI, 0x32)
        self.guest_write(volume, 500 * MI, MI, 0x33)
        snap2 = self.create_snapshot(volume)
        self.guest_write(volume, 0, MI, 0x34)
        self.assertGuestSees(volume)
        for snapshot in (snap1, snap2):
            new = self.create_volume(vtype=self.thin, create=False,
                                     pool='lfs02')
            new.update(self.driver.create_volume_from_snapshot(new,
                                                               snapshot))
            new.save()
            self.assertEqual(base.SHARE2, new.provider_location)
            self.assertGuestSees(new, self.model_path(snapshot.id))

    def test_bigger_volume_from_snapshot(self):
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, units.Gi - MI, MI, 0x35)
        snapshot = self.create_snapshot(volume)
        new = self.create_volume(size=2, vtype=self.thick, create=False)
        new.update(self.driver.create_volume_from_snapshot(new, snapshot))
        new.save()
        with open(self.model(new), 'r+b') as f:
            f.write(open(self.model_path(snapshot.id), 'rb').read(units.Gi))
        self.assertGuestSees(new)
        self.assertGreaterEqual(self.allocated(new), 2 * units.Gi)

    def test_clone_of_a_volume_with_snapshots(self):
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, MI, 0x41)
        self.create_snapshot(volume)
        self.guest_write(volume, 10 * MI, MI, 0x42)
        clone = self.create_volume(vtype=self.thin, create=False)
        clone.update(self.driver.create_cloned_volume(clone, volume))
        clone.save()
        self.assertEqual('raw', clone.admin_metadata['format'])
        self.assertGuestSees(clone, self.model(volume))
        # The source is untouched by the temporary snapshot of the clone.
        self.assertGuestSees(volume)
        self.assertEqual(1, len(volume.snapshots))

    def test_revert_to_snapshot(self):
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, MI, 0x51)
        snapshot = self.create_snapshot(volume)
        self.guest_write(volume, 0, 2 * MI, 0x52)
        self.driver.revert_to_snapshot(self.context, volume, snapshot)
        self.assertGuestSees(volume, self.model_path(snapshot.id))
        # The volume is usable after the revert, and keeps its snapshot.
        self.guest_write(volume, 5 * MI, MI, 0x53)
        self.driver.delete_snapshot(snapshot)
        volume.refresh()
        with open(self.model_path(snapshot.id), 'r+b') as f:
            f.seek(5 * MI)
            f.write(bytes([0x53]) * MI)
        self.assertGuestSees(volume, self.model_path(snapshot.id))

    def test_delete_snapshots_then_volume_leaves_nothing(self):
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, MI, 0x61)
        snapshots = [self.create_snapshot(volume) for _i in range(3)]
        self.driver.delete_snapshot(snapshots[1])
        self.assertGuestSees(volume)
        self.driver.delete_snapshot(snapshots[0])
        self.assertGuestSees(volume)
        self.driver.delete_volume(volume)
        self.assertEqual([], self.files())

    def test_delete_volume_with_snapshots_leaves_nothing(self):
        volume = self.create_volume(vtype=self.thin)
        other = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, MI, 0x62)
        self.create_snapshot(volume)
        self.create_snapshot(volume)
        self.driver.delete_volume(volume)
        self.assertEqual([other.name], self.files())
        self.driver.delete_volume(volume)
        self.assertGuestSees(other)

    def test_volumes_go_to_the_share_with_space(self):
        self.write_shares(base.SHARE2, base.SHARE1)
        self.driver = self.make_driver()
        # lfs02 is small: fill it, then ask without a pool.
        filler = self.create_volume(pool='lfs02', vtype=self.thin)
        with open(self.driver.local_path(filler), 'r+b') as f:
            f.write(os.urandom(400 * MI))
        volume = self.create_volume(pool=None, vtype=self.thick)
        self.assertEqual(base.SHARE1, volume.provider_location)

    def test_stats(self):
        stats = self.driver.get_volume_stats(refresh=True)
        pools = {pool['pool_name']: pool for pool in stats['pools']}
        self.assertEqual({'lfs01/cinder', 'lfs02'}, set(pools))
        self.assertEqual(8, round(pools['lfs01/cinder']['total_capacity_gb']))
        self.assertLess(pools['lfs02']['total_capacity_gb'], 1)

    def test_enospc_on_thick_create_leaves_nothing(self):
        volume = self.create_volume(pool='lfs02', vtype=self.thick,
                                    create=False)
        exc = self.assertRaises(lustre_client.LustreException,
                                self.driver.create_volume, volume)
        self.assertIn('No space left on device', str(exc))
        self.assertEqual([], self.files(base.SHARE2))

    def test_enospc_on_clone_leaves_nothing(self):
        source = self.create_volume(vtype=self.thin)
        self.guest_write(source, 0, 800 * MI, 0x71)
        clone = self.create_volume(pool='lfs02', vtype=self.thin,
                                   create=False)
        exc = self.assertRaises(lustre_client.LustreException,
                                self.driver.create_cloned_volume, clone,
                                source)
        self.assertIn('could not write the 1 GiB file', str(exc))
        self.assertIn('No space left on device', str(exc))
        self.assertEqual([], self.files(base.SHARE2))
        # The source and its chain are as they were.
        self.assertEqual([source.name], self.files())
        source.refresh()
        self.assertEqual([], list(source.snapshots))
        self.assertGuestSees(source)

    def test_share_unmounted_behind_the_drivers_back(self):
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, MI, 0x81)
        mount_point = self.driver._get_mount_point_for_share(base.SHARE1)
        base.run('umount', mount_point)
        # The next operation mounts it again; the data is all there.
        other = self.create_volume(vtype=self.thin)
        self.assertTrue(os.path.ismount(mount_point))
        self.assertGuestSees(volume)
        self.assertGuestSees(other)

    def test_mount_helper_failing_transiently(self):
        self.standin.fault('lfs02', 'fail', '2')
        driver = self.make_driver(lustre_mount_point_base=os.path.join(
            self.tmp, 'mnt2'))
        self.assertIn(base.SHARE2, driver._mounted_shares)

    def test_mount_helper_failing_for_good(self):
        self.standin.fault('lfs02', 'fail', '100')
        self.addCleanup(self.standin.fault, 'lfs02', 'clear')
        driver = self.make_driver(lustre_mount_point_base=os.path.join(
            self.tmp, 'mnt3'))
        self.assertEqual([base.SHARE1], driver._mounted_shares)
        exc = self.assertRaises(lustre_client.LustreException,
                                driver._ensure_share_mounted, base.SHARE2)
        self.assertIn('Is the MGS running?', str(exc))

    def test_corrupt_info_file_is_a_clear_error(self):
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, MI, 0x91)
        self.create_snapshot(volume)
        info = self.driver._local_path_volume_info(volume)
        with open(info) as f:
            good = f.read()
        with open(info, 'w') as f:
            f.write(good[:len(good) // 2])
        exc = self.assertRaises(lustre_client.LustreException,
                                self.driver.initialize_connection, volume,
                                {})
        self.assertIn('not valid JSON', str(exc))
        # Nothing was touched: repairing the file gives the data back.
        with open(info, 'w') as f:
            f.write(good)
        self.assertGuestSees(volume)

    def test_guest_written_qcow2_header_is_not_followed(self):
        volume = self.create_volume(vtype=self.thin)
        # The guest writes a qcow2 image pointing at /etc/shadow into its
        # raw disk.
        _path, fmt = self.guest_writes_qcow2_header(volume, '/etc/shadow',
                                                    '2G')
        # Still raw to the guest, and a snapshot keeps it raw underneath.
        self.assertEqual('raw', fmt)
        snapshot = self.create_snapshot(volume)
        self.assertGuestSees(volume)
        new = self.create_volume(vtype=self.thin, create=False)
        new.update(self.driver.create_volume_from_snapshot(new, snapshot))
        new.save()
        self.assertGuestSees(new, self.model_path(snapshot.id))

    def test_create_existing_file_refused(self):
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, MI, 0xa1)
        volume.status = 'creating'
        self.assertRaises(lustre_client.LustreException,
                          self.driver.create_volume, volume)
        self.assertGuestSees(volume)

    @ddt.data('raw', 'qcow2')
    def test_extend_attached_volume_left_to_the_hypervisor(self, fmt):
        # QEMU owns the file of an attached volume: the driver must not
        # touch it.  Should the hypervisor never grow it, the next attach
        # after detach does, and the guest's data is intact.
        self.driver = self.make_driver(lustre_qcow2_volumes=fmt == 'qcow2')
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, units.Gi - MI, MI, 0x31)
        path, fmt = self.attach(volume)
        before = os.stat(path)
        volume.attach_status = 'attached'
        volume.save()
        self.driver.extend_volume(volume, 2)
        after = os.stat(path)
        self.assertEqual((before.st_size, before.st_mtime_ns),
                         (after.st_size, after.st_mtime_ns))
        volume.update({'size': 2, 'attach_status': 'detached'})
        volume.save()
        with open(self.model(volume), 'r+b') as f:
            f.truncate(2 * units.Gi)
        self.guest_write(volume, 2 * units.Gi - MI, MI, 0x32)
        self.assertGuestSees(volume)

    def test_manage_existing_file(self):
        mount_point = self.driver._get_mount_point_for_share(base.SHARE1)
        golden = os.path.join(mount_point, 'golden.qcow2')
        base.run('qemu-img', 'create', '-f', 'qcow2', golden, '1G')
        base.run('qemu-io', '-f', 'qcow2', '-c', 'write -P 7 0 1M', golden)
        found = self.driver.get_manageable_volumes([], None, 10, 0,
                                                   ['reference'], ['asc'])
        self.assertEqual([{'source-name': '%s/golden.qcow2' % base.SHARE1}],
                         [v['reference'] for v in found])
        volume = self.create_volume(vtype=self.thin, create=False)
        ref = {'source-name': '%s/golden.qcow2' % base.SHARE1}
        self.assertEqual(1, self.driver.manage_existing_get_size(volume, ref))
        volume.update(self.driver.manage_existing(volume, ref))
        volume.save()
        self.assertEqual([volume.name], self.files())
        with open(self.model(volume), 'r+b') as f:
            f.write(bytes([7]) * MI)
        self.assertGuestSees(volume)

    def test_manage_refuses_a_symlink_out_of_the_share(self):
        mount_point = self.driver._get_mount_point_for_share(base.SHARE1)
        os.symlink('/etc/passwd', os.path.join(mount_point, 'evil.img'))
        volume = self.create_volume(vtype=self.thin, create=False)
        self.assertRaises(exception.ManageExistingInvalidReference,
                          self.driver.manage_existing, volume,
                          {'source-name': '%s/evil.img' % base.SHARE1})
        self.assertTrue(os.path.islink(os.path.join(mount_point,
                                                    'evil.img')))

    def test_migrate_between_shares(self):
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, MI, 0xb1)
        self.guest_write(volume, units.Gi - MI, MI, 0xb2)
        pools = {p['pool_name']: p for p in
                 self.driver.get_volume_stats(refresh=True)['pools']}
        moved, update = self.driver.migrate_volume(
            self.context, volume, {'host': 'node@lustre#lfs02',
                                   'capabilities': pools['lfs02']})
        self.assertTrue(moved)
        volume.update(update)
        volume.save()
        self.assertEqual([], self.files(base.SHARE1))
        self.assertEqual([volume.name], self.files(base.SHARE2))
        self.assertGuestSees(volume)
        self.assertLess(self.allocated(volume), 4 * MI)

    def test_migrate_thick_volume_to_another_backends_share(self):
        volume = self.create_volume(vtype=self.thick)
        self.guest_write(volume, 5 * MI, MI, 0xb3)
        moved, update = self.driver.migrate_volume(
            self.context, volume,
            {'host': 'other@lustre#lfs01/cinder-b',
             'capabilities': {'location_info':
                              'LustreDriver:%s' % base.SHARE1B}})
        self.assertTrue(moved)
        volume.update(update)
        volume.save()
        self.addCleanup(self.driver.delete_volume, volume)
        self.assertEqual([], self.files(base.SHARE1))
        self.assertGuestSees(volume)
        self.assertGreaterEqual(self.allocated(volume), units.Gi)

    def test_migrate_to_a_full_share_keeps_the_volume(self):
        volume = self.create_volume(vtype=self.thick)
        self.guest_write(volume, 0, MI, 0xb4)
        exc = self.assertRaises(
            lustre_client.LustreException, self.driver.migrate_volume,
            self.context, volume,
            {'host': 'node@lustre#lfs02', 'capabilities': {
                'location_info': 'LustreDriver:%s' % base.SHARE2}})
        self.assertIn('No space left on device', str(exc))
        self.assertEqual([], self.files(base.SHARE2))
        self.assertGuestSees(volume)

    def test_hanging_mount_is_bounded_and_found_later(self):
        self.standin.fault('lfs02', 'hang', '6')
        start = time.monotonic()
        driver = self.make_driver(
            lustre_mount_timeout=2,
            lustre_mount_point_base=os.path.join(self.tmp, 'mnt-hang'))
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual([base.SHARE1], driver._mounted_shares)
        # The helper goes on in the background; once it has mounted the
        # fileset, the driver uses it.
        mount_point = driver._get_mount_point_for_share(base.SHARE2)
        for _i in range(30):
            if os.path.ismount(mount_point):
                break
            time.sleep(0.5)
        driver._ensure_shares_mounted()
        self.assertEqual([base.SHARE1, base.SHARE2], driver._mounted_shares)

    @ddt.data('true', 'false')
    def test_volume_files_are_not_world_readable(self, secure):
        self.driver = self.make_driver(nas_secure_file_permissions=secure)
        volume = self.create_volume(vtype=self.thin)
        snapshot = self.create_snapshot(volume)
        for path in (self.driver.local_path(volume),
                     self.driver._get_new_snap_path(snapshot),
                     self.driver._local_path_volume_info(volume)):
            self.assertEqual(0o660, os.stat(path).st_mode & 0o777, path)
