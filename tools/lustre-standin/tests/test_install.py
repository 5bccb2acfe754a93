"""install and uninstall, under a fake root and (when safe) for real."""

import json
import os
import shutil
import tempfile
import unittest

from tests import base

INSTALLED = ('sbin/mount.lustre', 'usr/bin/lfs',
             'usr/local/sbin/lustre-standin')
MANIFEST = 'usr/local/lib/lustre-standin/MANIFEST.json'


def tree(root):
    """Every path below ``root``, relative to it."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


class PrefixInstallTest(unittest.TestCase):

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest('the stand-in tests need root')
        self.root = tempfile.mkdtemp(prefix='standin-root-')
        self.addCleanup(shutil.rmtree, self.root, True)
        self.addCleanup(base.force_cleanup, self.root)
        # Like a real system: these exist before the install.
        for directory in ('sbin', 'usr/bin', 'etc'):
            os.makedirs(os.path.join(self.root, directory))
        self.before = tree(self.root)

    def install(self, status=0):
        result = base.run([base.INSTALL, '--prefix', self.root])
        self.assertEqual(status, result.returncode, result.stderr)
        return result

    def uninstall(self):
        result = base.run([base.UNINSTALL, '--prefix', self.root])
        self.assertEqual(0, result.returncode, result.stderr)
        return result

    def test_install_is_complete_and_idempotent(self):
        self.install()
        for rel in INSTALLED:
            path = os.path.join(self.root, rel)
            with open(path) as src:
                text = src.read()
            self.assertTrue(text.startswith('#!/usr/bin/python3 -I\n'))
            self.assertIn("LIBDIR = '%s/usr/local/lib/lustre-standin'\n"
                          % self.root, text)
            self.assertTrue(os.access(path, os.X_OK))
        conf = os.path.join(self.root, 'etc/lustre-standin/standin.conf')
        with open(conf) as src:
            self.assertIn('state_dir = %s/var/lib/lustre-standin'
                          % self.root, src.read())
        first = tree(self.root)
        with open(conf, 'a') as out:
            out.write('# edited by the admin\n')
        self.install()
        self.assertEqual(first, tree(self.root))
        with open(conf) as src:
            self.assertIn('# edited by the admin', src.read())
        env = dict(os.environ, LUSTRE_STANDIN_CONF=conf)
        result = base.run([os.path.join(self.root, 'usr/bin/lfs'),
                           '--version'], env=env)
        self.assertEqual('lfs 2.15.6\n', result.stdout)
        with open(os.path.join(self.root, MANIFEST)) as src:
            manifest = json.load(src)
        self.assertEqual(conf, manifest['config'])
        self.uninstall()
        self.assertEqual(self.before, tree(self.root))
        self.uninstall()
        self.assertEqual(self.before, tree(self.root))

    def test_refuses_to_overwrite_a_real_client(self):
        for rel in ('usr/bin/lfs', 'sbin/mount.lustre'):
            foreign = os.path.join(self.root, rel)
            with open(foreign, 'w') as out:
                out.write('#!/bin/sh\necho real lustre\n')
            before = tree(self.root)
            result = self.install(status=1)
            self.assertIn('refusing to overwrite %s' % foreign,
                          result.stderr)
            self.assertEqual(before, tree(self.root))
            # uninstall leaves foreign files alone, too.
            self.uninstall()
            self.assertTrue(os.path.exists(foreign))
            os.unlink(foreign)

    def test_uninstall_unmounts_and_removes_state(self):
        self.install()
        conf = os.path.join(self.root, 'etc/lustre-standin/standin.conf')
        with open(conf, 'a') as out:
            out.write('\n[fs:tiny]\nsize = 64M\n')
        env = dict(os.environ, LUSTRE_STANDIN_CONF=conf)
        mountpoint = os.path.join(self.root, 'mnt')
        os.mkdir(mountpoint)
        result = base.run([os.path.join(self.root, 'sbin/mount.lustre'),
                           'mgs@tcp:/tiny', mountpoint, '-o', 'rw,flock'],
                          env=env)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn(mountpoint, base.mounts_under(self.root))
        # An already-gone client must not bother uninstall.
        base.run(['umount', mountpoint])
        self.uninstall()
        self.assertEqual([], base.mounts_under(self.root))
        self.assertEqual([], base.loops_under(self.root))
        self.assertFalse(os.path.exists(
            os.path.join(self.root, 'var/lib/lustre-standin')))
        os.rmdir(mountpoint)
        self.assertEqual(self.before | {'var', 'var/lib'},
                         tree(self.root) | {'var', 'var/lib'})


class SystemInstallTest(base.StandinTestCase):
    """The real thing: install to /, mount through mount(8), uninstall.

    Skipped when anything is already at the installed paths (a real Lustre
    client, or a stand-in someone installed): never touch those.
    """

    def test_mount_through_mount8(self):
        paths = ['/sbin/mount.lustre', '/usr/bin/lfs',
                 '/usr/local/sbin/lustre-standin',
                 '/usr/local/lib/lustre-standin', '/etc/lustre-standin',
                 '/var/lib/lustre-standin']
        present = [path for path in paths if os.path.lexists(path)]
        if present:
            self.skipTest('already present: %s' % ' '.join(present))
        self.addCleanup(base.run, [base.UNINSTALL])
        self.assertRun(base.run([base.INSTALL]))
        mountpoint = self.mountpoint('sys')
        env = dict(self.env, PATH=base.TOOL_PATH)
        result = base.run(['mount', '-t', 'lustre', '10.0.0.1@tcp:/sysfs',
                           mountpoint, '-o', 'flock'], env=env)
        self.assertRun(result)
        self.addCleanup(self.umount, mountpoint)
        self.assertIn(mountpoint, base.mounts_under(self.tmp))
        result = base.run(['lfs', 'setstripe', '-c', '2',
                           os.path.join(mountpoint, 'f')], env=env)
        self.assertRun(result)
        result = base.run(['lfs', 'getstripe', '-c',
                           os.path.join(mountpoint, 'f')], env=env,
                          user='nobody')
        self.assertRun(result, stdout='2\n\n')
        result = base.run(['mount', '-t', 'lustre', 'x@@tcp:/sysfs',
                           mountpoint, '-o', 'flock'], env=env)
        self.assertRun(result, 22)
        self.assertIn("Can't parse NID", result.stderr)
        self.assertRun(base.run(['umount', mountpoint]))
        self.assertRun(base.run([base.UNINSTALL]))
        self.assertEqual([], [path for path in paths
                              if os.path.lexists(path)])
