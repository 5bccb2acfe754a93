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

"""Unit tests for the Lustre backup driver.

Mounting is tested with mocked commands; backups and restores run for real
on sparse files in a temporary directory, so that what is read, stored and
restored can be checked byte for byte.
"""

import hashlib
import os
import stat
from unittest import mock

import ddt
import fixtures
from oslo_concurrency import processutils as putils
from oslo_utils import units

from cinder.backup.drivers import lustre
from cinder.backup.drivers import posix
from cinder.backup import pipeline
from cinder import context
from cinder.db import api as db
from cinder import exception
from cinder import objects
from cinder.tests.unit import fake_constants as fake
from cinder.tests.unit import test
from cinder.tests.unit.volume.drivers import test_lustre
from cinder.volume.drivers import lustre_client
from cinder.volume import volume_utils

SHARE = '10.0.0.1@tcp:/lfs01/backup'
BLOCK = 32 * units.Ki
CHUNK = 4 * units.Mi


class LustreBackupTestCase(test.TestCase):

    def setUp(self):
        super().setUp()
        self.ctxt = context.get_admin_context()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.override_config('backup_lustre_share', SHARE)
        self.override_config('backup_lustre_mount_point_base',
                             os.path.join(self.tmp, 'mnt'))
        self.execute = self.mock_object(lustre.putils, 'execute',
                                        return_value=('', ''))
        self.read_mounts = self.mock_object(
            lustre_client.LustreMountClient, '_read_mounts', return_value={})
        self.mock_object(lustre.time, 'sleep')
        self.mock_object(lustre.utils, 'get_root_helper',
                         return_value='sudo cinder-rootwrap')
        self.mount_point = lustre_client.LustreMountClient(
            'rh', mount_point_base=os.path.join(self.tmp, 'mnt')
        ).get_mount_point(SHARE)
        os.makedirs(self.mount_point)
        self.mock_object(volume_utils, 'notify_about_backup_usage')

    def commands(self):
        return [c[0] for c in self.execute.call_args_list]

    def root_commands(self):
        return [c[0] for c in self.execute.call_args_list
                if c[1].get('run_as_root')]


@ddt.ddt
class LustreBackupSetupTestCase(LustreBackupTestCase):

    def test_init_mounts_the_share(self):
        driver = lustre.LustreBackupDriver(self.ctxt)
        self.assertEqual(self.mount_point, driver.backup_path)
        self.assertIn(('mount', '-t', 'lustre', '-o', 'flock', SHARE,
                       self.mount_point), self.commands())

    def test_init_uses_an_existing_mount(self):
        self.read_mounts.return_value = {self.mount_point: '10.0.0.1@tcp:/x'}
        lustre.LustreBackupDriver(self.ctxt)
        self.assertEqual([], self.commands())

    def test_mount_options(self):
        self.override_config('backup_lustre_mount_options', 'flock,noatime')
        lustre.LustreBackupDriver(self.ctxt)
        self.assertIn(('mount', '-t', 'lustre', '-o', 'flock,noatime', SHARE,
                       self.mount_point), self.commands())

    def test_mount_retries_then_succeeds(self):
        self.execute.side_effect = [
            ('', ''), putils.ProcessExecutionError(exit_code=5),
            ('', ''), ('', '')]
        lustre.LustreBackupDriver(self.ctxt)
        self.assertEqual(2, len([c for c in self.commands()
                                 if c[0] == 'mount']))

    def test_mount_fails_after_all_attempts(self):
        self.override_config('backup_lustre_mount_attempts', 4)
        self.execute.side_effect = test_lustre.fail_mounts
        exc = self.assertRaises(exception.BackupDriverException,
                                lustre.LustreBackupDriver, self.ctxt)
        self.assertIn('after 4 attempts', str(exc))
        self.assertIn('Input/output error', str(exc))
        self.assertEqual(4, len([c for c in self.commands()
                                 if c[0] == 'mount']))

    @ddt.data(None, '')
    def test_share_not_configured(self, share):
        self.override_config('backup_lustre_share', share)
        exc = self.assertRaises(exception.InvalidConfigurationValue,
                                lustre.LustreBackupDriver, self.ctxt)
        self.assertIn('backup_lustre_share', str(exc))
        self.assertEqual([], self.commands())

    @ddt.data('10.0.0.1@tcp:/', 'nfs-server:/export/../x', '/dev/sda')
    def test_malformed_share(self, share):
        self.override_config('backup_lustre_share', share)
        exc = self.assertRaises(exception.InvalidConfigurationValue,
                                lustre.LustreBackupDriver, self.ctxt)
        self.assertIn('backup_lustre_share', str(exc))

    def test_check_for_setup_error(self):
        driver = lustre.LustreBackupDriver(self.ctxt)
        driver.check_for_setup_error()
        self.override_config('backup_lustre_share', None)
        self.assertRaises(exception.InvalidConfigurationValue,
                          driver.check_for_setup_error)

    def test_bad_mount_option(self):
        self.override_config('backup_lustre_mount_options', 'flock,bogus')
        exc = self.assertRaises(exception.InvalidConfigurationValue,
                                lustre.LustreBackupDriver, self.ctxt)
        self.assertIn('bogus', str(exc))

    @ddt.data(('backup_lustre_stripe_size', '100K', 'multiple of 64K'),
              ('backup_lustre_stripe_size', 'big', 'not a size'),
              ('backup_lustre_ost_pool', 'a pool', 'not a valid OST pool'))
    @ddt.unpack
    def test_bad_layout_settings(self, option, value, reason):
        self.override_config(option, value)
        exc = self.assertRaises(exception.InvalidConfigurationValue,
                                lustre.LustreBackupDriver, self.ctxt)
        self.assertIn(reason, str(exc))

    def test_writable_share_is_left_alone(self):
        lustre.LustreBackupDriver(self.ctxt)
        self.assertEqual([], [c for c in self.commands()
                              if c[0] in ('chgrp', 'chmod')])

    def test_unwritable_share_top_is_made_group_writable(self):
        self.mock_object(lustre.os, 'access', side_effect=[False, True])
        self.mock_object(lustre.utils, 'get_file_gid',
                         return_value=os.getegid() + 1)
        self.mock_object(lustre.utils, 'get_file_mode', return_value=0o755)
        lustre.LustreBackupDriver(self.ctxt)
        # Only the top directory, never recursively over the fileset.
        self.assertEqual(
            [('mount', '-t', 'lustre', '-o', 'flock', SHARE,
              self.mount_point),
             ('chgrp', str(os.getegid()), self.mount_point),
             ('chmod', 'g+rwx', self.mount_point)],
            self.root_commands())
        for command in self.commands():
            self.assertNotIn('-R', command)

    def test_share_that_stays_unwritable(self):
        self.mock_object(lustre.os, 'access', return_value=False)
        self.mock_object(lustre.utils, 'get_file_gid',
                         return_value=os.getegid())
        self.mock_object(lustre.utils, 'get_file_mode', return_value=0o770)
        exc = self.assertRaises(exception.BackupDriverException,
                                lustre.LustreBackupDriver, self.ctxt)
        self.assertIn('not writable by the backup service', str(exc))

    def test_get_driver_options(self):
        names = [o.name for o in lustre.LustreBackupDriver
                 .get_driver_options()]
        self.assertEqual(['backup_lustre_share',
                          'backup_lustre_mount_point_base',
                          'backup_lustre_mount_options',
                          'backup_lustre_mount_attempts',
                          'backup_lustre_stripe_count',
                          'backup_lustre_stripe_size',
                          'backup_lustre_ost_pool',
                          'backup_lustre_threads'], names)


@ddt.ddt
class LustreBackupContainerTestCase(LustreBackupTestCase):

    def setUp(self):
        super().setUp()
        self.driver = lustre.LustreBackupDriver(self.ctxt)
        self.execute.reset_mock()
        self.container = 'ab/cd/abcd1234'
        self.path = os.path.join(self.mount_point, self.container)

    def test_new_container_is_striped(self):
        self.driver.put_container(self.container)
        self.assertTrue(os.path.isdir(self.path))
        self.assertEqual([('lfs', 'setstripe', '-c', '4', '-S',
                           str(4 * units.Mi), self.path)], self.commands())
        self.assertFalse(self.execute.call_args[1]['run_as_root'])

    def test_existing_container_is_left_alone(self):
        os.makedirs(self.path)
        self.driver.put_container(self.container)
        self.assertEqual([], self.commands())

    def test_container_layout_with_pool(self):
        self.override_config('backup_lustre_stripe_count', -1)
        self.override_config('backup_lustre_stripe_size', '1M')
        self.override_config('backup_lustre_ost_pool', 'archive')
        driver = lustre.LustreBackupDriver(self.ctxt)
        self.execute.reset_mock()
        driver.put_container(self.container)
        self.assertEqual([('lfs', 'setstripe', '-c', '-1', '-S',
                           str(units.Mi), '-p', 'archive', self.path)],
                         self.commands())

    def test_default_layout_is_not_set(self):
        self.override_config('backup_lustre_stripe_count', 0)
        self.override_config('backup_lustre_stripe_size', '0')
        driver = lustre.LustreBackupDriver(self.ctxt)
        self.execute.reset_mock()
        driver.put_container(self.container)
        self.assertEqual([], self.commands())

    def test_layout_failure_keeps_the_container(self):
        self.execute.side_effect = putils.ProcessExecutionError(
            exit_code=22, stderr="lfs setstripe: pool 'archive' does not "
                                 "exist")
        with mock.patch.object(lustre.LOG, 'warning') as warning:
            self.driver.put_container(self.container)
        self.assertTrue(os.path.isdir(self.path))
        self.assertIn('does not exist', warning.call_args[0][1]['err'])

    def test_container_creation_disabled(self):
        self.override_config('backup_create_containers', False)
        driver = lustre.LustreBackupDriver(self.ctxt)
        self.execute.reset_mock()
        self.assertRaises(OSError, driver.put_container, self.container)
        self.assertEqual([], self.commands())


@ddt.ddt
class LustreBackupDataTestCase(LustreBackupTestCase):
    """Backups and restores of real sparse files."""

    def setUp(self):
        super().setUp()
        self.override_config('backup_file_size', CHUNK)
        self.override_config('backup_sha_block_size_bytes', BLOCK)
        self.override_config('backup_compression_algorithm', 'none')
        self.volume_path = os.path.join(self.tmp, 'volume')
        self.size = 64 * units.Mi
        db.volume_create(self.ctxt, {'id': fake.VOLUME_ID, 'size': 1,
                                     'status': 'available',
                                     'volume_type_id': self.vt['id']})
        self.mock_object(db, 'volume_get', wraps=db.volume_get)

    def make_volume(self, pieces, size=None, path=None):
        """A sparse file with data only at the given (offset, bytes)."""
        path = path or self.volume_path
        with open(path, 'wb') as f:
            f.truncate(size or self.size)
            for offset, data in pieces:
                f.seek(offset)
                f.write(data)
        return path

    def digest(self, path, length=None):
        """SHA-256 of the first ``length`` bytes of a file (all of it).

        Contents are compared by digest: a failed comparison of two
        64 MiB byte strings would be printed in full.
        """
        length = self.size if length is None else length
        with open(path, 'rb') as f:
            data = f.read(length)
        self.assertEqual(length, len(data), path)
        return hashlib.sha256(data).hexdigest()

    def new_backup(self, backup_id=fake.BACKUP_ID, parent_id=None):
        db.backup_create(self.ctxt, {
            'id': backup_id, 'volume_id': fake.VOLUME_ID, 'size': 1,
            'container': None, 'parent_id': parent_id, 'status': 'creating',
            'user_id': fake.USER_ID, 'project_id': fake.PROJECT_ID})
        return objects.Backup.get_by_id(self.ctxt, backup_id)

    def backup(self, backup, driver=None, path=None):
        """Back up, returning the byte ranges the pipeline read."""
        driver = driver or lustre.LustreBackupDriver(self.ctxt)
        reads = []
        pread = os.pread

        def recording_pread(fd, length, offset):
            data = pread(fd, length, offset)
            reads.append((offset, offset + len(data)))
            return data

        with mock.patch.object(pipeline.os, 'pread', recording_pread), \
                open(path or self.volume_path, 'rb') as volume_file:
            driver.backup(backup, volume_file)
        backup.refresh()
        return reads

    def restore(self, backup, target, is_new=True, driver=None):
        driver = driver or lustre.LustreBackupDriver(self.ctxt)
        backup.status = 'restoring'
        backup.save()
        with open(target, 'wb') as volume_file:
            driver.restore(backup, fake.VOLUME_ID, volume_file, is_new)

    def stored(self, backup):
        driver = lustre.LustreBackupDriver(self.ctxt)
        return driver._read_metadata(backup)['objects']

    def shas(self, backup):
        driver = lustre.LustreBackupDriver(self.ctxt)
        return driver._read_sha256file(backup)['sha256s']

    def test_sparse_backup_reads_and_stores_only_data(self):
        data1, data2 = os.urandom(100 * units.Ki), os.urandom(3 * units.Mi)
        self.make_volume([(units.Mi, data1), (40 * units.Mi, data2)])
        backup = self.new_backup()
        reads = self.backup(backup)
        read_bytes = sum(end - start for start, end in reads)
        # Only the data extents (rounded to SHA blocks) are read.
        self.assertLess(read_bytes, 4 * units.Mi)
        objects_list = self.stored(backup)
        stored = sum(o['length'] for item in objects_list
                     for o in item.values())
        self.assertLess(stored, 4 * units.Mi)
        self.assertEqual(2, len(objects_list))
        self.assertEqual(backup.object_count, len(objects_list))
        self.assertEqual(self.size // BLOCK, len(self.shas(backup)))

    def test_sha_file_matches_the_posix_driver(self):
        self.make_volume([(5 * units.Mi, os.urandom(units.Mi)),
                          (9 * units.Mi, bytes(units.Mi))])
        ours = self.new_backup()
        self.backup(ours)
        theirs = self.new_backup(fake.BACKUP2_ID)
        posix_driver = posix.PosixBackupDriver(
            self.ctxt, backup_path=self.mount_point)
        self.backup(theirs, driver=posix_driver)
        self.assertEqual(self.shas(theirs), self.shas(ours))

    def test_zero_blocks_of_a_dense_file_are_not_stored(self):
        data = os.urandom(2 * units.Mi)
        with open(self.volume_path, 'wb') as f:
            f.write(bytes(20 * units.Mi) + data + bytes(42 * units.Mi))
        backup = self.new_backup()
        self.backup(backup)
        stored = [o for item in self.stored(backup) for o in item.values()]
        self.assertEqual([(20 * units.Mi, 2 * units.Mi)],
                         [(o['offset'], o['length']) for o in stored])

    @ddt.data('none', 'zlib', 'bz2', 'zstd')
    def test_backup_and_restore_are_bit_identical(self, compression):
        self.override_config('backup_compression_algorithm', compression)
        self.make_volume([(0, os.urandom(4096)),
                          (7 * units.Mi + 5, os.urandom(300 * units.Ki)),
                          (self.size - units.Mi, os.urandom(units.Mi))])
        backup = self.new_backup()
        self.backup(backup)
        target = os.path.join(self.tmp, 'restored')
        self.restore(backup, target)
        self.assertEqual(self.digest(self.volume_path), self.digest(target))

    def test_restore_of_new_volume_has_full_size(self):
        db.volume_update(self.ctxt, fake.VOLUME_ID, {'size': 1})
        self.make_volume([(units.Mi, os.urandom(4096))])
        backup = self.new_backup()
        self.backup(backup)
        target = os.path.join(self.tmp, 'restored')
        self.restore(backup, target)
        # The manager truncates the file and zero chunks are not written;
        # the restored volume must still be as big as the volume.
        self.assertEqual(units.Gi, os.path.getsize(target))

    def test_restore_onto_existing_volume_clears_stale_data(self):
        self.make_volume([(2 * units.Mi, os.urandom(units.Mi))])
        backup = self.new_backup()
        self.backup(backup)
        target = self.make_volume([(0, os.urandom(self.size))],
                                  path=os.path.join(self.tmp, 'old'))
        with open(target, 'r+b') as volume_file:
            backup.status = 'restoring'
            backup.save()
            lustre.LustreBackupDriver(self.ctxt).restore(
                backup, fake.VOLUME_ID, volume_file, False)
        self.assertEqual(self.digest(self.volume_path), self.digest(target))

    def test_incremental_after_sparse_backup(self):
        first = os.urandom(units.Mi)
        self.make_volume([(units.Mi, first), (30 * units.Mi,
                                              os.urandom(units.Mi))])
        full = self.new_backup()
        self.backup(full)
        # Change a block, add data in a hole and zero a data range.
        with open(self.volume_path, 'r+b') as f:
            f.seek(units.Mi + 4096)
            f.write(b'x' * 4096)
            f.seek(50 * units.Mi)
            f.write(os.urandom(2 * units.Mi))
            f.seek(30 * units.Mi)
            f.write(bytes(units.Mi))
        incremental = self.new_backup(fake.BACKUP2_ID, parent_id=full.id)
        self.backup(incremental)
        stored = sum(o['length'] for item in self.stored(incremental)
                     for o in item.values())
        self.assertLess(stored, 4 * units.Mi)
        for is_new, target in ((True, 'new'), (False, 'existing')):
            path = os.path.join(self.tmp, target)
            if not is_new:
                self.make_volume([(0, os.urandom(self.size))], path=path)
            with open(path, 'r+b' if not is_new else 'wb') as volume_file:
                incremental.status = 'restoring'
                incremental.save()
                lustre.LustreBackupDriver(self.ctxt).restore(
                    incremental, fake.VOLUME_ID, volume_file, is_new)
            self.assertEqual(self.digest(self.volume_path),
                             self.digest(path), target)

    def test_incremental_of_a_posix_backup(self):
        self.make_volume([(units.Mi, os.urandom(units.Mi))])
        full = self.new_backup()
        self.backup(full, driver=posix.PosixBackupDriver(
            self.ctxt, backup_path=self.mount_point))
        with open(self.volume_path, 'r+b') as f:
            f.seek(10 * units.Mi)
            f.write(os.urandom(units.Mi))
        incremental = self.new_backup(fake.BACKUP2_ID, parent_id=full.id)
        self.backup(incremental)
        target = os.path.join(self.tmp, 'restored')
        self.restore(incremental, target)
        self.assertEqual(self.digest(self.volume_path), self.digest(target))

    def test_restore_of_a_posix_backup(self):
        self.make_volume([(3 * units.Mi, os.urandom(2 * units.Mi))])
        backup = self.new_backup()
        self.backup(backup, driver=posix.PosixBackupDriver(
            self.ctxt, backup_path=self.mount_point))
        stored = sum(o['length'] for item in self.stored(backup)
                     for o in item.values())
        self.assertEqual(self.size, stored)
        target = os.path.join(self.tmp, 'restored')
        self.restore(backup, target)
        self.assertEqual(self.digest(self.volume_path), self.digest(target))

    def test_scattered_data_is_not_one_object_per_block(self):
        pieces = [(i * units.Mi, os.urandom(4096)) for i in range(0, 16)]
        self.make_volume(pieces)
        backup = self.new_backup()
        self.backup(backup)
        self.assertLessEqual(len(self.stored(backup)), 4)

    def test_backup_cancelled_while_running(self):
        self.make_volume([(0, os.urandom(units.Mi))])
        backup = self.new_backup()
        driver = lustre.LustreBackupDriver(self.ctxt)
        self.mock_object(driver, 'delete_backup')
        backup.status = 'deleting'
        backup.save()
        with open(self.volume_path, 'rb') as volume_file:
            driver.backup(backup, volume_file)
        driver.delete_backup.assert_called_once()

    def posix(self):
        return posix.PosixBackupDriver(self.ctxt, backup_path=self.mount_point)

    def object_bytes(self, backup):
        """(name suffix, metadata, bytes) of each object, in order."""
        found = []
        for item in self.stored(backup):
            (name, obj), = item.items()
            with open(os.path.join(self.mount_point, backup.container,
                                   name), 'rb') as f:
                found.append((name.rsplit('-', 1)[1], obj,
                              hashlib.sha256(f.read()).hexdigest()))
        return found

    def make_dense_volume(self):
        """Chunks of random bytes and of text: some compress, some not."""
        self.size = 4 * CHUNK
        text = b'Lustre backup pipeline. ' * (CHUNK // 24 + 1)
        with open(self.volume_path, 'wb') as f:
            for index in range(self.size // CHUNK):
                f.write(os.urandom(CHUNK) if index % 2 else text[:CHUNK])

    @ddt.data(('none', 0), ('zlib', 0), ('bz2', 0), ('none', 1),
              ('zlib', 3))
    @ddt.unpack
    def test_objects_are_those_of_the_posix_driver(self, compression,
                                                   threads):
        self.override_config('backup_compression_algorithm', compression)
        self.override_config('backup_lustre_threads', threads)
        self.make_dense_volume()
        ours = self.new_backup()
        self.backup(ours)
        theirs = self.new_backup(fake.BACKUP2_ID)
        self.backup(theirs, driver=self.posix())
        self.assertEqual(self.object_bytes(theirs), self.object_bytes(ours))
        self.assertEqual(self.shas(theirs), self.shas(ours))
        self.assertEqual(theirs.object_count, ours.object_count)
        self.assertEqual([], [name for name in os.listdir(
            os.path.join(self.mount_point, ours.container))
            if '-part' in name])

    @ddt.data('none', 'zlib', 'bz2', 'zstd')
    def test_posix_driver_restores_our_backup(self, compression):
        self.override_config('backup_compression_algorithm', compression)
        self.make_dense_volume()
        backup = self.new_backup()
        self.backup(backup)
        target = os.path.join(self.tmp, 'restored')
        self.restore(backup, target, driver=self.posix())
        self.assertEqual(self.digest(self.volume_path), self.digest(target))

    @ddt.data('none', 'zlib', 'bz2', 'zstd')
    def test_we_restore_a_posix_backup(self, compression):
        self.override_config('backup_compression_algorithm', compression)
        self.make_dense_volume()
        backup = self.new_backup()
        self.backup(backup, driver=self.posix())
        target = os.path.join(self.tmp, 'restored')
        self.restore(backup, target)
        self.assertEqual(self.digest(self.volume_path), self.digest(target))

    @ddt.data(True, False)
    def test_incremental_chain_across_drivers(self, ours_first):
        self.make_volume([(units.Mi, os.urandom(3 * units.Mi))])
        drivers = [lustre.LustreBackupDriver(self.ctxt), self.posix()]
        if not ours_first:
            drivers.reverse()
        chain = [self.new_backup()]
        self.backup(chain[0], driver=drivers[0])
        for index, backup_id in enumerate((fake.BACKUP2_ID,
                                           fake.BACKUP3_ID)):
            with open(self.volume_path, 'r+b') as f:
                f.seek((10 + 7 * index) * units.Mi)
                f.write(os.urandom(units.Mi))
                f.seek(2 * units.Mi)
                f.write(bytes(BLOCK))
            chain.append(self.new_backup(backup_id, parent_id=chain[-1].id))
            self.backup(chain[-1], driver=drivers[(index + 1) % 2])
        for driver in drivers:
            target = os.path.join(self.tmp, 'restored')
            self.restore(chain[-1], target, driver=driver)
            # As the backup manager does after a restore into a new file.
            os.truncate(target, max(self.size, os.path.getsize(target)))
            self.assertEqual(self.digest(self.volume_path),
                             self.digest(target), driver)

    def test_cancel_stops_the_pipeline_and_removes_every_object(self):
        self.make_dense_volume()
        backup = self.new_backup()
        driver = lustre.LustreBackupDriver(self.ctxt)
        queue_chunk = driver._backup_chunk
        calls = []

        def cancel_after_two(*args):
            queue_chunk(*args)
            calls.append(args[3])
            if len(calls) == 2:
                db.backup_update(self.ctxt, backup.id,
                                 {'status': 'deleting'})

        self.mock_object(driver, '_backup_chunk',
                         side_effect=cancel_after_two)
        self.backup(backup, driver=driver)
        self.assertEqual(2, len(calls))
        self.assertEqual([], os.listdir(os.path.join(self.mount_point,
                                                     backup.container)))

    def test_error_in_the_pipeline_fails_the_backup(self):
        self.make_dense_volume()
        backup = self.new_backup()
        driver = lustre.LustreBackupDriver(self.ctxt)
        writer = driver.get_object_writer

        def failing_writer(container, name, extra_metadata=None):
            if name.endswith('-part00003-000'):
                raise OSError(28, 'No space left on device')
            return writer(container, name, extra_metadata)

        self.mock_object(driver, 'get_object_writer',
                         side_effect=failing_writer)
        self.assertRaises(OSError, self.backup, backup, driver)
        left = os.listdir(os.path.join(self.mount_point, backup.container))
        self.assertEqual([], [name for name in left if '-part' in name])

    def test_block_size_not_dividing_chunk_size(self):
        self.override_config('backup_file_size', CHUNK + 1)
        self.make_volume([])
        self.assertRaises(exception.InvalidBackup, self.backup,
                          self.new_backup())

    def test_incremental_after_volume_grew(self):
        self.make_volume([])
        full = self.new_backup()
        self.backup(full)
        incremental = self.new_backup(fake.BACKUP2_ID, parent_id=full.id)
        incremental.size = 2
        incremental.save()
        exc = self.assertRaises(exception.InvalidBackup, self.backup,
                                incremental)
        self.assertIn('Do a full backup', str(exc))

    def test_zero_sha_is_the_digest_of_zeros(self):
        driver = lustre.LustreBackupDriver(self.ctxt)
        self.assertEqual(hashlib.sha256(bytes(BLOCK)).hexdigest(),
                         driver._zero_sha(BLOCK))

    def test_file_without_fileno_is_read_whole(self):
        class Stream(object):
            def __init__(self, path):
                self.file = open(path, 'rb')

            def __getattr__(self, name):
                if name == 'fileno':
                    raise AttributeError(name)
                return getattr(self.file, name)

        data = os.urandom(units.Mi)
        self.make_volume([(units.Mi, data)])
        backup = self.new_backup()
        stream = Stream(self.volume_path)
        lustre.LustreBackupDriver(self.ctxt).backup(backup, stream)
        stream.file.close()
        target = os.path.join(self.tmp, 'restored')
        self.restore(backup, target)
        self.assertEqual(self.digest(self.volume_path), self.digest(target))
        self.assertEqual(stat.S_IFREG,
                         stat.S_IFMT(os.stat(target).st_mode))
