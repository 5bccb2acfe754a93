#!/usr/bin/env python3
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

"""Benchmark the Lustre drivers against Cinder's own and the machine.

``tox -e bench`` runs this as root, on the Lustre stand-in: real driver
objects (LustreDriver, NfsDriver, LustreBackupDriver, PosixBackupDriver,
NFSBackupDriver) with real Cinder objects in a SQLite database, all on one
stand-in filesystem, against ``fallocate``/``cp`` of the same bytes on that
filesystem.  Every figure is the median of several rounds; contenders of
a round run back to back (in an order rotated from round to round), and
every ratio is the median of the per-round ratios.

Sections: ``create`` (thick create latency), ``stats`` (stats refresh
against the number of volumes), ``clone`` (clone and create from
snapshot), ``backup`` (backup and restore throughput and peak memory).

The exit status is 0 when every figure was measured, 1 when something
could not be measured (a driver failed, the run was interrupted), 2 when
the machine cannot run the benchmark.  Targets missed do not count.
"""

import argparse
from concurrent import futures
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
import uuid

import benchenv
import cinderenv
import report

GIB = 1024 ** 3
MIB = 1024 ** 2
HERE = os.path.dirname(os.path.abspath(__file__))
SECTIONS = ('create', 'stats', 'clone', 'backup')
LUSTRE_HOST = '%s@lustre#%s%s' % (cinderenv.HOST, cinderenv.FSNAME,
                                  cinderenv.VOLUME_FILESET)
NFS_HOST = '%s@nfs' % cinderenv.HOST
DRIVER_NAMES = {'lustre': 'Lustre', 'lustre1': 'Lustre 1-thread',
                'posix': 'Posix', 'nfs': 'NFS'}


def rotate(items, rnd):
    """The contenders of round ``rnd``: each round starts one later."""
    items = list(items)
    shift = rnd % len(items)
    return items[shift:] + items[:shift]


def random_stream():
    """A fast source of incompressible bytes (AES-CTR of zeros)."""
    try:
        from cryptography.hazmat.primitives.ciphers import algorithms
        from cryptography.hazmat.primitives.ciphers import Cipher
        from cryptography.hazmat.primitives.ciphers import modes
    except ImportError:
        return lambda n: os.urandom(n)
    encryptor = Cipher(algorithms.AES(os.urandom(16)),
                       modes.CTR(os.urandom(16))).encryptor()
    return lambda n: encryptor.update(bytes(n))


def write_extents(path, extent, stride, count):
    """Write ``count`` random extents of ``extent`` bytes every ``stride``.

    This is what a guest writing to the volume leaves in its raw file.
    """
    random_bytes = random_stream()
    fd = os.open(path, os.O_WRONLY)
    try:
        for index in range(count):
            done = 0
            while done < extent:
                piece = min(64 * MIB, extent - done)
                os.pwrite(fd, random_bytes(piece),
                          index * stride + done)
                done += piece
    finally:
        os.close(fd)


class Unmeasured(Exception):
    """A figure could not be measured."""


class Worker(object):
    """A backup process, driven one JSON command a line."""

    def __init__(self, paths, kind, profile_dir=None):
        self.kind = kind
        cmd = [sys.executable, '-W', 'ignore',
               os.path.join(HERE, 'backup_worker.py'), json.dumps(paths),
               kind]
        env = dict(os.environ)
        if profile_dir:
            cmd.append(profile_dir)
            # cProfile only sees the calling thread: run the chunked code
            # in native threads instead of eventlet's pool.
            env['OS_CINDER_DISABLE_EVENTLET_PATCHING'] = '1'
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True,
                                     env=env)
        hello = self._answer()
        if not hello.get('ok'):
            raise Unmeasured('%s backup worker failed to start:\n%s'
                             % (kind, hello.get('error')))

    def _answer(self):
        line = self.proc.stdout.readline()
        if not line:
            raise Unmeasured('%s backup worker died (exit status %s)' % (
                self.kind, self.proc.poll()))
        return json.loads(line)

    def call(self, op, **args):
        args['op'] = op
        self.proc.stdin.write(json.dumps(args) + '\n')
        self.proc.stdin.flush()
        answer = self._answer()
        if not answer.pop('ok'):
            raise Unmeasured('%s %s failed:\n%s' % (self.kind, op,
                                                    answer['error']))
        return answer

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op": "exit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=20)
            except Exception:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()


class Bench(object):

    def __init__(self, args):
        self.args = args
        self.start = time.monotonic()
        self.started = time.time()
        self.stamp = time.strftime('%Y%m%d-%H%M%S',
                                   time.gmtime(self.started))
        self.results = report.Results()
        self.env = benchenv.Environment(args.image_size, self.log)
        self.workers = {}
        self.unmeasured = []
        self.machine = {}
        self.paths = None
        self.ctx = None
        self.deadline = self.start + args.budget

    # Output

    def clock(self):
        minutes, seconds = divmod(int(time.monotonic() - self.start), 60)
        return '%2d:%02d' % (minutes, seconds)

    def log(self, message):
        print('[%s] %s' % (self.clock(), message), flush=True)

    def progress(self, section, rnd, runs, label, seconds, extra=''):
        self.log('%-7s round %d/%d  %-50s %10s %s' % (
            section, rnd + 1, runs, label[:50], report._num(seconds, 's'),
            extra))

    def fail(self, section, what, exc):
        text = '%s: %s: %s' % (section, what, exc)
        self.unmeasured.append(text)
        self.results.errors.append(text)
        self.log('NOT MEASURED: %s' % text)

    # Set up

    def setup(self):
        self.log('setting up the stand-in filesystem, the NFS shim and '
                 'Cinder')
        self.paths = self.env.open()
        self.machine = benchenv.describe_machine(self.env)
        cinderenv.setup(self.paths, create_db=True)
        self.ctx = cinderenv.admin_context()
        from cinder import objects
        self.default_type = objects.VolumeType.get_by_name_or_id(
            self.ctx, '__DEFAULT__')
        self.thick_type = cinderenv.volume_type(
            self.ctx, 'thick', **{'provisioning:type': 'thick'})
        self.lustre = cinderenv.lustre_driver(self.paths, self.ctx)
        m = self.machine
        self.log('machine: %s, %d CPUs, %.0f GiB RAM, %s; load %.1f' % (
            m['cpu_model'], m['cpus'], m['memory_bytes'] / GIB,
            m['kernel'], m['load_average_at_start'][0]))
        self.log('stand-in: %s' % m['standin']['filesystem'])

    def timed(self, func, *args, **kwargs):
        start = time.perf_counter()
        result = func(*args, **kwargs)
        return time.perf_counter() - start, result

    def new_volume(self, size, host=LUSTRE_HOST, vtype=None):
        return cinderenv.new_volume(self.ctx, size, host,
                                    vtype or self.default_type)

    def drop_volume(self, driver, volume):
        driver.delete_volume(volume)
        volume.destroy()

    # 1. Thick create latency

    def section_create(self):
        res = self.results
        runs = self.args.runs
        sizes = (1, 10, 100)
        nfs_sizes = tuple(s for s in sizes if s <= self.args.nfs_max_gib)
        res.section('create', '1. Thick create latency (LustreDriver '
                    'fallocate vs NfsDriver dd of zeros)', [
                        'LustreDriver: volume type provisioning:type=thick '
                        '(raw file, fallocate). NfsDriver: '
                        'nfs_sparsed_volumes=False (dd if=/dev/zero bs=1M, '
                        'no fsync), mounted through the mount.nfs shim '
                        'on a directory of the same filesystem.',
                        'fallocate(1): the filesystem alone, same sizes, '
                        'same directory.',
                        'NfsDriver is measured up to %d GiB; its 100 GiB '
                        'figure is extrapolated as 10 x its 10 GiB time of '
                        'the same round (zero writing is disk bound there: '
                        '10 GiB already exceeds the dirty page cache).'
                        % max(nfs_sizes)])
        nfs = cinderenv.nfs_driver(self.paths, self.ctx, sparsed=False,
                                   name='nfs-thick')
        for size in sizes:
            res.figure('create.lustre.%d' % size, 'create',
                       'LustreDriver thick create %d GiB' % size)
            res.figure('create.fallocate.%d' % size, 'create',
                       'fallocate(1) %d GiB (the filesystem)' % size)
            if size in nfs_sizes:
                res.figure('create.nfs.%d' % size, 'create',
                           'NfsDriver thick create %d GiB' % size)
        for size in sizes:
            res.figure('create.own.%d' % size, 'create',
                       'LustreDriver minus fallocate(1), %d GiB' % size,
                       note='the driver\'s own time: its create minus '
                            'fallocate of the same size in the same round')
        if 10 in nfs_sizes:
            res.figure('create.nfs.100x', 'create',
                       'NfsDriver thick create 100 GiB (extrapolated)',
                       note='10 x the 10 GiB time of the same round')
        probe = os.path.join(self.paths['root_mount'],
                             cinderenv.VOLUME_FILESET.strip('/'),
                             'fallocate-probe')
        for rnd in range(runs):
            for size in sizes:
                for who in rotate(('lustre', 'fallocate', 'nfs'), rnd):
                    if who == 'nfs' and size not in nfs_sizes:
                        continue
                    key = 'create.%s.%d' % (who, size)
                    self.env.settle()
                    if who == 'lustre':
                        volume = self.new_volume(size, vtype=self.thick_type)
                        seconds, update = self.timed(
                            self.lustre.create_volume, volume)
                        cinderenv.created(volume, update)
                        path = self.lustre.local_path(volume)
                        allocated = os.stat(path).st_blocks * 512
                        if allocated < size * GIB:
                            raise Unmeasured('%s has %d bytes allocated, '
                                             'not %d GiB' % (path, allocated,
                                                             size))
                        self.drop_volume(self.lustre, volume)
                    elif who == 'fallocate':
                        seconds, _out = self.timed(
                            benchenv.run, ['fallocate', '-l',
                                           str(size * GIB), probe])
                        os.unlink(probe)
                    else:
                        self.env.check_space(size * GIB, 'NfsDriver thick '
                                             'create')
                        volume = self.new_volume(size, host=NFS_HOST)
                        seconds, update = self.timed(nfs.create_volume,
                                                     volume)
                        cinderenv.created(volume, update)
                        self.drop_volume(nfs, volume)
                        self.env.trim()
                    res.figures[key].add(rnd, seconds)
                    self.progress('create', rnd, runs, res.figures[key].label,
                                  seconds)
            for size in sizes:
                res.figures['create.own.%d' % size].add(
                    rnd, res.figures['create.lustre.%d' % size].samples[rnd] -
                    res.figures['create.fallocate.%d' % size].samples[rnd])
            if 10 in nfs_sizes:
                res.figures['create.nfs.100x'].add(
                    rnd, 10 * res.figures['create.nfs.10'].samples[rnd])
        for key, label, a, b in (
                ('lustre.100_1', 'LustreDriver 100 GiB / 1 GiB',
                 'lustre.100', 'lustre.1'),
                ('lustre.10_1', 'LustreDriver 10 GiB / 1 GiB',
                 'lustre.10', 'lustre.1'),
                ('fallocate.100_1', 'fallocate(1) 100 GiB / 1 GiB',
                 'fallocate.100', 'fallocate.1'),
                ('own.100_1', 'LustreDriver minus fallocate, 100 / 1 GiB',
                 'own.100', 'own.1'),
                ('lustre_fallocate.1',
                 'LustreDriver 1 GiB / fallocate(1) 1 GiB',
                 'lustre.1', 'fallocate.1')):
            res.ratio('create.' + key, 'create', label + ' (time)',
                      'create.' + a, 'create.' + b)
        for size in nfs_sizes:
            res.ratio('create.nfs.%d' % size, 'create',
                      'LustreDriver vs NfsDriver at %d GiB (speed)' % size,
                      'create.lustre.%d' % size, 'create.nfs.%d' % size,
                      speed=True)
        if 10 in nfs_sizes:
            res.ratio('create.nfs.10_1', 'create',
                      'NfsDriver 10 GiB / 1 GiB (time)',
                      'create.nfs.10', 'create.nfs.1')
            res.ratio('create.nfs.100x', 'create',
                      'LustreDriver vs NfsDriver at 100 GiB (speed, NFS '
                      'extrapolated)', 'create.lustre.100',
                      'create.nfs.100x', speed=True)
        res.target('create', 'Thick create: LustreDriver 100 GiB within '
                   '1.5x of 1 GiB', 'create.lustre.100_1', '<=', 1.5)

    # 2. Stats refresh

    def section_stats(self):
        res = self.results
        runs = self.args.stats_runs
        counts = cinderenv.STATS_COUNTS
        res.section('stats', '2. Stats refresh, get_volume_stats('
                    'refresh=True), against the number of volumes', [
                        'One share per count for each driver, all measured '
                        'in every round. Volumes are sparse 1 GiB files '
                        'named as Cinder names them (no DB rows: neither '
                        'driver reads them here).',
                        'NfsDriver with its defaults (nfs_sparsed_volumes='
                        'True): stat -f, du -sb --apparent-size and du '
                        '--bytes of the share, warm dentry cache.'])
        drivers = []
        for count, lshare, nshare in zip(counts,
                                         self.paths['stats_lustre_shares'],
                                         self.paths['stats_nfs_shares']):
            drivers.append(('lustre', count, cinderenv.lustre_driver(
                self.paths, self.ctx, share=lshare,
                name='stats-lustre-%d' % count), lshare))
            drivers.append(('nfs', count, cinderenv.nfs_driver(
                self.paths, self.ctx, sparsed=True, share=nshare,
                name='stats-nfs-%d' % count), nshare))
        for who, count, driver, share in drivers:
            directory = driver._get_mount_point_for_share(share)
            for _index in range(count):
                fd = os.open(os.path.join(directory, 'volume-%s'
                                          % uuid.uuid4()),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                os.ftruncate(fd, GIB)
                os.close(fd)
            res.figure('stats.%s.%d' % (who, count), 'stats',
                       '%s stats, %d volumes' % (
                           'LustreDriver' if who == 'lustre' else
                           'NfsDriver', count))
            driver.get_volume_stats(refresh=True)   # warm up, not timed
        self.log('stats: %d volume files on %d shares' % (
            2 * sum(counts), len(drivers)))
        for rnd in range(runs):
            for who, count, driver, _share in rotate(drivers, rnd):
                seconds, _stats = self.timed(driver.get_volume_stats,
                                             refresh=True)
                key = 'stats.%s.%d' % (who, count)
                res.figures[key].add(rnd, seconds)
                if rnd in (0, runs - 1):
                    self.progress('stats', rnd, runs,
                                  res.figures[key].label, seconds)
        for who, name in (('lustre', 'LustreDriver'), ('nfs', 'NfsDriver')):
            for count in counts[1:]:
                res.ratio('stats.%s.%d' % (who, count), 'stats',
                          '%s %d / %d volumes (time)' % (name, count,
                                                         counts[0]),
                          'stats.%s.%d' % (who, count),
                          'stats.%s.%d' % (who, counts[0]))
        for count in counts:
            res.ratio('stats.vs.%d' % count, 'stats',
                      'LustreDriver vs NfsDriver, %d volumes (speed)'
                      % count, 'stats.lustre.%d' % count,
                      'stats.nfs.%d' % count, speed=True)
        res.target('stats', 'Stats refresh: LustreDriver at %d volumes '
                   'within 1.5x of %d' % (counts[-1], counts[0]),
                   'stats.lustre.%d' % counts[-1], '<=', 1.5)
        for _who, _count, driver, share in drivers:
            directory = driver._get_mount_point_for_share(share)
            for name in os.listdir(directory):
                if name.startswith('volume-'):
                    os.unlink(os.path.join(directory, name))
        self.env.trim()

    # 3. Clone and create from snapshot

    def section_clone(self):
        res = self.results
        runs = self.args.clone_runs
        size = 4
        res.section('clone', '3. Clone and create from snapshot of a 4 GiB '
                    'volume holding 1 GiB of data (GiB/s of virtual size)', [
                        'Source: a thin raw LustreDriver volume with 128 '
                        'random 8 MiB extents, one every 32 MiB. The copy '
                        'is cp --sparse=always of its file to the same '
                        'filesystem, in the same round.',
                        'Clone of the detached volume: qemu-img converts '
                        'its file to the new raw file. Round 1 of each is '
                        'checked bit for bit against its source (cmp, not '
                        'timed).'])
        source = self.new_volume(size)
        cinderenv.created(source, self.lustre.create_volume(source))
        source_path = self.lustre.local_path(source)
        write_extents(source_path, 8 * MIB, 32 * MIB, 128)
        copy = os.path.join(self.paths['scratch'], 'clone-copy')
        for key, label in (
                ('clone.cp', 'cp --sparse=always (clone rounds)'),
                ('clone.clone', 'LustreDriver create_cloned_volume'),
                ('clone.cp2', 'cp --sparse=always (snapshot rounds)'),
                ('clone.snapshot', 'LustreDriver '
                                   'create_volume_from_snapshot')):
            res.figure(key, 'clone', label, size=size * GIB)

        def copy_once(key, rnd):
            seconds, _out = self.timed(benchenv.run, [
                'cp', '--sparse=always', source_path, copy])
            os.unlink(copy)
            res.figures[key].add(rnd, seconds)
            self.progress('clone', rnd, runs, res.figures[key].label,
                          seconds)

        def driver_once(key, rnd, func, *args):
            volume = self.new_volume(size)
            seconds, update = self.timed(func, volume, *args)
            cinderenv.created(volume, update)
            if rnd == 0:
                self.check_same(source_path, self.lustre.local_path(volume),
                                res.figures[key].label)
            self.drop_volume(self.lustre, volume)
            res.figures[key].add(rnd, seconds)
            self.progress('clone', rnd, runs, res.figures[key].label,
                          seconds)

        def against_cp(cp_key, key, func, *args):
            """cp and the driver in turn, each first every other round."""
            for rnd in range(runs):
                for who in rotate(('cp', 'driver'), rnd):
                    self.env.settle()
                    if who == 'cp':
                        copy_once(cp_key, rnd)
                    else:
                        driver_once(key, rnd, func, *args)

        against_cp('clone.cp', 'clone.clone',
                   self.lustre.create_cloned_volume, source)
        snapshot = cinderenv.new_snapshot(self.ctx, source)
        self.lustre.create_snapshot(snapshot)
        snapshot.status = 'available'
        snapshot.save()
        against_cp('clone.cp2', 'clone.snapshot',
                   self.lustre.create_volume_from_snapshot, snapshot)
        snapshot.status = 'deleting'
        snapshot.save()
        self.lustre.delete_snapshot(snapshot)
        snapshot.destroy()
        source.refresh()
        self.drop_volume(self.lustre, source)
        self.env.trim()
        res.ratio('clone.clone', 'clone',
                  'LustreDriver clone vs cp --sparse=always (speed)',
                  'clone.clone', 'clone.cp', speed=True)
        res.ratio('clone.snapshot', 'clone',
                  'LustreDriver from snapshot vs cp --sparse=always (speed)',
                  'clone.snapshot', 'clone.cp2', speed=True)
        res.target('clone', 'Clone: >= 0.8x cp --sparse=always',
                   'clone.clone', '>=', 0.8)
        res.target('snapshot', 'Create from snapshot: >= 0.8x cp '
                   '--sparse=always', 'clone.snapshot', '>=', 0.8)

    def check_same(self, expected, actual, what):
        proc = subprocess.run(['cmp', expected, actual],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        if proc.returncode:
            raise Unmeasured('%s: the data differs from its source: %s'
                             % (what, proc.stdout.strip()))

    # 4. and 5. Backup and restore, peak memory

    def section_backup(self):
        size = self.args.backup_gib
        self.backup_notes(size)
        self.env.check_space(5 * size * GIB, 'the backup section')
        volumes = self.backup_volumes(size)
        target = self.new_volume(size)
        cinderenv.created(target, self.lustre.create_volume(target))
        target_path = self.lustre.local_path(target)
        self.env.settle()
        self.log('backup: volumes written; starting one backup process per '
                 'driver')
        for kind in DRIVER_NAMES:
            self.workers[kind] = Worker(self.paths, kind,
                                        self.args.profile)
        kinds = list(DRIVER_NAMES)
        compressions = ('none', 'zstd')
        self.backup_figures(size, volumes, kinds, compressions)
        self.backup_rounds(volumes, kinds, compressions,
                           (target, target_path))
        for worker in self.workers.values():
            worker.stop()
        self.workers = {}
        for vol, (volume, _path) in volumes.items():
            self.drop_volume(self.lustre, volume)
        self.drop_volume(self.lustre, target)
        self.env.trim()
        self.backup_ratios(volumes, compressions, kinds)
        self.backup_targets()

    def backup_notes(self, size):
        sparse_count, sparse_stride = self.sparse_layout(size)
        from cinder.backup.drivers import posix
        chunk = posix.BACKUP_FILE_SIZE
        self.results.section('backup', '4. Backup and restore of a %d GiB '
                             'volume (throughput of the volume size)' % size, [
                                 'Every driver with Cinder\'s defaults: '
                                 'backup_file_size %d (%.2f GiB), '
                                 'backup_sha_block_size_bytes 32768; one '
                                 'backup process per driver, run as '
                                 'cinder-backup runs (eventlet), the driver '
                                 'built per operation; restores into a new '
                                 'volume file opened "wb", as the backup '
                                 'manager does.' % (chunk, chunk / GIB),
                                 'full: %d GiB of random data; sparse: %d '
                                 'random 8 MiB extents, one every %d MiB (%d '
                                 'MiB of data). zstd: python-zstd, level 3, '
                                 'threads auto.' % (size, sparse_count,
                                                    sparse_stride,
                                                    sparse_count * 8),
                                 'Copy limit: backup = cp --sparse=always of '
                                 'the volume file to the same filesystem; '
                                 'restore = cp --sparse=always of that copy '
                                 'to a new file, then fsync (the chunked '
                                 'restore fsyncs every object).',
                                 'Hashing limit: what the chunked format '
                                 'costs in CPU, SHA-256 of every 32 KiB block '
                                 'plus MD5 of every byte of the volume, from '
                                 'memory, spread over all %d cores, no I/O.'
                                 % (os.cpu_count() or 1),
                                 'Lustre, Lustre 1-thread, Posix, NFS: '
                                 'LustreBackupDriver (backup_lustre_threads '
                                 '0, one per core, and 1), PosixBackupDriver '
                                 'and NFSBackupDriver (over the mount.nfs '
                                 'shim). Lustre restores of round 1 '
                                 '(compression none) are checked bit for bit '
                                 '(cmp) against their volume.',
                                 'Cells with a target (Lustre and Posix, full '
                                 'and sparse) run every round; the '
                                 'others run in round 1, then in later rounds '
                                 'only as far as the time budget (--budget) '
                                 'allows: see n.'])
        self.results.section('memory', '5. Peak memory (max RSS) of the '
                             'backup process', [
                                 'Peak RSS of each operation: the backup '
                                 'process trims its heap (malloc_trim) and '
                                 'resets its peak (/proc/self/clear_refs) '
                                 'before the operation and reads ru_maxrss '
                                 'after it. The peak includes what an idle '
                                 'backup process holds (its start RSS, in the '
                                 'JSON: about 110-130 MiB).'])

    def sparse_layout(self, size):
        """(extents, stride in MiB) of the sparse volume."""
        sparse_mib = self.args.sparse_data_mib or size * 1024 // 8
        count = max(1, sparse_mib // 8)
        return count, size * 1024 // count

    def backup_volumes(self, size):
        sparse_count, sparse_stride = self.sparse_layout(size)
        volumes = {}
        for name, extent, stride, count in (
                ('full', 64 * MIB, 64 * MIB, size * 16),
                ('sparse', 8 * MIB, sparse_stride * MIB, sparse_count)):
            volume = self.new_volume(size)
            cinderenv.created(volume, self.lustre.create_volume(volume))
            path = self.lustre.local_path(volume)
            write_extents(path, extent, stride, count)
            volumes[name] = (volume, path)
        return volumes

    def backup_figures(self, size, volumes, kinds, compressions):
        res = self.results
        res.figure('backup.full.hash', 'backup', 'hashing limit, full',
                   size=size * GIB)
        res.figure('mem.limit', 'memory', 'peak RSS target', unit='MiB')
        res.figure('mem.peak.lustre', 'memory', 'Lustre, highest peak',
                   unit='MiB')
        for vol in volumes:
            for op in ('backup', 'restore'):
                res.figure('%s.%s.copy' % (op, vol), 'backup',
                           'copy limit %s, %s' % (op, vol), size=size * GIB)
            for comp in compressions:
                for kind in kinds:
                    for op in ('backup', 'restore'):
                        res.figure('%s.%s.%s.%s' % (op, vol, comp, kind),
                                   'backup', '%s %s %s/%s' % (
                                       DRIVER_NAMES[kind], op, vol, comp),
                                   size=size * GIB)
                        res.figure('mem.%s.%s.%s.%s' % (op, vol, comp, kind),
                                   'memory', '%s %s %s/%s' % (
                                       DRIVER_NAMES[kind], op, vol, comp),
                                   unit='MiB')

    # Cells with a target, or a target's denominator, run every round; the
    # others run in round 1 and then as the time budget allows, in this
    # order.
    PRIMARY_CELLS = [('full', 'none', 'lustre'), ('full', 'none', 'posix'),
                     ('full', 'zstd', 'lustre'), ('full', 'zstd', 'posix'),
                     ('sparse', 'none', 'lustre'), ('sparse', 'none', 'posix'),
                     ('sparse', 'zstd', 'lustre'), ('sparse', 'zstd', 'posix')]
    SECONDARY_CELLS = [('full', 'none', 'lustre1'),
                       ('full', 'zstd', 'lustre1'), ('full', 'none', 'nfs'),
                       ('sparse', 'none', 'nfs'),
                       ('sparse', 'zstd', 'nfs'), ('full', 'zstd', 'nfs'),
                       ('sparse', 'none', 'lustre1'),
                       ('sparse', 'zstd', 'lustre1')]

    def backup_rounds(self, volumes, kinds, compressions, target):
        runs = self.args.runs
        cost = {}
        self.failed_cells = set()
        for rnd in range(runs):
            cells = self.backup_cells(rnd, cost, volumes)
            self.hashing_limit(rnd, runs)
            for vol, (volume, path) in volumes.items():
                start = time.monotonic()
                self.copy_limit(vol, path, rnd, runs)
                cost[('copy', vol)] = time.monotonic() - start
                for comp in compressions:
                    for kind in rotate(kinds, rnd):
                        cell = (vol, comp, kind)
                        if cell not in cells or cell in self.failed_cells:
                            continue
                        start = time.monotonic()
                        self.backup_cell(cell, volume, path, target[0],
                                         target[1], rnd, runs)
                        cost[cell] = time.monotonic() - start
            self.results.figures['mem.limit'].add(rnd, 1024)
            peaks = [fig.samples[rnd] for key, fig in
                     self.results.figures.items()
                     if key.startswith('mem.') and key.endswith('.lustre')
                     and rnd in fig.samples]
            if peaks:
                self.results.figures['mem.peak.lustre'].add(rnd, max(peaks))

    def backup_cells(self, rnd, cost, volumes):
        """The cells of round ``rnd``, within the time budget."""
        runs = self.args.runs
        cells = list(self.PRIMARY_CELLS)
        if rnd == 0:
            return cells + self.SECONDARY_CELLS
        left = self.deadline - self.args.reserve - time.monotonic()
        need = (runs - rnd) * (sum(cost.get(c, 0) for c in cells) +
                               sum(cost.get(('copy', v), 0)
                                   for v in volumes))
        slack = left - need
        for cell in self.SECONDARY_CELLS:
            if cost.get(cell, 0) <= slack:
                cells.append(cell)
                slack -= cost.get(cell, 0)
        skipped = len(self.PRIMARY_CELLS + self.SECONDARY_CELLS) - len(cells)
        if skipped:
            self.log('backup: round %d skips %d cells to stay within the '
                     'time budget' % (rnd + 1, skipped))
        return cells

    def hashing_limit(self, rnd, runs):
        """Time to hash the volume as the chunked format asks, no I/O."""
        size = self.args.backup_gib * GIB
        data = os.urandom(64 * MIB)
        threads = os.cpu_count() or 1
        parts = size // len(data)

        def work(index):
            view = memoryview(data)
            for _ in range(index, parts, threads):
                for pos in range(0, len(view), 32 * 1024):
                    hashlib.sha256(view[pos:pos + 32 * 1024]).digest()
                hashlib.md5(data, usedforsecurity=False).digest()

        def all_cores():
            with futures.ThreadPoolExecutor(threads) as pool:
                list(pool.map(work, range(threads)))

        seconds, _out = self.timed(all_cores)
        self.results.figures['backup.full.hash'].add(rnd, seconds)
        self.progress('backup', rnd, runs, 'hashing limit, full', seconds,
                      self.rate(seconds, size))

    def copy_limit(self, vol, path, rnd, runs):
        res = self.results
        copy = os.path.join(self.paths['scratch'], 'limit-%s' % vol)
        restored = os.path.join(self.paths['scratch'], 'limit-%s-restored'
                                % vol)
        self.env.settle()
        seconds, _out = self.timed(benchenv.run, ['cp', '--sparse=always',
                                                  path, copy])
        res.figures['backup.%s.copy' % vol].add(rnd, seconds)
        self.progress('backup', rnd, runs, 'copy limit backup, %s' % vol,
                      seconds, self.rate(seconds))
        self.env.settle()

        def restore():
            benchenv.run(['cp', '--sparse=always', copy, restored])
            benchenv.run(['sync', restored])

        seconds, _out = self.timed(restore)
        res.figures['restore.%s.copy' % vol].add(rnd, seconds)
        self.progress('backup', rnd, runs, 'copy limit restore, %s' % vol,
                      seconds, self.rate(seconds))
        os.unlink(copy)
        os.unlink(restored)
        self.env.trim()

    @staticmethod
    def rate(seconds, size=4 * GIB):
        return report._rate(size / seconds) if seconds else ''

    def backup_cell(self, cell, volume, path, target, target_path, rnd,
                    runs):
        vol, comp, kind = cell
        worker = self.workers[kind]
        suffix = '%s.%s.%s' % (vol, comp, kind)
        label = '%s %s/%s' % (DRIVER_NAMES[kind], vol, comp)
        self.env.settle()
        args = {'volume_id': volume.id, 'path': path, 'compression': comp,
                'size': volume.size}
        try:
            backup = worker.call('backup', **args)
            self.record_backup_op('backup', suffix, rnd, runs, label, backup,
                                  start_rss_mib=backup['start_rss_kib'] / 1024,
                                  stored_bytes=backup['stored_bytes'],
                                  data_bytes=backup['data_bytes'],
                                  objects=backup['objects'])
            self.env.settle()
            restore = worker.call('restore', backup_id=backup['backup_id'],
                                  volume_id=target.id, path=target_path)
            self.record_backup_op('restore', suffix, rnd, runs, label,
                                  restore,
                                  restored_file_bytes=restore['size'])
            if kind == 'lustre' and rnd == 0 and comp == 'none':
                self.check_same(path, target_path, label + ' restore')
            worker.call('delete', backup_id=backup['backup_id'])
        except Unmeasured as exc:
            self.failed_cells.add(cell)
            self.fail('backup', label, exc)
            if worker.proc.poll() is not None:
                self.workers[kind] = Worker(self.paths, kind,
                                            self.args.profile)
        self.env.trim()

    def record_backup_op(self, op, suffix, rnd, runs, label, found,
                         **extra):
        """Time and memory of a backup or restore the worker reported."""
        peak_mib = found['peak_rss_kib'] / 1024
        self.results.figures['%s.%s' % (op, suffix)].add(
            rnd, found['seconds'], peak_rss_mib=peak_mib,
            init_seconds=found['init_seconds'], **extra)
        self.results.figures['mem.%s.%s' % (op, suffix)].add(rnd, peak_mib)
        self.progress('backup', rnd, runs, '%s %s' % (label, op),
                      found['seconds'], '%s, peak %d MiB' % (
                          self.rate(found['seconds']), peak_mib))

    def backup_ratios(self, volumes, compressions, kinds):
        res = self.results
        for op in ('backup', 'restore'):
            for vol in volumes:
                for comp in compressions:
                    for kind in kinds:
                        key = '%s.%s.%s.%s' % (op, vol, comp, kind)
                        if not res.figures[key].n:
                            continue
                        res.ratio('%s.copy' % key, 'backup',
                                  '%s %s %s/%s vs copy limit (speed)' % (
                                      DRIVER_NAMES[kind], op, vol, comp),
                                  key, '%s.%s.copy' % (op, vol), speed=True,
                                  chart=kind != 'nfs')
                    for other in kinds[1:]:
                        key = '%s.%s.%s' % (op, vol, comp)
                        if (res.figures[key + '.lustre'].n and
                                res.figures[key + '.' + other].n):
                            res.ratio('%s.vs.%s' % (key, other), 'backup',
                                      'Lustre vs %s %s %s/%s (speed)' % (
                                          DRIVER_NAMES[other], op, vol,
                                          comp),
                                      key + '.lustre', key + '.' + other,
                                      speed=True, chart=other == 'posix')
        res.ratio('backup.full.none.lustre.hash', 'backup',
                  'Lustre backup full/none vs hashing limit (speed)',
                  'backup.full.none.lustre', 'backup.full.hash', speed=True)
        res.ratio('mem.peak.lustre.limit', 'memory',
                  'Lustre highest peak RSS vs 1 GiB', 'mem.peak.lustre',
                  'mem.limit', chart=False)

    def backup_targets(self):
        res = self.results
        for key, label, ratio, op, threshold in (
                ('backup-full', 'Backup, full, none: >= 2x '
                 'PosixBackupDriver', 'backup.full.none.vs.posix', '>=', 2),
                ('backup-full-hash', 'Backup, full, none: >= 0.8x the '
                 'hashing limit', 'backup.full.none.lustre.hash', '>=', 0.8),
                ('backup-full-zstd', 'Backup, full, zstd: >= 1.8x '
                 'PosixBackupDriver', 'backup.full.zstd.vs.posix', '>=', 1.8),
                ('restore-full', 'Restore, full, none: >= 0.9x the copy '
                 'limit', 'restore.full.none.lustre.copy', '>=', 0.9),
                ('restore-full-zstd', 'Restore, full, zstd: >= 0.9x the copy '
                 'limit', 'restore.full.zstd.lustre.copy', '>=', 0.9),
                ('memory', 'Peak RSS of every Lustre backup and restore: '
                 '<= 1 GiB', 'mem.peak.lustre.limit', '<=', 1.0)):
            if ratio in res.ratios:
                res.target(key, label, ratio, op, threshold)
        for op in ('backup', 'restore'):
            for comp in ('none', 'zstd'):
                ratio = '%s.sparse.%s.vs.posix' % (op, comp)
                if ratio in res.ratios:
                    res.target('%s-sparse-%s' % (op, comp),
                               '%s, sparse volume, %s: >= 4x '
                               'PosixBackupDriver' % (op.capitalize(),
                                                      comp),
                               ratio, '>=', 4)

    # The run

    def run(self):
        self.setup()
        for name in self.args.only:
            try:
                getattr(self, 'section_' + name)()
            except Exception as exc:
                self.fail(name, 'section stopped', exc)
                self.log(traceback.format_exc())
            print(report.table(self.results, name), flush=True)
            if name == 'backup':
                print(report.table(self.results, 'memory'), flush=True)

    def stop_workers(self):
        for worker in self.workers.values():
            worker.stop()
        self.workers = {}

    def write_outputs(self, status, warnings):
        results_dir = self.args.results
        os.makedirs(results_dir, exist_ok=True)
        stamp = self.stamp
        base = os.path.join(results_dir, 'bench-%s' % stamp)
        wall = time.monotonic() - self.start
        machine = dict(self.machine)
        machine['load_average_at_end'] = os.getloadavg()
        data = {
            'version': 1,
            'started': time.strftime('%Y-%m-%dT%H:%M:%SZ',
                                     time.gmtime(self.started)),
            'wall_seconds': wall,
            'exit_status': status,
            'command': sys.argv,
            'settings': {
                'runs': self.args.runs, 'stats_runs': self.args.stats_runs,
                'clone_runs': self.args.clone_runs,
                'budget_seconds': self.args.budget,
                'sections': self.args.only,
                'image_size_gib': self.args.image_size,
                'nfs_max_gib': self.args.nfs_max_gib,
                'profile': self.args.profile,
            },
            'machine': machine,
            'unmeasured': self.unmeasured,
            'cleanup_warnings': warnings,
        }
        data.update(self.results.as_dict())
        benchenv.json_dump(base + '.json', data)
        text = (report.table(self.results) + '\n' +
                report.targets_summary(self.results) + '\n')
        with open(base + '.txt', 'w') as f:
            f.write(text)
        png = None
        try:
            png = report.chart(self.results, base + '.png',
                               'cinder-lustre benchmark %s (%s, %d CPUs)' % (
                                   stamp, machine.get('cpu_model', '?'),
                                   machine.get('cpus') or 0))
        except Exception as exc:
            self.log('no chart: %s' % exc)
        for suffix in ('.json', '.txt', '.png'):
            if os.path.exists(base + suffix):
                shutil.copyfile(base + suffix,
                                os.path.join(results_dir, 'latest' + suffix))
        return base, png, text, wall


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description='Benchmark the Lustre drivers against Cinder\'s NFS '
                    'and POSIX/NFS backup drivers and the copy limit, on '
                    'the Lustre stand-in (root).')
    parser.add_argument('--only', default=','.join(SECTIONS),
                        help='sections to run, comma separated (default: '
                             '%(default)s)')
    parser.add_argument('--runs', type=int, default=3,
                        help='rounds of the create and backup sections '
                             '(default: %(default)s)')
    parser.add_argument('--stats-runs', type=int, default=15,
                        help='rounds of the stats section (default: '
                             '%(default)s)')
    parser.add_argument('--clone-runs', type=int, default=3,
                        help='rounds of the clone section (default: '
                             '%(default)s)')
    parser.add_argument('--budget', type=float,
                        default=float(os.environ.get('BENCH_BUDGET', 900)),
                        help='seconds the run should take at most; backup '
                             'cells without a target get their extra '
                             'rounds only within it (default: %(default)s, '
                             'or $BENCH_BUDGET)')
    parser.add_argument('--reserve', type=float, default=45,
                        help=argparse.SUPPRESS)
    parser.add_argument('--backup-gib', type=int, default=4,
                        help='size of the volumes of the backup section '
                             '(default: %(default)s)')
    parser.add_argument('--sparse-data-mib', type=int,
                        help='MiB of data in the sparse volume of the backup '
                             'section, in 8 MiB extents (default: 1/8 of '
                             'its size)')
    parser.add_argument('--nfs-max-gib', type=int, default=10,
                        help='largest NfsDriver thick create measured; '
                             'larger ones are extrapolated (default: '
                             '%(default)s)')
    parser.add_argument('--image-size', type=int, default=160,
                        help='GiB of the sparse stand-in image (default: '
                             '%(default)s)')
    parser.add_argument('--results', default=os.environ.get(
        'BENCH_RESULTS', os.path.join(HERE, 'results')),
        help='directory of the JSON, text and PNG outputs (default: '
             'tools/bench/results, or $BENCH_RESULTS)')
    parser.add_argument('--profile', metavar='DIR',
                        help='write cProfile data of every backup and '
                             'restore to DIR (the backup processes then '
                             'run without eventlet, so that the profile '
                             'sees the work of the thread pool)')
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(',')
                 if name.strip()]
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error('unknown sections: %s' % ', '.join(sorted(unknown)))
    if args.runs < 1 or args.stats_runs < 1 or args.clone_runs < 1:
        parser.error('every section needs at least one round')
    if args.profile:
        args.profile = os.path.abspath(args.profile)
        os.makedirs(args.profile, exist_ok=True)
    return args


def _terminate(signum, _frame):
    raise KeyboardInterrupt('signal %d' % signum)


def main(argv):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    bench = Bench(args)
    status = 0
    try:
        bench.run()
    except benchenv.SetupError as exc:
        bench.log('cannot run the benchmark: %s' % exc)
        status = 2
    except KeyboardInterrupt as exc:
        bench.log('interrupted (%s): cleaning up' % (exc or 'Ctrl-C'))
        bench.unmeasured.append('interrupted')
        status = 1
    except Exception as exc:
        bench.log('failed: %s\n%s' % (exc, traceback.format_exc()))
        bench.unmeasured.append('failed: %s' % exc)
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        bench.stop_workers()
        if bench.paths and os.path.exists(bench.paths['log']):
            os.makedirs(args.results, exist_ok=True)
            shutil.copyfile(bench.paths['log'], os.path.join(
                args.results, 'bench-%s.cinder.log'
                % bench.stamp))
        warnings = bench.env.close()
        bench.log('cleaned up: mounts, loop device, stand-in state%s%s' % (
            ', NFS shim' if bench.env.shim_installed_here else '',
            ', stand-in installation' if bench.env.standin_installed_here
            else ''))
        for warning in warnings:
            bench.log('cleanup warning: %s' % warning)
    if status == 0 and bench.unmeasured:
        status = 1
    if bench.results.figures:
        base, png, text, wall = bench.write_outputs(status, warnings)
        print(text)
        for item in bench.unmeasured:
            print('NOT MEASURED: %s' % item.splitlines()[0])
        print('\nresults: %s.json, %s.txt%s' % (
            base, base, ', %s' % png if png else ''))
        print('wall time: %d min %02d s; exit status %d' % (
            wall // 60, wall % 60, status))
    return status


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
