"""lfs df, pool_list, getname, version, project and quota."""

import errno
import os

from tests import base


def share(total, parts, index):
    return total // parts + (1 if index < total % parts else 0)


class DfTest(base.StandinTestCase):

    osts = 3
    fs_sections = '[fs:dfs]\npools = fast:0 slow:1-2\n[fs:other]\nosts = 2\n'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mnt = os.path.join(cls.tmp, 'mnt')
        cls.mnt2 = os.path.join(cls.tmp, 'mnt2')
        for spec, mountpoint in (('10.0.0.1@tcp:/dfs', cls.mnt),
                                 ('10.0.0.1@tcp:/other', cls.mnt2)):
            os.mkdir(mountpoint)
            result = base.run([base.MOUNT_HELPER, spec, mountpoint, '-o',
                               'rw,flock'], env=cls.env)
            if result.returncode:
                raise AssertionError(result.stderr)
        with open(os.path.join(cls.mnt, 'data'), 'wb') as out:
            out.write(b'\1' * (5 << 20))
            os.fsync(out.fileno())

    def expected_table(self, mountpoint, fsname, osts, shown):
        vfs = os.statvfs(mountpoint)
        lines = ['UUID                   1K-blocks        Used   Available '
                 'Use% Mounted on']

        def line(uuid, blocks, bfree, bavail, bsize, suffix):
            used = blocks - bfree
            pct = used * 100.0 / (used + bavail) if used + bavail else 0
            pct = int(pct) + (1 if pct > int(pct) else 0)
            return '%-20s %11d %11d %11d %3d%% %s%s' % (
                uuid, blocks * bsize >> 10, used * bsize >> 10,
                bavail * bsize >> 10, pct, mountpoint, suffix)

        lines.append(line('%s-MDT0000_UUID' % fsname, vfs.f_files,
                          vfs.f_ffree, vfs.f_ffree, 4096, '[MDT:0]'))
        total = [0, 0, 0]
        for index in shown:
            part = [share(value, osts, index) for value in
                    (vfs.f_blocks, vfs.f_bfree, vfs.f_bavail)]
            lines.append(line('%s-OST%04x_UUID' % (fsname, index),
                              part[0], part[1], part[2], vfs.f_frsize,
                              '[OST:%d]' % index))
            total = [t + p * vfs.f_frsize for t, p in zip(total, part)]
        lines.append('')
        lines.append(line('filesystem_summary:', total[0], total[1],
                          total[2], 1, ''))
        return '\n'.join(lines) + '\n\n'

    def test_df_matches_statfs(self):
        result = self.assertRun(self.lfs('df', self.mnt))
        self.assertEqual(self.expected_table(self.mnt, 'dfs', 3, range(3)),
                         result.stdout)
        vfs = os.statvfs(self.mnt)
        summary = result.stdout.splitlines()[-2].split()
        self.assertEqual(vfs.f_blocks * vfs.f_frsize >> 10, int(summary[1]))
        self.assertEqual(vfs.f_bavail * vfs.f_frsize >> 10, int(summary[3]))

    def test_df_pool(self):
        table = self.expected_table(self.mnt, 'dfs', 3, [1, 2])
        for args in (['--pool', 'slow', self.mnt],
                     ['--pool=dfs.slow', self.mnt]):
            self.assertRun(self.lfs('df', *args), stdout=table)
        # Like lfs 2.15, without a path the first mount of another
        # filesystem stops the listing.
        self.assertRun(self.lfs('df', '-p', 'dfs.slow'), errno.ENODEV,
                       stdout=table, stderr='filesystem name incorrect\n')

    def test_df_all_mounts(self):
        result = self.assertRun(self.lfs('df'))
        self.assertEqual(self.expected_table(self.mnt, 'dfs', 3, range(3)) +
                         self.expected_table(self.mnt2, 'other', 2,
                                             range(2)), result.stdout)

    def test_df_human_and_inodes(self):
        result = self.assertRun(self.lfs('df', '-h', self.mnt))
        head, mdt = result.stdout.splitlines()[:2]
        self.assertEqual('UUID                       bytes        Used   '
                         'Available Use% Mounted on', head)
        self.assertRegex(mdt, r'^dfs-MDT0000_UUID +[0-9.]+[KMG] ')
        result = self.assertRun(self.lfs('df', '-i', self.mnt))
        vfs = os.statvfs(self.mnt)
        head = result.stdout.splitlines()[0]
        self.assertEqual('UUID                      Inodes       IUsed       '
                         'IFree IUse% Mounted on', head)
        summary = result.stdout.splitlines()[-2].split()
        self.assertEqual([str(vfs.f_files), str(vfs.f_files - vfs.f_ffree),
                          str(vfs.f_ffree)], summary[1:4])

    def test_df_errors(self):
        self.assertRun(self.lfs('df', '/proc'), errno.EOPNOTSUPP,
                       stdout='df:/proc Not a Lustre filesystem\n')
        missing = os.path.join(self.tmp, 'missing')
        self.assertRun(self.lfs('df', missing), errno.ENOENT,
                       stderr="error: invalid path '%s': No such file or "
                       'directory\n' % missing)
        self.assertRun(self.lfs('df', '-p', 'other.x', self.mnt),
                       errno.ENODEV, stderr='filesystem name incorrect\n')

    def test_pool_list(self):
        self.assertRun(self.lfs('pool_list', 'dfs'),
                       stdout='Pools from dfs:\ndfs.fast\ndfs.slow\n')
        self.assertRun(self.lfs('pool_list', self.mnt),
                       stdout='Pools from dfs:\ndfs.fast\ndfs.slow\n')
        self.assertRun(self.lfs('pool_list', 'dfs.slow'), stdout=(
            'Pool: dfs.slow\ndfs-OST0001_UUID\ndfs-OST0002_UUID\n'))
        result = self.lfs('pool_list', 'dfs.none')
        self.assertRun(result, errno.ENOENT, stdout='Pool: dfs.none\n')
        self.assertIn('cannot open', result.stderr)
        self.assertRun(self.lfs('pool_list', 'other'),
                       stdout='Pools from other:\n')
        self.assertRun(self.lfs('pool_list', 'nofs'), errno.ENOENT,
                       stdout='', stderr='')
        result = self.lfs('pool_list', '/proc')
        self.assertRun(result, errno.ENODEV)
        self.assertIn("'/proc' is not on a Lustre filesystem: No such "
                      'device (19)', result.stderr)

    def test_runtime_pool(self):
        self.assertRun(self.admin('pool', 'other', 'tmp', '0-1'))
        self.assertRun(self.lfs('pool_list', 'other.tmp'), stdout=(
            'Pool: other.tmp\nother-OST0000_UUID\nother-OST0001_UUID\n'))
        self.assertRun(self.admin('pool', 'other', 'tmp', 'none'))
        self.assertRun(self.lfs('pool_list', 'other'),
                       stdout='Pools from other:\n')
        result = self.admin('pool', 'other', 'big', '0-5')
        self.assertRun(result, 1)

    def test_getname(self):
        result = self.assertRun(self.lfs('getname'))
        lines = result.stdout.splitlines()
        self.assertEqual(2, len(lines))
        self.assertRegex(lines[0], r'^dfs-[0-9a-f]{16} %s$' % self.mnt)
        self.assertRegex(lines[1], r'^other-[0-9a-f]{16} %s$' % self.mnt2)
        instance = lines[0].split()[0][len('dfs-'):]
        self.assertRun(self.lfs('getname', '-n', self.mnt),
                       stdout='dfs\n')
        self.assertRun(self.lfs('getname', '-i', self.mnt),
                       stdout=instance + '\n')
        self.assertRun(self.lfs('getname', self.mnt + '/data'),
                       stdout='dfs-%s %s/data\n' % (instance, self.mnt))
        self.assertRun(self.lfs('getname', '-n'), stdout=(
            'dfs %s\nother %s\n' % (self.mnt, self.mnt2)))
        self.assertRun(self.lfs('getname', '/proc'), errno.ENOTTY, stderr=(
            'lfs getname: cannot get lov name: Inappropriate ioctl for '
            "device (25)\ncannot get instance for '/proc': Inappropriate "
            'ioctl for device\n'))

    def test_version_and_unknown_command(self):
        self.assertRun(self.lfs('--version'), stdout='lfs 2.15.6\n')
        result = self.assertRun(self.lfs('frobnicate'), 1)
        self.assertTrue(result.stdout.startswith(
            'Try interactive use without arguments or use one of:\n'))

    def test_unprivileged_df_and_getname(self):
        result = self.assertRun(self.lfs('df', user='nobody'))
        self.assertIn('dfs-OST0002_UUID', result.stdout)
        self.assertRun(self.lfs('getname', '-n', self.mnt, user='nobody'),
                       stdout='dfs\n')

    def test_project_and_quota(self):
        top = os.path.join(self.mnt2, 'proj')
        os.mkdir(top)
        self.assertRun(self.lfs('project', '-p', '1000', '-s', top))
        self.assertRun(self.lfs('project', '-d', top),
                       stdout=' 1000 P %s\n' % top)
        data = os.path.join(top, 'volume')
        with open(data, 'wb') as out:
            out.write(b'\1' * (1 << 20))
            os.fsync(out.fileno())
        self.assertRun(self.lfs('project', top),
                       stdout=' 1000 - %s\n' % data)
        result = self.assertRun(self.lfs('quota', '-p', '1000', self.mnt2))
        lines = result.stdout.splitlines()
        self.assertEqual('Disk quotas for prj 1000 (pid 1000):', lines[0])
        self.assertEqual('     Filesystem  kbytes   quota   limit   grace   '
                         'files   quota   limit   grace', lines[1])
        kbytes = (os.stat(data).st_blocks * 512 +
                  os.stat(top).st_blocks * 512) // 1024
        self.assertEqual([self.mnt2, str(kbytes), '0', '0', '-', '2', '0',
                          '0', '-'], lines[2].split() if len(
                              self.mnt2) <= 15 else
                         [lines[2]] + lines[3].split())
        self.assertRun(self.lfs('project', '-C', top))
        self.assertRun(self.lfs('project', '-d', top),
                       stdout='    0 - %s\n' % top)
