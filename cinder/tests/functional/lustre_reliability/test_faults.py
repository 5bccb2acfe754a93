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

"""Faults: full filesystems, vanished mounts, killed services.

Each case injects one fault into one operation, then checks that the
operation failed cleanly (or completed), that every volume's data is still
what its guest wrote (bytes lost are counted), and that once Cinder has
cleaned up after the failure (deleting what went to error) no file is left
on the share.  A killed service is a process killed with SIGKILL, with its
children, at a chosen step: just before or after one of the commands the
driver runs, or once a copy has started writing; each case checks that the
process did die there.  Recovery is a new driver object, as after a
restart.
"""

import hashlib
import json
import os
import signal
import time
from unittest import mock

import ddt
from oslo_concurrency import processutils as putils
from oslo_db.sqlalchemy import engines
from oslo_utils import units

from cinder import exception
from cinder import objects
from cinder.tests.functional.lustre import base
from cinder.tests.functional.lustre_reliability import report
from cinder.volume.drivers import lustre_client

MI = units.Mi
FULL_SHARE_ERRORS = (putils.ProcessExecutionError,
                     exception.VolumeDriverException,
                     exception.ExtendVolumeError, OSError)


@ddt.ddt
class FaultTestCase(base.LustreFunctionalTestCase):

    def setUp(self):
        super().setUp()
        # A volume that no fault may touch.
        self.bystander = self.create_volume(vtype=self.thin)
        self.guest_write(self.bystander, 0, 4 * MI, 0x7e)
        self.full_mount = self.driver._get_mount_point_for_share(
            base.SHARE2)

    def fill(self, mount_point, leave=0):
        """Fill a filesystem, leaving ``leave`` bytes free."""
        filler = os.path.join(mount_point, 'filler')
        stat = os.statvfs(mount_point)
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        self.addCleanup(os.unlink, filler)
        try:
            os.posix_fallocate(fd, 0, max(1, stat.f_bavail * stat.f_frsize -
                                          leave - MI))
            while True:
                os.write(fd, bytes(4096))
        except OSError:
            pass
        finally:
            os.close(fd)

    def guest_bytes_lost(self, *volumes):
        """Bytes of the guests' disks that differ from their models."""
        return sum(self.bytes_lost(*self.attach(volume), self.model(volume))
                   for volume in (self.bystander,) + volumes)

    def leftovers(self, *keep):
        names = {volume.name for volume in (self.bystander,) + keep}
        return [name for share in (base.SHARE1, base.SHARE2)
                for name in self.files(share)
                if name not in names and name != 'filler']

    @staticmethod
    def file_digest(path):
        digest = hashlib.sha256()
        with open(path, 'rb') as f:
            for piece in iter(lambda: f.read(4 * MI), b''):
                digest.update(piece)
        return digest.hexdigest()

    def backup_record(self, volume):
        backup = objects.Backup(context=self.context, volume_id=volume.id,
                                size=1, status='creating', user_id='u',
                                project_id='p')
        backup.create()
        return backup

    def record(self, item, *volumes, keep=()):
        lost = self.guest_bytes_lost(*volumes)
        left = self.leftovers(*keep)
        report.record('fault', item, bytes_lost=lost, leftovers=len(left))
        self.assertEqual(0, lost, item)
        self.assertEqual([], left, item)

    # ENOSPC at each step

    def test_enospc_creating_thick_volume(self):
        volume = self.create_volume(pool='lfs02', vtype=self.thick,
                                    create=False)
        self.assertRaises(lustre_client.LustreException,
                          self.driver.create_volume, volume)
        self.record('ENOSPC creating a thick volume')

    def test_enospc_creating_qcow2_volume(self):
        self.driver = self.make_driver(lustre_qcow2_volumes=True)
        self.fill(self.full_mount)
        volume = self.create_volume(pool='lfs02', vtype=self.thin,
                                    create=False)
        self.assertRaises(lustre_client.LustreException,
                          self.driver.create_volume, volume)
        self.record('ENOSPC creating a qcow2 volume')

    def test_enospc_cloning(self):
        source = self.create_volume(vtype=self.thin)
        self.guest_write(source, 0, 700 * MI, 0x11)
        clone = self.create_volume(pool='lfs02', vtype=self.thin,
                                   create=False)
        self.assertRaises(FULL_SHARE_ERRORS,
                          self.driver.create_cloned_volume, clone, source)
        source.refresh()
        self.assertEqual([], list(source.snapshots))
        self.record('ENOSPC cloning', source, keep=(source,))

    def test_enospc_creating_volume_from_snapshot(self):
        source = self.create_volume(vtype=self.thin)
        self.guest_write(source, 0, 700 * MI, 0x12)
        snapshot = self.create_snapshot(source)
        new = self.create_volume(pool='lfs02', vtype=self.thin,
                                 create=False)
        self.assertRaises(FULL_SHARE_ERRORS,
                          self.driver.create_volume_from_snapshot, new,
                          snapshot)
        self.driver.delete_snapshot(snapshot)
        self.record('ENOSPC creating a volume from a snapshot', source,
                    keep=(source,))

    def test_enospc_snapshotting(self):
        volume = self.create_volume(pool='lfs02', vtype=self.thin)
        self.guest_write(volume, 0, MI, 0x13)
        self.fill(self.full_mount)
        snapshot = objects.Snapshot(
            context=self.context, volume_id=volume.id, status='creating',
            volume_size=1, user_id='u', project_id='p',
            volume_type_id=volume.volume_type_id)
        snapshot.create()
        self.assertRaises(FULL_SHARE_ERRORS, self.driver.create_snapshot,
                          snapshot)
        # Cinder puts the snapshot in error and deletes it later.
        snapshot.status = 'error'
        self.driver.delete_snapshot(snapshot)
        self.assertFalse(self.driver._snapshots_exist(volume))
        self.record('ENOSPC snapshotting', volume, keep=(volume,))

    def test_enospc_extending_thick_volume(self):
        volume = self.create_volume(pool='lfs02', size=1, vtype=self.thin)
        self.guest_write(volume, 0, MI, 0x14)
        volume.volume_type = self.thick
        self.assertRaises(exception.ExtendVolumeError,
                          self.driver.extend_volume, volume, 3)
        path, fmt = self.attach(volume)
        self.assertGuestSees(volume)
        self.record('ENOSPC extending a thick volume', volume,
                    keep=(volume,))

    def test_enospc_copying_an_image(self):
        image = os.path.join(self.tmp, 'image.raw')
        with open(image, 'wb') as f:
            f.write(os.urandom(700 * MI))

        class Images(object):
            temp_images = None

            def show(self, context, image_id):
                return {'id': image_id, 'disk_format': 'raw',
                        'container_format': 'bare', 'status': 'active',
                        'size': os.path.getsize(image), 'properties': {}}

            def download(self, context, image_id, data=None, **kwargs):
                with open(image, 'rb') as f:
                    data.write(f.read())
        volume = self.create_volume(pool='lfs02', vtype=self.thin)
        self.assertRaises(FULL_SHARE_ERRORS,
                          self.driver.copy_image_to_volume, self.context,
                          volume, Images(), 'image')
        # The volume goes to error; deleting it removes its file.
        self.driver.delete_volume(volume)
        self.record('ENOSPC copying an image to a volume')

    def test_enospc_backing_up(self):
        driver = self.make_backup_driver('%s:/lfs04/backup' % base.MGS)
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, 400 * MI, 0x15)
        backup = self.backup_record(volume)
        with open(self.driver.local_path(volume), 'rb') as volume_file:
            self.assertRaises(OSError, driver.backup, backup, volume_file)
        backup.refresh()
        driver.delete_backup(backup)
        container = os.path.join(driver.backup_path, backup.container)
        left = os.listdir(container)
        self.assertEqual([], left)
        self.record('ENOSPC backing up', volume, keep=(volume,))

    # Mounts

    def test_share_unmounted_mid_clone(self):
        source = self.create_volume(vtype=self.thin)
        self.guest_write(source, 0, 600 * MI, 0x21)
        clone = self.create_volume(vtype=self.thin, create=False)
        mount_point = self.driver._get_mount_point_for_share(base.SHARE1)
        location = os.path.join(self.tmp, 'clone-location')

        def clone_volume():
            # The volume manager saves the volume, with the share the
            # driver chose for it, whether the clone succeeds or fails (the
            # volume then goes to error, and is deleted from that share);
            # the child hands that share to this process.
            try:
                self.driver.create_cloned_volume(clone, source)
            finally:
                with open(location, 'w') as f:
                    f.write(clone.provider_location or '')

        child = self.in_child(clone_volume)
        self.wait_for(lambda: self.writing(clone))
        base.run('umount', '-l', mount_point)
        status = os.waitpid(child, 0)[1]
        with open(location) as f:
            clone.provider_location = f.read() or None
        # Whatever happened, the next operation mounts the share again and
        # finds every volume as its guest left it.
        self.driver._ensure_shares_mounted()
        self.recover(source)
        if status == 0:
            self.assertGuestSees(clone, self.model(source))
        self.driver.delete_volume(clone)
        report.record('fault', 'share unmounted during a clone',
                      outcome='completed' if status == 0 else 'failed')
        self.record('share unmounted during a clone', source,
                    keep=(source,))

    def test_hanging_mount_is_bounded(self):
        self.standin.fault('lfs02', 'hang', '5')
        start = time.monotonic()
        driver = self.make_driver(
            lustre_mount_timeout=2,
            lustre_mount_point_base=os.path.join(self.tmp, 'mnt-hang'))
        took = time.monotonic() - start
        self.assertLess(took, 5)
        self.assertEqual([base.SHARE1], driver._mounted_shares)
        time.sleep(4)
        report.record('fault', 'mount helper hanging', bytes_lost=0,
                      seconds=round(took, 1))

    # Killed services

    def in_child(self, operation, die=None):
        """Run an operation in a child process, in its own process group.

        :param die: (when, words): the child kills itself with SIGKILL just
                    'before' or 'after' the driver runs a command starting
                    with these words
        """
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)
            code = 1
            # The test's database lives in this process's memory: keep using
            # the connection the parent opened, which oslo.db would discard
            # as another process's.  What the child writes there dies with
            # it, like a killed service's uncommitted work (unit tests cover
            # what a service commits before it is killed).
            mock.patch.object(engines.os, 'getpid',
                              return_value=os.getppid()).start()
            try:
                if die:
                    self.die_at(*die)
                operation()
                code = 0
            finally:
                os._exit(code)
        return pid

    def die_at(self, when, words):
        execute = self.driver._execute

        def execute_and_die(*cmd, **kwargs):
            hit = tuple(str(arg) for arg in cmd[:len(words)]) == words
            if hit and when == 'before':
                os.killpg(0, signal.SIGKILL)
            result = execute(*cmd, **kwargs)
            if hit and when == 'after':
                os.killpg(0, signal.SIGKILL)
            return result
        self.driver._execute = execute_and_die

    def assertKilled(self, pid):
        """The child died of SIGKILL: the fault hit the step aimed at."""
        status = os.waitpid(pid, 0)[1]
        self.assertTrue(os.WIFSIGNALED(status) and
                        os.WTERMSIG(status) == signal.SIGKILL,
                        'the child was not killed (status %d)' % status)

    def wait_for(self, happened, timeout=60):
        deadline = time.monotonic() + timeout
        while not happened():
            self.assertLess(time.monotonic(), deadline,
                            'the step to act at never came')
            time.sleep(0.01)

    def kill_when(self, pid, happened):
        """Kill a child's process group as soon as ``happened()``.

        If it never happens, the child is killed all the same: a child left
        running would hold the test runner's output open.
        """
        try:
            self.wait_for(happened)
        finally:
            os.killpg(pid, signal.SIGKILL)
        self.assertKilled(pid)

    def writing(self, volume, share=base.SHARE1):
        """Whether a copy into a volume's file has written something."""
        path = os.path.join(self.driver._get_mount_point_for_share(share),
                            volume.name)
        return os.path.exists(path) and os.stat(path).st_blocks > 0

    def recover(self, volume):
        """What an operator does after a crash: delete what went to error.

        Snapshots a killed service left in the .info file (their database
        records went to error) are deleted; the .info file must be readable
        and the chain whole.
        """
        self.driver = self.make_driver()
        info_path = self.driver._local_path_volume_info(volume)
        if os.path.exists(info_path):
            with open(info_path) as f:
                snap_info = json.load(f)
            for snap_id in [key for key in snap_info if key != 'active']:
                snapshot = objects.Snapshot(
                    context=self.context, id=snap_id, volume_id=volume.id,
                    status='error', volume_size=volume.size)
                snapshot.volume = volume
                self.driver.delete_snapshot(snapshot)
        volume.refresh()

    @ddt.data(('before', ('qemu-img', 'create')),
              ('after', ('qemu-img', 'create')),
              ('after', ('chmod',)),
              ('before', ('mv', '-f')),
              ('after', ('mv', '-f')))
    @ddt.unpack
    def test_killed_while_snapshotting(self, when, words):
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, 2 * MI, 0x31)
        snapshot = objects.Snapshot(
            context=self.context, volume_id=volume.id, status='creating',
            volume_size=1, user_id='u', project_id='p',
            volume_type_id=volume.volume_type_id)
        snapshot.create()
        snapshot = objects.Snapshot.get_by_id(self.context, snapshot.id)
        self.assertKilled(self.in_child(
            lambda: self.driver.create_snapshot(snapshot), (when, words)))
        # The snapshot's record goes to error and is deleted.
        snapshot.status = 'error'
        self.driver = self.make_driver()
        self.driver.delete_snapshot(snapshot)
        self.recover(volume)
        self.record('service killed while snapshotting, %s %s' %
                    (when, ' '.join(words)), volume, keep=(volume,))

    @ddt.data(('thick', 'before', ('fallocate',)),
              ('thick', 'after', ('fallocate',)),
              ('thick', 'after', ('chmod',)),
              ('thin', 'after', ('truncate',)))
    @ddt.unpack
    def test_killed_while_creating(self, kind, when, words):
        volume = self.create_volume(vtype=getattr(self, kind), create=False)
        volume.provider_location = base.SHARE1
        volume.save()
        self.assertKilled(self.in_child(
            lambda: self.driver.create_volume(volume), (when, words)))
        # The volume goes to error; deleting it removes whatever exists.
        self.make_driver().delete_volume(volume)
        self.record('service killed while creating a %s volume, %s %s' %
                    (kind, when, ' '.join(words)))

    def test_killed_while_cloning(self):
        source = self.create_volume(vtype=self.thin)
        self.guest_write(source, 0, 400 * MI, 0x41)
        clone = self.create_volume(vtype=self.thin, create=False)
        clone.provider_location = base.SHARE1
        clone.save()
        pid = self.in_child(lambda: self.driver.create_cloned_volume(
            clone, source))
        # Once the copy has written its first bytes.
        self.kill_when(pid, lambda: self.writing(clone))
        self.recover(source)
        self.driver.delete_volume(clone)
        self.record('service killed while cloning', source, keep=(source,))

    def test_killed_while_backing_up(self):
        driver = self.make_backup_driver()
        # Several chunks in flight in the pipeline when the kill comes.
        self.override_config('backup_lustre_threads', 3)
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, 400 * MI, 0x51)
        backup = self.backup_record(volume)

        def back_up():
            with open(self.driver.local_path(volume), 'rb') as volume_file:
                driver.backup(backup, volume_file)
        # Once the first chunk of the backup is stored.  (The child is
        # forked before this process starts eventlet's native thread pool,
        # which a forked child could not use.)
        container = os.path.join(driver.backup_path,
                                 driver.update_container_name(backup, None))
        self.kill_when(self.in_child(back_up), lambda: os.path.isdir(
            container) and len(os.listdir(container)) > 0)
        # The backup goes to error; deleting it removes its chunks.
        for name in os.listdir(container) if os.path.isdir(container) else ():
            driver.delete_object(container, name)
        self.assertEqual([], os.listdir(container)
                         if os.path.isdir(container) else [])
        # The next backups work, a full one and an incremental one on it,
        # and the last one restores the volume.
        full = self.backup_record(volume)
        with open(self.driver.local_path(volume), 'rb') as volume_file:
            driver.backup(full, volume_file)
        last = self.backup_record(volume)
        last.parent_id = full.id
        last.save()
        with open(self.driver.local_path(volume), 'rb') as volume_file:
            driver.backup(last, volume_file)
        restored = os.path.join(self.tmp, 'restored')
        last.status = 'restoring'
        last.save()
        with open(restored, 'wb') as volume_file:
            driver.restore(last, volume.id, volume_file, True)
        self.assertEqual(self.file_digest(self.driver.local_path(volume)),
                         self.file_digest(restored))
        os.unlink(restored)
        for done in (last, full):
            driver.delete_backup(done)
        self.record('service killed while backing up', volume,
                    keep=(volume,))
