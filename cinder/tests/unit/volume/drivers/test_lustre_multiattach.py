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

"""Unit tests of multiattach volumes of the Lustre volume driver.

A multiattach volume is always a raw file, whatever lustre_qcow2_volumes
says, so that every pool can report multiattach: these tests follow each
path that makes or changes a volume's file, and each refusal of what two
guests could not share safely.
"""

import os
from unittest import mock

import ddt
from oslo_concurrency import processutils as putils
from oslo_utils import units

from cinder import exception
from cinder.image import image_utils
from cinder import objects
from cinder.tests.unit import fake_constants as fake
from cinder.tests.unit import fake_volume
from cinder.tests.unit.volume.drivers import test_lustre as base
from cinder.volume.drivers import lustre

MULTIATTACH = {'multiattach': '<is> True'}
# How a volume is known to be multiattach: its own flag, or its type's
# spec (the new volume of Cinder's generic migration for a retype has the
# new type but the old volume's flag).
FLAG = {'multiattach': True}
SPEC = {'specs': MULTIATTACH}


class MultiattachTestCase(base.LustreDriverTestCase):

    def setUp(self):
        super().setUp()
        # Thin volumes are qcow2 files, as on the project's stack.
        self.override_config('lustre_qcow2_volumes', True)
        self.setup_driver()
        self.qemu_img_info = self.mock_qemu_img_info()
        self.convert = self.mock_object(image_utils, 'convert_image',
                                        side_effect=self.fake_convert)

    @staticmethod
    def fake_convert(source, dest, out_format, **kwargs):
        open(dest, 'w').close()


@ddt.ddt
class LustreDriverMultiattachTestCase(MultiattachTestCase):
    """Pools, new volumes, attach and snapshots."""

    def test_every_pool_reports_multiattach(self):
        # Though thin volumes are qcow2 files here.
        stats = self.driver.get_volume_stats(refresh=True)
        self.assertEqual([True, True],
                         [p['multiattach'] for p in stats['pools']])

    @ddt.data(FLAG, SPEC)
    def test_thin_multiattach_volume_is_a_sparse_raw_file(self, how):
        volume = self.volume(size=2, fmt=None, files=(), **how)
        self.driver.create_volume(volume)
        self.assertEqual([('truncate', '-s', str(2 * units.Gi), self.path),
                          ('chmod', '660', self.path)], self.commands())
        self.assertEqual('raw', volume.admin_metadata['format'])

    def test_volume_from_image_is_raw(self):
        # The volume manager creates the volume, then writes the image.
        fetch = self.mock_object(image_utils, 'fetch_to_volume_format')
        self.mock_object(image_utils, 'resize_image')
        volume = self.volume(fmt=None, files=(), multiattach=True)
        self.driver.create_volume(volume)
        self.touch(base.VOLUME_NAME)    # what truncate made
        self.driver.copy_image_to_volume(self.context, volume, 'glance',
                                         fake.IMAGE_ID)
        fetch.assert_called_once_with(
            self.context, 'glance', fake.IMAGE_ID, self.path, 'raw',
            self.configuration.volume_dd_blocksize, size=1,
            run_as_root=True, disable_sparse=False)

    def test_migration_target_of_a_qcow2_volume_refused(self):
        # Cinder's generic migration copies the file's bytes as they are:
        # the target holds the source's records, qcow2 here, and would
        # get a qcow2 file's bytes into a raw file.
        volume = self.volume(fmt='qcow2', files=(), specs=MULTIATTACH,
                             migration_status='target:%s' % fake.VOLUME2_ID)
        exc = self.assertRaises(exception.VolumeDriverException,
                                self.driver.create_volume, volume)
        self.assertIn('multiattach volume, so a raw file', str(exc))
        self.assertEqual([], self.commands())
        self.assertFalse(os.path.lexists(self.path))

    def test_raw_volume_attaches(self):
        data = self.driver.initialize_connection(
            self.volume(multiattach=True), {})['data']
        self.assertEqual('raw', data['format'])

    @ddt.data(FLAG, SPEC)
    def test_qcow2_volume_refused(self, how):
        self.image(base.VOLUME_NAME, base.qemu_info('qcow2'))
        exc = self.assertRaises(exception.InvalidVolume,
                                self.driver.initialize_connection,
                                self.volume(fmt='qcow2', **how), {})
        self.assertIn('only share raw files', str(exc))

    @ddt.data(FLAG, SPEC)
    def test_no_snapshot(self, how):
        exc = self.assertRaises(exception.VolumeDriverException,
                                self.driver.create_snapshot,
                                self.snapshot(self.volume(**how)))
        self.assertIn('multiattach', str(exc))
        self.assertEqual([], self.commands())
        self.assertEqual([base.VOLUME_NAME], os.listdir(self.mnt))

    def test_snapshots_disabled(self):
        self.override_config('lustre_snapshot_support', False)
        exc = self.assertRaises(exception.VolumeDriverException,
                                self.driver.create_snapshot,
                                self.snapshot(self.volume()))
        self.assertIn('lustre_snapshot_support', str(exc))
        self.assertEqual([], self.commands())


@ddt.ddt
class LustreDriverMultiattachCopyTestCase(MultiattachTestCase):
    """Clones and volumes from snapshots of a multiattach type."""

    def setUp(self):
        super().setUp()
        self.src = self.volume_with_snapshot()
        self.overlay = base.VOLUME_NAME + '.' + fake.SNAPSHOT_ID
        self.dest = self.volume(id=fake.VOLUME2_ID, fmt=None, files=(),
                                host='node@lustre#lfs02', multiattach=True)
        self.dest_path = os.path.join(self.mnt2, self.dest.name)

    def test_clone_is_raw(self):
        self.driver.create_cloned_volume(self.dest, self.src)
        self.convert.assert_called_once_with(
            os.path.join(self.mnt, self.overlay), self.dest_path, 'raw',
            src_format='qcow2', run_as_root=True, data=mock.ANY)
        self.assertEqual('raw', self.dest.admin_metadata['format'])

    def test_volume_from_snapshot_is_raw(self):
        self.driver.create_volume_from_snapshot(self.dest,
                                                self.snapshot(self.src))
        self.convert.assert_called_once_with(
            os.path.join(self.mnt, base.VOLUME_NAME), self.dest_path, 'raw',
            src_format='raw', run_as_root=True, data=mock.ANY)
        self.assertEqual('raw', self.dest.admin_metadata['format'])

    @ddt.data(FLAG, SPEC)
    @mock.patch.object(objects.Snapshot, 'create')
    def test_clone_of_attached_volume_refused(self, how, create):
        # A temporary snapshot through Nova would move one guest onto an
        # overlay while the others write to the file below it.
        src = self.attached(self.volume(id=fake.VOLUME3_ID, **how))
        create_snapshot = self.mock_object(self.driver, '_create_snapshot')
        exc = self.assertRaises(exception.VolumeDriverException,
                                self.driver.create_cloned_volume,
                                self.dest, src)
        self.assertIn('is a multiattach volume and attached', str(exc))
        create.assert_not_called()
        create_snapshot.assert_not_called()
        self.convert.assert_not_called()
        self.assertEqual([], os.listdir(self.mnt2))

    @mock.patch.object(objects.Volume, 'destroy')
    @mock.patch.object(objects.Volume, 'get_by_id')
    def test_backup_of_attached_volume_fails_clearly(self, get_volume,
                                                     destroy):
        src = self.attached(self.volume(id=fake.VOLUME3_ID,
                                        multiattach=True))
        src.previous_status = 'in-use'
        src.status = 'backing-up'
        get_volume.return_value = src
        temp = self.volume(id=fake.VOLUME4_ID, fmt=None, files=())
        self.mock_object(self.driver, '_create_temp_volume',
                         return_value=temp)
        self.mock_object(self.driver, '_create_snapshot')
        fail = self.mock_object(self.driver, '_fail_backup')
        backup = mock.Mock(volume_id=src.id, snapshot_id=None)
        exc = self.assertRaises(exception.VolumeDriverException,
                                self.driver.get_backup_device,
                                self.context, backup)
        self.assertIn('is a multiattach volume and attached', str(exc))
        fail.assert_called_once_with(self.context, backup, exc)
        self.driver._create_snapshot.assert_not_called()
        destroy.assert_called_once_with()


@ddt.ddt
class LustreDriverMultiattachRetypeTestCase(MultiattachTestCase):
    """Retype of a detached volume into and out of a multiattach type."""

    def setUp(self):
        super().setUp()
        self.host = {'host': 'node@lustre#lfs01/cinder'}
        self.new_type = fake_volume.fake_volume_type_obj(
            self.context, extra_specs=dict(MULTIATTACH))
        self.diff = {'extra_specs': {'multiattach': (None, '<is> True')},
                     'qos_specs': {}, 'encryption': {}}
        self.restore = self.path + '.restore'

    def retyping(self, fmt='qcow2', **kwargs):
        volume = self.volume(fmt=fmt, status='retyping',
                             previous_status='available', **kwargs)
        self.image(volume.name, base.qemu_info(fmt))
        return volume

    def retype(self, volume):
        return self.driver.retype(self.context, volume, self.new_type,
                                  self.diff, self.host)

    @ddt.data(False, True)
    def test_qcow2_volume_becomes_raw(self, thick):
        specs = {'provisioning:type': 'thick'} if thick else {}
        volume = self.retyping(specs=specs)
        self.assertEqual((True, None), self.retype(volume))
        self.convert.assert_called_once_with(
            self.path, self.restore, 'raw', src_format='qcow2',
            run_as_root=True, data=mock.ANY)
        expected = [('rm', '-f', self.restore),
                    ('chmod', '660', self.restore),
                    ('mv', '-f', self.restore, self.path)]
        if thick:
            expected.insert(1, ('fallocate', '--offset', '0', '--length',
                                str(units.Gi), self.restore))
        self.assertEqual(expected, self.commands())
        self.assertEqual('raw', volume.admin_metadata['format'])
        self.assertEqual([base.VOLUME_NAME], os.listdir(self.mnt))

    def test_unchanged_specs_are_no_change(self):
        # Cinder's diff has every spec of both types, changed or not.
        specs = {'provisioning:type': 'thin', 'volume_backend_name': 'b'}
        volume = self.retyping(specs=specs)
        self.new_type.extra_specs.update(specs)
        self.diff['extra_specs'].update(
            (key, (value, value)) for key, value in specs.items())
        self.assertEqual((True, None), self.retype(volume))
        self.assertEqual(('mv', '-f', self.restore, self.path),
                         self.commands()[-1])

    def test_conversion_takes_the_new_layout(self):
        self.new_type.extra_specs['lustre:stripe_count'] = '4'
        self.diff['extra_specs']['lustre:stripe_count'] = (None, '4')
        self.retype(self.retyping())
        self.assertEqual(('lfs', 'setstripe', '-c', '4', self.restore),
                         self.commands()[1])
        self.assertNotIn('migrate', str(self.commands()))

    def test_smaller_qcow2_file_gives_a_full_size_raw_file(self):
        volume = self.retyping(size=2)
        self.images[self.path] = base.qemu_info('qcow2', units.Gi)
        self.retype(volume)
        self.assertIn(('truncate', '-s', str(2 * units.Gi), self.restore),
                      self.commands())

    def test_failed_conversion_leaves_the_volume(self):
        volume = self.retyping()
        self.convert.side_effect = putils.ProcessExecutionError(
            exit_code=1, stderr='qemu-img: error while writing at byte 0: '
                                'No space left on device')
        exc = self.assertRaises(lustre.lustre_client.LustreException,
                                self.retype, volume)
        self.assertIn('No space left on device', str(exc))
        self.assertEqual(('rm', '-f', self.restore), self.commands()[-1])
        self.assertNotIn('mv', str(self.commands()))
        self.assertEqual('qcow2', volume.admin_metadata['format'])

    def test_raw_volume_keeps_its_file(self):
        self.assertEqual((True, None), self.retype(self.retyping('raw')))
        self.assertEqual([], self.commands())
        self.convert.assert_not_called()

    def test_leaving_multiattach_keeps_the_file(self):
        volume = self.retyping('raw', specs=MULTIATTACH, multiattach=True)
        self.new_type.extra_specs = {}
        self.diff['extra_specs'] = {'multiattach': ('<is> True', None)}
        self.assertEqual((True, None), self.retype(volume))
        self.assertEqual([], self.commands())
        self.assertEqual('raw', volume.admin_metadata['format'])

    def test_volume_with_snapshots_left_to_cinder(self):
        # Cinder's migration then refuses it: a volume with snapshots has
        # a qcow2 overlay as its active file.
        volume = self.volume_with_snapshot(status='retyping',
                                           previous_status='available')
        with mock.patch.object(lustre.LOG, 'warning') as warning:
            self.assertEqual((False, None), self.retype(volume))
        self.assertIn('cannot become a multiattach volume',
                      warning.call_args[0][0])
        self.assertEqual([], self.commands())
        self.convert.assert_not_called()


class LustreDriverMultiattachManageTestCase(MultiattachTestCase):

    def test_qcow2_file_refused(self):
        self.image('golden.qcow2', base.qemu_info('qcow2'))
        volume = self.volume(fmt=None, files=(), specs=MULTIATTACH)
        exc = self.assertRaises(
            exception.ManageExistingVolumeTypeMismatch,
            self.driver.manage_existing, volume,
            {'source-name': '%s/golden.qcow2' % base.SHARE})
        self.assertIn('a multiattach volume is a raw file', str(exc))
        self.assertEqual([], self.commands())
        self.assertEqual(['golden.qcow2'], os.listdir(self.mnt))
