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

"""Backup driver for Lustre.

Backups are stored as the POSIX backup driver stores them (chunk files,
metadata and SHA-256 files in one directory per backup), in a Lustre fileset
that the backup service mounts as a Lustre client.  Each backup directory
gets a striped default layout, so that its chunk files spread over OSTs.

Backups cost time in proportion to the data of a volume, not its size:
holes are found with SEEK_DATA/SEEK_HOLE and never read, and all-zero blocks
are neither compressed nor stored.  Their SHA-256 is the known digest of a
zero block, so the SHA-256 file stays complete and incremental backups work
as with the POSIX driver; its backups restore unchanged.
"""

import hashlib
import importlib
import os
import stat
import time

from os_brick import exception as brick_exception
from oslo_concurrency import processutils as putils
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import units

from cinder.backup.drivers import posix
from cinder.backup import pipeline
from cinder import coordination
from cinder import exception
from cinder.i18n import _
from cinder import interface
from cinder.objects import fields
from cinder import utils
from cinder.volume.drivers import lustre_client

LOG = logging.getLogger(__name__)

# The default number of pipeline threads, one per CPU, stops here so that a
# backup stays well under 1 GiB of memory on a large node.
_MAX_DEFAULT_THREADS = 16

lustrebackup_service_opts = [
    cfg.StrOpt('backup_lustre_share',
               help='Lustre fileset that holds backups: the client mount '
                    'device "MGSNID[,MGSNID...][:MGSNID...]:/FSNAME[/SUBDIR]" '
                    'as mount.lustre(8) defines it, for example '
                    '10.0.0.1@tcp:/lfs01/backup.'),
    cfg.StrOpt('backup_lustre_mount_point_base',
               default='$state_path/backup_mount',
               help='Directory under which the backup service mounts the '
                    'fileset, at <base>/<md5 of the device string>.'),
    cfg.StrOpt('backup_lustre_mount_options',
               default='flock',
               help='Lustre client mount options for the backup fileset '
                    '(mount.lustre(8)).'),
    cfg.IntOpt('backup_lustre_mount_attempts',
               default=3,
               min=1,
               help='How many times to try mounting the backup fileset '
                    'before failing.'),
    cfg.IntOpt('backup_lustre_stripe_count',
               default=4,
               min=-1,
               max=lustre_client.MAX_STRIPE_COUNT,
               help='Number of OSTs each backup chunk file is striped over, '
                    'set as the default layout of each new backup '
                    'directory: a single backup stream then writes to that '
                    'many OSTs at once. -1 stripes over all OSTs, 0 keeps '
                    'the default layout of the filesystem.'),
    cfg.StrOpt('backup_lustre_stripe_size',
               default='4M',
               help='Stripe size of backup chunk files, a multiple of 64K '
                    '(such as 1M or 4M); 0 keeps the filesystem default.'),
    cfg.StrOpt('backup_lustre_ost_pool',
               help='OST pool that backup chunk files are allocated from '
                    '(lctl pool_list shows the pools); by default, any '
                    'OST.'),
    cfg.IntOpt('backup_lustre_threads',
               default=0,
               min=0,
               help='Native threads of the backup pipeline: how many chunks '
                    'of a volume are read, hashed, compressed and written at '
                    'once, and how many threads hash and compress their '
                    'pieces. 0 uses one per CPU, at most %d. Each chunk in '
                    'flight holds up to about 50 MiB, whatever '
                    'backup_file_size is; 1 processes one chunk at a time, '
                    'as the chunked driver does.' % _MAX_DEFAULT_THREADS),
]

CONF = cfg.CONF
CONF.register_opts(lustrebackup_service_opts)

# Zero gaps shorter than this are stored inside the chunk around them, so a
# volume with scattered data does not become millions of tiny objects.
_MIN_GAP = 8 * units.Mi


class _Store(object):
    """The objects of one backup, as the pipeline's threads write them."""

    def __init__(self, driver, container, prefix):
        self.driver = driver
        self.container = container
        self.prefix = prefix

    def open_object(self, name):
        return self.driver.get_object_writer(self.container, name)

    def remove_object(self, name):
        self.driver.delete_object(self.container, name)

    def rename_object(self, old, new):
        directory = os.path.join(self.driver.backup_path, self.container)
        os.rename(os.path.join(directory, old), os.path.join(directory, new))


@interface.backupdriver
class LustreBackupDriver(posix.PosixBackupDriver):
    """Backups into a Lustre fileset, stored as the POSIX driver does."""

    def __init__(self, context):
        self._execute = putils.execute
        self._root_helper = utils.get_root_helper()
        self._zero_shas = {}
        backup_path = self._init_backup_repo_path()
        LOG.debug('Using Lustre backup repository %s', backup_path)
        super().__init__(context, backup_path=backup_path)
        self.layout = self._layout()

    @staticmethod
    def get_driver_options():
        return lustrebackup_service_opts

    def check_for_setup_error(self):
        """Check the share and the layout settings."""
        self._share()
        self._layout()

    # The repository

    @staticmethod
    def _share():
        device = CONF.backup_lustre_share
        if not device:
            raise lustre_client.LustreConfigError(
                source='backup_lustre_share',
                reason=_('no Lustre fileset is configured for backups'))
        try:
            share = lustre_client.Share.parse(device)
            lustre_client.check_options(lustre_client.split_options(
                CONF.backup_lustre_mount_options))
        except ValueError as exc:
            raise lustre_client.LustreConfigError(
                source='backup_lustre_share', reason=exc)
        return share

    @staticmethod
    def _layout():
        """The layout of new backup directories; 0 keeps the default."""
        count = CONF.backup_lustre_stripe_count
        size = CONF.backup_lustre_stripe_size
        try:
            return lustre_client.Layout.plain(
                stripe_count=count or None,
                stripe_size=None if str(size).strip() in ('', '0') else size,
                pool=CONF.backup_lustre_ost_pool)
        except ValueError as exc:
            raise lustre_client.LustreConfigError(
                source='backup_lustre_stripe_*', reason=exc)

    def _init_backup_repo_path(self):
        """Mount the fileset and make sure the service can write to it."""
        share = self._share()
        client = lustre_client.LustreMountClient(
            self._root_helper, execute=self._execute,
            mount_point_base=CONF.backup_lustre_mount_point_base,
            mount_options=CONF.backup_lustre_mount_options)
        self._mount(client, share.device)
        mount_path = client.get_mount_point(share.device)
        self._ensure_writable(mount_path, share.device)
        return mount_path

    @coordination.synchronized('lustre-backup-mount-{device}')
    def _mount(self, client, device):
        attempts = CONF.backup_lustre_mount_attempts
        for attempt in range(1, attempts + 1):
            try:
                client.mount(device)
                return
            except (putils.ProcessExecutionError,
                    brick_exception.BrickException, OSError) as exc:
                error = getattr(exc, 'stderr', None) or str(exc)
                if attempt == attempts:
                    raise exception.BackupDriverException(
                        reason=_('could not mount Lustre backup fileset '
                                 '%(share)s after %(n)d attempts: %(err)s')
                        % {'share': device, 'n': attempts,
                           'err': error.strip()})
                LOG.warning('Mount attempt %(attempt)d of %(share)s '
                            'failed, retrying: %(err)s',
                            {'attempt': attempt, 'share': device,
                             'err': error.strip()})
                time.sleep(1)

    def _ensure_writable(self, path, device):
        """Let the service's group write to the top of the fileset.

        Only that one directory is changed: the backup directories below it
        are created by the service.  A recursive chgrp or chmod, as the NFS
        backup driver does, would visit every chunk file on the fileset.
        """
        if os.access(path, os.W_OK | os.X_OK):
            return
        gid = os.getegid()
        if utils.get_file_gid(path) != gid:
            self._execute('chgrp', str(gid), path,
                          root_helper=self._root_helper, run_as_root=True)
        if utils.get_file_mode(path) & stat.S_IRWXG != stat.S_IRWXG:
            self._execute('chmod', 'g+rwx', path,
                          root_helper=self._root_helper, run_as_root=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise exception.BackupDriverException(
                reason=_('%(path)s, where %(share)s is mounted, is not '
                         'writable by the backup service (uid %(uid)d, gid '
                         '%(gid)d)') % {'path': path, 'share': device,
                                        'uid': os.geteuid(), 'gid': gid})

    def put_container(self, container):
        """Create a backup directory with the configured striping.

        Chunk files inherit the default layout of their directory, so the
        layout is set once, on the new directory, before any chunk exists.
        A failure to stripe is logged: the backup is still correct.
        """
        path = os.path.join(self.backup_path, container)
        new = not os.path.isdir(path)
        super().put_container(container)
        if new and self.layout:
            try:
                lustre_client.setstripe(self._execute, path, self.layout)
            except putils.ProcessExecutionError as exc:
                LOG.warning('Could not stripe backup directory %(path)s, '
                            'its chunks get the default layout: %(err)s',
                            {'path': path,
                             'err': (exc.stderr or str(exc)).strip()})

    # Backup
    #
    # ChunkedBackupDriver.backup runs as it is.  It is handed a
    # pipeline.Source, whose chunks are ranges of the volume not read yet;
    # the hooks below pass them to a pipeline.BackupRun, which reads,
    # hashes, compresses and writes several of them at once, and hand its
    # objects and hashes back to Cinder's metadata in volume order.

    def backup(self, backup, volume_file, backup_metadata=True):
        """Back up a volume through the parallel pipeline.

        Holes are never read; all-zero blocks are neither compressed nor
        stored, in full backups.  An incremental backup stores the blocks
        whose SHA-256 differs from its parent's, zeros included, exactly as
        the chunked driver does.
        """
        self._reader = pipeline.Reader(volume_file, self.sha_block_size_bytes)
        self._full = not backup.parent_id
        self._run = None
        try:
            super().backup(backup, pipeline.Source(volume_file),
                           backup_metadata)
        finally:
            self._stop_run()

    def _prepare_backup(self, backup):
        """Start the pipeline for the backup's container and prefix."""
        prepared = super()._prepare_backup(backup)
        object_meta, object_sha256, _extra, container, _size = prepared
        algorithm = CONF.backup_compression_algorithm.lower()
        self._run = pipeline.BackupRun(
            _Store(self, container, object_meta['prefix']), self._reader,
            CONF.backup_lustre_threads or
            min(os.cpu_count() or 1, _MAX_DEFAULT_THREADS),
            algorithm, self._compression_module(algorithm), _MIN_GAP,
            self._zero_sha)
        self._run.object_meta = object_meta
        self._run.sha256s = object_sha256['sha256s']
        return prepared

    @staticmethod
    def _compression_module(algorithm):
        """The module that compresses, or None; Cinder's names apply."""
        if algorithm in ('none', 'off', 'no'):
            return None
        names = {'zlib': 'zlib', 'gzip': 'zlib', 'bz2': 'bz2',
                 'bzip2': 'bz2', 'zstd': 'zstd'}
        return importlib.import_module(names[algorithm])

    def _calculate_sha(self, data):
        """Hash a chunk: on the pool for an incremental backup.

        A full backup's chunk is hashed by its job, while it is stored:
        the digests join the SHA-256 list when the job is handed back.
        """
        if not isinstance(data, pipeline.Chunk):
            return super()._calculate_sha(data)
        if self._full:
            return []
        return self._run.hash_chunk(data)

    def _backup_chunk(self, backup, container, data, data_offset,
                      object_meta, extra_metadata):
        """Queue a chunk (or a changed extent) for the pipeline."""
        if not isinstance(data, pipeline.Chunk):
            return super()._backup_chunk(backup, container, data,
                                         data_offset, object_meta,
                                         extra_metadata)
        while not self._run.has_room():
            utils.tpool_wrap(self._run.wait_for_room)()
            self._commit(wait=False)
        self._run.submit(data, self._full)
        self._commit(wait=False)
        utils.cooperative_yield()

    def _commit(self, wait):
        """Name the objects of the finished jobs, in volume order."""
        run = self._run
        meta = run.object_meta
        for job in run.finished(wait=wait):
            for temp, offset, length, algorithm, md5 in job.objects:
                name = '%s-%05d' % (meta['prefix'], meta['id'])
                run.store.rename_object(temp, name)
                meta['list'].append({name: {'offset': offset,
                                            'length': length,
                                            'compression': algorithm,
                                            'md5': md5}})
                meta['id'] += 1
            run.sha256s.extend(job.shas)

    def _finalize_backup(self, backup, container, object_meta,
                         object_sha256):
        """Wait for the pipeline, then write Cinder's metadata."""
        if self._run is not None:
            utils.tpool_wrap(self._run.wait_all)()
            self._commit(wait=True)
        super()._finalize_backup(backup, container, object_meta,
                                 object_sha256)

    def _stop_run(self):
        run, self._run = getattr(self, '_run', None), None
        if run is not None:
            utils.tpool_wrap(run.abort)()

    def delete_backup(self, backup):
        """Delete a backup, first stopping its pipeline if it is running.

        Cinder's backup loop calls this when the backup is cancelled.
        """
        self._stop_run()
        super().delete_backup(backup)

    def _zero_sha(self, length):
        if length not in self._zero_shas:
            self._zero_shas[length] = hashlib.sha256(
                bytes(length)).hexdigest()
        return self._zero_shas[length]

    # Restore

    def _restore_v1(self, backup, volume_id, metadata, volume_file,
                    volume_is_new, requested_backup):
        """Restore one backup of a chain, streaming each object.

        Each object is read and decompressed on a thread of its own while
        the caller's native thread writes it, a piece at a time, instead of
        being held whole (twice, compressed and not) in memory.  A stream
        without a file descriptor is restored by the chunked driver.

        A full backup made by this driver has no chunk for zero ranges.
        Restored onto a volume that may hold older data, those ranges are
        cleared first; the ones past the end of a regular file already read
        as zeros.
        """
        if not backup.parent_id and not volume_is_new:
            self._zero_uncovered(volume_file, metadata['objects'],
                                 backup.size * units.Gi)
        try:
            fd = volume_file.fileno()
        except (AttributeError, OSError, ValueError):
            return super()._restore_v1(backup, volume_id, metadata,
                                       volume_file, volume_is_new,
                                       requested_backup)
        volume_file.flush()
        self._check_object_names(backup, metadata)
        for item in metadata['objects']:
            with requested_backup.as_read_deleted():
                requested_backup.refresh()
            if requested_backup.status != fields.BackupStatus.RESTORING:
                raise exception.BackupRestoreCancel(back_id=backup.id,
                                                    vol_id=volume_id)
            (name, obj), = item.items()
            utils.tpool_wrap(self._restore_object)(
                backup, metadata, name, obj, fd, volume_is_new)
            utils.cooperative_yield()

    def _check_object_names(self, backup, metadata):
        """The objects in the container must be those of the metadata."""
        listed = set(self._generate_object_names(backup))
        listed -= {self._metadata_filename(backup),
                   self._sha256_filename(backup)}
        recorded = {name for item in metadata['objects'] for name in item}
        if listed != recorded:
            raise exception.InvalidBackup(reason=_(
                'restore_backup aborted, actual object list does not match '
                'object list stored in metadata.'))

    def _restore_object(self, backup, metadata, name, obj, fd,
                        volume_is_new):
        algorithm = (obj['compression'] or 'none').lower()
        reader = self.get_object_reader(
            backup['container'], name,
            extra_metadata=metadata.get('extra_metadata'))
        with reader:
            pieces = iter(lambda: reader.read(pipeline.PIECE_SIZE), b'')
            pipeline.restore_object(
                pieces, algorithm, self._compression_module(algorithm),
                fd, obj['offset'], volume_is_new)

    @staticmethod
    def _zero_uncovered(volume_file, objects_list, size):
        ranges = sorted((obj['offset'], obj['offset'] + obj['length'])
                        for item in objects_list for obj in item.values())
        volume_file.seek(0, os.SEEK_END)
        file_end = volume_file.tell()
        pos = 0
        for start, end in ranges + [(size, size)]:
            gap_end = min(start, file_end)
            while pos < gap_end:
                length = min(units.Mi, gap_end - pos)
                volume_file.seek(pos)
                volume_file.write(bytes(length))
                pos += length
            pos = max(pos, end)

    def restore(self, backup, volume_id, volume_file, volume_is_new):
        """Restore a backup, leaving a volume file its full size.

        Chunks of zeros are not written to a new volume, so a regular file
        would otherwise end at its last non-zero byte.
        """
        super().restore(backup, volume_id, volume_file, volume_is_new)
        try:
            is_file = stat.S_ISREG(os.fstat(volume_file.fileno()).st_mode)
        except (AttributeError, OSError, ValueError):
            is_file = False
        if is_file:
            size = self.db.volume_get(self.context, volume_id)['size']
            volume_file.seek(0, os.SEEK_END)
            if volume_file.tell() < size * units.Gi:
                volume_file.truncate(size * units.Gi)
                volume_file.flush()
