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

"""Someone else's Lustre client writes into the Cinder fileset.

Each case tampers with a volume's files the way another client of the
filesystem could (a backing chain pointing outside, a symbolic link or a
hard link where a volume file should be, an ``.info`` file naming other
files), then runs every operation of the driver on that volume.  Each must
be refused with an error naming the file, and a canary file outside the
share must be neither read (its access time, on a strictatime tmpfs, does
not move), nor changed, nor deleted, nor handed to a hypervisor or a
backup.  Deleting the volume afterwards removes only the volume's own
names from the share.
"""

import os
import shutil

import ddt
from oslo_utils import units

from cinder import exception
from cinder import objects
from cinder.tests.functional.lustre import base
from cinder.tests.functional.lustre_reliability import report
from cinder.tests.functional.lustre_reliability import test_inputs
from cinder.volume.drivers import lustre

MI = units.Mi
CANARY = b'canary: nobody may read this for a tenant\n' * 1000

# What the driver is asked to do with a tampered volume.
OPERATIONS = ('attach', 'snapshot', 'clone', 'upload', 'backup', 'extend',
              'from_snapshot', 'delete_snapshot', 'revert', 'retype')


@ddt.ddt
class HostileShareTestCase(base.LustreFunctionalTestCase):

    def setUp(self):
        super().setUp()
        self.driver = self.make_driver(lustre_qcow2_volumes=True)
        self.mount_point = self.driver._get_mount_point_for_share(
            base.SHARE1)
        # The canary lives on a tmpfs with strict access times, so that
        # any read of it shows.
        canary_dir = os.path.join(self.tmp, 'outside')
        os.mkdir(canary_dir)
        base.run('mount', '-t', 'tmpfs', '-o', 'size=4m,strictatime',
                 'canary', canary_dir)
        self.canary = os.path.join(canary_dir, 'canary')
        self.write_canary()
        self.images = test_inputs.FakeImageService()

    def write_canary(self):
        with open(self.canary, 'wb') as f:
            f.write(CANARY)
        os.utime(self.canary, (1000000000, 1000000000))

    def assertCanaryUntouched(self, what):
        info = os.stat(self.canary)
        self.assertEqual(1000000000, info.st_atime, '%s read it' % what)
        with open(self.canary, 'rb') as f:
            self.assertTrue(f.read() == CANARY, '%s changed it' % what)
        os.utime(self.canary, (1000000000, 1000000000))
        for data in self.images.uploads.values():
            self.assertFalse(CANARY[:64] in data, '%s uploaded it' % what)

    # Volumes to tamper with

    def volume_with_snapshots(self):
        """A qcow2 volume with two snapshots: base <- s1 <- s2 (active)."""
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, MI, 0x11)
        first = self.create_snapshot(volume)
        self.guest_write(volume, MI, MI, 0x22)
        second = self.create_snapshot(volume)
        self.guest_write(volume, 2 * MI, MI, 0x33)
        return volume, first, second

    def chain(self, volume):
        """The names of the volume's files: base first, active last."""
        active = self.driver.get_active_image_from_info(volume)
        return [link.name for link in reversed(
            self.driver._chain(volume, active))]

    def path(self, name):
        return os.path.join(self.mount_point, name)

    # Operations, each as Cinder would call it

    def operate(self, operation, volume, first, second):
        volume.refresh()
        volume.status = 'available'
        if operation == 'attach':
            self.attach(volume)
        elif operation == 'snapshot':
            self.create_snapshot(volume)
        elif operation == 'clone':
            clone = self.create_volume(vtype=self.thin, create=False)
            try:
                self.driver.create_cloned_volume(clone, volume)
            finally:
                self.assertEqual([], [name for name in os.listdir(
                    self.mount_point) if name.startswith(clone.name)])
        elif operation == 'upload':
            self.driver.copy_volume_to_image(
                self.context, volume, self.images,
                {'id': 'upload', 'disk_format': 'raw',
                 'container_format': 'bare'})
        elif operation == 'backup':
            # The volume manager asks for the device, cinder-backup attaches
            # it and reads what the connection names.
            backup = objects.Backup(context=self.context,
                                    volume_id=volume.id, size=1,
                                    status='creating', user_id='u',
                                    project_id='p')
            backup.create()
            volume.previous_status = 'available'
            volume.save()
            device, _is_snapshot = self.driver.get_backup_device(
                self.context, backup)
            data = self.driver.initialize_connection(device, {})['data']
            with open(data['device_path'], 'rb') as f:
                f.read(MI)
        elif operation == 'extend':
            self.driver.extend_volume(volume, 2)
        elif operation == 'from_snapshot':
            new = self.create_volume(vtype=self.thin, create=False)
            self.driver.create_volume_from_snapshot(new, second)
        elif operation == 'delete_snapshot':
            first.status = 'deleting'
            self.driver.delete_snapshot(first)
        elif operation == 'revert':
            volume.status = 'reverting'
            self.driver.revert_to_snapshot(self.context, volume, second)
        elif operation == 'retype':
            volume.status = 'retyping'
            volume.previous_status = 'available'
            new_type = self.volume_type('striped', **{
                'provisioning:type': 'thin', 'lustre:stripe_count': '2'})
            self.driver.retype(self.context, volume, new_type, {
                'extra_specs': {'lustre:stripe_count': (None, '2')}},
                {'host': volume.host})

    def refused_everywhere(self, kind, volume, first, second, fragment):
        """Every operation refuses the tampered volume; then delete it."""
        refused = 0
        for operation in OPERATIONS:
            exc = self.assertRaises(lustre.LustreUnsafeFile, self.operate,
                                    operation, volume, first, second)
            self.assertIn(fragment, str(exc), operation)
            self.assertCanaryUntouched('%s of %s' % (operation, kind))
            refused += 1
        self.delete_everything(volume, first, second)
        self.assertCanaryUntouched('delete of %s' % kind)
        self.assertTrue(os.path.exists(self.canary))
        report.record('hostile', kind, refused=True,
                      operations=refused + 1,
                      leftovers=len(self.files_of(volume)))

    def delete_everything(self, volume, *snapshots):
        volume.refresh()
        for snapshot in snapshots:
            snapshot.volume.refresh()
            snapshot.status = 'deleting'
            try:
                self.driver.delete_snapshot(snapshot)
            except lustre.LustreUnsafeFile:
                pass  # its volume is deleted below all the same
        self.driver.delete_volume(volume)
        self.assertEqual([], self.files_of(volume))

    def files_of(self, volume):
        return [name for name in self.files()
                if name.startswith(volume.name)]

    # Backing chains that lead outside

    @ddt.data(0, 1, 2)
    def test_chain_file_backed_by_a_file_outside(self, position):
        volume, first, second = self.volume_with_snapshots()
        name = self.chain(volume)[position]
        path = self.path(name)
        os.unlink(path)
        base.run('qemu-img', 'create', '-f', 'qcow2', '-F', 'raw', '-b',
                 self.canary, path, '1G')
        self.refused_everywhere(
            'chain position %d backed by a file outside' % position,
            volume, first, second,
            'its backing file %s is not a file of' % self.canary)

    def test_chain_file_with_a_data_file_outside(self):
        volume, first, second = self.volume_with_snapshots()
        path = self.path(self.chain(volume)[0])
        os.unlink(path)
        base.run('qemu-img', 'create', '-f', 'qcow2', '-o',
                 'data_file=%s,data_file_raw=on' % self.canary, path, '1M')
        # qemu-img itself just rewrote the canary: set it up again.
        self.write_canary()
        self.refused_everywhere('chain file with a data file outside',
                                volume, first, second,
                                'with an external data file')

    def test_overlay_rebased_onto_another_volume(self):
        other = self.create_volume(vtype=self.thin)
        self.guest_write(other, 0, MI, 0x5a)
        volume, first, second = self.volume_with_snapshots()
        base.run('qemu-img', 'rebase', '-u', '-f', 'qcow2', '-F', 'qcow2',
                 '-b', other.name, self.path(self.chain(volume)[1]))
        self.refused_everywhere('overlay rebased onto another volume',
                                volume, first, second,
                                'is not a file of %s' % volume.name)
        self.assertGuestSees(other)

    def test_overlay_whose_backing_format_is_not_the_record(self):
        # QEMU would read the base file in a format nobody recorded.
        volume, first, second = self.volume_with_snapshots()
        chain = self.chain(volume)
        base.run('qemu-img', 'rebase', '-u', '-f', 'qcow2', '-F', 'raw',
                 '-b', chain[0], self.path(chain[1]))
        self.refused_everywhere('overlay with another backing format',
                                volume, first, second,
                                "recorded as 'raw', not as 'qcow2'")

    # Links where volume files should be

    @ddt.data(0, 1, 2)
    def test_symbolic_link_in_the_chain(self, position):
        volume, first, second = self.volume_with_snapshots()
        path = self.path(self.chain(volume)[position])
        os.unlink(path)
        os.symlink(self.canary, path)
        self.refused_everywhere('symbolic link at chain position %d' %
                                position, volume, first, second,
                                'it is a symbolic link')

    def test_hard_link_in_the_chain(self):
        # Another file of the filesystem, linked in under a volume's name.
        volume, first, second = self.volume_with_snapshots()
        path = self.path(self.chain(volume)[1])
        stranger = self.path('someone-elses-file')
        shutil.copyfile(path, stranger)
        os.unlink(path)
        os.link(stranger, path)
        self.refused_everywhere('hard link in the chain', volume, first,
                                second, 'it has 2 hard links')
        # Only the volume's name for it went.
        self.assertEqual(['someone-elses-file'], self.files())

    def test_symbolic_link_as_info_file(self):
        volume, first, second = self.volume_with_snapshots()
        info = self.driver._local_path_volume_info(volume)
        os.unlink(info)
        os.symlink(self.canary, info)
        self.refused_everywhere('.info file that is a symbolic link',
                                volume, first, second,
                                'it is a symbolic link')

    def test_link_planted_where_the_info_file_is_written(self):
        volume, _first, _second = self.volume_with_snapshots()
        info = self.driver._local_path_volume_info(volume)
        os.symlink(self.canary, info + '.tmp')
        # The next snapshot rewrites the .info file through that name.
        self.create_snapshot(volume)
        self.assertCanaryUntouched('writing the .info file')
        self.assertFalse(os.path.islink(info))
        self.assertGuestSees(volume)
        report.record('hostile', 'link planted at the temporary .info '
                      'name', refused=True, operations=1)

    # .info files that name other files

    @ddt.data('absolute', 'relative', 'snapshot entry')
    def test_info_naming_a_file_outside(self, how):
        volume, first, second = self.volume_with_snapshots()
        info = self.driver._local_path_volume_info(volume)
        outside = os.path.relpath(self.canary, self.mount_point)
        name = self.canary if how == 'absolute' else outside
        with open(info) as f:
            text = f.read()
        active = self.chain(volume)[-1]
        if how == 'snapshot entry':
            text = text.replace('"%s": "%s"' % (second.id, active),
                                '"%s": "%s"' % (second.id, name))
        else:
            text = text.replace('"active": "%s"' % active,
                                '"active": "%s"' % name)
        with open(info, 'w') as f:
            f.write(text)
        self.refused_everywhere('.info naming a file outside (%s)' % how,
                                volume, first, second,
                                'which is not a file of %s' % volume.name)

    # A raw volume, the most common kind, with no .info at all

    def test_raw_volume_that_is_a_symbolic_link(self):
        driver = self.driver
        self.driver = self.make_driver(lustre_qcow2_volumes=False)
        self.addCleanup(setattr, self, 'driver', driver)
        volume = self.create_volume(vtype=self.thin)
        path = self.driver.local_path(volume)
        os.unlink(path)
        os.symlink(self.canary, path)
        for operation in ('attach', 'clone', 'upload', 'backup', 'extend',
                          'snapshot'):
            exc = self.assertRaises(lustre.LustreUnsafeFile, self.operate,
                                    operation, volume, None, None)
            self.assertIn('it is a symbolic link', str(exc))
            self.assertCanaryUntouched(operation)
        volume.status = 'restoring-backup'
        self.assertRaises(lustre.LustreUnsafeFile,
                          self.driver.terminate_connection, volume, {})
        self.driver.delete_volume(volume)
        self.assertCanaryUntouched('delete')
        self.assertTrue(os.path.exists(self.canary))
        self.assertEqual([], self.files_of(volume))
        report.record('hostile', 'raw volume file that is a symbolic link',
                      refused=True, operations=8)

    def test_manage_refuses_links(self):
        os.symlink(self.canary, self.path('golden.img'))
        stranger = self.path('stranger.img')
        base.run('qemu-img', 'create', '-f', 'raw', stranger, '1M')
        os.link(stranger, self.path('linked.img'))
        found = {entry['reference']['source-name']: entry for entry in
                 self.driver.get_manageable_volumes([], None, 100, 0,
                                                    ['reference'], ['asc'])}
        self.assertNotIn('%s/golden.img' % base.SHARE1, found)
        self.assertFalse(found['%s/linked.img' % base.SHARE1][
            'safe_to_manage'])
        self.assertIn('hard links', found['%s/linked.img' % base.SHARE1][
            'reason_not_safe'])
        for name in ('golden.img', 'linked.img'):
            volume = self.create_volume(vtype=self.thin, create=False)
            self.assertRaises(
                exception.ManageExistingInvalidReference,
                self.driver.manage_existing, volume,
                {'source-name': '%s/%s' % (base.SHARE1, name)})
        self.assertCanaryUntouched('manage')
        report.record('hostile', 'manage and list links', refused=True,
                      operations=3)
