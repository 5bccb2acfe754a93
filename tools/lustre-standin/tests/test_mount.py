"""mount.lustre: real mounts, shared data, filesets, faults, registry."""

import errno
import json
import os
import subprocess
import time

from tests import base


class MountTest(base.StandinTestCase):

    fs_sections = ('[fs:small]\nsize = 32M\n'
                   '[fs:guarded]\nmgs = 10.9.9.9@tcp mgsb@o2ib1\n')

    def registry(self):
        with open(os.path.join(self.state_dir, 'registry.json')) as src:
            return json.load(src)

    def assertOneServer(self, fsname):
        """The filesystem's image is attached to one loop device only."""
        image = os.path.join(self.state_dir, 'images', fsname + '.img')
        loops = base.run(['losetup', '--associated', image]).stdout
        self.assertEqual(1, len(loops.splitlines()), loops)

    def assertSameData(self, writer, *readers):
        """What one client writes, the others read."""
        text = 'written through %s' % writer
        with open(os.path.join(writer, 'f'), 'w') as out:
            out.write(text)
        for reader in readers:
            with open(os.path.join(reader, 'f')) as src:
                self.assertEqual(text, src.read())

    def test_valid_specs_mount(self):
        for pos, text in enumerate((
                '10.0.0.1@tcp:/lfs01',
                'mgs1@tcp0,mgs1ib@o2ib0:mgs2@tcp0,mgs2ib@o2ib0:/testfs',
                'cfs21:/testfs')):
            mountpoint = self.mount(text, 'valid%d' % pos)
            self.assertIn(mountpoint, base.mounts_under(self.tmp))
            os.statvfs(mountpoint)

    def test_two_clients_share_one_server_mount(self):
        first = self.mount('10.0.0.1@tcp:/shared', 'shared1')
        second = self.mount('10.0.0.2@tcp:/shared', 'shared2')
        self.assertSameData(first, second)
        self.assertOneServer('shared')
        servers = [m for m in base.mounts_under(self.state_dir)
                   if m.endswith('/servers/shared')]
        self.assertEqual(1, len(servers))

    def test_concurrent_mounts_share_one_image(self):
        targets = [self.mountpoint('race%d' % pos) for pos in range(4)]
        procs = [subprocess.Popen([base.MOUNT_HELPER, 'm@tcp:/race', target,
                                   '-o', 'rw,flock'], env=self.env,
                                  stderr=subprocess.PIPE)
                 for target in targets]
        for target, proc in zip(targets, procs):
            _out, err = proc.communicate(timeout=60)
            self.assertEqual(0, proc.returncode, err)
            self.addCleanup(self.umount, target)
        self.assertOneServer('race')
        self.assertSameData(*targets)
        clients = [entry['mountpoint'] for entry in self.registry()['clients']
                   if entry['fsname'] == 'race']
        self.assertEqual(sorted(targets), sorted(clients))

    def test_server_unmounted_behind_our_back(self):
        first = self.mount('m@tcp:/orphan', 'orphan1')
        server = os.path.join(self.state_dir, 'servers', 'orphan')
        self.assertRun(base.run(['umount', server]))
        second = self.mount('m@tcp:/orphan', 'orphan2')
        self.assertSameData(first, second)
        self.assertOneServer('orphan')

    def test_fileset_mount_and_missing_fileset(self):
        result = self.admin('mkdir', 'fset', '/vols/a')
        self.assertRun(result)
        whole = self.mount('m@tcp:/fset', 'fset_whole')
        sub = self.mount('m@tcp:/fset/vols/a', 'fset_sub')
        with open(os.path.join(sub, 'f'), 'w') as out:
            out.write('x')
        self.assertTrue(os.path.exists(os.path.join(whole, 'vols/a/f')))
        target = self.mountpoint('fset_missing')
        result = base.run([base.MOUNT_HELPER, 'm@tcp:/fset/nope', target,
                           '-o', 'rw'], env=self.env)
        self.assertRun(result, errno.ENOENT, stderr=(
            'mount.lustre: mount m@tcp:/fset/nope at %s failed: No such '
            'file or directory\n'
            'Is the MGS specification correct?\n'
            'Is the filesystem name correct?\n'
            'If upgrading, is the copied client log valid? (see upgrade '
            'docs)\n' % target))
        self.assertNotIn(target, base.mounts_under(self.tmp))

    def test_read_only_mount(self):
        rw = self.mount('m@tcp:/rofs', 'rofs_rw')
        ro = self.mount('m@tcp:/rofs', 'rofs_ro', options='ro,flock')
        with open(os.path.join(rw, 'f'), 'w') as out:
            out.write('data')
        with open(os.path.join(ro, 'f')) as src:
            self.assertEqual('data', src.read())
        with self.assertRaises(OSError) as ctx:
            open(os.path.join(ro, 'g'), 'w')
        self.assertEqual(errno.EROFS, ctx.exception.errno)

    def test_enospc_is_real(self):
        mountpoint = self.mount('m@tcp:/small', 'small')
        path = os.path.join(mountpoint, 'fill')
        with self.assertRaises(OSError) as ctx:
            with open(path, 'wb') as out:
                chunk = b'\0' * (1 << 20)
                for _i in range(64):
                    out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
        self.assertEqual(errno.ENOSPC, ctx.exception.errno)
        fd = os.open(os.path.join(mountpoint, 'prealloc'),
                     os.O_CREAT | os.O_WRONLY)
        try:
            with self.assertRaises(OSError) as ctx:
                os.posix_fallocate(fd, 0, 64 << 20)
            self.assertEqual(errno.ENOSPC, ctx.exception.errno)
        finally:
            os.close(fd)

    def test_options_refused(self):
        target = self.mountpoint('badopt')
        for options in ('rw,acl', 'rw,nosuchoption', 'rw,mgssec=bogus'):
            result = base.run([base.MOUNT_HELPER, 'm@tcp:/optfs', target,
                               '-o', options], env=self.env)
            self.assertRun(result, errno.EINVAL)
            self.assertIn('failed: Invalid argument', result.stderr)
        self.assertNotIn(target, base.mounts_under(self.tmp))

    def test_options_accepted(self):
        mountpoint = self.mount('m@tcp:/optfs', 'goodopt', options=(
            'rw,flock,user_xattr,lazystatfs,noatime,nodev,nosuid,_netdev,'
            'retry=2,network=tcp,exclude=optfs-OST0001,always_ping'))
        self.assertIn(mountpoint, base.mounts_under(self.tmp))

    def test_mounting_twice_on_one_target(self):
        mountpoint = self.mount('m@tcp:/twice', 'twice')
        result = base.run([base.MOUNT_HELPER, 'm@tcp:/twice', mountpoint,
                           '-o', 'rw'], env=self.env)
        self.assertRun(result, errno.EEXIST, stderr=(
            'mount.lustre: according to /etc/mtab m@tcp:/twice is already '
            'mounted on %s\n' % mountpoint))

    def assertNoMgs(self, spec, target):
        """The mount fails as mount.lustre's does when no MGS answers."""
        result = base.run([base.MOUNT_HELPER, spec, target, '-o', 'rw'],
                          env=self.env)
        self.assertRun(result, errno.EIO, stderr=(
            'mount.lustre: mount %s at %s failed: Input/output error\n'
            'Is the MGS running?\n' % (spec, target)))

    def test_mgs_must_be_in_spec_when_configured(self):
        self.assertNoMgs('10.0.0.1@tcp:/guarded', self.mountpoint('guarded'))
        self.mount('10.0.0.1@tcp:mgsb@o2ib1:/guarded', 'guarded')

    def test_fault_fail_then_recover(self):
        self.assertRun(self.admin('fault', 'faulty', 'fail', '2'))
        for _attempt in range(2):
            self.assertNoMgs('m@tcp:/faulty', self.mountpoint('faulty'))
        self.mount('m@tcp:/faulty', 'faulty')

    def test_fault_fail_with_retry_option(self):
        self.assertRun(self.admin('fault', 'retried', 'fail', '1'))
        self.mount('m@tcp:/retried', 'retried', options='rw,retry=1')

    def test_fault_hang(self):
        self.assertRun(self.admin('fault', 'slow', 'hang', '1.5'))
        start = time.monotonic()
        self.mount('m@tcp:/slow', 'slow1')
        self.assertGreaterEqual(time.monotonic() - start, 1.5)
        start = time.monotonic()
        self.mount('m@tcp:/slow', 'slow2')
        self.assertLess(time.monotonic() - start, 1.5)

    def test_fault_clear(self):
        self.assertRun(self.admin('fault', 'cleared', 'fail', '5'))
        self.assertRun(self.admin('fault', 'cleared', 'clear'))
        self.mount('m@tcp:/cleared', 'cleared')

    def test_plain_umount_is_tolerated(self):
        mountpoint = self.mount('m@tcp:/plain', 'plain')
        self.assertRun(base.run(['umount', mountpoint]))
        # lfs no longer sees it, and the next writer prunes the registry.
        result = self.lfs('getname')
        self.assertNotIn(mountpoint, result.stdout)
        again = self.mount('m@tcp:/plain', 'plain')
        entries = [entry for entry in self.registry()['clients']
                   if entry['mountpoint'] == again]
        self.assertEqual(1, len(entries))

    def test_cleanup_unmounts_everything(self):
        # A private configuration, so that other tests keep their mounts.
        conf = os.path.join(self.tmp, 'cleanup.conf')
        state_dir = os.path.join(self.tmp, 'cleanup-state')
        with open(conf, 'w') as out:
            out.write('[standin]\nstate_dir = %s\nimage_size = 64M\n'
                      % state_dir)
        env = dict(self.env, LUSTRE_STANDIN_CONF=conf)
        target = self.mountpoint('tidy')
        self.assertRun(base.run([base.MOUNT_HELPER, 'm@tcp:/tidy', target,
                                 '-o', 'rw'], env=env))
        self.assertRun(base.run([base.ADMIN, 'cleanup'], env=env))
        self.assertEqual([], base.mounts_under(state_dir))
        self.assertNotIn(target, base.mounts_under(self.tmp))
        self.assertEqual([], base.loops_under(state_dir))

    def test_unmount_takes_everything_under_a_directory(self):
        outer = self.mount('m@tcp:/under', 'under')
        inner = os.path.join(outer, 'nested')
        os.makedirs(inner)
        self.assertRun(base.run(['mount', '--bind', self.tmp, inner]))
        beside = self.mount('m@tcp:/under', 'beside')
        self.assertRun(self.admin('unmount', outer + '/'))
        self.assertEqual([beside], [m for m in base.mounts_under(self.tmp)
                                    if m in (outer, inner, beside)])

    def test_status(self):
        self.mount('m@tcp:/stat', 'stat')
        result = self.assertRun(self.admin('status'))
        self.assertIn('filesystem stat:', result.stdout)
        self.assertIn('client %s' % os.path.join(self.tmp, 'stat'),
                      result.stdout)


class StrictNamesTest(base.StandinTestCase):
    """auto_create = no: only configured filesystems exist."""

    extra_settings = 'auto_create = no\n'
    fs_sections = '[fs:known]\nsize = 64M\n'

    def test_unknown_filesystem(self):
        target = self.mountpoint('unknown')
        result = base.run([base.MOUNT_HELPER, 'm@tcp:/unknown', target,
                           '-o', 'rw'], env=self.env)
        self.assertRun(result, errno.ENOENT)
        self.assertIn('Is the filesystem name correct?', result.stderr)
        self.mount('m@tcp:/known', 'known')
