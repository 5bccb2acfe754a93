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

"""A backup process of the benchmark: one backup driver, as cinder-backup.

The benchmark starts one worker per backup driver and sends it commands,
one JSON object a line on stdin; each answer is one JSON line.  The worker
runs like cinder-backup: eventlet monkey patching first, a real
configuration and database, the driver built for each operation (as the
backup manager does), the volume file opened ``rb`` for a backup and
``wb`` for a restore into a new volume.

Peak memory is the process's own: before each operation the peak RSS is
reset (``/proc/self/clear_refs``, 5), so that ``ru_maxrss`` after it is
the peak of that operation alone.
"""

from cinder import monkey_patch  # noqa: I100 -- before anything else
monkey_patch.patch()

import contextlib  # noqa: E402,I100
import cProfile  # noqa: E402
import ctypes  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import cinderenv  # noqa: E402  (beside this file, first in sys.path)

CONF = cinderenv.CONF


def rss_kib(field):
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return 0


def reset_peak():
    """Start a new peak RSS from a trimmed heap.

    Memory that an earlier operation freed stays in glibc's arenas (those
    of eventlet's pool threads too) and would count in the next peak:
    collect and trim first, so that every operation starts from the same
    baseline (an idle backup process).
    """
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


class Worker(object):

    def __init__(self, paths, driver, profile_dir=None):
        self.paths = paths
        self.kind = driver
        self.profile_dir = profile_dir
        self.profiles = 0
        cinderenv.setup(paths)
        self.ctx = cinderenv.admin_context()
        # The drivers register their options when imported.
        from cinder.backup.drivers import lustre  # noqa: F401
        from cinder.backup.drivers import nfs  # noqa: F401
        from cinder.backup.drivers import posix  # noqa: F401
        if driver in ('lustre', 'lustre1'):
            # lustre1: the same driver, its pipeline limited to one thread.
            CONF.set_override('backup_lustre_threads',
                              1 if driver == 'lustre1' else 0)
            CONF.set_override('backup_lustre_share',
                              paths['backup_lustre_share'])
            CONF.set_override('backup_lustre_mount_point_base',
                              paths['backup_lustre_mount_base'])
        elif driver == 'nfs':
            CONF.set_override('backup_share', paths['backup_nfs_share'])
            CONF.set_override('backup_mount_point_base',
                              paths['backup_nfs_mount_base'])
        elif driver == 'posix':
            CONF.set_override('backup_posix_path',
                              paths['backup_posix_path'])
        self.driver(None)  # mounts now, so that no operation pays for it

    @contextlib.contextmanager
    def profile(self, what):
        """Profile an operation into the profile directory, if one is set.

        cProfile sees the calling thread only: the work that eventlet's
        thread pool does shows as time spent in tpool's execute.
        """
        if not self.profile_dir:
            yield
            return
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            yield
        finally:
            profiler.disable()
            self.profiles += 1
            profiler.dump_stats(os.path.join(
                self.profile_dir, '%s-%s-%02d.prof' % (self.kind, what,
                                                       self.profiles)))

    def driver(self, compression):
        """Build the driver, as the backup manager does per operation."""
        from cinder.backup.drivers import lustre
        from cinder.backup.drivers import nfs
        from cinder.backup.drivers import posix
        if compression:
            CONF.set_override('backup_compression_algorithm', compression)
        cls = {'lustre': lustre.LustreBackupDriver,
               'lustre1': lustre.LustreBackupDriver,
               'nfs': nfs.NFSBackupDriver,
               'posix': posix.PosixBackupDriver}[self.kind]
        driver = cls(self.ctx)
        driver.check_for_setup_error()
        return driver

    def backup(self, volume_id, path, compression, size):
        from cinder import objects
        start = time.perf_counter()
        driver = self.driver(compression)
        init = time.perf_counter() - start
        backup = cinderenv.new_backup(self.ctx, volume_id, size)
        reset_peak()
        start_rss = rss_kib('VmRSS')
        start = time.perf_counter()
        with open(path, 'rb') as volume_file, self.profile('backup'):
            driver.backup(backup, volume_file)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        backup = objects.Backup.get_by_id(self.ctx, backup.id)
        backup.status = 'available'
        backup.save()
        metadata = driver._read_metadata(backup)
        stored = sum(os.path.getsize(os.path.join(
            driver.backup_path, backup.container, name))
            for name in os.listdir(os.path.join(driver.backup_path,
                                                backup.container)))
        return {'backup_id': backup.id, 'seconds': seconds,
                'init_seconds': init, 'start_rss_kib': start_rss,
                'peak_rss_kib': peak,
                'objects': len(metadata['objects']),
                'data_bytes': sum(obj['length']
                                  for item in metadata['objects']
                                  for obj in item.values()),
                'stored_bytes': stored}

    def restore(self, backup_id, volume_id, path):
        from cinder import objects
        backup = objects.Backup.get_by_id(self.ctx, backup_id)
        start = time.perf_counter()
        driver = self.driver(None)
        init = time.perf_counter() - start
        backup.status = 'restoring'
        backup.save()
        reset_peak()
        start_rss = rss_kib('VmRSS')
        start = time.perf_counter()
        # As the backup manager does for a volume file: 'wb', new volume.
        with open(path, 'wb') as volume_file, self.profile('restore'):
            driver.restore(backup, volume_id, volume_file, True)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        backup.status = 'available'
        backup.save()
        return {'seconds': seconds, 'init_seconds': init,
                'start_rss_kib': start_rss, 'peak_rss_kib': peak,
                'size': os.path.getsize(path)}

    def delete(self, backup_id):
        from cinder import objects
        backup = objects.Backup.get_by_id(self.ctx, backup_id)
        self.driver(None).delete_backup(backup)
        backup.destroy()
        return {}


def main():
    paths = json.loads(sys.argv[1])
    kind = sys.argv[2]
    profile_dir = sys.argv[3] if len(sys.argv) > 3 else None
    # Answers go to the original stdout; anything else printing to
    # stdout (a library, a warning) lands on stderr instead.
    answers = os.fdopen(os.dup(1), 'w', buffering=1)
    os.dup2(2, 1)
    try:
        worker = Worker(paths, kind, profile_dir)
        answers.write(json.dumps({'ok': True, 'pid': os.getpid()}) + '\n')
    except Exception:
        answers.write(json.dumps({'ok': False,
                                  'error': traceback.format_exc()}) + '\n')
        return 1
    for line in sys.stdin:
        command = json.loads(line)
        op = command.pop('op')
        if op == 'exit':
            break
        try:
            answer = getattr(worker, op)(**command)
            answer['ok'] = True
        except Exception:
            answer = {'ok': False, 'error': traceback.format_exc()}
        answers.write(json.dumps(answer) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
