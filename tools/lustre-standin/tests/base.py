"""Shared fixtures: a private configuration, state directory and mounts.

Every test class gets its own temporary directory holding its
configuration (passed to the tools through LUSTRE_STANDIN_CONF), its state
directory and its mount points, with small images.  Whatever a test does,
the class cleanup unmounts everything under that directory and detaches
every loop device backed by an image in it before deleting it.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

from lustre_standin import server
from lustre_standin import state

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOUNT_HELPER = os.path.join(TOOLS, 'mount.lustre')
LFS = os.path.join(TOOLS, 'lfs')
ADMIN = os.path.join(TOOLS, 'lustre-standin')
INSTALL = os.path.join(TOOLS, 'install')
UNINSTALL = os.path.join(TOOLS, 'uninstall')
# The system interpreter: unprivileged users cannot reach root's pyenv.
SYSTEM_PYTHON = '/usr/bin/python3'
TOOL_PATH = '/usr/sbin:/usr/bin:/sbin:/bin'


def run(args, env=None, user=None, timeout=60):
    """Run a command; return the CompletedProcess (text output)."""
    if user:
        args = ['runuser', '-u', user, '--'] + list(args)
    return subprocess.run(args, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=timeout)


def mounts_under(path):
    """Mount points below ``path``, last mounted first."""
    below = path.rstrip('/') + '/'
    return [mount.mountpoint for mount in reversed(state.MountTable().mounts)
            if mount.mountpoint.startswith(below)]


def loops_under(path):
    """Loop devices whose backing file lies below ``path``."""
    out = run(['losetup', '--noheadings', '--output', 'NAME,BACK-FILE',
               '--list']).stdout
    loops = []
    for line in out.splitlines():
        name, _sep, back = line.strip().partition(' ')
        if back.strip().startswith(path.rstrip('/') + '/'):
            loops.append(name)
    return loops


def force_cleanup(path):
    """Unmount and detach everything of a test directory, in any state."""
    server.unmount_under(path)
    for loop in loops_under(path):
        run(['losetup', '--detach', loop])


class StandinTestCase(unittest.TestCase):
    """Base class: a private stand-in configuration per test class."""

    image_size = '256M'
    osts = 4
    fs_sections = ''
    extra_settings = ''

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if os.geteuid() != 0:
            raise unittest.SkipTest('the stand-in tests need root')
        cls.tmp = tempfile.mkdtemp(prefix='standin-test-')
        cls.addClassCleanup(cls._remove_tmp)
        # Unprivileged lfs runs must reach the mounts and configuration.
        os.chmod(cls.tmp, 0o755)
        cls.state_dir = os.path.join(cls.tmp, 'state')
        cls.conf = os.path.join(cls.tmp, 'standin.conf')
        settings = (cls.state_dir, cls.image_size, cls.osts,
                    cls.extra_settings, cls.fs_sections)
        with open(cls.conf, 'w') as out:
            out.write('[standin]\nstate_dir = %s\nimage_size = %s\n'
                      'osts = %d\n%s\n%s' % settings)
        os.chmod(cls.conf, 0o644)
        cls.env = dict(os.environ, LUSTRE_STANDIN_CONF=cls.conf,
                       PYTHONDONTWRITEBYTECODE='1')

    @classmethod
    def _remove_tmp(cls):
        run([ADMIN, 'cleanup'], env=cls.env)
        force_cleanup(cls.tmp)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def mountpoint(self, name):
        path = os.path.join(self.tmp, name)
        os.makedirs(path, exist_ok=True)
        return path

    def mount(self, spec, name, options='rw,flock', expect=0):
        """Mount through the helper, as mount(8) calls it."""
        mountpoint = self.mountpoint(name)
        result = run([MOUNT_HELPER, spec, mountpoint, '-o', options],
                     env=self.env)
        if result.returncode == 0:
            self.addCleanup(self.umount, mountpoint)
        self.assertEqual(expect, result.returncode, result.stderr)
        return mountpoint

    @staticmethod
    def umount(mountpoint):
        if mountpoint in mounts_under(os.path.dirname(mountpoint)):
            run(['umount', mountpoint])

    def lfs(self, *args, user=None):
        """Run lfs; as ``user`` it runs with the system interpreter."""
        cmd = [SYSTEM_PYTHON, LFS] if user else [LFS]
        return run(cmd + list(args), env=self.env, user=user)

    def admin(self, *args):
        return run([ADMIN] + list(args), env=self.env)

    def assertRun(self, result, status=0, stdout=None, stderr=None):
        """Check a result's exit status and, optionally, its output."""
        self.assertEqual(status, result.returncode,
                         'stdout: %r\nstderr: %r' % (result.stdout,
                                                     result.stderr))
        if stdout is not None:
            self.assertEqual(stdout, result.stdout)
        if stderr is not None:
            self.assertEqual(stderr, result.stderr)
        return result
