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

import errno
import hashlib
import os
import stat
import time

from os_brick import exception as brick_exception
from oslo_concurrency import processutils as putils
from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import loopingcall
from oslo_utils import units

from cinder.backup.drivers import posix
from cinder import coordination
from cinder import exception
from cinder.i18n import _
from cinder import interface
from cinder import objects
from cinder.objects import fields
from cinder import utils
from cinder.volume.drivers import lustre_client
from cinder.volume import volume_utils

LOG = logging.getLogger(__name__)

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
]

CONF = cfg.CONF
CONF.register_opts(lustrebackup_service_opts)

# Zero gaps shorter than this are stored inside the chunk around them, so a
# volume with scattered data does not become millions of tiny objects.
_MIN_GAP = 8 * units.Mi


def _extents(fd, start, end):
    """Yield the (offset, end) ranges of [start, end) that may hold data.

    Holes of a sparse file are skipped with SEEK_DATA/SEEK_HOLE.  Where
    the filesystem or device cannot tell (Lustre before 2.14 reports every
    byte as data), the whole range is data.
    """
    pos = start
    while pos < end:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole up to the end
                return
            yield pos, end
            return
        if data >= end:
            return
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        yield data, hole
        pos = hole


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

    def _zero_sha(self, length):
        if length not in self._zero_shas:
            self._zero_shas[length] = hashlib.sha256(
                bytes(length)).hexdigest()
        return self._zero_shas[length]

    def _read(self, volume_file, fd, start, end):
        """Read what may hold data in [start, end), skipping holes.

        :returns: a list of (offset, buffer), block-aligned
        """
        if fd is None:
            ranges = [(start, end)]
        else:
            block_size = self.sha_block_size_bytes
            ranges = []
            for data_start, data_end in _extents(fd, start, end):
                first = data_start - (data_start - start) % block_size
                last = min(end, data_end + (start - data_end) % block_size)
                if ranges and first <= ranges[-1][1]:
                    ranges[-1] = (ranges[-1][0], last)
                else:
                    ranges.append((first, last))
        reads = []
        for first, last in ranges:
            volume_file.seek(first)
            reads.append((first, memoryview(volume_file.read(last - first))))
        return reads

    def _blocks(self, reads, start, end):
        """The SHA blocks of [start, end): their bytes, or None for zeros."""
        block_size = self.sha_block_size_bytes
        nonzero = {}
        for first, buf in reads:
            for pos in range(0, len(buf), block_size):
                block = buf[pos:pos + block_size]
                if not volume_utils.is_all_zero(block):
                    nonzero[first + pos] = block
        return [nonzero.get(offset)
                for offset in range(start, end, block_size)]

    def _hash_blocks(self, blocks, start, end):
        block_size = self.sha_block_size_bytes
        return [hashlib.sha256(block).hexdigest() if block is not None
                else self._zero_sha(min(block_size,
                                        end - start - i * block_size))
                for i, block in enumerate(blocks)]

    def _runs(self, start, end, count, store):
        """Merge the blocks to store into (start, end) ranges of bytes.

        ``store(i)`` says whether block ``i`` must be stored.  Gaps shorter
        than _MIN_GAP stay inside a range, so that scattered data does not
        become a multitude of tiny objects.
        """
        block_size = self.sha_block_size_bytes
        runs = []
        for index in range(count):
            if not store(index):
                continue
            block_start = start + index * block_size
            block_end = min(end, block_start + block_size)
            if runs and block_start - runs[-1][1] < _MIN_GAP:
                runs[-1] = (runs[-1][0], block_end)
            else:
                runs.append((block_start, block_end))
        return runs

    @staticmethod
    def _bytes(reads, start, end):
        """The bytes of [start, end): what was read, zeros elsewhere.

        Always ``bytes``: some compressors (zstd) refuse a memoryview.  A
        range that is a whole read buffer is returned without a copy.
        """
        for first, buf in reads:
            if first == start and end == first + len(buf):
                return bytes(buf.obj)
            if first <= start and end <= first + len(buf):
                return bytes(buf[start - first:end - first])
        pieces = []
        pos = start
        for first, buf in reads:
            low, high = max(pos, first), min(end, first + len(buf))
            if low < high:
                pieces += [bytes(low - pos), buf[low - first:high - first]]
                pos = high
        pieces.append(bytes(end - pos))
        return b''.join(pieces)

    def backup(self, backup, volume_file, backup_metadata=True):
        """Back up a volume, reading and storing only its data.

        Holes are never read; all-zero blocks are neither compressed nor
        stored, in full backups.  An incremental backup stores the blocks
        whose SHA-256 differs from its parent's, zeros included, exactly as
        the chunked driver does.
        """
        if self.chunk_size_bytes % self.sha_block_size_bytes:
            raise exception.InvalidBackup(
                reason=_('Chunk size is not multiple of block size for '
                         'creating hash.'))
        parent_shas = None
        if backup.parent_id:
            parent = objects.Backup.get_by_id(self.context, backup.parent_id)
            shafile = self._read_sha256file(parent)
            if shafile['chunk_size'] != self.sha_block_size_bytes:
                raise exception.InvalidBackup(
                    reason=_('Hash block size has changed since the last '
                             'backup. New hash block size: %(new)s. Old '
                             'hash block size: %(old)s. Do a full backup.')
                    % {'old': shafile['chunk_size'],
                       'new': self.sha_block_size_bytes})
            if backup.size > parent.size:
                raise exception.InvalidBackup(
                    reason=_('Volume size increased since the last backup. '
                             'Do a full backup.'))
            parent_shas = shafile['sha256s']

        (object_meta, object_sha256, extra_metadata, container,
         volume_size_bytes) = self._prepare_backup(backup)
        sha256_list = object_sha256['sha256s']
        try:
            fd = volume_file.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        volume_file.seek(0, os.SEEK_END)
        size = volume_file.tell()
        stored = 0
        chunks = 0

        def notify():
            self._send_progress_notification(self.context, backup,
                                             object_meta, stored,
                                             volume_size_bytes)

        timer = loopingcall.FixedIntervalLoopingCall(notify)
        if self.enable_progress_timer:
            timer.start(interval=self.backup_timer_interval)
        try:
            for start in range(0, size, self.chunk_size_bytes):
                with backup.as_read_deleted():
                    backup.refresh()
                if backup.status in (fields.BackupStatus.DELETING,
                                     fields.BackupStatus.DELETED):
                    LOG.debug('Cancel the backup process of %s.', backup.id)
                    self.delete_backup(backup)
                    return
                end = min(start + self.chunk_size_bytes, size)
                reads = utils.tpool_wrap(self._read)(volume_file, fd,
                                                     start, end)
                blocks = utils.tpool_wrap(self._blocks)(reads, start, end)
                shas = utils.tpool_wrap(self._hash_blocks)(blocks, start,
                                                           end)
                first = len(sha256_list)
                sha256_list.extend(shas)
                if parent_shas is None:
                    def store(i):
                        return blocks[i] is not None
                else:
                    def store(i):
                        return (first + i >= len(parent_shas) or
                                shas[i] != parent_shas[first + i])
                for run_start, run_end in self._runs(start, end, len(blocks),
                                                     store):
                    self._backup_chunk(backup, container,
                                       self._bytes(reads, run_start, run_end),
                                       run_start, object_meta, extra_metadata)
                chunks += 1
                if chunks % self.data_block_num == 0:
                    notify()
                stored = end
                utils.cooperative_yield()
        finally:
            timer.stop()
        self._send_progress_end(self.context, backup, object_meta)
        if backup_metadata:
            try:
                self._backup_metadata(backup, object_meta)
            except Exception:
                LOG.exception('Backup volume metadata failed.')
                self.delete_backup(backup)
                raise
        self._finalize_backup(backup, container, object_meta, object_sha256)

    # Restore

    def _restore_v1(self, backup, volume_id, metadata, volume_file,
                    volume_is_new, requested_backup):
        """Restore one backup of a chain, zeroing what it does not cover.

        A full backup made by this driver has no chunk for zero ranges.
        Restored onto a volume that may hold older data, those ranges are
        cleared first; the ones past the end of a regular file already read
        as zeros.
        """
        if not backup.parent_id and not volume_is_new:
            self._zero_uncovered(volume_file, metadata['objects'],
                                 backup.size * units.Gi)
        super()._restore_v1(backup, volume_id, metadata, volume_file,
                            volume_is_new, requested_backup)

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
