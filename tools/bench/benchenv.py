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

"""The machine side of the benchmark: stand-in, NFS shim, mounts, cleanup.

Everything the benchmark creates on the machine is made here and undone by
:meth:`Environment.close`, which is safe to call at any point and more than
once: a private stand-in configuration and state directory (its sparse
image, loop device and mounts), the NFS mount helper shim when there was
none, the stand-in itself when it was not installed.  A run killed before
it could clean up is swept by the next run (:func:`sweep_stale_runs`).
"""

import configparser
import glob
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import cinderenv

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
STANDIN_SRC = os.path.join(REPO, 'tools', 'lustre-standin')
STANDIN_ADMIN = '/usr/local/sbin/lustre-standin'
# The same command from the tree: usable before the install and after the
# uninstall.
STANDIN_TREE_ADMIN = os.path.join(STANDIN_SRC, 'lustre-standin')
NFS_HELPER = '/sbin/mount.nfs'
WORK_PREFIX = 'cinder-lustre-bench.'
WORK_PARENT = '/var/tmp'
SHIM_MARKER = '# cinder-lustre-bench temporary NFS mount helper'
# The shim maps HOST:/path to a bind mount of /path (the NFS server would
# export that same directory); with no arguments it fails like mount.nfs.
SHIM = '''#!/bin/sh
%(marker)s, run %(pid)d.
# Removed by the benchmark when it ends; safe to delete if that run is gone.
if [ $# -lt 2 ]; then
    echo "usage: mount.nfs remotetarget dir [-rvVwfnsh] [-o nfsoptions]" >&2
    exit 1
fi
exec /bin/mount --bind "${1#*:}" "$2"
'''


class SetupError(Exception):
    """The machine cannot run the benchmark (nothing was measured)."""


def run(cmd, check=True, timeout=None, env=None):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, env=env)
    if check and proc.returncode:
        raise RuntimeError('%s failed (%d): %s' % (' '.join(cmd),
                                                   proc.returncode,
                                                   proc.stdout.strip()))
    return proc.stdout


def mounts_under(path):
    """Mount points at or below ``path``, deepest (and newest) first."""
    found = []
    with open('/proc/self/mountinfo') as mountinfo:
        for number, line in enumerate(mountinfo):
            point = line.split()[4].replace('\\040', ' ')
            if point == path or point.startswith(path.rstrip('/') + '/'):
                found.append((point.count('/'), number, point))
    return [point for _depth, _n, point in sorted(found, reverse=True)]


def unmount_all(path, warnings):
    """Unmount everything at or below ``path``; lazy unmounts are warned."""
    out = run([sys.executable, STANDIN_TREE_ADMIN, 'unmount', path],
              check=False).strip()
    if out:
        warnings.append(out)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def sweep_stale_runs(log):
    """Undo what earlier runs that were killed (SIGKILL) left behind."""
    for work in glob.glob(os.path.join(WORK_PARENT, WORK_PREFIX + '*')):
        try:
            with open(os.path.join(work, 'owner.pid')) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            pid = None
        if pid is not None and pid_alive(pid):
            continue
        log('removing what a killed run left in %s' % work)
        warnings = []
        unmount_all(work, warnings)
        conf = os.path.join(work, 'standin.conf')
        if os.path.exists(conf) and os.path.exists(STANDIN_ADMIN):
            run([STANDIN_ADMIN, '--config', conf, 'cleanup'], check=False)
        shutil.rmtree(work, ignore_errors=True)
    try:
        with open(NFS_HELPER) as f:
            text = f.read()
    except OSError:
        return
    if SHIM_MARKER in text:
        try:
            pid = int(text.split(', run ')[1].split('.')[0])
        except (IndexError, ValueError):
            pid = None
        if pid is None or not pid_alive(pid):
            log('removing the NFS helper shim a killed run left')
            os.unlink(NFS_HELPER)


class Environment(object):
    """Stand-in filesystem, mounts and helpers for one benchmark run."""

    def __init__(self, image_size_gib, log):
        self.log = log
        self.image_size_gib = image_size_gib
        self.work = None
        self.paths = None
        self.standin_installed_here = False
        self.shim_installed_here = False
        self.loop = None
        self.loop_dio = None
        self.warnings = []
        self.closed = False

    # Set up

    def open(self):
        if os.geteuid() != 0:
            raise SetupError('the benchmark mounts filesystems: run it '
                             'as root')
        for tool in ('qemu-img', 'fallocate', 'fstrim', 'losetup', 'du',
                     'cp', 'dd', 'mount', 'umount', 'mkfs.ext4', 'sync'):
            if not shutil.which(tool, path='/usr/sbin:/usr/bin:/sbin:/bin'):
                raise SetupError('%s is missing (Debian: apt-get install '
                                 'qemu-utils util-linux e2fsprogs '
                                 'coreutils)' % tool)
        sweep_stale_runs(self.log)
        self.work = tempfile.mkdtemp(prefix=WORK_PREFIX, dir=WORK_PARENT)
        with open(os.path.join(self.work, 'owner.pid'), 'w') as f:
            f.write('%d\n' % os.getpid())
        needed = 30 * 1024 ** 3
        if free_bytes(self.work) < needed:
            raise SetupError(
                '%s has %.1f GiB free; the benchmark writes up to about 20 '
                'GiB at a time and needs 30' %
                (WORK_PARENT, free_bytes(self.work) / 1024 ** 3))
        self.paths = cinderenv.layout(self.work)
        self._install_standin()
        self._configure_standin()
        self._mount_root()
        self._install_shim()
        return self.paths

    def _install_standin(self):
        if os.path.exists(STANDIN_ADMIN):
            self.log('using the Lustre stand-in installed on this machine')
            return
        self.log('installing the Lustre stand-in (removed at the end)')
        run([sys.executable, os.path.join(STANDIN_SRC, 'install')])
        self.standin_installed_here = True

    def _configure_standin(self):
        conf = os.path.join(self.work, 'standin.conf')
        parser = configparser.ConfigParser()
        parser['standin'] = {'state_dir': os.path.join(self.work, 'standin'),
                             'auto_create': 'no'}
        parser['fs:%s' % cinderenv.FSNAME] = {
            'size': '%dG' % self.image_size_gib, 'osts': '4'}
        with open(conf, 'w') as f:
            parser.write(f)
        self.conf = conf
        # mount(8) hands the environment on to mount.lustre.
        os.environ['LUSTRE_STANDIN_CONF'] = conf
        for fileset in cinderenv.FILESETS + cinderenv.STATS_FILESETS:
            self.admin('mkdir', cinderenv.FSNAME, fileset)

    def admin(self, *args):
        return run([STANDIN_ADMIN, '--config', self.conf] + list(args))

    def _mount_root(self):
        """Mount the whole filesystem, and make its loop device direct.

        The stand-in's loop device writes through the host's page cache,
        so every byte is cached twice and dirty data is copied once more
        before it reaches the disk.  With direct I/O on the loop device the
        filesystem sees a disk as it would on a real OST; every contender
        gets the same.
        """
        root = self.paths['root_mount']
        os.makedirs(root)
        run(['mount', '-t', 'lustre', '-o', 'flock',
             self.paths['root_device'], root])
        for name in cinderenv.DIRECTORIES:
            os.makedirs(os.path.join(root, name), exist_ok=True)
        os.chmod(os.path.join(root, cinderenv.NFS_BACKUP_DIR), 0o775)
        image = os.path.join(self.work, 'standin', 'images',
                             cinderenv.FSNAME + '.img')
        out = run(['losetup', '--noheadings', '--output', 'NAME',
                   '--associated', image]).split()
        self.loop = out[0] if out else None
        self.image = image
        if self.loop:
            proc = subprocess.run(['losetup', '--direct-io=on', self.loop],
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
            if proc.returncode:
                self.warnings.append('loop device stays buffered: %s'
                                     % proc.stdout.strip())
            try:
                with open('/sys/block/%s/loop/dio'
                          % os.path.basename(self.loop)) as f:
                    self.loop_dio = f.read().strip() == '1'
            except OSError:
                self.loop_dio = None

    def _install_shim(self):
        if os.path.lexists(NFS_HELPER):
            with open(NFS_HELPER, errors='replace') as f:
                text = f.read()
            self.log('%s exists (%s): using it' % (
                NFS_HELPER, 'a bind-mount shim' if 'bind' in text
                else 'not a shim we know'))
            return
        with open(NFS_HELPER, 'w') as f:
            f.write(SHIM % {'marker': SHIM_MARKER, 'pid': os.getpid()})
        os.chmod(NFS_HELPER, 0o755)
        self.shim_installed_here = True
        self.log('installed a temporary %s (bind mounts; removed at the '
                 'end)' % NFS_HELPER)

    # During the run

    def settle(self):
        """Write back our filesystem's dirty data (not timed)."""
        run(['sync', '-f', self.paths['root_mount']])

    def trim(self):
        """Give the host back the blocks of deleted files.

        The image is sparse; the filesystem in it does not discard, so
        deleted data would keep its blocks in the image file.
        """
        self.settle()
        run(['fstrim', self.paths['root_mount']], check=False)

    def check_space(self, needed_bytes, what):
        free = free_bytes(self.work)
        if free < needed_bytes + 10 * 1024 ** 3:
            raise RuntimeError('%s needs %.0f GiB on the host disk and %s '
                               'has %.1f GiB free' % (
                                   what, needed_bytes / 1024 ** 3,
                                   WORK_PARENT, free / 1024 ** 3))

    # Clean up

    def close(self):
        """Undo everything; safe at any point, and more than once."""
        if self.closed:
            return self.warnings
        self.closed = True
        old = {sig: signal.signal(sig, signal.SIG_IGN)
               for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            if self.work:
                unmount_all(self.work, self.warnings)
                if os.path.exists(STANDIN_ADMIN) and getattr(self, 'conf',
                                                             None):
                    out = run([STANDIN_ADMIN, '--config', self.conf,
                               'cleanup'], check=False)
                    if out.strip():
                        self.warnings.append('stand-in cleanup: %s'
                                             % out.strip())
                left = mounts_under(self.work)
                if left:
                    self.warnings.append('still mounted: %s'
                                         % ', '.join(left))
                else:
                    shutil.rmtree(self.work, ignore_errors=True)
            if self.shim_installed_here:
                try:
                    with open(NFS_HELPER) as f:
                        ours = SHIM_MARKER in f.read()
                except OSError:
                    ours = False
                if ours:
                    os.unlink(NFS_HELPER)
            if self.standin_installed_here:
                run([sys.executable, os.path.join(STANDIN_SRC, 'uninstall')],
                    check=False)
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
        return self.warnings


# The machine


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ''


def describe_machine(env):
    """CPU, memory, kernel, and the filesystems under the stand-in."""
    cpu = [line.split(':', 1)[1].strip()
           for line in _read('/proc/cpuinfo').splitlines()
           if line.startswith('model name')]
    meminfo = {line.split(':')[0]: int(line.split()[1]) * 1024
               for line in _read('/proc/meminfo').splitlines()
               if len(line.split()) >= 2 and line.split()[1].isdigit()}
    os_release = dict(
        line.split('=', 1) for line in _read('/etc/os-release').splitlines()
        if '=' in line)
    host_fs = run(['findmnt', '--noheadings', '--output',
                   'SOURCE,FSTYPE,OPTIONS', '--target', env.work],
                  check=False).strip()
    try:
        qemu = run(['qemu-img', '--version']).splitlines()[0]
    except Exception:
        qemu = 'unknown'
    try:
        from importlib import metadata
        versions = {name: metadata.version(name)
                    for name in ('cinder', 'os-brick', 'zstd', 'eventlet')}
    except Exception:
        versions = {}
    rotational = _read('/sys/block/%s/queue/rotational' % os.path.basename(
        host_fs.split()[0]) if host_fs else '').strip()
    return {
        'cpu_model': cpu[0] if cpu else platform.processor(),
        'cpus': os.cpu_count(),
        'memory_bytes': meminfo.get('MemTotal'),
        'memory_available_bytes_at_start': meminfo.get('MemAvailable'),
        'kernel': ' '.join(platform.uname()[2:4]),
        'os': os_release.get('PRETTY_NAME', '').strip('"'),
        'python': platform.python_version(),
        'versions': versions,
        'qemu_img': qemu,
        'load_average_at_start': os.getloadavg(),
        'standin': {
            'filesystem': 'ext4 (4 KiB blocks, no discard) on a sparse %d '
                          'GiB image, %s' % (
                              env.image_size_gib,
                              'loop device with direct I/O' if env.loop_dio
                              else 'buffered loop device'),
            'loop_direct_io': env.loop_dio,
            'image': env.image,
            'host_filesystem': host_fs,
            'host_disk_rotational': rotational or 'unknown',
        },
    }


def json_dump(path, data):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write('\n')
    os.rename(tmp, path)


def elapsed_since(start):
    return time.monotonic() - start
