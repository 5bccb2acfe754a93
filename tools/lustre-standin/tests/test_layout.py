"""lfs setstripe, getstripe and migrate."""

import errno
import os

from tests import base

TABLE_HEAD = '\tobdidx\t\t objid\t\t objid\t\t group\n'


def objid(path, comp=0, gen=0):
    """The deterministic object id the stand-in gives a component."""
    return os.stat(path).st_ino * 256 + (gen % 16) * 16 + comp


def table_row(ost, oid):
    return '\t%6u\t%14u\t%#13x\t%14u\n' % (ost, oid, oid, 0)


def lmm(count, size, offset):
    """What lfs getstripe prints of a plain layout, before its objects."""
    return ('lmm_stripe_count:  %d\n'
            'lmm_stripe_size:   %d\n'
            'lmm_pattern:       raid0\n'
            'lmm_layout_gen:    0\n'
            'lmm_stripe_offset: %d\n' % (count, size, offset))


class LayoutTest(base.StandinTestCase):

    fs_sections = '[fs:lay]\npools = flash:0-1 disk:2-3\n'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mnt = os.path.join(cls.tmp, 'mnt')
        os.mkdir(cls.mnt)
        result = base.run([base.MOUNT_HELPER, '10.0.0.1@tcp:/lay', cls.mnt,
                           '-o', 'rw,flock'], env=cls.env)
        if result.returncode:
            raise AssertionError(result.stderr)

    def path(self, name):
        return os.path.join(self.mnt, name)

    def setstripe(self, *args):
        return self.lfs('setstripe', *args)

    # ---- plain layouts ---------------------------------------------------

    def test_plain_round_trip(self):
        path = self.path('plain')
        self.assertRun(self.setstripe('-c', '2', '-S', '4M', '-i', '1',
                                      path))
        self.assertEqual(0, os.path.getsize(path))
        oid = objid(path)
        self.assertRun(self.lfs('getstripe', path), stdout=(
            path + '\n' + lmm(2, 4194304, 1) + TABLE_HEAD +
            table_row(1, oid) + table_row(2, oid) + '\n'))
        self.assertRun(self.lfs('getstripe', '-y', path), stdout=(
            lmm(2, 4194304, 1) +
            'lmm_objects:\n'
            '      - l_ost_idx: 1\n'
            '        l_fid:     0x100010000:%#x:0x0\n'
            '      - l_ost_idx: 2\n'
            '        l_fid:     0x100020000:%#x:0x0\n\n' % (oid, oid)))

    def test_single_fields(self):
        path = self.path('fields')
        self.assertRun(self.setstripe('-c', '3', '-S', '128k', '-i', '2',
                                      '-p', 'inherit', path))
        for option, value in (('-c', '3'), ('--stripe-count', '3'),
                              ('-S', '131072'), ('-i', '2'),
                              ('-L', 'raid0'), ('-g', '0'), ('-p', '')):
            expected = value + '\n\n' if value else '\n'
            self.assertRun(self.lfs('getstripe', option, path),
                           stdout=expected)
        self.assertRun(self.lfs('getstripe', '-c', '-S', path), stdout=(
            'lmm_stripe_count:  3\nlmm_stripe_size:   131072\n\n'))

    def test_pool(self):
        path = self.path('pooled')
        self.assertRun(self.setstripe('-p', 'flash', '-c', '-1', path))
        result = self.assertRun(self.lfs('getstripe', path))
        self.assertIn('lmm_stripe_count:  2\n', result.stdout)
        self.assertIn('lmm_pool:          flash\n', result.stdout)
        self.assertRun(self.lfs('getstripe', '-p', path),
                       stdout='flash\n\n')
        osts = sorted(int(line.split()[0]) for line in
                      result.stdout.split(TABLE_HEAD)[1].splitlines()
                      if line.strip())
        self.assertEqual([0, 1], osts)
        # FSNAME.POOL works too.
        self.assertRun(self.setstripe('-p', 'lay.disk', self.path('pool2')))
        self.assertRun(self.lfs('getstripe', '-p', self.path('pool2')),
                       stdout='disk\n\n')

    def test_stripe_count_is_capped(self):
        for count, expected in (('10', '4'), ('-1', '4'), ('0', '1')):
            path = self.path('capped%s' % count)
            self.assertRun(self.setstripe('-c', count, path))
            self.assertRun(self.lfs('getstripe', '-c', path),
                           stdout=expected + '\n\n')

    def test_small_stripe_size_is_kib(self):
        path = self.path('kib')
        self.assertRun(self.setstripe('-S', '64', path))
        self.assertRun(self.lfs('getstripe', '-S', path),
                       stdout='65536\n\n')

    def test_existing_file_keeps_its_layout(self):
        path = self.path('existing')
        with open(path, 'w') as out:
            out.write('data')
        self.assertRun(self.setstripe('-c', '2', path), errno.EEXIST,
                       stderr="lfs setstripe: setstripe error for '%s': "
                       'stripe already set\n' % path)
        # Through the lustre.lov xattr, Lustre ignores EEXIST: success.
        self.assertRun(self.setstripe('-E', '1M', '-c', '2', '-E', '-1',
                                      path))
        self.assertRun(self.lfs('getstripe', '-c', path), stdout='1\n\n')

    # ---- validation ------------------------------------------------------

    def assertUsage(self, args, message):
        result = self.setstripe(*args)
        self.assertRun(result, 4)
        self.assertTrue(result.stderr.startswith(message + '\n'),
                        result.stderr)
        self.assertIn('usage: setstripe', result.stderr)

    def test_usage_errors(self):
        path = self.path('never')
        prefix = 'lfs setstripe setstripe: '
        for option, value, what in (
                ('-c', '2001', 'stripe count'), ('-c', '-2', 'stripe count'),
                ('-c', 'two', 'stripe count'), ('-S', '100k', 'stripe size'),
                ('-S', '4096', 'stripe size'), ('-i', '-2', 'stripe offset'),
                ('-E', '100k', 'component end')):
            self.assertUsage([option, value, path],
                             prefix + "invalid %s '%s'" % (what, value))
        self.assertUsage(['-q', path],
                         "lfs setstripe: unrecognized option '-q'")
        self.assertUsage(['-c', '2'], prefix + 'FILE must be specified')
        self.assertUsage(['-d', '-c', '2', self.mnt],
                         prefix + 'option -d is mutually exclusive with '
                         '-s, -c, -o, -p, -I, -F and -E options')
        self.assertUsage(['-b', path], prefix + '-b|--block valid only for '
                         'migrate command')
        self.assertFalse(os.path.exists(path))

    def test_library_errors(self):
        path = self.path('never2')
        self.assertRun(self.setstripe('-S', '5G', path), errno.EINVAL,
                       stderr="lfs setstripe: error: stripe size "
                       "'5368709120' over 4GB limit: Invalid argument (22)\n")
        self.assertRun(self.setstripe('-p', 'a' * 16, path), errno.EINVAL,
                       stderr="lfs setstripe: Invalid Poolname '%s': "
                       'Invalid argument (22)\n' % ('a' * 16))
        self.assertRun(self.setstripe('-p', 'nosuch', path), errno.EINVAL,
                       stderr="lfs setstripe: pool 'lay.nosuch' does not "
                       'exist: Invalid argument (22)\n')
        self.assertFalse(os.path.exists(path))

    def test_mds_errors_leave_an_empty_file(self):
        for args in (['-i', '4'], ['-p', 'flash', '-i', '3']):
            path = self.path('mds%s' % args[-1])
            self.assertRun(self.setstripe(*(args + [path])), errno.EINVAL,
                           stderr="lfs setstripe: setstripe error for "
                           "'%s': Invalid argument\n" % path)
            # Like Lustre: created, empty, no layout yet; can be retried.
            self.assertRun(self.lfs('getstripe', path),
                           stdout='%s has no stripe info\n' % path)
            self.assertRun(self.setstripe('-c', '2', path))
            self.assertRun(self.lfs('getstripe', '-c', path),
                           stdout='2\n\n')

    def test_composite_errors(self):
        path = self.path('badpfl')
        self.assertRun(self.setstripe('-E', '1M', '-E', '512K', path),
                       errno.EINVAL, stderr=(
                           'Set extent [1048576, 524288) failed. Invalid '
                           'argument\nerror: lfs setstripe: invalid '
                           'layout\n'))
        result = self.setstripe('-E', '2M', '-E', '1M', '-E', '-1', path)
        self.assertRun(result, 4)
        self.assertTrue(result.stderr.startswith(
            'Set extent [2097152, 1048576) failed. Invalid argument\n'
            'lfs setstripe: invalid layout\n'))
        self.assertRun(self.setstripe('-E', '1M', '-E', '1M', path), 1,
                       stdout='Invalid layout: Zero length components must '
                       'be followed by extension\n',
                       stderr="lfs setstripe: cannot create composite file "
                       "'%s': Invalid argument\n" % path)
        self.assertRun(self.setstripe('-E', '1M', '-S', '4M', '-E', '-1',
                                      path), 1,
                       stdout='Invalid layout: The component end must be '
                       'aligned by the stripe size\n')
        self.assertFalse(os.path.exists(path))

    def test_unsupported_options(self):
        result = self.setstripe('-N2', self.path('mirror'))
        self.assertRun(result, errno.EOPNOTSUPP)
        self.assertIn('not supported by the Lustre stand-in', result.stderr)

    # ---- directory defaults and inheritance --------------------------------

    def test_directory_default_and_inheritance(self):
        top = self.path('dflt')
        os.mkdir(top)
        self.assertRun(self.lfs('getstripe', '-d', top), stdout=(
            'stripe_count:  1 stripe_size:   1048576 pattern:       raid0 '
            'stripe_offset: -1\n\n'))
        self.assertRun(self.setstripe('-c', '3', '-S', '2M', '-p', 'flash',
                                      top))
        self.assertRun(self.lfs('getstripe', '-d', top), stdout=(
            'stripe_count:  3 stripe_size:   2097152 pattern:       raid0 '
            'stripe_offset: -1 pool:          flash\n\n'))
        # A file created by any program inherits the default...
        os.mkdir(os.path.join(top, 'sub'))
        made = os.path.join(top, 'sub', 'made-by-qemu')
        open(made, 'w').close()
        self.assertRun(self.lfs('getstripe', '-c', made), stdout='2\n\n')
        self.assertRun(self.lfs('getstripe', '-S', made),
                       stdout='2097152\n\n')
        self.assertRun(self.lfs('getstripe', '-p', made),
                       stdout='flash\n\n')
        # ...and setstripe fills in what it does not say from it.
        partial = os.path.join(top, 'partial')
        self.assertRun(self.setstripe('-S', '4M', partial))
        self.assertRun(self.lfs('getstripe', '-c', partial), stdout='2\n\n')
        self.assertRun(self.lfs('getstripe', '-S', partial),
                       stdout='4194304\n\n')
        # Deleting the default restores the filesystem default.
        self.assertRun(self.setstripe('-d', top))
        self.assertRun(self.lfs('getstripe', '-c', made), stdout='1\n\n')

    def test_all_default_setstripe_deletes_the_default(self):
        top = self.path('dflt0')
        os.mkdir(top)
        self.assertRun(self.setstripe('-c', '2', top))
        self.assertRun(self.setstripe('-c', '0', '-S', '0', top))
        self.assertRun(self.lfs('getstripe', '-c', '-d', top),
                       stdout='1\n\n')

    def test_directory_listing(self):
        top = self.path('listing')
        os.mkdir(top)
        self.assertRun(self.setstripe('-c', '2', '-i', '0', top))
        child = os.path.join(top, 'child')
        self.assertRun(self.setstripe('-c', '1', '-i', '3', child))
        oid = objid(child)
        self.assertRun(self.lfs('getstripe', top), stdout=(
            '%s\nstripe_count:  2 stripe_size:   1048576 pattern:       '
            'raid0 stripe_offset: 0\n\n%s\n' % (top, child) +
            lmm(1, 1048576, 3) + TABLE_HEAD + table_row(3, oid) + '\n'))

    def test_default_lmv(self):
        top = self.path('lmv')
        os.mkdir(top)
        self.assertRun(self.lfs('getstripe', '-D', '-d', top), stdout=(
            'lmv_stripe_count: 0 lmv_stripe_offset: -1 lmv_hash_type: none '
            'lmv_max_inherit: -1 lmv_max_inherit_rr: 0\n'))

    # ---- composite (PFL) layouts -------------------------------------------

    def test_composite_round_trip(self):
        path = self.path('pfl')
        self.assertRun(self.setstripe('-E', '4M', '-c', '1', '-i', '1',
                                      '-E', '64M', '-c', '4', '-E', '-1',
                                      '-c', '-1', '-p', 'disk', path))
        oid = objid(path)
        self.assertRun(self.lfs('getstripe', path), stdout=(
            '%s\n'
            '  lcm_layout_gen:    3\n'
            '  lcm_mirror_count:  1\n'
            '  lcm_entry_count:   3\n'
            '    lcme_id:             1\n'
            '    lcme_mirror_id:      0\n'
            '    lcme_flags:          init\n'
            '    lcme_extent.e_start: 0\n'
            '    lcme_extent.e_end:   4194304\n'
            '      lmm_stripe_count:  1\n'
            '      lmm_stripe_size:   1048576\n'
            '      lmm_pattern:       raid0\n'
            '      lmm_layout_gen:    0\n'
            '      lmm_stripe_offset: 1\n'
            '      lmm_objects:\n'
            '      - 0: { l_ost_idx: 1, l_fid: [0x100010000:%#x:0x0] }\n'
            '\n'
            '    lcme_id:             2\n'
            '    lcme_mirror_id:      0\n'
            '    lcme_flags:          0\n'
            '    lcme_extent.e_start: 4194304\n'
            '    lcme_extent.e_end:   67108864\n'
            '      lmm_stripe_count:  4\n'
            '      lmm_stripe_size:   1048576\n'
            '      lmm_pattern:       raid0\n'
            '      lmm_layout_gen:    0\n'
            '      lmm_stripe_offset: -1\n'
            '\n'
            '    lcme_id:             3\n'
            '    lcme_mirror_id:      0\n'
            '    lcme_flags:          0\n'
            '    lcme_extent.e_start: 67108864\n'
            '    lcme_extent.e_end:   EOF\n'
            '      lmm_stripe_count:  -1\n'
            '      lmm_stripe_size:   1048576\n'
            '      lmm_pattern:       raid0\n'
            '      lmm_layout_gen:    0\n'
            '      lmm_stripe_offset: -1\n'
            '      lmm_pool:          disk\n'
            '\n' % (path, oid)))
        self.assertRun(self.lfs('getstripe', '--component-count', path),
                       stdout='3\n\n')
        self.assertRun(self.lfs('getstripe', '-c', path), stdout='1\n\n')
        # Writing past a component's start instantiates it.
        os.truncate(path, 100 << 20)
        result = self.assertRun(self.lfs('getstripe', path))
        self.assertIn('  lcm_layout_gen:    5\n', result.stdout)
        self.assertEqual(3, result.stdout.count('lcme_flags:          init'))
        self.assertRun(self.lfs('getstripe', '-c', path), stdout='2\n\n')
        self.assertRun(self.lfs('getstripe', '-p', path), stdout='disk\n\n')

    def test_composite_yaml_215(self):
        path = self.path('pflyaml')
        self.assertRun(self.setstripe('-E', '1M', '-i', '0', '-E', 'eof',
                                      '-c', '2', path))
        oid = objid(path)
        self.assertRun(self.lfs('getstripe', '--yaml', path), stdout=(
            '  lcm_layout_gen:    2\n'
            '  lcm_mirror_count:  1\n'
            '  lcm_entry_count:   2\n'
            '  component0:\n'
            '    lcme_id:             1\n'
            '    lcme_mirror_id:      0\n'
            '    lcme_flags:          init\n'
            '    lcme_extent.e_start: 0\n'
            '    lcme_extent.e_end:   1048576\n'
            '    sub_layout:\n'
            '      lmm_stripe_count:  1\n'
            '      lmm_stripe_size:   1048576\n'
            '      lmm_pattern:       raid0\n'
            '      lmm_layout_gen:    0\n'
            '      lmm_stripe_offset: 0\n'
            '      lmm_objects:\n'
            '      - l_ost_idx: 0\n'
            '        l_fid:     0x100000000:%#x:0x0\n'
            '\n'
            '  component1:\n'
            '    lcme_id:             2\n'
            '    lcme_mirror_id:      0\n'
            '    lcme_flags:          0\n'
            '    lcme_extent.e_start: 1048576\n'
            '    lcme_extent.e_end:   EOF\n'
            '    sub_layout:\n'
            '      lmm_stripe_count:  2\n'
            '      lmm_stripe_size:   1048576\n'
            '      lmm_pattern:       raid0\n'
            '      lmm_layout_gen:    0\n'
            '      lmm_stripe_offset: -1\n'
            '\n' % oid))

    def test_composite_directory_default(self):
        top = self.path('pfldir')
        os.mkdir(top)
        self.assertRun(self.setstripe('-E', '64M', '-c', '1', '-E', '-1',
                                      '-c', '-1', top))
        self.assertRun(self.lfs('getstripe', '-d', top), stdout=(
            '  lcm_layout_gen:    0\n'
            '  lcm_mirror_count:  1\n'
            '  lcm_entry_count:   2\n'
            '    lcme_id:             N/A\n'
            '    lcme_mirror_id:      N/A\n'
            '    lcme_flags:          0\n'
            '    lcme_extent.e_start: 0\n'
            '    lcme_extent.e_end:   67108864\n'
            '      stripe_count:  1       stripe_size:   1048576       '
            'pattern:       raid0       stripe_offset: -1\n'
            '\n'
            '    lcme_id:             N/A\n'
            '    lcme_mirror_id:      N/A\n'
            '    lcme_flags:          0\n'
            '    lcme_extent.e_start: 67108864\n'
            '    lcme_extent.e_end:   EOF\n'
            '      stripe_count:  -1       stripe_size:   1048576       '
            'pattern:       raid0       stripe_offset: -1\n'
            '\n'))
        image = os.path.join(top, 'volume-1')
        with open(image, 'wb') as out:
            out.truncate(128 << 20)
        self.assertRun(self.lfs('getstripe', '--component-count', image),
                       stdout='2\n\n')
        self.assertRun(self.lfs('getstripe', '-c', image), stdout='4\n\n')

    # ---- paths that are not Lustre ---------------------------------------

    def test_not_lustre(self):
        outside = os.path.join(self.tmp, 'outside')
        self.assertRun(self.setstripe('-c', '2', outside), errno.ENOTTY,
                       stderr="lfs setstripe: setstripe error for '%s': "
                       'Inappropriate ioctl for device\n' % outside)
        # The real tool has created the file before its ioctl failed.
        self.assertTrue(os.path.exists(outside))
        self.assertRun(self.lfs('getstripe', outside), errno.ENOTTY,
                       stderr="lfs getstripe: cb_getstripe: '%s' not on a "
                       'Lustre fs?: Inappropriate ioctl for device (25)\n'
                       'error: getstripe failed for %s.\n'
                       % (outside, outside))
        self.assertRun(self.lfs('migrate', '-c', '1', outside), errno.ENOTTY,
                       stderr='error: lfs migrate: %s: cannot get MDT '
                       'index: Inappropriate ioctl for device\n' % outside)
        missing = self.path('missing')
        self.assertRun(self.lfs('getstripe', missing), errno.ENOENT,
                       stderr='error: getstripe failed for %s.\n' % missing)

    # ---- migrate ---------------------------------------------------------

    def test_migrate(self):
        path = self.path('mig')
        self.assertRun(self.setstripe('-c', '1', path))
        data = os.urandom(3 << 20)
        with open(path, 'wb') as out:
            out.write(data)
        self.assertRun(self.lfs('migrate', '-c', '2', '-p', 'disk', path))
        result = self.assertRun(self.lfs('getstripe', path))
        self.assertIn('lmm_stripe_count:  2\n', result.stdout)
        self.assertIn('lmm_layout_gen:    1\n', result.stdout)
        self.assertIn('lmm_pool:          disk\n', result.stdout)
        with open(path, 'rb') as src:
            self.assertEqual(data, src.read())
        # Without options the file keeps its layout (new objects).
        self.assertRun(self.lfs('migrate', '-v', path), stdout=path + '\n')
        self.assertRun(self.lfs('getstripe', '-c', path), stdout='2\n\n')
        self.assertRun(self.lfs('getstripe', '-g', path), stdout='2\n\n')

    def test_migrate_non_block(self):
        path = self.path('busy')
        self.assertRun(self.setstripe('-c', '1', path))
        with open(path, 'rb'):
            self.assertRun(self.lfs('migrate', '--non-block', '-c', '2',
                                    path), errno.EBUSY,
                           stderr='error: lfs migrate: %s: cannot get '
                           'lease: Device or resource busy\n' % path)
            self.assertRun(self.lfs('getstripe', '-c', path),
                           stdout='1\n\n')
            # Blocking mode (the default) does not care.
            self.assertRun(self.lfs('migrate', '-b', '-c', '2', path))
        self.assertRun(self.lfs('migrate', '-n', '-c', '3', path))
        self.assertRun(self.lfs('getstripe', '-c', path), stdout='3\n\n')
        result = self.lfs('migrate', '-n', '-b', path)
        self.assertRun(result, 4)
        self.assertIn('options --non-block and --block are mutually '
                      'exclusive', result.stderr)

    def test_migrate_errors(self):
        missing = self.path('nomig')
        self.assertRun(self.lfs('migrate', '-c', '2', missing), errno.ENOENT,
                       stderr='error: lfs migrate: %s: cannot open source '
                       'file: No such file or directory\n' % missing)
        path = self.path('migbad')
        self.assertRun(self.setstripe('-c', '1', path))
        self.assertRun(self.lfs('migrate', '-i', '9', path), errno.EINVAL,
                       stderr='error: lfs migrate: %s: cannot create '
                       'volatile file: Invalid argument\n' % path)

    # ---- unprivileged users ----------------------------------------------

    def test_unprivileged_user(self):
        path = self.path('nobodys')
        self.assertRun(self.setstripe('-c', '2', '-i', '0', path))
        self.assertRun(self.lfs('getstripe', '-c', path, user='nobody'),
                       stdout='2\n\n')
        result = self.assertRun(self.lfs('df', self.mnt, user='nobody'))
        self.assertIn('filesystem_summary:', result.stdout)
        shared = self.path('nobodydir')
        os.mkdir(shared)
        os.chown(shared, 65534, 65534)
        mine = os.path.join(shared, 'volume')
        self.assertRun(self.lfs('setstripe', '-c', '3', mine,
                                user='nobody'))
        self.assertEqual(65534, os.stat(mine).st_uid)
        self.assertRun(self.lfs('getstripe', '-c', mine, user='nobody'),
                       stdout='3\n\n')


class Yaml216Test(base.StandinTestCase):
    """Lustre 2.16 prints composite YAML as a "components:" list."""

    extra_settings = 'version = 2.16.1\n'

    def test_components_list(self):
        mnt = self.mount('m@tcp:/new', 'mnt')
        path = os.path.join(mnt, 'f')
        self.assertRun(self.lfs('setstripe', '-E', '1M', '-i', '0', '-E',
                                '-1', path))
        result = self.assertRun(self.lfs('getstripe', '-y', path))
        self.assertTrue(result.stdout.startswith(
            'lcm_layout_gen:    2\n'
            'lcm_mirror_count:  1\n'
            'lcm_entry_count:   2\n'
            'components:\n'
            '  - lcme_id:             1\n'
            '    lcme_mirror_id:      0\n'), result.stdout)
        self.assertRun(self.lfs('--version'), stdout='lfs 2.16.1\n')


class WideTest(base.StandinTestCase):
    """Hundreds of OSTs: the layout must still fit in one xattr."""

    osts = 600

    def test_all_osts(self):
        mnt = self.mount('m@tcp:/wide', 'mnt')
        path = os.path.join(mnt, 'wide')
        self.assertRun(self.lfs('setstripe', '-c', '-1', '-i', '7', path))
        self.assertRun(self.lfs('getstripe', '-c', path), stdout='600\n\n')
        result = self.assertRun(self.lfs('getstripe', path))
        rows = result.stdout.split(TABLE_HEAD)[1].split('\n')
        self.assertEqual(['7', '8'], [row.split()[0] for row in rows[:2]])
        self.assertEqual('6', rows[599].split()[0])
        self.assertRun(self.lfs('migrate', '-c', '-1', path))
        self.assertRun(self.lfs('getstripe', '-g', path), stdout='1\n\n')
