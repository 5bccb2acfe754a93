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

"""Unit tests for the Lustre volume driver and its Lustre client module."""

import collections
import hashlib
import json
import os
import re
import subprocess
import threading
from unittest import mock

import ddt
import fixtures
from os_brick import exception as brick_exception
from oslo_concurrency import processutils as putils
from oslo_utils import imageutils
from oslo_utils import units

from cinder import context
from cinder import coordination
from cinder import exception
from cinder.image import image_utils
from cinder import objects
from cinder.objects import fields
from cinder.tests.unit import fake_constants as fake
from cinder.tests.unit import fake_snapshot
from cinder.tests.unit import fake_volume
from cinder.tests.unit import test
from cinder.tests.unit import utils as tests_utils
from cinder.volume import configuration as conf
from cinder.volume.drivers import lustre
from cinder.volume.drivers import lustre_client
from cinder.volume.drivers import remotefs
from cinder.volume import volume_utils

SHARE = '10.0.0.1@tcp:/lfs01/cinder'
SHARE2 = 'mgs1@o2ib,mgs1b@tcp:mgs2@o2ib:/lfs02'
VOLUME_NAME = 'volume-%s' % fake.VOLUME_ID
OVERLAY_RE = re.compile(r'\.[0-9a-f]{8}-[0-9a-f-]{27}$')
ENOSPC = putils.ProcessExecutionError(
    exit_code=1, stderr='fallocate: fallocate failed: No space left on '
                        'device\n')
EOPNOTSUPP = putils.ProcessExecutionError(
    exit_code=1, stderr='fallocate: fallocate failed: Operation not '
                        'supported\n')


def fail_mounts(*cmd, **kwargs):
    """An executor on which every mount fails as with an unreachable MGS."""
    if cmd[0] == 'mount':
        raise putils.ProcessExecutionError(
            exit_code=5, stderr='mount.lustre: mount failed: '
                                'Input/output error\n')
    return '', ''


def qemu_info(fmt='raw', virtual_size=units.Gi, backing_file=None,
              backing_fmt=None, data_file=None):
    """A parsed ``qemu-img info --output=json``, as image_utils returns.

    A backing file's format is recorded as the driver records it: qcow2
    for a snapshot overlay, raw for a base file, unless given.
    """
    out = {'format': fmt, 'virtual-size': virtual_size,
           'filename': 'volume', 'actual-size': 0}
    if fmt == 'qcow2':
        out['format-specific'] = {'type': 'qcow2', 'data': {'compat': '1.1'}}
        if data_file:
            out['format-specific']['data']['data-file'] = data_file
    if backing_file:
        out['backing-filename'] = backing_file
        out['full-backing-filename'] = backing_file
        if backing_fmt is None:
            backing_fmt = ('qcow2' if OVERLAY_RE.search(backing_file)
                           else 'raw')
        if backing_fmt:
            out['backing-filename-format'] = backing_fmt
    return imageutils.QemuImgInfo(json.dumps(out), format='json')


class SyntaxTestCase(test.TestCase):
    """Base of the tests of Lustre syntax, parsed by pure functions."""

    def assertRefused(self, reason, func, *args, **kwargs):
        """``func`` raises ValueError with ``reason`` in its message."""
        exc = self.assertRaises(ValueError, func, *args, **kwargs)
        self.assertIn(reason, str(exc))


@ddt.ddt
class ShareSyntaxTestCase(SyntaxTestCase):
    """The Lustre device syntax of mount.lustre(8)."""

    @ddt.data(
        ('10.0.0.1@tcp:/lfs01', ((('10.0.0.1@tcp',),), 'lfs01', '')),
        ('cfs21@tcp0:/testfs/dir',
         ((('cfs21@tcp0',),), 'testfs', 'dir')),
        ('mgs1@tcp0,mgs1ib@o2ib0:mgs2@tcp0,mgs2ib@o2ib0:/testfs',
         ((('mgs1@tcp0', 'mgs1ib@o2ib0'), ('mgs2@tcp0', 'mgs2ib@o2ib0')),
          'testfs', '')),
        ('cfs21:/testfs', ((('cfs21',),), 'testfs', '')),
        ('192.168.1.1@o2ib3:/fs_1/a/b.c/',
         ((('192.168.1.1@o2ib3',),), 'fs_1', 'a/b.c')),
        ('mgs-a.example.com@kfi:/x-y', ((('mgs-a.example.com@kfi',),),
                                        'x-y', '')),
    )
    @ddt.unpack
    def test_valid_device(self, device, expected):
        share = lustre_client.Share.parse(device)
        self.assertEqual(device, share.device)
        self.assertEqual(expected, (share.mgs_nodes, share.fsname,
                                    share.subdir))

    @ddt.data(
        ('', 'must not be empty'),
        ('10.0.0.1@tcp/lfs01', 'expected MGSNID'),
        (':/lfs01', 'expected MGSNID'),
        ('10.0.0.1@tcp:/', 'not a valid Lustre fsname'),
        ('10.0.0.1@tcp:/toolongname', 'not a valid Lustre fsname'),
        ('10.0.0.1@tcp:/lfs.01', 'not a valid Lustre fsname'),
        ('10.0.0.1@@tcp:/lfs01', 'not a valid MGS NID'),
        ('10.0.0.1@TCP:/lfs01', 'not a valid MGS NID'),
        ('10.0.0.1@tcp,:/lfs01', 'not a valid MGS NID'),
        ('mgs1@tcp::/lfs01', 'not a valid MGS NID'),
        ('-mgs@tcp:/lfs01', 'not a valid MGS NID'),
        ('mgs..x@tcp:/lfs01', 'not a valid MGS NID'),
        ('10.0.0.1@tcp:/lfs01/../etc', "'..'"),
        ('10.0.0.1@tcp:/lfs01/./a', "'.'"),
        ('10.0.0.1@tcp:/lfs01//a', 'empty'),
        ('10.0.0.1@tcp:/lfs01/a b', 'must not be empty or contain spaces'),
        ('10.0.0.1@tcp:/lfs01/a;rm', 'unsupported character'),
    )
    @ddt.unpack
    def test_invalid_device(self, device, reason):
        self.assertRefused(reason, lustre_client.Share.parse, device)

    def test_key_ignores_default_network_spelling(self):
        a = lustre_client.Share.parse('MGS@tcp0,b@o2ib:/fs/x')
        b = lustre_client.Share.parse('b@o2ib0,mgs:/fs/x')
        self.assertEqual(a.key, b.key)

    @ddt.data(
        ('m@tcp:/fs', 'm@tcp:/fs/sub', True),
        ('m@tcp:/fs/sub', 'm@tcp:/fs/sub/deeper', True),
        ('m@tcp:/fs/sub', 'm@tcp:/fs/subway', False),
        ('m@tcp:/fs/sub', 'm@tcp:/fs', False),
        ('m@tcp:/fs', 'other@tcp:/fs', False),
        ('m@tcp:/fs', 'm@tcp:/fs2', False),
    )
    @ddt.unpack
    def test_contains(self, outer, inner, expected):
        self.assertEqual(expected, lustre_client.Share.parse(outer).contains(
            lustre_client.Share.parse(inner)))

    def test_fileset(self):
        self.assertEqual('lfs01/cinder',
                         lustre_client.Share.parse(SHARE).fileset)
        self.assertEqual('lfs02', lustre_client.Share.parse(SHARE2).fileset)

    @ddt.data(
        ('%s' % SHARE, []),
        ('%s -o noatime' % SHARE, ['noatime']),
        ('%s -onoatime,user_xattr' % SHARE, ['noatime', 'user_xattr']),
        ('%s -o network=o2ib1 -o retry=3' % SHARE,
         ['network=o2ib1', 'retry=3']),
        ('  %s\n' % SHARE, []),
    )
    @ddt.unpack
    def test_share_line(self, line, options):
        share = lustre_client.parse_share_line(line)
        self.assertEqual(SHARE, share.device)
        self.assertEqual(options, share.options)

    @ddt.data('', '   \n', '# a comment', '#%s' % SHARE)
    def test_blank_and_comment_lines(self, line):
        self.assertIsNone(lustre_client.parse_share_line(line))

    @ddt.data(
        ('%s --bind' % SHARE, "unexpected '--bind'"),
        ('%s -o' % SHARE, "unexpected '-o'"),
        ('%s noatime' % SHARE, "unexpected 'noatime'"),
        ('%s -o bogus' % SHARE, "unknown or malformed Lustre mount option "
                                "'bogus'"),
        ('%s -o network' % SHARE, "'network'"),
        ('%s -o flock=1' % SHARE, "'flock=1'"),
    )
    @ddt.unpack
    def test_bad_share_line(self, line, reason):
        self.assertRefused(reason, lustre_client.parse_share_line, line)

    def test_parse_shares_keeps_order_and_skips_comments(self):
        lines = ['# Lustre shares\n', '%s\n' % SHARE2, '\n',
                 '%s -o noatime\n' % SHARE]
        shares = lustre_client.parse_shares(lines, '/etc/shares')
        self.assertEqual([SHARE2, SHARE], [s.device for s in shares])

    def test_parse_shares_names_the_bad_line(self):
        lines = ['%s\n' % SHARE, '# ok\n', '10.0.0.2@tcp:/\n']
        exc = self.assertRaises(lustre_client.LustreConfigError,
                                lustre_client.parse_shares, lines,
                                '/etc/cinder/lustre_shares')
        self.assertIn('/etc/cinder/lustre_shares line 3', str(exc))
        self.assertIn('fsname', str(exc))

    @ddt.data(SHARE, '10.0.0.1@tcp0:/lfs01/cinder',
              '10.0.0.1@tcp:/lfs01', '10.0.0.1@tcp:/lfs01/cinder/sub')
    def test_parse_shares_refuses_overlapping_filesets(self, second):
        exc = self.assertRaises(lustre_client.LustreConfigError,
                                lustre_client.parse_shares,
                                [SHARE, second], 'shares')
        self.assertIn('shares line 2', str(exc))
        self.assertIn('overlaps %s of line 1' % SHARE, str(exc))

    @ddt.data(([], None), (['flock'], 'flock'),
              (['flock', 'noatime', 'localflock'], 'localflock'),
              (['noflock', 'flock'], 'flock'))
    @ddt.unpack
    def test_flock_mode(self, options, mode):
        self.assertEqual(mode, lustre_client.flock_mode(options))

    def test_find_mount_helper(self):
        with mock.patch('os.access', side_effect=lambda p, m:
                        p == '/usr/sbin/mount.lustre'):
            self.assertEqual('/usr/sbin/mount.lustre',
                             lustre_client.find_mount_helper())
        with mock.patch('os.access', return_value=False):
            self.assertIsNone(lustre_client.find_mount_helper())

    def test_capacity_is_one_statfs(self):
        stat = collections.namedtuple('st', 'f_blocks f_bavail f_frsize')
        with mock.patch('os.statvfs',
                        return_value=stat(1000, 250, 4096)) as statvfs:
            self.assertEqual((4096000, 1024000),
                             lustre_client.capacity('/mnt/x'))
        statvfs.assert_called_once_with('/mnt/x')


@ddt.ddt
class LayoutTestCase(SyntaxTestCase):
    """Layouts as lfs-setstripe(1) takes them."""

    @ddt.data(('1048576', units.Mi), ('64K', 64 * units.Ki),
              ('4m', 4 * units.Mi), ('1G', units.Gi), (0, 0))
    @ddt.unpack
    def test_parse_size(self, value, expected):
        self.assertEqual(expected, lustre_client.parse_size(value, 'x'))

    @ddt.data('', '4MB', '-1', '1.5M', 'M')
    def test_parse_size_refuses(self, value):
        self.assertRefused("stripe size '%s'" % value,
                           lustre_client.parse_size, value, 'stripe size')

    def test_plain_layout(self):
        layout = lustre_client.Layout.plain(4, '4M', 'flash')
        self.assertEqual(['-c', '4', '-S', str(4 * units.Mi), '-p', 'flash'],
                         layout.setstripe_args())
        self.assertFalse(layout.is_composite)

    @ddt.data(('default', [], None),
              ('', [], None),
              ('-c 4 -S 1048576 -p flash', ['-c', '4', '-S', '1048576'],
               'flash'),
              ('-S 4M', ['-S', str(4 * units.Mi)], None),
              ('-E 67108864 -c 1 -E -1 -c 4 -p disk',
               ['-E', '67108864', '-c', '1', '-E', '-1', '-c', '4', '-p',
                'disk'], None))
    @ddt.unpack
    def test_layout_defaults_read_back(self, text, args, pool):
        defaults = lustre_client.LayoutDefaults.parse(text)
        self.assertEqual((args, pool), (defaults.layout.setstripe_args(),
                                        defaults.pool))

    @ddt.data('-c', '-x 1', 'flash', '-E 64M -c 1')
    def test_layout_defaults_refuse_other_text(self, text):
        self.assertRaises(ValueError, lustre_client.LayoutDefaults.parse,
                          text)

    def test_empty_layout(self):
        layout = lustre_client.Layout.plain()
        self.assertEqual(0, len(layout))
        self.assertEqual([], layout.setstripe_args())

    @ddt.data((dict(stripe_count=2001), 'from -1'),
              (dict(stripe_count=-2), 'from -1'),
              (dict(stripe_count='many'), 'from -1'),
              (dict(stripe_size='100K'), 'multiple of 64K'),
              (dict(stripe_size='8G'), 'at most 4G'),
              (dict(pool='way_too_long_pool'), 'not a valid OST pool'),
              (dict(pool='a b'), 'not a valid OST pool'))
    @ddt.unpack
    def test_plain_layout_refuses(self, kwargs, reason):
        self.assertRefused(reason, lustre_client.Layout.plain, **kwargs)

    def test_composite_layout(self):
        layout = lustre_client.Layout.composite(
            '-E 64M -c 1 -E 1G -c 4 -S 1M -E -1 -c -1 -p flash')
        self.assertEqual(
            ['-E', str(64 * units.Mi), '-c', '1',
             '-E', str(units.Gi), '-c', '4', '-S', str(units.Mi),
             '-E', '-1', '-c', '-1', '-p', 'flash'],
            layout.setstripe_args())
        self.assertEqual(3, len(layout))

    @ddt.data(('', 'at least one component'),
              ('-c 4', "found '-c'"),
              ('-E 64M -c 1', "must end at the end of the file"),
              ('-E 1G -E 64M -E -1', 'component 2 must end after'),
              ('-E -1 -E 1G', 'component 2 must end after'),
              ('-E 100K -E -1', 'multiple of 64K'),
              ('-E 64M -c', "'-c' of component 1 has no value"),
              ('-E 64M -c x -E -1', 'component 1 stripe count'),
              ('-E 64M -E -1 -p bad/pool', 'component 2 OST pool'),
              ('-E 64M -L mdt -E -1', "found '-L'"))
    @ddt.unpack
    def test_composite_layout_refuses(self, spec, reason):
        self.assertRefused(reason, lustre_client.Layout.composite, spec)

    def test_setstripe(self):
        execute = mock.Mock()
        lustre_client.setstripe(execute, '/mnt/x/vol',
                                lustre_client.Layout.plain(stripe_count=2))
        execute.assert_called_once_with('lfs', 'setstripe', '-c', '2',
                                        '/mnt/x/vol', run_as_root=False)


class LustreMountClientTestCase(test.TestCase):
    """Mounting through os-brick's RemoteFsClient."""

    def setUp(self):
        super().setUp()
        self.execute = mock.Mock(return_value=('', ''))
        self.client = lustre_client.LustreMountClient(
            'sudo cinder-rootwrap', execute=self.execute,
            mount_point_base='/var/lib/cinder/mnt', mount_options='flock')
        self.mount_point = os.path.join(
            '/var/lib/cinder/mnt', hashlib.md5(SHARE.encode(),
                                               usedforsecurity=False)
            .hexdigest())
        self.read_mounts = self.mock_object(self.client, '_read_mounts',
                                            return_value={})

    def test_mount_point_is_hashed_device(self):
        self.assertEqual(self.mount_point, self.client.get_mount_point(SHARE))

    def test_mount(self):
        self.client.mount(SHARE, ['-o', 'noatime'])
        self.execute.assert_has_calls([
            mock.call('mkdir', '-p', self.mount_point, check_exit_code=0),
            mock.call('mount', '-t', 'lustre', '-o', 'flock', '-o',
                      'noatime', SHARE, self.mount_point,
                      root_helper='sudo cinder-rootwrap', run_as_root=True,
                      check_exit_code=0)])

    def test_mount_without_options(self):
        client = lustre_client.LustreMountClient(
            'rh', execute=self.execute, mount_point_base='/mnt')
        self.mock_object(client, '_read_mounts', return_value={})
        client.mount(SHARE)
        self.assertEqual(('mount', '-t', 'lustre', SHARE,
                          client.get_mount_point(SHARE)),
                         self.execute.call_args[0])

    def test_already_mounted_is_left_alone(self):
        # Lustre shows resolved NIDs in /proc/mounts: only the mount point
        # identifies the mount.
        self.read_mounts.return_value = {self.mount_point: '10.0.0.1@tcp:/x'}
        self.client.mount(SHARE)
        self.execute.assert_not_called()
        self.assertTrue(self.client.is_mounted(SHARE))

    def test_mount_race_lost_to_another_service(self):
        # mount(8) fails because the other service's mount won; the mount
        # point is then in /proc/mounts, which is all that matters.
        self.read_mounts.side_effect = [{}, {self.mount_point: SHARE},
                                        {self.mount_point: SHARE}]
        self.execute.side_effect = [
            ('', ''), putils.ProcessExecutionError(
                stderr='mount.lustre: ... already mounted')]
        self.client.mount(SHARE)
        self.assertEqual('mount', self.execute.call_args[0][0])
        self.assertTrue(self.client.is_mounted(SHARE))

    def test_mount_timeout_is_reported_not_raised_from_subprocess(self):
        client = lustre_client.LustreMountClient(
            'rh', execute=self.execute, mount_point_base='/mnt',
            mount_timeout=7)
        self.mock_object(client, '_read_mounts', return_value={})
        self.execute.side_effect = [('', ''), subprocess.TimeoutExpired(
            'mount', 7)]
        exc = self.assertRaises(lustre_client.LustreMountTimeout,
                                client.mount, SHARE)
        self.assertIn('did not finish within 7 seconds', str(exc))
        self.assertEqual(7, self.execute.call_args[1]['timeout'])

    def test_mount_failure_raises(self):
        self.execute.side_effect = [
            ('', ''), putils.ProcessExecutionError(
                exit_code=5, stderr='Input/output error')]
        self.assertRaises(putils.ProcessExecutionError, self.client.mount,
                          SHARE)

    def test_mount_point_base_required(self):
        self.assertRaises(brick_exception.InvalidParameterValue,
                          lustre_client.LustreMountClient, 'rh')


class LustreDriverTestCase(test.TestCase):
    """A driver with a temporary mount point base and mocked commands."""

    # Volume objects are saved to the (test) database, or not at all.
    save_volumes = False

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.shares_file = os.path.join(self.tmp, 'lustre_shares')
        with open(self.shares_file, 'w') as f:
            f.write('%s\n%s -o noatime\n' % (SHARE, SHARE2))
        self.configuration = conf.Configuration(None)
        self.configuration.append_config_values(lustre.lustre_opts)
        self.configuration.append_config_values(remotefs.nas_opts)
        self.override_config('lustre_shares_config', self.shares_file)
        self.override_config('lustre_mount_point_base',
                             os.path.join(self.tmp, 'mnt'))
        self.override_config('lustre_mount_attempts', 3)
        self.override_config('nas_secure_file_operations', 'false')
        self.override_config('nas_secure_file_permissions', 'false')
        self.override_config('volume_backend_name', 'lustre-backend')
        self.override_config('image_conversion_dir',
                             os.path.join(self.tmp, 'conversion'))
        self.context = context.get_admin_context()
        self.mounts = {}
        self.mount_execute = mock.Mock(side_effect=self.fake_mount)
        self.mock_object(lustre_client.LustreMountClient, '_read_mounts',
                         side_effect=lambda: dict(self.mounts))
        self.driver = self.make_driver()
        self.execute = self.driver._execute
        self.mock_object(lustre_client, 'find_mount_helper',
                         return_value='/sbin/mount.lustre')
        self.mock_object(lustre_client.time, 'sleep')
        # A test that reaches qemu-img without saying what it answers is
        # wrong: unit tests never run it.
        self.mock_object(image_utils, 'qemu_img_info',
                         side_effect=AssertionError('qemu-img info called'))
        self.capacity = self.mock_object(
            lustre_client, 'capacity',
            return_value=(100 * units.Gi, 60 * units.Gi))
        if not self.save_volumes:
            self.mock_object(objects.Volume, 'save')
        self.mnt = self.driver._get_mount_point_for_share(SHARE)
        self.mnt2 = self.driver._get_mount_point_for_share(SHARE2)
        # The file of the volume self.volume() makes.
        self.path = os.path.join(self.mnt, VOLUME_NAME)
        os.makedirs(self.mnt)
        os.makedirs(self.mnt2)

    def make_driver(self):
        driver = lustre.LustreDriver(execute=self.mount_execute,
                                     configuration=self.configuration)
        self.mock_object(driver, '_execute', side_effect=self.fake_execute)
        return driver

    def fake_mount(self, *cmd, **kwargs):
        """mount(8), recorded in the mount table the client reads."""
        if cmd[0] == 'mount':
            self.mounts[cmd[-1]] = cmd[-2]
        return '', ''

    @staticmethod
    def fake_execute(*cmd, **kwargs):
        """Run the few commands whose effect on files later steps read."""
        if cmd[0] == 'dd' and 'conv=excl' in cmd:
            os.close(os.open(cmd[2][len('of='):], os.O_CREAT | os.O_EXCL))
        elif cmd[0] == 'mv' and os.path.exists(cmd[-2]):
            os.rename(cmd[-2], cmd[-1])
        elif cmd[:2] == ('rm', '-f') and os.path.lexists(cmd[2]):
            os.unlink(cmd[2])
        elif cmd[:2] == ('lfs', '--version'):
            return 'lfs 2.15.6\n', ''
        return '', ''

    def setup_driver(self):
        self.driver.do_setup(self.context)
        self.execute.reset_mock()

    def volume(self, size=1, fmt='raw', share=SHARE, host=None, specs=None,
               files=('',), **updates):
        """A volume object; ``files`` are made in its share, '' its base."""
        volume = fake_volume.fake_volume_obj(
            self.context, size=size, provider_location=share,
            host=host or 'node@lustre#lfs01/cinder', **updates)
        volume.admin_metadata = {'format': fmt} if fmt else {}
        volume.volume_type = fake_volume.fake_volume_type_obj(
            self.context, extra_specs=specs or {})
        for suffix in files if share else ():
            self.touch(volume.name + suffix,
                       self.driver._get_mount_point_for_share(share))
        return volume

    def snapshot(self, volume, snapshot_id=fake.SNAPSHOT_ID, **updates):
        updates.setdefault('status', 'available')
        snapshot = fake_snapshot.fake_snapshot_obj(
            self.context, id=snapshot_id, volume_id=volume.id,
            volume_size=volume.size, **updates)
        snapshot.volume = volume
        return snapshot

    @staticmethod
    def attached(volume):
        volume.status = 'in-use'
        volume.attach_status = fields.VolumeAttachStatus.ATTACHED
        return volume

    def write_info(self, volume, snap_info, mount_point=None):
        path = os.path.join(mount_point or self.mnt, volume.name + '.info')
        with open(path, 'w') as f:
            json.dump(snap_info, f)
        return path

    def touch(self, name, mount_point=None):
        path = os.path.join(mount_point or self.mnt, name)
        open(path, 'w').close()
        return path

    def commands(self):
        return [c[0] for c in self.execute.call_args_list]

    def mock_qemu_img_info(self, default=None):
        """Mock qemu-img info: per file from ``self.images``, else default.

        ``self.images`` maps a path to the info of that file (see
        :meth:`image`); the mock's ``return_value`` answers for the others.
        """
        self.images = {}

        def info(path, **kwargs):
            answer = self.images.get(path, mock.DEFAULT)
            if isinstance(answer, Exception):
                raise answer
            return answer

        return self.mock_object(image_utils, 'qemu_img_info',
                                return_value=default or qemu_info(),
                                side_effect=info)

    def image(self, name, info, mount_point=None):
        """A file of a share, with what qemu-img info says of it."""
        path = self.touch(name, mount_point)
        self.images[path] = info
        return path

    def volume_with_snapshot(self, **updates):
        """A raw volume with snapshot SNAPSHOT_ID, its overlay active.

        Needs :meth:`mock_qemu_img_info`.
        """
        volume = self.volume(fmt='qcow2', **updates)
        volume.admin_metadata['base_format'] = 'raw'
        overlay = VOLUME_NAME + '.' + fake.SNAPSHOT_ID
        self.write_info(volume, {'active': overlay, fake.SNAPSHOT_ID: overlay})
        self.image(overlay, qemu_info('qcow2', backing_file=VOLUME_NAME))
        return volume


@ddt.ddt
class LustreDriverSetupTestCase(LustreDriverTestCase):

    def test_driver_attributes(self):
        self.assertEqual('lustre', self.driver.driver_volume_type)
        # The prefix names the locks and the <prefix>_shares_config option
        # the base class reads.
        self.assertEqual('lustre', self.driver.driver_prefix)
        self.assertEqual(self.shares_file, self.driver.configuration.safe_get(
            self.driver.driver_prefix + '_shares_config'))

    def test_get_driver_options(self):
        names = [opt.name for opt in lustre.LustreDriver.get_driver_options()]
        self.assertEqual(
            ['lustre_shares_config', 'lustre_mount_point_base',
             'lustre_mount_options', 'lustre_mount_attempts',
             'lustre_mount_timeout', 'lustre_sparsed_volumes',
             'lustre_qcow2_volumes', 'lustre_snapshot_support',
             'lustre_stripe_count',
             'lustre_stripe_size', 'lustre_ost_pool', 'lustre_layout',
             'lustre_ost_pools_as_pools', 'nas_secure_file_operations',
             'nas_secure_file_permissions', 'nas_mount_options'], names)

    def test_mount_options_default_flock(self):
        self.assertEqual('flock', self.driver._remotefsclient._mount_options)

    def test_nas_mount_options_override(self):
        self.override_config('nas_mount_options', 'flock,noatime')
        driver = self.make_driver()
        self.assertEqual('flock,noatime',
                         driver._remotefsclient._mount_options)

    def test_do_setup_mounts_every_share(self):
        self.driver.do_setup(self.context)
        self.assertEqual([SHARE, SHARE2], self.driver._mounted_shares)
        mounts = [c for c in self.mount_execute.call_args_list
                  if c[0][0] == 'mount']
        self.assertEqual(
            [('mount', '-t', 'lustre', '-o', 'flock', SHARE, self.mnt),
             ('mount', '-t', 'lustre', '-o', 'flock', '-o', 'noatime',
              SHARE2, self.mnt2)], [c[0] for c in mounts])
        self.assertTrue(self.driver._execute_as_root)
        self.driver.check_for_setup_error()

    def test_do_setup_never_unmounts(self):
        self.driver.do_setup(self.context)
        self.assertNotIn('umount', [c[0][0] for c in
                                    self.mount_execute.call_args_list])

    def test_do_setup_without_lustre_client(self):
        lustre_client.find_mount_helper.return_value = None
        exc = self.assertRaises(lustre_client.LustreException,
                                self.driver.do_setup, self.context)
        self.assertIn('mount.lustre was not found', str(exc))
        self.mount_execute.assert_not_called()

    @ddt.data(('missing', 'No such file'),
              ('unset', 'no shares file is configured'),
              ('# nothing yet\n\n', 'no Lustre share is listed'),
              ('%s\n10.0.0.9@tcp:/fs/../x\n' % SHARE, 'line 2'))
    @ddt.unpack
    def test_do_setup_bad_shares_file(self, content, fragment):
        if content == 'missing':
            os.unlink(self.shares_file)
        elif content == 'unset':
            self.override_config('lustre_shares_config', '')
        else:
            with open(self.shares_file, 'w') as f:
                f.write(content)
        exc = self.assertRaises(lustre_client.LustreConfigError,
                                self.driver.do_setup, self.context)
        self.assertIn(fragment, str(exc))
        self.mount_execute.assert_not_called()

    def test_do_setup_same_fileset_on_two_filesystems(self):
        with open(self.shares_file, 'a') as f:
            f.write('10.9.9.9@tcp:/lfs01/cinder\n')
        exc = self.assertRaises(lustre_client.LustreConfigError,
                                self.driver.do_setup, self.context)
        self.assertIn('same name', str(exc))

    def test_do_setup_refuses_noflock(self):
        with open(self.shares_file, 'w') as f:
            f.write('%s -o noflock\n' % SHARE)
        exc = self.assertRaises(lustre_client.LustreConfigError,
                                self.driver.do_setup, self.context)
        self.assertIn('noflock', str(exc))
        self.assertIn(SHARE, str(exc))

    @ddt.data(('localflock', 'not seen by other hosts'),
              ('noatime', 'no flock mount option'))
    @ddt.unpack
    def test_do_setup_warns_without_coherent_flock(self, options, warning):
        self.override_config('lustre_mount_options', options)
        driver = self.make_driver()
        with mock.patch.object(lustre.LOG, 'warning') as warn:
            driver.do_setup(self.context)
        self.assertTrue(any(warning in c[0][0]
                            for c in warn.call_args_list))

    def test_do_setup_bad_mount_options(self):
        self.override_config('lustre_mount_options', 'flock,bogus=')
        driver = self.make_driver()
        exc = self.assertRaises(lustre_client.LustreConfigError,
                                driver.do_setup, self.context)
        self.assertIn('lustre_mount_options', str(exc))

    def test_do_setup_mount_base_not_writable(self):
        with mock.patch('os.access', return_value=False):
            exc = self.assertRaises(lustre_client.LustreConfigError,
                                    self.driver.do_setup, self.context)
        self.assertIn('lustre_mount_point_base', str(exc))
        self.assertIn('not writable', str(exc))

    def test_do_setup_mount_fails_after_all_attempts(self):
        self.mount_execute.side_effect = fail_mounts
        exc = self.assertRaises(lustre_client.LustreNoSharesMounted,
                                self.driver.do_setup, self.context)
        self.assertIn('none of the 2 shares', str(exc))
        mounts = [c for c in self.mount_execute.call_args_list
                  if c[0][0] == 'mount']
        self.assertEqual(6, len(mounts))
        self.assertEqual([mock.call(1)] * 4,
                         lustre_client.time.sleep.call_args_list)

    def test_ensure_share_mounted_reports_mount_error(self):
        self.driver._load_shares_config(self.shares_file)
        self.mount_execute.side_effect = [
            ('', ''), putils.ProcessExecutionError(
                exit_code=5, stderr='Is the MGS running?\n')] * 3
        exc = self.assertRaises(lustre_client.LustreException,
                                self.driver._ensure_share_mounted, SHARE)
        self.assertIn('after 3 attempts', str(exc))
        self.assertIn('Is the MGS running?', str(exc))

    def test_mount_that_hangs_is_bounded(self):
        self.override_config('lustre_mount_timeout', 42)
        self.driver = self.make_driver()
        self.driver._load_shares_config(self.shares_file)

        def execute(*cmd, **kwargs):
            if cmd[0] == 'mount':
                self.assertEqual(42, kwargs['timeout'])
                raise subprocess.TimeoutExpired(cmd, 42)
            return '', ''
        self.mount_execute.side_effect = execute
        exc = self.assertRaises(lustre_client.LustreException,
                                self.driver._ensure_share_mounted, SHARE)
        self.assertIn('did not finish within 42 seconds', str(exc))
        # A mount that may still finish is not started twice.
        self.assertEqual(1, len([c for c in self.mount_execute.call_args_list
                                 if c[0][0] == 'mount']))

    def test_ensure_share_mounted_transient_failure(self):
        self.driver._load_shares_config(self.shares_file)
        self.mount_execute.side_effect = [
            ('', ''), putils.ProcessExecutionError(exit_code=5),
            ('', ''), ('', '')]
        self.driver._ensure_share_mounted(SHARE)
        self.assertEqual(4, self.mount_execute.call_count)

    def test_do_setup_one_share_down(self):
        def execute(*cmd, **kwargs):
            if cmd[0] == 'mount' and SHARE2 in cmd:
                raise putils.ProcessExecutionError(exit_code=5)
            return '', ''
        self.mount_execute.side_effect = execute
        self.driver.do_setup(self.context)
        self.assertEqual([SHARE], self.driver._mounted_shares)

    def test_reload_keeps_last_valid_shares(self):
        self.setup_driver()
        with open(self.shares_file, 'w') as f:
            f.write('garbage\n')
        self.driver._ensure_shares_mounted()
        self.assertEqual([SHARE, SHARE2], self.driver._mounted_shares)

    def test_reload_picks_up_new_share(self):
        self.setup_driver()
        with open(self.shares_file, 'a') as f:
            f.write('10.0.0.3@tcp:/lfs03\n')
        self.driver._ensure_shares_mounted()
        self.assertEqual([SHARE, SHARE2, '10.0.0.3@tcp:/lfs03'],
                         self.driver._mounted_shares)

    def test_secure_options_auto_on_new_install(self):
        self.override_config('nas_secure_file_operations', 'auto')
        self.override_config('nas_secure_file_permissions', 'auto')
        self.driver._is_voldb_empty_at_startup = True
        self.driver.do_setup(self.context)
        self.assertEqual('true',
                         self.configuration.nas_secure_file_operations)
        self.assertFalse(self.driver._execute_as_root)
        self.assertTrue(os.path.exists(
            os.path.join(self.mnt, '.cinderSecureEnvIndicator')))

    def test_check_for_setup_error_without_mounts(self):
        self.assertRaises(lustre_client.LustreNoSharesMounted,
                          self.driver.check_for_setup_error)


@ddt.ddt
class LustreDriverStatsTestCase(LustreDriverTestCase):

    def test_stats_one_pool_per_share(self):
        self.setup_driver()
        stats = self.driver.get_volume_stats(refresh=True)
        self.assertEqual('lustre-backend', stats['volume_backend_name'])
        self.assertEqual('lustre', stats['storage_protocol'])
        self.assertEqual(lustre.VERSION, stats['driver_version'])
        self.assertEqual('Open Source', stats['vendor_name'])
        self.assertEqual(200, stats['total_capacity_gb'])
        self.assertEqual(120, stats['free_capacity_gb'])
        self.assertEqual(['lfs01/cinder', 'lfs02'],
                         [p['pool_name'] for p in stats['pools']])
        pool = stats['pools'][0]
        self.assertEqual(100, pool['total_capacity_gb'])
        self.assertEqual(60, pool['free_capacity_gb'])
        self.assertTrue(pool['thin_provisioning_support'])
        self.assertTrue(pool['thick_provisioning_support'])
        self.assertTrue(pool['online_extend_support'])
        self.assertNotIn('provisioned_capacity_gb', pool)
        self.capacity.assert_has_calls([mock.call(self.mnt),
                                        mock.call(self.mnt2)])

    def test_stats_never_walk_the_filesystem(self):
        self.setup_driver()
        self.driver.get_volume_stats(refresh=True)
        self.assertEqual([], self.commands())

    def test_stats_skip_unmounted_share(self):
        self.setup_driver()
        self.mock_object(self.driver, '_ensure_share_mounted',
                         side_effect=[None, lustre_client.LustreException(
                             reason='down')])
        stats = self.driver.get_volume_stats(refresh=True)
        self.assertEqual(['lfs01/cinder'],
                         [p['pool_name'] for p in stats['pools']])

    def test_get_pool(self):
        self.setup_driver()
        self.assertEqual('lfs02', self.driver.get_pool(
            self.volume(host='node@lustre#lfs02')))
        self.assertEqual('lfs02', self.driver.get_pool(
            self.volume(share=SHARE2, host='node@lustre')))
        self.assertIsNone(self.driver.get_pool(
            self.volume(share=None, host='node@lustre')))

    def test_find_share_by_pool(self):
        self.setup_driver()
        self.assertEqual(SHARE2, self.driver._find_share(
            self.volume(host='node@lustre#lfs02')))

    def test_find_share_unknown_pool(self):
        self.setup_driver()
        exc = self.assertRaises(lustre_client.LustreNoSuitableShareFound,
                                self.driver._find_share,
                                self.volume(host='node@lustre#nowhere'))
        self.assertIn('pool nowhere', str(exc))

    def test_find_share_without_pool_takes_most_space(self):
        self.setup_driver()
        self.capacity.side_effect = lambda mnt: (
            (100 * units.Gi, units.Gi) if mnt == self.mnt else
            (100 * units.Gi, 50 * units.Gi))
        self.assertEqual(SHARE2, self.driver._find_share(
            self.volume(host='node@lustre')))

    def test_find_share_thick_volume_too_big(self):
        self.setup_driver()
        exc = self.assertRaises(
            lustre_client.LustreNoSuitableShareFound,
            self.driver._find_share,
            self.volume(size=61, host='node@lustre',
                        specs={'provisioning:type': 'thick'}))
        self.assertIn('61 GiB', str(exc))

    def test_find_share_nothing_mounted(self):
        self.assertRaises(lustre_client.LustreNoSharesMounted,
                          self.driver._find_share, self.volume())


@ddt.ddt
class LustreDriverVolumeTestCase(LustreDriverTestCase):

    def setUp(self):
        super().setUp()
        self.setup_driver()

    @ddt.data((True, None, 'truncate'), (False, 'thin', 'truncate'),
              (False, None, 'fallocate'), (True, 'thick', 'fallocate'))
    @ddt.unpack
    def test_create_volume_provisioning(self, sparsed, spec, command):
        self.override_config('lustre_sparsed_volumes', sparsed)
        specs = {'provisioning:type': spec} if spec else {}
        volume = self.volume(size=2, fmt=None, specs=specs, files=())
        update = self.driver.create_volume(volume)
        self.assertEqual({'provider_location': SHARE}, update)
        if command == 'truncate':
            expected = ('truncate', '-s', str(2 * units.Gi), self.path)
        else:
            expected = ('fallocate', '--offset', '0', '--length',
                        str(2 * units.Gi), self.path)
        self.assertEqual([expected, ('chmod', '660', self.path)],
                         self.commands())
        self.assertEqual('raw', volume.admin_metadata['format'])

    def test_create_volume_qcow2(self):
        self.override_config('lustre_qcow2_volumes', True)
        volume = self.volume(size=3, fmt=None, files=())
        self.driver.create_volume(volume)
        self.assertEqual(('qemu-img', 'create', '-f', 'qcow2', '-o',
                          'preallocation=metadata', self.path,
                          str(3 * units.Gi)), self.commands()[0])
        self.assertEqual('qcow2', volume.admin_metadata['format'])

    def test_create_thick_volume_is_never_qcow2(self):
        self.override_config('lustre_qcow2_volumes', True)
        volume = self.volume(fmt=None, files=(),
                             specs={'provisioning:type': 'thick'})
        self.driver.create_volume(volume)
        self.assertEqual('fallocate', self.commands()[0][0])
        self.assertEqual('raw', volume.admin_metadata['format'])

    def test_create_volume_in_pool_of_second_share(self):
        volume = self.volume(fmt=None, host='node@lustre#lfs02', files=())
        self.assertEqual({'provider_location': SHARE2},
                         self.driver.create_volume(volume))

    @ddt.data('true', 'false')
    def test_volume_files_are_never_world_readable(self, secure):
        self.configuration.nas_secure_file_permissions = secure
        self.driver.create_volume(self.volume(fmt=None, files=()))
        self.assertIn(('chmod', '660', self.path), self.commands())
        self.assertNotIn('ugo+rw', str(self.commands()))

    def test_create_thick_volume_without_fallocate_writes_zeros(self):
        self.override_config('lustre_sparsed_volumes', False)
        self.execute.side_effect = [EOPNOTSUPP, ('', ''), ('', ''),
                                    ('', ''), ('', '')]
        self.driver.create_volume(self.volume(size=2, fmt=None, files=()))
        self.assertEqual(('dd', 'if=/dev/zero', 'of=%s' % self.path,
                          'bs=1M', 'seek=0', 'count=2048', 'conv=notrunc'),
                         self.commands()[1])
        # The next volume on that share goes straight to zeros.
        volume = self.volume(fmt=None, id=fake.VOLUME2_ID, files=())
        self.driver.create_volume(volume)
        self.assertEqual('dd', self.commands()[3][0])

    def test_create_volume_enospc_leaves_nothing(self):
        self.override_config('lustre_sparsed_volumes', False)
        self.execute.side_effect = [ENOSPC, ('', '')]
        exc = self.assertRaises(lustre_client.LustreException,
                                self.driver.create_volume,
                                self.volume(size=500, fmt=None, files=()))
        self.assertIn('No space left on device', str(exc))
        self.assertIn('500 GiB', str(exc))
        self.assertEqual(('rm', '-f', self.path), self.commands()[-1])

    def test_create_volume_refuses_to_overwrite(self):
        exc = self.assertRaises(lustre_client.LustreException,
                                self.driver.create_volume,
                                self.volume(fmt=None))
        self.assertIn('already exists', str(exc))
        self.assertEqual([], self.commands())
        self.assertTrue(os.path.exists(self.path))

    def test_delete_volume(self):
        self.touch(VOLUME_NAME)
        self.driver.delete_volume(self.volume())
        # One root command: the files that do not exist are not removed.
        self.assertEqual([('rm', '-f', self.path)], self.commands())
        self.assertFalse(os.path.exists(self.path))

    def test_delete_volume_with_snapshots(self):
        volume = self.volume(fmt='qcow2')
        s1 = VOLUME_NAME + '.' + fake.SNAPSHOT_ID
        s2 = VOLUME_NAME + '.' + fake.SNAPSHOT2_ID
        self.write_info(volume, {'active': s2, fake.SNAPSHOT_ID: s1,
                                 fake.SNAPSHOT2_ID: s2})
        for name in (s1, s2, VOLUME_NAME + '.info.tmp', s1 + '.tmp'):
            self.touch(name)
        self.driver.delete_volume(volume)
        # The .info file goes last, so that a retry finds the others.
        removed = [c[2] for c in self.commands()]
        self.assertEqual(self.path + '.info', removed[-1])
        self.assertEqual(sorted(os.path.join(self.mnt, name) for name in (
            VOLUME_NAME, s1, s2, VOLUME_NAME + '.info.tmp', s1 + '.tmp')),
            sorted(removed[:-1]))
        self.assertEqual([], os.listdir(self.mnt))

    def test_delete_volume_with_corrupt_info(self):
        volume = self.volume(fmt='qcow2')
        with open(self.path + '.info', 'w') as f:
            f.write('{"active": "vol')
        self.touch(VOLUME_NAME + '.' + fake.SNAPSHOT_ID)
        self.touch('volume-%s' % fake.VOLUME2_ID)
        self.driver.delete_volume(volume)
        deleted = [c[2] for c in self.commands()]
        self.assertIn(self.path + '.' + fake.SNAPSHOT_ID, deleted)
        self.assertEqual(self.path + '.info', deleted[-1])
        self.assertNotIn(os.path.join(self.mnt, 'volume-%s' %
                                      fake.VOLUME2_ID), deleted)

    def test_delete_volume_without_location(self):
        self.driver.delete_volume(self.volume(share=None))
        self.assertEqual([], self.commands())

    def test_delete_volume_whose_creation_died_before_its_location(self):
        """The service creating it died; another one deletes its file."""
        self.touch(VOLUME_NAME)
        volume = self.volume(share=None)
        self.driver.delete_volume(volume)
        self.assertEqual([('rm', '-f', self.path)], self.commands())
        self.assertFalse(os.path.exists(self.path))
        self.assertNotIn('provider_location', volume.obj_get_changes())

    def test_delete_volume_without_location_nor_pool(self):
        self.touch(VOLUME_NAME)
        self.driver.delete_volume(self.volume(share=None, host='node@lustre'))
        self.assertEqual([], self.commands())
        self.assertTrue(os.path.exists(self.path))

    def test_delete_volume_twice(self):
        volume = self.volume()
        self.touch(VOLUME_NAME)
        self.driver.delete_volume(volume)
        self.driver.delete_volume(volume)
        self.assertEqual(1, self.execute.call_count)

    def test_ensure_export_mounts_the_share(self):
        self.mock_object(self.driver, '_ensure_share_mounted')
        self.driver.ensure_export(self.context, self.volume())
        self.driver._ensure_share_mounted.assert_called_once_with(SHARE)

    def test_exports_touch_nothing(self):
        volume = self.volume()
        self.driver.create_export(self.context, volume, {})
        self.driver.remove_export(self.context, volume)
        self.driver.terminate_connection(volume, {})
        self.assertEqual([], self.commands())
        self.assertEqual([VOLUME_NAME], os.listdir(self.mnt))


@ddt.ddt
class LustreDriverConnectionTestCase(LustreDriverTestCase):

    def setUp(self):
        super().setUp()
        self.setup_driver()
        self.qemu_img_info = self.mock_qemu_img_info()

    def test_initialize_connection_raw(self):
        conn = self.driver.initialize_connection(self.volume(files=['']),
                                                 {})
        path = os.path.join(self.mnt, VOLUME_NAME)
        self.assertEqual(
            {'driver_volume_type': 'lustre',
             'mount_point_base': self.driver.base,
             'data': {'export': SHARE, 'name': VOLUME_NAME, 'format': 'raw',
                      'options': '-o flock', 'device_path': path}}, conn)
        self.qemu_img_info.assert_called_once_with(
            path, force_share=True, run_as_root=True,
            allow_qcow2_backing_file=True, img_format='raw')

    def test_initialize_connection_active_overlay(self):
        volume = self.volume(fmt='qcow2', share=SHARE2, files=[''])
        active = VOLUME_NAME + '.' + fake.SNAPSHOT_ID
        self.write_info(volume, {'active': active, fake.SNAPSHOT_ID: active},
                        self.mnt2)
        self.image(active, qemu_info('qcow2', backing_file=VOLUME_NAME),
                   self.mnt2)
        data = self.driver.initialize_connection(volume, {})['data']
        self.assertEqual(active, data['name'])
        self.assertEqual('qcow2', data['format'])
        self.assertEqual('-o flock,noatime', data['options'])
        self.assertEqual(os.path.join(self.mnt2, active),
                         data['device_path'])

    def test_initialize_connection_refuses_grown_image(self):
        self.qemu_img_info.return_value = qemu_info(
            'raw', virtual_size=2 * units.Gi)
        self.assertRaises(exception.InvalidVolume,
                          self.driver.initialize_connection,
                          self.volume(size=1, files=['']), {})

    def test_initialize_connection_refuses_foreign_backing_file(self):
        self.qemu_img_info.return_value = qemu_info(
            'qcow2', backing_file='/etc/shadow')
        exc = self.assertRaises(lustre.LustreUnsafeFile,
                                self.driver.initialize_connection,
                                self.volume(fmt='qcow2', files=['']), {})
        self.assertIn('its backing file /etc/shadow is not a file of %s' %
                      VOLUME_NAME, str(exc))

    def test_initialize_connection_unknown_format(self):
        exc = self.assertRaises(exception.InvalidVolume,
                                self.driver.initialize_connection,
                                self.volume(fmt='vmdk'), {})
        self.assertIn("'vmdk'", str(exc))
        self.qemu_img_info.assert_not_called()

    def test_initialize_connection_without_format_record(self):
        data = self.driver.initialize_connection(
            self.volume(fmt=None, files=['']), {})['data']
        self.assertEqual('raw', data['format'])


@ddt.ddt
class LustreDriverExtendTestCase(LustreDriverTestCase):

    def setUp(self):
        super().setUp()
        self.setup_driver()
        self.qemu_img_info = self.mock_object(image_utils, 'qemu_img_info')
        self.resize = self.mock_object(image_utils, 'resize_image')

    @ddt.data('raw', 'qcow2')
    def test_extend_thin(self, fmt):
        self.qemu_img_info.side_effect = [qemu_info(fmt, units.Gi),
                                          qemu_info(fmt, 3 * units.Gi)]
        self.driver.extend_volume(self.volume(fmt=fmt), 3)
        self.resize.assert_called_once_with(self.path, 3, run_as_root=True,
                                            file_format=fmt)
        self.assertEqual([], self.commands())

    def test_extend_thick_preallocates_the_new_space(self):
        self.qemu_img_info.side_effect = [qemu_info('raw', units.Gi),
                                          qemu_info('raw', 3 * units.Gi)]
        self.driver.extend_volume(
            self.volume(specs={'provisioning:type': 'thick'}), 3)
        self.assertEqual([('fallocate', '--offset', str(units.Gi),
                           '--length', str(2 * units.Gi), self.path)],
                         self.commands())

    def test_extend_thick_enospc_keeps_the_volume(self):
        self.qemu_img_info.return_value = qemu_info('raw', units.Gi)
        self.execute.side_effect = [ENOSPC, ('', '')]
        exc = self.assertRaises(
            exception.ExtendVolumeError, self.driver.extend_volume,
            self.volume(specs={'provisioning:type': 'thick'}), 3)
        self.assertIn('No space left', str(exc))
        self.assertEqual(('truncate', '-s', str(units.Gi), self.path),
                         self.commands()[-1])

    def test_extend_volume_with_snapshots_resizes_active_file(self):
        volume = self.volume(fmt='qcow2')
        active = VOLUME_NAME + '.' + fake.SNAPSHOT_ID
        self.write_info(volume, {'active': active, fake.SNAPSHOT_ID: active})
        self.touch(active)
        self.qemu_img_info.side_effect = [
            qemu_info('qcow2', units.Gi, backing_file=VOLUME_NAME),
            qemu_info('raw', units.Gi),
            qemu_info('qcow2', 2 * units.Gi, backing_file=VOLUME_NAME)]
        self.driver.extend_volume(volume, 2)
        self.resize.assert_called_once_with(os.path.join(self.mnt, active),
                                            2, run_as_root=True,
                                            file_format='qcow2')

    @ddt.data('raw', 'qcow2')
    def test_attached_volume_is_grown_by_the_hypervisor(self, fmt):
        # QEMU has the file open: only it may resize it (Nova's Lustre
        # volume driver has libvirt do so when Cinder tells it).
        volume = self.volume(fmt=fmt, attach_status='attached',
                             status='in-use')
        self.qemu_img_info.return_value = qemu_info(fmt, units.Gi)
        self.driver.extend_volume(volume, 2)
        self.resize.assert_not_called()
        self.assertEqual([], self.commands())

    def test_attached_volume_cannot_shrink_either(self):
        volume = self.volume(attach_status='attached', status='in-use',
                             size=2)
        self.qemu_img_info.return_value = qemu_info('raw', 4 * units.Gi)
        self.assertRaises(exception.ExtendVolumeError,
                          self.driver.extend_volume, volume, 3)

    @ddt.data(('raw', 'detached', [('truncate', '-s', str(2 * units.Gi))]),
              ('raw', 'attached', [('truncate', '-s', str(2 * units.Gi))]),
              ('qcow2', 'detached', 'resize'),
              ('qcow2', 'attached', []))
    @ddt.unpack
    def test_an_extend_the_hypervisor_missed_is_finished_at_attach(
            self, fmt, attach_status, expected):
        # The volume is 2 GiB, its file still 1 GiB.
        volume = self.volume(fmt=fmt, size=2, attach_status=attach_status)
        self.qemu_img_info.return_value = qemu_info(fmt, units.Gi)
        self.driver.initialize_connection(volume, {})
        path = os.path.join(self.mnt, VOLUME_NAME)
        if expected == 'resize':
            self.resize.assert_called_once_with(
                path, 2, run_as_root=True, file_format='qcow2')
        else:
            self.assertEqual([c + (path,) for c in expected],
                             self.commands())
            self.resize.assert_not_called()

    def test_extend_to_smaller_size_refused(self):
        self.qemu_img_info.return_value = qemu_info('raw', 4 * units.Gi)
        exc = self.assertRaises(exception.ExtendVolumeError,
                                self.driver.extend_volume,
                                self.volume(size=4), 2)
        self.assertIn('cannot shrink', str(exc))
        self.resize.assert_not_called()

    def test_extend_checks_the_result(self):
        self.qemu_img_info.return_value = qemu_info('qcow2', units.Gi)
        self.assertRaises(exception.ExtendVolumeError,
                          self.driver.extend_volume,
                          self.volume(fmt='qcow2'), 2)

    def test_extend_unknown_format(self):
        self.assertRaises(exception.InvalidVolume,
                          self.driver.extend_volume,
                          self.volume(fmt='vhd'), 2)
        self.resize.assert_not_called()


@ddt.ddt
class LustreDriverSnapshotTestCase(LustreDriverTestCase):

    def setUp(self):
        super().setUp()
        self.setup_driver()
        self.qemu_img_info = self.mock_qemu_img_info()
        self.s1 = VOLUME_NAME + '.' + fake.SNAPSHOT_ID
        self.s2 = VOLUME_NAME + '.' + fake.SNAPSHOT2_ID

    def test_create_first_snapshot_of_raw_volume(self):
        volume = self.volume(size=2)
        snapshot = self.snapshot(volume)
        self.qemu_img_info.return_value = qemu_info('raw', 2 * units.Gi)
        self.driver.create_snapshot(snapshot)
        overlay = self.path + '.' + fake.SNAPSHOT_ID
        self.assertEqual(('qemu-img', 'create', '-f', 'qcow2', '-b',
                          VOLUME_NAME, '-F', 'raw', overlay,
                          str(2 * units.Gi)), self.commands()[0])
        # The raw base is never probed: a guest may have written a qcow2
        # header into it.
        self.assertEqual('raw',
                         self.qemu_img_info.call_args[1]['img_format'])
        with open(self.path + '.info') as f:
            self.assertEqual({'active': os.path.basename(overlay),
                              fake.SNAPSHOT_ID: os.path.basename(overlay)},
                             json.load(f))
        self.assertEqual({'format': 'qcow2', 'base_format': 'raw'},
                         volume.admin_metadata)

    def secure_mode(self):
        self.configuration.nas_secure_file_operations = 'true'
        self.driver._execute_as_root = False

    def test_secure_snapshot_overlay_gets_owner_of_own_backing_file(self):
        self.secure_mode()
        volume = self.volume()
        self.qemu_img_info.return_value = qemu_info('raw', units.Gi)
        self.driver.create_snapshot(self.snapshot(volume))
        self.assertIn(('chown', '--reference=%s' % self.path,
                       self.path + '.' + fake.SNAPSHOT_ID), self.commands())
        self.assertFalse(any(c[1].get('run_as_root')
                             for c in self.execute.call_args_list))

    def test_secure_snapshot_of_file_the_hypervisor_holds(self):
        # While a guest uses the volume, libvirt has given its file to
        # QEMU's user: the service user cannot hand the overlay over.
        self.secure_mode()
        volume = self.volume()
        self.qemu_img_info.return_value = qemu_info('raw', units.Gi)
        self.mock_object(lustre.os, 'geteuid',
                         return_value=os.stat(self.path).st_uid + 1)
        self.driver.create_snapshot(self.snapshot(volume))
        overlay = self.path + '.' + fake.SNAPSHOT_ID
        self.assertNotIn('chown', [c[0] for c in self.commands()])
        self.assertIn(('chmod', '660', overlay), self.commands())
        with open(self.path + '.info') as f:
            self.assertEqual(os.path.basename(overlay),
                             json.load(f)['active'])

    def test_create_second_snapshot_backs_onto_first_overlay(self):
        volume = self.volume_with_snapshot()
        self.driver.create_snapshot(self.snapshot(volume, fake.SNAPSHOT2_ID))
        command = self.commands()[0]
        self.assertEqual(self.s1, command[command.index('-b') + 1])
        self.assertEqual('qcow2', command[command.index('-F') + 1])

    def test_snapshot_cut_short_before_its_record_leaves_a_raw_volume(self):
        # The base class saves the overlay's format before it writes the
        # .info file; a service killed in between leaves the base file
        # active, and the records must still say it is raw.
        volume = self.volume(size=2)
        self.mock_object(self.driver, '_write_info_file',
                         side_effect=OSError('killed'))
        self.assertRaises(OSError, self.driver.create_snapshot,
                          self.snapshot(volume))
        self.assertEqual('qcow2', volume.admin_metadata['format'])
        self.driver.delete_snapshot(self.snapshot(volume, status='error'))
        self.assertEqual([VOLUME_NAME], os.listdir(self.mnt))
        self.assertEqual('raw', self.driver._volume_format(volume))
        data = self.driver.initialize_connection(volume, {})['data']
        self.assertEqual(('raw', VOLUME_NAME), (data['format'], data['name']))
        self.assertEqual('raw',
                         self.qemu_img_info.call_args[1]['img_format'])

    def test_info_file_is_replaced_atomically(self):
        info_path = self.path + '.info'
        self.write_info(self.volume(), {'active': VOLUME_NAME})
        new_info = {'active': self.s1, fake.SNAPSHOT_ID: self.s1}

        def execute(*cmd, **kwargs):
            if cmd[0] == 'mv':
                # The old content is intact until the rename.
                with open(info_path) as f:
                    self.assertEqual({'active': VOLUME_NAME}, json.load(f))
                os.rename(cmd[2], cmd[3])
            return '', ''
        self.execute.side_effect = execute
        # A service running as root: it creates the file itself.
        self.mock_object(lustre.os, 'geteuid', return_value=0)
        with mock.patch('os.fsync') as fsync:
            self.driver._write_info_file(info_path, new_info)
        fsync.assert_called_once()
        self.assertEqual([('rm', '-f', info_path + '.tmp'),
                          ('mv', '-f', info_path + '.tmp', info_path)],
                         self.commands())
        with open(info_path) as f:
            self.assertEqual(new_info, json.load(f))
        self.assertEqual(0o660, os.stat(info_path).st_mode & 0o777)

    def test_info_file_created_by_root_belongs_to_the_service(self):
        info_path = self.path + '.info'
        tmp_path = info_path + '.tmp'
        self.mock_object(lustre.os, 'geteuid', return_value=1000)
        self.mock_object(lustre.os, 'getegid', return_value=1001)
        self.mock_object(lustre.os, 'fsync')
        self.driver._write_info_file(info_path, {'active': self.s1,
                                                 fake.SNAPSHOT_ID: self.s1})
        self.assertEqual([('rm', '-f', tmp_path),
                          ('dd', 'if=/dev/null', 'of=' + tmp_path,
                           'conv=excl', 'status=none'),
                          ('chown', '-h', '1000:1001', tmp_path),
                          ('mv', '-f', tmp_path, info_path)],
                         self.commands())

    def test_info_file_never_written_through_a_planted_link(self):
        # Someone else's client put a link where the temporary file goes.
        info_path = self.path + '.info'
        outside = os.path.join(self.tmp, 'outside')
        with open(outside, 'w') as f:
            f.write('precious')
        os.symlink(outside, info_path + '.tmp')
        self.mock_object(lustre.os, 'geteuid', return_value=0)
        self.driver._write_info_file(info_path, {'active': self.s1,
                                                 fake.SNAPSHOT_ID: self.s1})
        with open(outside) as f:
            self.assertEqual('precious', f.read())
        self.assertFalse(os.path.islink(info_path))

    def test_info_file_refuses_names_of_other_files(self):
        self.assertRaises(lustre.LustreUnsafeFile,
                          self.driver._write_info_file, self.path + '.info',
                          {'active': '../x', fake.SNAPSHOT_ID: '../x'})

    def test_info_file_needs_active(self):
        self.assertRaises(exception.RemoteFSException,
                          self.driver._write_info_file, self.path + '.info',
                          {fake.SNAPSHOT_ID: self.s1})

    def test_corrupt_info_file_is_a_clear_error(self):
        volume = self.volume(fmt='qcow2')
        with open(self.path + '.info', 'w') as f:
            f.write('{"active": ')
        exc = self.assertRaises(lustre_client.LustreException,
                                self.driver.create_snapshot,
                                self.snapshot(volume))
        self.assertIn('not valid JSON', str(exc))
        self.assertIn('untouched', str(exc))
        self.assertEqual([], self.commands())

    def test_snapshot_of_missing_volume_file(self):
        exc = self.assertRaises(lustre_client.LustreException,
                                self.driver.create_snapshot,
                                self.snapshot(self.volume(files=())))
        self.assertIn('%s does not exist' % self.path, str(exc))
        self.assertEqual([], self.commands())
        self.qemu_img_info.assert_not_called()
        self.assertFalse(os.path.exists(self.path + '.info'))

    def test_failed_overlay_create_leaves_nothing(self):
        self.qemu_img_info.return_value = qemu_info('raw')
        self.execute.side_effect = [putils.ProcessExecutionError(
            exit_code=1, stderr='No space left on device'), ('', '')]
        self.assertRaises(putils.ProcessExecutionError,
                          self.driver.create_snapshot,
                          self.snapshot(self.volume()))
        self.assertEqual(('rm', '-f', self.path + '.' + fake.SNAPSHOT_ID),
                         self.commands()[-1])
        self.assertFalse(os.path.exists(self.path + '.info'))

    def test_delete_latest_snapshot_offline(self):
        volume = self.volume_with_snapshot()
        self.driver.delete_snapshot(self.snapshot(volume))
        self.assertEqual(('qemu-img', 'commit', '-d',
                          os.path.join(self.mnt, self.s1)),
                         self.commands()[0])
        self.assertEqual('raw', volume.admin_metadata['format'])

    def test_delete_unrecorded_snapshot_removes_orphan_overlay(self):
        # The overlay of a snapshot cut short, and the .info file it was
        # about to become the active file of.
        self.touch(self.s1)
        self.touch(VOLUME_NAME + '.info.tmp')
        self.driver.delete_snapshot(self.snapshot(self.volume(),
                                                  status='error'))
        self.assertEqual([('rm', '-f', self.path + '.info.tmp'),
                          ('rm', '-f', self.path + '.' + fake.SNAPSHOT_ID)],
                         self.commands())

    def test_delete_unrecorded_snapshot_of_attached_volume_keeps_file(self):
        volume = self.volume(attach_status='attached', status='in-use')
        self.touch(VOLUME_NAME + '.' + fake.SNAPSHOT_ID)
        self.driver.delete_snapshot(self.snapshot(volume, status='error'))
        self.assertEqual([], self.commands())

    def test_delete_snapshot_twice(self):
        snapshot = self.snapshot(self.volume())
        self.touch(self.s1)
        self.driver.delete_snapshot(snapshot)
        self.driver.delete_snapshot(snapshot)
        self.assertEqual(1, self.execute.call_count)

    def test_revert_to_latest_snapshot(self):
        volume = self.volume_with_snapshot()
        self.driver.revert_to_snapshot(self.context, volume,
                                       self.snapshot(volume))
        overlay_path = os.path.join(self.mnt, self.s1)
        self.assertEqual([
            ('rm', '-f', overlay_path + '.tmp'),
            ('qemu-img', 'create', '-f', 'qcow2', '-b', VOLUME_NAME, '-F',
             'raw', overlay_path + '.tmp', str(units.Gi)),
            ('chmod', '660', overlay_path + '.tmp'),
            ('mv', '-f', overlay_path + '.tmp', overlay_path)],
            self.commands())

    def test_revert_to_older_snapshot_refused(self):
        volume = self.volume(fmt='qcow2')
        self.write_info(volume, {'active': self.s2,
                                 fake.SNAPSHOT_ID: self.s1,
                                 fake.SNAPSHOT2_ID: self.s2})
        exc = self.assertRaises(exception.InvalidSnapshot,
                                self.driver.revert_to_snapshot, self.context,
                                volume, self.snapshot(volume))
        self.assertIn('not the latest', str(exc))
        self.assertEqual([], self.commands())

    def test_revert_attached_volume_refused(self):
        volume = self.volume(fmt='qcow2', status='in-use',
                             attach_status='attached')
        self.assertRaises(exception.InvalidVolume,
                          self.driver.revert_to_snapshot, self.context,
                          volume, self.snapshot(volume))
        self.assertEqual([], self.commands())

    def test_revert_failure_keeps_the_overlay(self):
        volume = self.volume(fmt='qcow2')
        overlay = self.s1
        self.write_info(volume, {'active': overlay,
                                 fake.SNAPSHOT_ID: overlay})
        self.image(overlay, qemu_info('qcow2', backing_file=VOLUME_NAME))
        self.execute.side_effect = [('', ''), putils.ProcessExecutionError(
            exit_code=1), ('', '')]
        self.assertRaises(putils.ProcessExecutionError,
                          self.driver.revert_to_snapshot, self.context,
                          volume, self.snapshot(volume))
        overlay_path = os.path.join(self.mnt, overlay)
        self.assertNotIn(('mv', '-f', overlay_path + '.tmp', overlay_path),
                         self.commands())
        self.assertEqual(('rm', '-f', overlay_path + '.tmp'),
                         self.commands()[-1])


@ddt.ddt
class LustreDriverNovaFailureTestCase(LustreDriverTestCase):
    """Nova refusing or not answering for an attached volume."""

    def setUp(self):
        super().setUp()
        self.setup_driver()
        self.qemu_img_info = self.mock_qemu_img_info()
        self.nova = self.driver._nova = mock.Mock()
        # What Nova last wrote into the snapshot record.
        self.status = {'status': 'creating', 'progress': '0%'}
        self.mock_object(remotefs.db, 'snapshot_get',
                         side_effect=lambda ctxt, snap_id: self.status)
        self.mock_object(objects.Snapshot, 'get_by_id',
                         side_effect=lambda ctxt, snap_id: mock.Mock(
                             status=self.status['status']))
        self.mock_object(remotefs.time, 'sleep')
        self.overlay = self.path + '.' + fake.SNAPSHOT_ID

        def execute(*cmd, **kwargs):
            if cmd[:2] == ('qemu-img', 'create'):
                open(cmd[-2], 'w').close()
            return self.fake_execute(*cmd, **kwargs)
        self.execute.side_effect = execute

    def assert_volume_unchanged(self, volume):
        """Only the base file is left, and it is attached as it was."""
        self.assertEqual([VOLUME_NAME], os.listdir(self.mnt))
        self.assertEqual('raw', self.driver._volume_format(volume))
        data = self.driver.initialize_connection(volume, {})['data']
        self.assertEqual(('raw', VOLUME_NAME), (data['format'], data['name']))

    def test_snapshot_refused_by_nova_api_leaves_no_overlay(self):
        self.nova.create_volume_snapshot.side_effect = Exception(
            "Policy doesn't allow os_compute_api:os-assisted-volume-"
            "snapshots:create to be performed.")
        volume = self.attached(self.volume())
        exc = self.assertRaises(exception.RemoteFSException,
                                self.driver.create_snapshot,
                                self.snapshot(volume))
        self.assertIn('Nova could not snapshot attached volume %s' %
                      volume.id, str(exc))
        self.assertIn("Policy doesn't allow", str(exc))
        self.assertIn('[nova]', str(exc))
        self.assertIn('the volume is unchanged', str(exc))
        self.assertIn(('rm', '-f', self.overlay), self.commands())
        self.assert_volume_unchanged(volume)

    def test_snapshot_failed_in_nova_leaves_no_overlay(self):
        # Nova's libvirt driver reports error when the guest could not
        # move onto the overlay.
        self.status = {'status': 'error', 'progress': '0%'}
        volume = self.attached(self.volume())
        self.assertRaises(exception.RemoteFSException,
                          self.driver.create_snapshot, self.snapshot(volume))
        self.nova.create_volume_snapshot.assert_called_once()
        self.assert_volume_unchanged(volume)

    def test_snapshot_nova_never_finished_keeps_overlay(self):
        # Nova may still move the guest onto the overlay: removing it
        # then would lose what the guest writes.
        volume = self.attached(self.volume())
        exc = self.assertRaises(exception.RemoteFSException,
                                self.driver.create_snapshot,
                                self.snapshot(volume))
        self.assertIn('Timed out', str(exc))
        self.assertIn(self.overlay, str(exc))
        self.assertTrue(os.path.exists(self.overlay))
        self.assertNotIn(('rm', '-f', self.overlay), self.commands())
        self.assertFalse(os.path.exists(self.path + '.info'))

    def test_snapshot_taken_by_nova(self):
        self.status = {'status': 'creating', 'progress': '90%'}
        volume = self.attached(self.volume())
        self.mock_object(objects.VolumeAttachment, 'save')
        attachment = objects.VolumeAttachment(
            connection_info={'name': VOLUME_NAME, 'format': 'raw'})
        volume.volume_attachment = objects.VolumeAttachmentList(
            objects=[attachment])
        self.driver.create_snapshot(self.snapshot(volume))
        self.assertTrue(os.path.exists(self.overlay))
        self.assertEqual(os.path.basename(self.overlay),
                         attachment.connection_info['name'])
        self.assertEqual('qcow2', self.driver._volume_format(volume))

    @ddt.data('api', 'error_deleting')
    def test_failed_online_delete_changes_nothing(self, failure):
        volume = self.attached(self.volume_with_snapshot())
        overlay = VOLUME_NAME + '.' + fake.SNAPSHOT_ID
        info = {'active': overlay, fake.SNAPSHOT_ID: overlay}
        if failure == 'api':
            self.nova.delete_volume_snapshot.side_effect = Exception(
                'Service Unavailable (HTTP 503)')
        else:
            self.status = {'status': 'error_deleting', 'progress': '0%'}
        exc = self.assertRaises(exception.RemoteFSException,
                                self.driver.delete_snapshot,
                                self.snapshot(volume, status='deleting'))
        self.assertIn('Nova could not delete snapshot %s' % fake.SNAPSHOT_ID,
                      str(exc))
        self.assertIn('unchanged', str(exc))
        with open(self.path + '.info') as f:
            self.assertEqual(info, json.load(f))
        self.assertEqual(sorted([VOLUME_NAME, overlay, VOLUME_NAME +
                                 '.info']), sorted(os.listdir(self.mnt)))
        # The base file under the snapshot is still raw: the volume can
        # still be attached, and its snapshot deleted later.
        self.assertEqual({'format': 'qcow2', 'base_format': 'raw'},
                         volume.admin_metadata)
        self.assertEqual('raw', self.driver._file_format(volume,
                                                         VOLUME_NAME))
        data = self.driver.initialize_connection(volume, {})['data']
        self.assertEqual(('qcow2', overlay), (data['format'], data['name']))

    @mock.patch.object(objects.Snapshot, 'create', autospec=True,
                       side_effect=lambda snap: setattr(snap, 'id',
                                                        fake.SNAPSHOT_ID))
    @mock.patch.object(objects.Snapshot, 'save')
    @mock.patch.object(objects.Snapshot, 'destroy')
    def test_clone_of_attached_volume_refused_by_nova(self, destroy, save,
                                                      create):
        self.nova.create_volume_snapshot.side_effect = Exception(
            'Forbidden (HTTP 403)')
        src = self.attached(self.volume())
        self.mock_object(objects.Volume, 'get_by_id', return_value=src)
        dest = self.volume(id=fake.VOLUME2_ID, fmt=None, files=())
        exc = self.assertRaises(exception.RemoteFSException,
                                self.driver.create_cloned_volume, dest, src)
        self.assertIn('Forbidden (HTTP 403)', str(exc))
        destroy.assert_called_once_with()
        self.assertIn(('rm', '-f', self.overlay), self.commands())
        # No overlay, no clone file, no snapshot record of the source.
        self.assertEqual([VOLUME_NAME], os.listdir(self.mnt))
        self.assertFalse(os.path.exists(self.path + '.info'))
        self.assertEqual('raw', self.driver._volume_format(src))

    @ddt.data(None, fake.SNAPSHOT_ID)
    def test_backup_that_cannot_start_fails_clearly(self, snapshot_id):
        volume = self.attached(self.volume())
        volume.status = 'backing-up'
        volume.previous_status = 'in-use'
        snapshot = self.snapshot(volume, status='backing-up')
        self.mock_object(objects.Volume, 'get_by_id', return_value=volume)
        self.mock_object(objects.Snapshot, 'get_by_id',
                         return_value=snapshot)
        self.mock_object(objects.Snapshot, 'save')
        self.mock_object(self.driver, '_create_temp_volume_from_snapshot',
                         side_effect=exception.RemoteFSException('no'))
        self.mock_object(self.driver, '_create_temp_cloned_volume',
                         side_effect=exception.RemoteFSException(
                             'Nova could not snapshot attached volume'))
        backup = mock.Mock(id=fake.BACKUP_ID, volume_id=volume.id,
                           snapshot_id=snapshot_id, status='creating')
        self.assertRaises(exception.RemoteFSException,
                          self.driver.get_backup_device, self.context,
                          backup)
        self.assertEqual(fields.BackupStatus.ERROR, backup.status)
        self.assertIn('could not read volume %s' % volume.id,
                      backup.fail_reason)
        backup.save.assert_called_with()
        if snapshot_id:
            self.assertEqual('available', snapshot.status)
            self.assertEqual('backing-up', volume.status)
        else:
            self.assertIn('Nova could not snapshot', backup.fail_reason)
            self.assertEqual('in-use', volume.status)
            self.assertEqual('error_backing-up', volume.previous_status)


@ddt.ddt
class LustreDriverCopyTestCase(LustreDriverTestCase):
    """Volumes from snapshots, clones, images and migration."""

    def setUp(self):
        super().setUp()
        self.setup_driver()
        self.qemu_img_info = self.mock_qemu_img_info()
        self.src = self.volume_with_snapshot(size=1)
        self.overlay = VOLUME_NAME + '.' + fake.SNAPSHOT_ID
        self.convert = self.mock_object(image_utils, 'convert_image')
        self.resize = self.mock_object(image_utils, 'resize_image')
        self.dest = self.volume(id=fake.VOLUME2_ID, fmt=None, files=(),
                                host='node@lustre#lfs02')
        self.dest_path = os.path.join(self.mnt2, self.dest.name)

    @ddt.data((False, False, 'raw'), (True, False, 'qcow2'),
              (True, True, 'raw'))
    @ddt.unpack
    def test_create_volume_from_snapshot(self, qcow2, thick, fmt):
        self.override_config('lustre_qcow2_volumes', qcow2)
        if thick:
            self.dest.volume_type.extra_specs = {'provisioning:type':
                                                 'thick'}
        update = self.driver.create_volume_from_snapshot(
            self.dest, self.snapshot(self.src))
        self.assertEqual({'provider_location': SHARE2}, update)
        self.convert.assert_called_once_with(
            os.path.join(self.mnt, VOLUME_NAME), self.dest_path, fmt,
            src_format='raw', run_as_root=True, data=mock.ANY)
        self.assertEqual(fmt, self.dest.admin_metadata['format'])
        expected = [('chmod', '660', self.dest_path)]
        if thick:
            expected.insert(0, ('fallocate', '--offset', '0', '--length',
                                str(units.Gi), self.dest_path))
        self.assertEqual(expected, self.commands())
        self.resize.assert_not_called()

    def test_create_bigger_volume_from_snapshot(self):
        self.dest.size = 3
        self.driver.create_volume_from_snapshot(self.dest,
                                                self.snapshot(self.src))
        self.resize.assert_called_once_with(self.dest_path, 3,
                                            run_as_root=True,
                                            file_format='raw')

    def test_create_volume_from_older_snapshot_reads_its_point(self):
        # Two snapshots: the first one's data is the base file.
        second = VOLUME_NAME + '.' + fake.SNAPSHOT2_ID
        self.write_info(self.src, {'active': second,
                                   fake.SNAPSHOT_ID: self.overlay,
                                   fake.SNAPSHOT2_ID: second})
        self.image(second, qemu_info('qcow2', backing_file=self.overlay))
        self.driver.create_volume_from_snapshot(
            self.dest, self.snapshot(self.src, fake.SNAPSHOT2_ID))
        self.assertEqual((os.path.join(self.mnt, self.overlay),),
                         self.convert.call_args[0][:1])
        self.assertEqual('qcow2', self.convert.call_args[1]['src_format'])

    def test_create_volume_from_snapshot_enospc_leaves_nothing(self):
        self.convert.side_effect = putils.ProcessExecutionError(
            exit_code=1, stderr='qemu-img: error while writing at byte 0: '
                                'No space left on device')
        exc = self.assertRaises(lustre_client.LustreException,
                                self.driver.create_volume_from_snapshot,
                                self.dest, self.snapshot(self.src))
        self.assertIn('could not write the 1 GiB file %s of volume %s: '
                      'qemu-img: error while writing at byte 0: No space '
                      'left on device' % (self.dest_path, self.dest.id),
                      str(exc))
        self.assertEqual([('rm', '-f', self.dest_path)], self.commands())
        self.assertNotIn('format', self.dest.admin_metadata)

    def test_create_volume_from_snapshot_in_error_refused(self):
        self.assertRaises(exception.InvalidSnapshot,
                          self.driver.create_volume_from_snapshot,
                          self.dest, self.snapshot(self.src, status='error'))
        self.convert.assert_not_called()

    def test_create_volume_from_snapshot_with_foreign_backing_file(self):
        self.image(self.overlay, qemu_info('qcow2',
                                           backing_file='../../etc/shadow'))
        exc = self.assertRaises(lustre.LustreUnsafeFile,
                                self.driver.create_volume_from_snapshot,
                                self.dest, self.snapshot(self.src))
        self.assertIn('its backing file ../../etc/shadow', str(exc))
        self.convert.assert_not_called()

    @mock.patch.object(objects.Snapshot, 'create')
    @mock.patch.object(objects.Snapshot, 'save')
    @mock.patch.object(objects.Snapshot, 'destroy')
    def test_clone_of_attached_volume_goes_through_a_temporary_snapshot(
            self, destroy, save, create):
        src = self.attached(self.volume(fmt='raw'))
        create_snapshot = self.mock_object(self.driver, '_create_snapshot')
        delete_snapshot = self.mock_object(self.driver, '_delete_snapshot')
        copy = self.mock_object(self.driver, '_copy_volume_from_snapshot',
                                return_value='raw')
        update = self.driver.create_cloned_volume(self.dest, src)
        self.assertEqual({'provider_location': SHARE2}, update)
        temp = create_snapshot.call_args[0][0]
        self.assertEqual('tmp-snap-%s' % self.dest.id, temp.display_name)
        self.assertEqual(src.id, temp.volume_id)
        copy.assert_called_once_with(temp, self.dest, self.dest.size)
        delete_snapshot.assert_called_once_with(temp)
        destroy.assert_called_once_with()
        self.assertEqual('raw', self.dest.admin_metadata['format'])

    @mock.patch.object(objects.Snapshot, 'create')
    @mock.patch.object(objects.Snapshot, 'save')
    @mock.patch.object(objects.Snapshot, 'destroy')
    def test_temporary_snapshot_delete_waits_for_nova(self, *mocks):
        # Nova's assisted create leaves progress at 90%, which is also how
        # Nova says an assisted delete is done: the delete must not start
        # with it, or the base class stops waiting before Nova merged.
        def nova_created(snapshot):
            snapshot.progress = '90%'

        seen = []
        self.mock_object(self.driver, '_create_snapshot',
                         side_effect=nova_created)
        self.mock_object(
            self.driver, '_delete_snapshot',
            side_effect=lambda s: seen.append((s.status, s.progress)))
        self.mock_object(self.driver, '_copy_volume_from_snapshot',
                         return_value='raw')
        self.driver.create_cloned_volume(
            self.dest, self.attached(self.volume(fmt='raw')))
        self.assertEqual([('deleting', '100%')], seen)

    @mock.patch.object(objects.Snapshot, 'create')
    @mock.patch.object(objects.Snapshot, 'save')
    @mock.patch.object(objects.Snapshot, 'destroy')
    def test_clone_records_the_clone_format_not_the_source(self, *mocks):
        # The source has snapshots (format qcow2); the clone is raw.
        self.mock_object(self.driver, '_create_snapshot')
        self.mock_object(self.driver, '_delete_snapshot')
        self.mock_object(self.driver, '_copy_volume_from_snapshot',
                         return_value='raw')
        self.driver.create_cloned_volume(self.dest, self.attached(self.src))
        self.assertEqual('raw', self.dest.admin_metadata['format'])

    @ddt.data(False, True)
    def test_clone_of_detached_volume_copies_its_active_chain(self, thick):
        # No temporary snapshot: the active overlay and its chain are
        # converted as they are.
        if thick:
            self.dest.volume_type.extra_specs = {'provisioning:type':
                                                 'thick'}
        create = self.mock_object(objects.Snapshot, 'create')
        update = self.driver.create_cloned_volume(self.dest, self.src)
        self.assertEqual({'provider_location': SHARE2}, update)
        create.assert_not_called()
        self.convert.assert_called_once_with(
            os.path.join(self.mnt, self.overlay), self.dest_path, 'raw',
            src_format='qcow2', run_as_root=True, data=mock.ANY)
        expected = [('chmod', '660', self.dest_path)]
        if thick:
            expected.insert(0, ('fallocate', '--offset', '0', '--length',
                                str(units.Gi), self.dest_path))
        self.assertEqual(expected, self.commands())
        self.assertEqual('raw', self.dest.admin_metadata['format'])
        self.resize.assert_not_called()

    @ddt.data('raw', 'qcow2')
    def test_clone_of_volume_without_snapshots_copies_its_file(self, fmt):
        self.override_config('lustre_qcow2_volumes', True)
        src = self.volume(id=fake.VOLUME3_ID, fmt=fmt)
        self.dest.size = 2
        self.qemu_img_info.return_value = qemu_info(fmt)
        self.driver.create_cloned_volume(self.dest, src)
        self.convert.assert_called_once_with(
            os.path.join(self.mnt, src.name), self.dest_path, 'qcow2',
            src_format=fmt, run_as_root=True, data=mock.ANY)
        self.resize.assert_called_once_with(self.dest_path, 2,
                                            run_as_root=True,
                                            file_format='qcow2')
        self.assertEqual('qcow2', self.dest.admin_metadata['format'])

    def test_failed_clone_of_detached_volume_leaves_nothing(self):
        self.convert.side_effect = putils.ProcessExecutionError(
            exit_code=1, stderr='No space left on device')
        exc = self.assertRaises(lustre_client.LustreException,
                                self.driver.create_cloned_volume, self.dest,
                                self.src)
        self.assertIn('No space left on device', str(exc))
        self.assertEqual([('rm', '-f', self.dest_path)], self.commands())
        self.assertNotIn('format', self.dest.admin_metadata)

    @mock.patch.object(objects.Snapshot, 'create')
    @mock.patch.object(objects.Snapshot, 'save')
    @mock.patch.object(objects.Snapshot, 'destroy')
    def test_failed_clone_cleans_up(self, destroy, save, create):
        self.mock_object(self.driver, '_create_snapshot')
        delete_snapshot = self.mock_object(self.driver, '_delete_snapshot')
        self.mock_object(self.driver, '_copy_volume_from_snapshot',
                         side_effect=putils.ProcessExecutionError(
                             exit_code=1, stderr='No space left'))
        self.assertRaises(lustre_client.LustreException,
                          self.driver.create_cloned_volume, self.dest,
                          self.attached(self.volume()))
        delete_snapshot.assert_called_once()
        destroy.assert_called_once_with()
        self.assertIn(('rm', '-f', self.dest_path), self.commands())

    @mock.patch.object(objects.Snapshot, 'create', autospec=True,
                       side_effect=lambda snap: setattr(snap, 'id',
                                                        fake.SNAPSHOT3_ID))
    @mock.patch.object(objects.Snapshot, 'save')
    @mock.patch.object(objects.Snapshot, 'destroy')
    def test_clone_keeps_undeletable_temp_snapshot_record(self, destroy,
                                                          save, create):
        self.mock_object(self.driver, '_create_snapshot')
        self.mock_object(self.driver, '_delete_snapshot',
                         side_effect=exception.RemoteFSException('busy'))
        self.mock_object(self.driver, '_copy_volume_from_snapshot',
                         return_value='raw')
        self.driver.create_cloned_volume(self.dest,
                                         self.attached(self.volume()))
        destroy.assert_not_called()
        self.assertEqual(fields.SnapshotStatus.ERROR_DELETING,
                         create.call_args[0][0].status)

    def test_clone_of_volume_in_error_refused(self):
        self.assertRaises(exception.InvalidVolume,
                          self.driver.create_cloned_volume, self.dest,
                          self.volume(status='error'))

    @ddt.data('raw', 'qcow2')
    def test_copy_image_to_volume(self, fmt):
        fetch = self.mock_object(image_utils, 'fetch_to_volume_format')
        self.qemu_img_info.return_value = qemu_info(fmt, 2 * units.Gi)
        volume = self.volume(id=fake.VOLUME3_ID, size=2, fmt=fmt)
        path = os.path.join(self.mnt, volume.name)
        self.driver.copy_image_to_volume(self.context, volume, 'glance',
                                         fake.IMAGE_ID)
        fetch.assert_called_once_with(
            self.context, 'glance', fake.IMAGE_ID, path, fmt,
            self.configuration.volume_dd_blocksize, size=2,
            run_as_root=True, disable_sparse=False)
        self.resize.assert_called_once_with(path, 2, run_as_root=True,
                                            file_format=fmt)

    def test_copy_image_to_thick_volume_preallocates(self):
        self.mock_object(image_utils, 'fetch_to_volume_format')
        self.qemu_img_info.return_value = qemu_info('raw', units.Gi)
        self.driver.copy_image_to_volume(
            self.context, self.volume(id=fake.VOLUME3_ID,
                                      specs={'provisioning:type': 'thick'}),
            'glance', fake.IMAGE_ID)
        self.assertEqual('fallocate', self.commands()[0][0])

    def test_copy_image_to_volume_size_mismatch(self):
        self.mock_object(image_utils, 'fetch_to_volume_format')
        self.qemu_img_info.return_value = qemu_info('raw', 3 * units.Gi)
        self.assertRaises(exception.ImageUnacceptable,
                          self.driver.copy_image_to_volume, self.context,
                          self.volume(size=2), 'glance', fake.IMAGE_ID)

    def test_copy_raw_volume_to_raw_image_uploads_the_file(self):
        upload = self.mock_object(volume_utils, 'upload_volume')
        volume = self.volume(id=fake.VOLUME3_ID)
        self.driver.copy_volume_to_image(self.context, volume, 'glance',
                                         {'id': fake.IMAGE_ID,
                                          'disk_format': 'raw'})
        upload.assert_called_once_with(
            self.context, 'glance', mock.ANY,
            os.path.join(self.mnt, volume.name), volume,
            volume_format='raw', run_as_root=True)
        self.convert.assert_not_called()

    def test_short_raw_volume_is_uploaded_at_its_full_size(self):
        # After a restore that skipped the zeros at its end.
        upload = self.mock_object(
            volume_utils, 'upload_volume',
            side_effect=lambda *a, **k: self.assertEqual(
                [('truncate', '-s', str(units.Gi), path)], self.commands()))
        volume = self.volume(id=fake.VOLUME3_ID)
        path = os.path.join(self.mnt, volume.name)
        self.image(volume.name, qemu_info('raw', 2 * units.Mi))
        self.driver.copy_volume_to_image(self.context, volume, 'glance',
                                         {'id': fake.IMAGE_ID,
                                          'disk_format': 'raw'})
        upload.assert_called_once()

    @ddt.data('raw', 'qcow2')
    def test_copy_volume_with_snapshots_to_image_flattens(self, disk_format):
        upload = self.mock_object(volume_utils, 'upload_volume')
        self.driver.copy_volume_to_image(
            self.context, self.src, 'glance',
            {'id': fake.IMAGE_ID, 'disk_format': disk_format})
        source, tmp, out_format = self.convert.call_args[0]
        self.assertEqual(os.path.join(self.mnt, self.overlay), source)
        self.assertEqual(disk_format, out_format)
        self.assertEqual('qcow2', self.convert.call_args[1]['src_format'])
        self.assertEqual((tmp, self.src),
                         upload.call_args[0][3:5])
        self.assertEqual(disk_format, upload.call_args[1]['volume_format'])

    def test_copy_raw_volume_to_qcow2_image_never_probes(self):
        upload = self.mock_object(volume_utils, 'upload_volume')
        self.driver.copy_volume_to_image(
            self.context, self.volume(id=fake.VOLUME3_ID), 'glance',
            {'id': fake.IMAGE_ID, 'disk_format': 'qcow2'})
        self.assertEqual('raw', self.convert.call_args[1]['src_format'])
        self.assertEqual('qcow2', upload.call_args[1]['volume_format'])

    def test_update_migrated_volume_renames_file(self):
        volume = self.volume(share=SHARE)
        new_volume = self.volume(id=fake.VOLUME2_ID, share=SHARE2)
        update = self.driver.update_migrated_volume(self.context, volume,
                                                    new_volume, 'available')
        self.assertEqual({'_name_id': None, 'provider_location': SHARE2},
                         update)
        self.assertEqual([('mv', os.path.join(self.mnt2, new_volume.name),
                           os.path.join(self.mnt2, volume.name))],
                         self.commands())

    @ddt.data(('in-use', SHARE2, False), ('available', SHARE, False),
              ('available', SHARE2, True))
    @ddt.unpack
    def test_update_migrated_volume_keeps_name(self, status, share, taken):
        volume = self.volume(share=SHARE)
        new_volume = self.volume(id=fake.VOLUME2_ID, share=share)
        if taken:
            self.touch(volume.name, self.mnt2)
        update = self.driver.update_migrated_volume(self.context, volume,
                                                    new_volume, status)
        self.assertEqual({'_name_id': fake.VOLUME2_ID,
                          'provider_location': share}, update)
        self.assertEqual([], self.commands())


@ddt.ddt
class LustreDriverBackupTestCase(LustreDriverTestCase):
    """What cinder-backup gets to read and to write."""

    def setUp(self):
        super().setUp()
        self.setup_driver()
        self.qemu_img_info = self.mock_object(
            image_utils, 'qemu_img_info', return_value=qemu_info())
        self.mock_object(objects.Volume, 'get_by_id')
        self.backup = mock.Mock(snapshot_id=None, volume_id=fake.VOLUME_ID)

    def test_never_backs_up_through_a_snapshot(self):
        # Even when the operator asks for it: a snapshot here is a point in
        # a qcow2 chain, not a disk cinder-backup can read.
        self.override_config('backup_use_temp_snapshot', True)
        volume = self.volume(fmt='qcow2', previous_status='in-use')
        objects.Volume.get_by_id.return_value = volume
        temp = mock.Mock(id=fake.VOLUME2_ID)
        self.mock_object(self.driver, '_create_temp_cloned_volume',
                         return_value=temp)
        snapshot = self.mock_object(self.driver, '_create_temp_snapshot')
        self.assertEqual((temp, False), self.driver.get_backup_device(
            self.context, self.backup))
        snapshot.assert_not_called()

    def test_raw_volume_is_backed_up_directly(self):
        volume = self.volume()
        objects.Volume.get_by_id.return_value = volume
        self.assertEqual((volume, False),
                         self.driver.get_backup_device(self.context,
                                                       self.backup))

    @ddt.data(('qcow2', 'available'), ('raw', 'in-use'))
    @ddt.unpack
    def test_backup_goes_through_a_raw_copy(self, fmt, previous_status):
        volume = self.volume(fmt=fmt, previous_status=previous_status)
        objects.Volume.get_by_id.return_value = volume
        temp = mock.Mock(id=fake.VOLUME2_ID)
        create_temp = self.mock_object(self.driver, '_create_temp_volume',
                                       return_value=temp)
        clone = self.mock_object(self.driver, 'create_cloned_volume',
                                 return_value={'provider_location': SHARE})
        device, is_snapshot = self.driver.get_backup_device(self.context,
                                                            self.backup)
        self.assertIs(temp, device)
        self.assertFalse(is_snapshot)
        create_temp.assert_called_once_with(self.context, volume)
        clone.assert_called_once_with(temp, volume)
        self.assertEqual('backing-up', temp.status)
        self.assertEqual(fake.VOLUME2_ID, self.backup.temp_volume_id)

    def test_failed_raw_copy_leaves_no_record(self):
        objects.Volume.get_by_id.return_value = self.volume(fmt='qcow2')
        temp = mock.Mock()
        self.mock_object(self.driver, '_create_temp_volume',
                         return_value=temp)
        self.mock_object(self.driver, 'create_cloned_volume',
                         side_effect=exception.RemoteFSException('no'))
        self.assertRaises(exception.RemoteFSException,
                          self.driver.get_backup_device, self.context,
                          self.backup)
        temp.destroy.assert_called_once_with()

    def test_snapshot_backup_goes_through_a_raw_volume(self):
        volume = self.volume()
        objects.Volume.get_by_id.return_value = volume
        snapshot = self.snapshot(volume)
        self.mock_object(objects.Snapshot, 'get_by_id',
                         return_value=snapshot)
        self.backup.snapshot_id = snapshot.id
        from_snapshot = self.mock_object(
            self.driver, '_create_temp_volume_from_snapshot')
        device, _is_snapshot = self.driver.get_backup_device(self.context,
                                                             self.backup)
        self.assertIs(from_snapshot.return_value, device)
        from_snapshot.assert_called_once_with(
            self.context, volume, snapshot, status='backing-up')

    def test_temporary_volumes_are_raw(self):
        create = self.mock_object(objects.Volume, 'create')
        temp = self.driver._create_temp_volume(self.context, self.volume(),
                                               {'display_name': 'x'})
        create.assert_called_once_with()
        self.assertEqual({'format': 'raw'}, temp.admin_metadata)
        self.assertEqual('x', temp.display_name)
        # Cinder's own setting: temporary volumes use no quota.
        self.assertFalse(temp.use_quota)

    def test_requested_format_wins(self):
        self.override_config('lustre_qcow2_volumes', True)
        self.assertEqual('raw', self.driver._new_volume_format(
            self.volume(fmt='raw')))
        self.assertEqual('qcow2', self.driver._new_volume_format(
            self.volume(fmt=None)))

    def test_restore_into_qcow2_volume_makes_it_raw(self):
        volume = self.volume(fmt='qcow2', status='restoring-backup')
        data = self.driver.initialize_connection(volume, {})['data']
        self.assertEqual('raw', data['format'])
        self.assertEqual('raw', volume.admin_metadata['format'])
        new = self.path + '.restore'
        self.assertEqual([('rm', '-f', new),
                          ('truncate', '-s', str(units.Gi), new),
                          ('chmod', '660', new),
                          ('mv', '-f', new, self.path)],
                         self.commands())

    def test_restore_into_volume_with_snapshots_refused(self):
        volume = self.volume(fmt='qcow2', status='restoring-backup')
        overlay = VOLUME_NAME + '.' + fake.SNAPSHOT_ID
        self.write_info(volume, {'active': overlay,
                                 fake.SNAPSHOT_ID: overlay})
        exc = self.assertRaises(exception.InvalidVolume,
                                self.driver.initialize_connection, volume,
                                {})
        self.assertIn('has snapshots', str(exc))
        self.assertEqual([], self.commands())

    def test_short_raw_file_gets_its_full_size(self):
        self.qemu_img_info.return_value = qemu_info('raw', 2 * units.Mi)
        self.driver.initialize_connection(self.volume(size=3), {})
        self.assertEqual([('truncate', '-s', str(3 * units.Gi), self.path)],
                         self.commands())

    def test_restored_file_gets_its_full_size_on_detach(self):
        with open(self.path, 'wb') as f:
            f.write(b'x' * 4096)
        volume = self.volume(size=2, status='restoring-backup')
        self.driver.terminate_connection(volume, {})
        self.assertEqual([('truncate', '-s', str(2 * units.Gi), self.path)],
                         self.commands())

    def test_detach_leaves_other_volumes_alone(self):
        with open(self.path, 'wb') as f:
            f.write(b'x' * 4096)
        self.driver.terminate_connection(self.volume(), {})
        self.assertEqual([], self.commands())

    def test_last_snapshot_deleted_removes_info_file(self):
        info_path = self.path + '.info'
        self.write_info(self.volume(), {'active': 'x', 's': 'x'})
        self.driver._write_info_file(info_path, {'active': VOLUME_NAME})
        self.assertEqual([('rm', '-f', info_path)], self.commands())


@ddt.ddt
class LustreDriverHostileShareTestCase(LustreDriverTestCase):
    """Files someone else wrote into a share are refused, never followed.

    Each case plants something on the share, runs an operation and checks
    that it is refused with an error naming the file, and that a canary
    file outside the share was neither read, handed out, changed nor
    deleted.
    """

    def setUp(self):
        super().setUp()
        self.setup_driver()
        self.qemu_img_info = self.mock_qemu_img_info()
        self.convert = self.mock_object(image_utils, 'convert_image')
        self.resize = self.mock_object(image_utils, 'resize_image')
        self.canary = os.path.join(self.tmp, 'canary')
        with open(self.canary, 'w') as f:
            f.write('outside the share')
        self.s1 = VOLUME_NAME + '.' + fake.SNAPSHOT_ID
        self.s2 = VOLUME_NAME + '.' + fake.SNAPSHOT2_ID
        self.volume_with_snapshots = self.volume(fmt='qcow2')
        self.volume_with_snapshots.admin_metadata['base_format'] = 'qcow2'
        self.write_info(self.volume_with_snapshots,
                        {'active': self.s2, fake.SNAPSHOT_ID: self.s1,
                         fake.SNAPSHOT2_ID: self.s2})
        self.image(VOLUME_NAME, qemu_info('qcow2'))
        self.image(self.s1, qemu_info('qcow2', backing_file=VOLUME_NAME,
                                      backing_fmt='qcow2'))
        self.image(self.s2, qemu_info('qcow2', backing_file=self.s1))

    def assertCanaryUntouched(self):
        with open(self.canary) as f:
            self.assertEqual('outside the share', f.read())
        self.assertNotIn(self.canary, str(self.qemu_img_info.call_args_list))
        self.assertNotIn(self.canary, str(self.convert.call_args_list))

    def refused(self, fragment, operation, *args):
        exc = self.assertRaises(lustre.LustreUnsafeFile, operation, *args)
        self.assertIn(fragment, str(exc))
        self.assertCanaryUntouched()
        return exc

    def attach(self, volume=None):
        return self.driver.initialize_connection(
            volume or self.volume_with_snapshots, {})

    def test_the_whole_chain_is_checked(self):
        self.assertEqual(self.s2, self.attach()['data']['name'])
        checked = [c[0][0] for c in self.qemu_img_info.call_args_list]
        self.assertEqual([os.path.join(self.mnt, name) for name in
                          (self.s2, self.s1, VOLUME_NAME)], checked)
        self.assertEqual(['qcow2'] * 3, [
            c[1]['img_format'] for c in self.qemu_img_info.call_args_list])

    def test_base_file_backed_by_a_file_outside(self):
        self.image(VOLUME_NAME, qemu_info('qcow2', backing_file=self.canary))
        exc = self.refused('its backing file %s is not a file of' %
                           self.canary, self.attach)
        self.assertIn(self.path, str(exc))

    @ddt.data('snapshot', 'clone', 'upload', 'extend', 'revert',
              'from_snapshot', 'delete_snapshot')
    def test_every_operation_checks_the_chain(self, operation):
        self.image(VOLUME_NAME, qemu_info('qcow2', backing_file=self.canary))
        volume = self.volume_with_snapshots
        dest = self.volume(id=fake.VOLUME2_ID, fmt=None, files=())
        snapshot = self.snapshot(volume, fake.SNAPSHOT2_ID)
        self.mock_object(objects.Snapshot, 'save')
        calls = {
            'snapshot': (self.driver.create_snapshot,
                         self.snapshot(volume, fake.SNAPSHOT3_ID)),
            'clone': (self.driver.create_cloned_volume, dest, volume),
            'upload': (self.driver.copy_volume_to_image, self.context,
                       volume, 'glance', {'id': fake.IMAGE_ID,
                                          'disk_format': 'raw'}),
            'extend': (self.driver.extend_volume, volume, 2),
            'revert': (self.driver.revert_to_snapshot, self.context, volume,
                       snapshot),
            'from_snapshot': (self.driver.create_volume_from_snapshot, dest,
                              snapshot),
            'delete_snapshot': (self.driver.delete_snapshot, snapshot),
        }
        self.refused('backing file %s' % self.canary, *calls[operation])
        self.assertNotIn('qemu-img', str(self.commands()))
        self.assertFalse(os.path.exists(os.path.join(self.mnt, dest.name)))

    def test_overlay_that_is_a_symbolic_link(self):
        os.unlink(os.path.join(self.mnt, self.s1))
        os.symlink(self.canary, os.path.join(self.mnt, self.s1))
        self.refused('it is a symbolic link', self.attach)

    def test_overlay_with_a_second_hard_link(self):
        os.link(os.path.join(self.mnt, self.s1),
                os.path.join(self.tmp, 'elsewhere'))
        self.refused('it has 2 hard links', self.attach)

    def test_overlay_that_is_a_directory(self):
        os.unlink(os.path.join(self.mnt, self.s1))
        os.mkdir(os.path.join(self.mnt, self.s1))
        self.refused('it is not a regular file', self.attach)

    def test_backing_file_of_another_volume(self):
        other = 'volume-%s' % fake.VOLUME2_ID
        self.image(other, qemu_info('qcow2'))
        self.image(self.s1, qemu_info('qcow2', backing_file=other,
                                      backing_fmt='qcow2'))
        self.refused('its backing file %s is not a file of %s' %
                     (other, VOLUME_NAME), self.attach)

    def test_overlay_of_a_merged_snapshot_is_followed(self):
        # The hypervisor merged the latest snapshot into the active
        # overlay, which nobody's snapshot names; a new snapshot then put
        # it below the new active file.
        merged = VOLUME_NAME + '.' + fake.SNAPSHOT3_ID
        self.write_info(self.volume_with_snapshots,
                        {'active': self.s2, fake.SNAPSHOT2_ID: self.s2})
        self.image(merged, qemu_info('qcow2', backing_file=VOLUME_NAME,
                                     backing_fmt='qcow2'))
        self.image(self.s2, qemu_info('qcow2', backing_file=merged))
        self.assertEqual(self.s2, self.attach()['data']['name'])
        self.assertEqual(
            [os.path.join(self.mnt, name) for name in
             (self.s2, merged, VOLUME_NAME)],
            [c[0][0] for c in self.qemu_img_info.call_args_list])

    def test_backing_chain_deeper_than_the_records(self):
        # Two overlays nobody's snapshot names: one more than a merge
        # leaves.
        self.write_info(self.volume_with_snapshots,
                        {'active': self.s2, fake.SNAPSHOT2_ID: self.s2})
        self.image(self.s2, qemu_info('qcow2', backing_file=self.s1))
        stray = VOLUME_NAME + '.' + fake.SNAPSHOT3_ID
        self.image(self.s1, qemu_info('qcow2', backing_file=stray))
        self.image(stray, qemu_info('qcow2', backing_file=VOLUME_NAME,
                                    backing_fmt='qcow2'))
        exc = self.refused('deeper in the backing chain of volume %s than '
                           'its snapshot records allow (3 files)'
                           % fake.VOLUME_ID, self.attach)
        self.assertIn(VOLUME_NAME + ':', str(exc))

    def test_backing_chain_that_loops(self):
        self.image(self.s1, qemu_info('qcow2', backing_file=self.s2))
        self.refused('it appears twice in the backing chain of volume %s'
                     % fake.VOLUME_ID, self.attach)

    def test_active_entry_of_another_volume(self):
        other = 'volume-%s' % fake.VOLUME2_ID
        self.image(other, qemu_info('raw'))
        self.write_info(self.volume_with_snapshots, {'active': other})
        self.refused("entry active names '%s', which is not a file of %s"
                     % (other, VOLUME_NAME), self.attach)

    def test_backing_file_in_another_directory(self):
        self.image(self.s1, qemu_info(
            'qcow2', backing_file=os.path.join(self.mnt2, VOLUME_NAME),
            backing_fmt='qcow2'))
        self.refused('not a file of %s in the same directory' % VOLUME_NAME,
                     self.attach)

    def test_backing_file_given_by_the_share_path_is_followed(self):
        self.image(self.s1, qemu_info(
            'qcow2', backing_file=os.path.join(self.mnt, VOLUME_NAME),
            backing_fmt='qcow2'))
        self.assertEqual(self.s2, self.attach()['data']['name'])

    @ddt.data(('raw', "recorded as 'raw', not as 'qcow2'"),
              ('', "recorded as 'None', not as 'qcow2'"))
    @ddt.unpack
    def test_backing_format_must_be_the_recorded_one(self, fmt, fragment):
        # Otherwise QEMU reads the base file in a format nobody recorded,
        # or probes it.
        self.image(self.s1, qemu_info('qcow2', backing_file=VOLUME_NAME,
                                      backing_fmt=fmt))
        self.refused(fragment, self.attach)

    def test_chain_file_with_a_data_file(self):
        self.image(VOLUME_NAME, qemu_info('qcow2', data_file=self.canary))
        self.refused('it has an external data file (%s)' % self.canary,
                     self.attach)

    def test_chain_file_failing_the_safety_check(self):
        with open(os.path.join(self.mnt, self.s1), 'wb') as f:
            f.write((b'QFI\xfb' + bytes(0x44) + bytes([0] * 7 + [4])).ljust(
                512, b'\0'))
        self.images[os.path.join(self.mnt, self.s1)] = exception.Invalid(
            reason='Image/Volume failed safety check')
        self.refused('it is a qcow2 image with an external data file',
                     self.attach)

    def test_chain_file_qemu_cannot_read(self):
        self.images[os.path.join(self.mnt, self.s1)] = (
            putils.ProcessExecutionError(
                exit_code=1, stderr='Image is not in qcow2 format'))
        self.refused('qemu-img cannot read it as qcow2: Image is not in '
                     'qcow2 format', self.attach)

    @ddt.data('/etc/passwd', '../../canary', 'volume-x', 'other.img')
    def test_info_naming_a_file_that_is_not_ours(self, name):
        self.write_info(self.volume_with_snapshots,
                        {'active': name, fake.SNAPSHOT_ID: name})
        self.refused('entry active names %r, which is not a file of %s' %
                     (name, VOLUME_NAME), self.attach)

    @ddt.data(('[]', 'it does not hold a JSON object'),
              ('{"%s": "%s"}' % (fake.SNAPSHOT_ID, VOLUME_NAME),
               "it has no 'active' entry"),
              ('{"active": "%s", "../x": "%s"}' % (VOLUME_NAME, VOLUME_NAME),
               "'../x' is not a snapshot id"),
              ('{"active": 7}', 'entry active names 7'))
    @ddt.unpack
    def test_info_that_is_not_snapshot_records(self, text, fragment):
        with open(self.path + '.info', 'w') as f:
            f.write(text)
        self.refused(fragment, self.attach)

    def test_info_that_is_a_symbolic_link(self):
        os.unlink(self.path + '.info')
        os.symlink(self.canary, self.path + '.info')
        self.refused('it is a symbolic link', self.attach)
        self.assertEqual(os.stat(self.canary).st_atime,
                         os.stat(self.canary).st_atime)

    def test_info_that_is_huge(self):
        with open(self.path + '.info', 'w') as f:
            f.write(' ' * (units.Mi + 1))
        self.refused('it is larger than', self.attach)

    def test_info_with_a_second_hard_link(self):
        os.link(self.path + '.info', os.path.join(self.tmp, 'info-link'))
        self.refused('it has 2 hard links', self.attach)

    @ddt.data('/tmp/x', '../../x')
    def test_delete_never_removes_what_the_info_names_outside(self, name):
        outside = os.path.join(self.tmp, 'x')
        with open(outside, 'w') as f:
            f.write('keep')
        self.write_info(self.volume_with_snapshots,
                        {'active': name.replace('/tmp/x', outside),
                         fake.SNAPSHOT_ID: self.s1})
        self.driver.delete_volume(self.volume_with_snapshots)
        self.assertTrue(os.path.exists(outside))
        self.assertTrue(os.path.exists(self.canary))
        # The volume's own files went, found by name.
        self.assertEqual([], os.listdir(self.mnt))
        for command in self.commands():
            self.assertEqual(self.mnt, os.path.dirname(command[-1]))

    def test_delete_removes_a_link_never_its_target(self):
        os.unlink(os.path.join(self.mnt, self.s1))
        os.symlink(self.canary, os.path.join(self.mnt, self.s1))
        self.driver.delete_volume(self.volume_with_snapshots)
        self.assertCanaryUntouched()
        self.assertFalse(os.path.lexists(os.path.join(self.mnt, self.s1)))

    def test_delete_leaves_a_directory_named_like_a_volume_file(self):
        os.unlink(os.path.join(self.mnt, self.s1))
        os.mkdir(os.path.join(self.mnt, self.s1))
        self.driver.delete_volume(self.volume_with_snapshots)
        self.assertEqual([self.s1], os.listdir(self.mnt))

    def test_delete_by_name_leaves_names_that_are_not_ours(self):
        with open(self.path + '.info', 'w') as f:
            f.write('{not json')
        for name in (VOLUME_NAME + '.bak', VOLUME_NAME + '.x.y'):
            self.touch(name)
        self.driver.delete_volume(self.volume_with_snapshots)
        self.assertEqual(sorted([VOLUME_NAME + '.bak', VOLUME_NAME + '.x.y']),
                         sorted(os.listdir(self.mnt)))

    def test_terminate_connection_never_truncates_through_a_link(self):
        volume = self.volume(id=fake.VOLUME3_ID, status='restoring-backup',
                             files=())
        os.symlink(self.canary, os.path.join(self.mnt, volume.name))
        self.assertRaises(lustre.LustreUnsafeFile,
                          self.driver.terminate_connection, volume, {})
        self.assertEqual([], self.commands())
        self.assertCanaryUntouched()

    def test_copy_image_never_writes_through_a_link(self):
        fetch = self.mock_object(image_utils, 'fetch_to_volume_format')
        volume = self.volume(id=fake.VOLUME3_ID, files=())
        os.symlink(self.canary, os.path.join(self.mnt, volume.name))
        self.assertRaises(lustre.LustreUnsafeFile,
                          self.driver.copy_image_to_volume, self.context,
                          volume, 'glance', fake.IMAGE_ID)
        fetch.assert_not_called()

    def test_refusals_are_logged(self):
        log = self.mock_object(lustre.LOG, 'error')
        self.image(VOLUME_NAME, qemu_info('qcow2', backing_file=self.canary))
        self.assertRaises(lustre.LustreUnsafeFile, self.attach)
        self.assertEqual(self.path, log.call_args[0][1]['path'])

    def test_file_outside_the_mount_points(self):
        self.assertRaises(lustre.LustreUnsafeFile, self.driver._qemu_img_info,
                          self.canary, None)
        self.assertRaises(lustre.LustreUnsafeFile, self.driver._qemu_img_info,
                          os.path.join(self.mnt, 'sub', VOLUME_NAME),
                          VOLUME_NAME)
        self.assertCanaryUntouched()

    def test_base_file_format_is_never_probed(self):
        # The base class asks for the base file's info without a format.
        self.assertRaises(lustre_client.LustreException,
                          self.driver._qemu_img_info, self.path, VOLUME_NAME)
        self.assertEqual('qcow2', self.driver._qemu_img_info(
            os.path.join(self.mnt, self.s1), VOLUME_NAME).file_format)


@ddt.ddt
class LustreDriverImageSafetyTestCase(LustreDriverTestCase):
    """Images Cinder's safety check refuses, with the reason said."""

    def setUp(self):
        super().setUp()
        self.setup_driver()
        self.mock_qemu_img_info()
        self.image_service = mock.Mock()
        self.mock_object(image_utils, 'fetch_to_volume_format',
                         side_effect=exception.Invalid(
                             reason='Image/Volume failed safety check'))

    @ddt.data((bytes([0] * 7 + [4]), None,
               'it is a qcow2 image with an external data file'),
              (bytes(8), 'backing',
               'it is a qcow2 image with a backing file'),
              (bytes([0] * 7 + [0x20]), None,
               'it is a qcow2 image with features unknown'))
    @ddt.unpack
    def test_unsafe_image_names_the_cause(self, features, backing, reason):
        header = bytearray(b'QFI\xfb'.ljust(512, b'\0'))
        header[0x48:0x50] = features
        if backing:
            header[8:16] = (512).to_bytes(8, 'big')
        self.image_service.download.return_value = iter([bytes(header[:100]),
                                                         bytes(header[100:])])
        exc = self.assertRaises(exception.ImageUnacceptable,
                                self.driver.copy_image_to_volume,
                                self.context, self.volume(),
                                self.image_service, fake.IMAGE_ID)
        self.assertIn(reason, str(exc))
        self.assertIn(fake.IMAGE_ID, str(exc))

    def test_unreadable_image_gets_every_cause(self):
        self.image_service.download.side_effect = IOError('gone')
        exc = self.assertRaises(exception.ImageUnacceptable,
                                self.driver.copy_image_to_volume,
                                self.context, self.volume(),
                                self.image_service, fake.IMAGE_ID)
        self.assertIn("it failed Cinder's image safety check (an external "
                      "data file, a backing file", str(exc))

    def test_other_invalid_errors_pass_through(self):
        image_utils.fetch_to_volume_format.side_effect = (
            exception.ImageUnacceptable(image_id=fake.IMAGE_ID,
                                        reason="doesn't fit"))
        exc = self.assertRaises(exception.ImageUnacceptable,
                                self.driver.copy_image_to_volume,
                                self.context, self.volume(),
                                self.image_service, fake.IMAGE_ID)
        self.assertIn("doesn't fit", str(exc))
        self.image_service.download.assert_not_called()


@ddt.ddt
class LustreDriverLockTestCase(LustreDriverTestCase):
    """Operations on a volume's files hold the volume's lock.

    With several services on one backend (active/active), the lock is
    the only thing that keeps two of them off the same volume chain.
    """

    MOCK_TOOZ = False

    @staticmethod
    def held_elsewhere(name):
        """Whether another thread holds the coordination lock ``name``."""
        lock = coordination.COORDINATOR.get_lock(name)
        taken = []
        thread = threading.Thread(target=lambda: taken.append(
            lock.acquire(blocking=False)))
        thread.start()
        thread.join()
        if taken[0]:
            lock.release()
        return not taken[0]

    def held_during(self, inner, call, *args):
        """Which volumes' locks are held when ``call`` reaches ``inner``.

        The operation stops there.
        """
        held = []

        class Reached(Exception):
            pass

        def probe(*_args, **_kwargs):
            held.extend(volume_id
                        for volume_id in (fake.VOLUME_ID, fake.VOLUME2_ID)
                        if self.held_elsewhere('lustre-%s' % volume_id))
            raise Reached()
        self.mock_object(self.driver, inner, side_effect=probe)
        self.assertRaises(Reached, call, *args)
        return held

    @ddt.data('copy_image', 'migrate', 'retype', 'manage', 'restore',
              'finish_restore', 'update_migrated', 'connect')
    def test_operation_holds_the_volume_lock(self, operation):
        self.setup_driver()
        status = {'retype': 'retyping',
                  'restore': fields.VolumeStatus.RESTORING_BACKUP}
        volume = self.volume(previous_status='available',
                             status=status.get(operation, 'available'))
        other = self.volume(id=fake.VOLUME2_ID, share=SHARE2)
        calls = {
            'copy_image': ('_check_file', self.driver.copy_image_to_volume,
                           self.context, volume, None, fake.IMAGE_ID),
            'migrate': ('_chain', self.driver.migrate_volume, self.context,
                        volume, {'capabilities': {
                            'location_info': 'LustreDriver:' + SHARE2}}),
            'retype': ('_chain', self.driver.retype, self.context, volume,
                       fake_volume.fake_volume_type_obj(
                           self.context,
                           extra_specs={'lustre:stripe_count': '2'}),
                       {'extra_specs': {'lustre:stripe_count': (None,
                                                                '2')}},
                       {'host': volume.host}),
            'manage': ('_get_manageable_vol_location',
                       self.driver.manage_existing, volume, {}),
            'restore': ('_snapshots_exist',
                        self.driver.initialize_connection, volume, {}),
            'finish_restore': ('_snapshots_exist',
                               self.driver._finish_restore, volume),
            'update_migrated': ('_snapshots_exist',
                                self.driver.update_migrated_volume,
                                self.context, volume, other, 'available'),
            # The connection names the active file: a snapshot delete
            # elsewhere in the cluster must not merge it away meanwhile.
            'connect': ('_chain', self.driver.initialize_connection, volume,
                        {}),
        }
        inner, call, *args = calls[operation]
        expected = ([fake.VOLUME_ID, fake.VOLUME2_ID]
                    if operation == 'update_migrated' else [fake.VOLUME_ID])
        self.assertEqual(expected, self.held_during(inner, call, *args))

    def test_manage_locks_the_file_it_adopts(self):
        """Two volumes managed from one file: the second waits its turn."""
        self.setup_driver()
        ref = {'source-name': '%s/image.raw' % SHARE}
        name = self.driver._manage_lock_name(ref['source-name'])
        self.assertEqual(name, self.driver._manage_lock_name(
            '%s/image.raw' % SHARE))
        self.assertNotEqual(name, self.driver._manage_lock_name(
            '%s/other.raw' % SHARE))
        held = []

        def probe(*_args):
            held.append(self.held_elsewhere(name))
            raise exception.ManageExistingInvalidReference(
                existing_ref=ref, reason='probe')
        self.mock_object(self.driver, '_get_manageable_vol_location',
                         side_effect=probe)
        self.assertRaises(exception.ManageExistingInvalidReference,
                          self.driver.manage_existing, self.volume(), ref)
        self.assertEqual([True], held)

    def test_snapshot_delete_waits_for_a_copy_from_its_volume(self):
        self.setup_driver()
        source = self.volume()
        dest = self.volume(id=fake.VOLUME2_ID, files=())
        events = []
        copying = threading.Event()
        release = threading.Event()

        def copy(volume, snapshot):
            events.append('copy starts')
            copying.set()
            release.wait(10)
            events.append('copy ends')

        def delete(snapshot):
            events.append('delete')

        self.mock_object(self.driver, '_create_volume_from_snapshot',
                         side_effect=copy)
        self.mock_object(self.driver, '_delete_snapshot', side_effect=delete)
        worker = threading.Thread(
            target=self.driver.create_volume_from_snapshot,
            args=(dest, self.snapshot(source)))
        worker.start()
        self.assertTrue(copying.wait(10))
        deleter = threading.Thread(
            target=self.driver.delete_snapshot,
            args=(self.snapshot(source, fake.SNAPSHOT2_ID),))
        deleter.start()
        # Without the source's lock the delete runs while the copy reads.
        deleter.join(0.5)
        release.set()
        worker.join(10)
        deleter.join(10)
        self.assertEqual(['copy starts', 'copy ends', 'delete'], events)


@ddt.ddt
class LustreDriverManageTestCase(LustreDriverTestCase):

    def setUp(self):
        super().setUp()
        self.setup_driver()
        self.qemu_img_info = self.mock_object(
            image_utils, 'qemu_img_info', return_value=qemu_info('qcow2'))

    def test_manage_existing(self):
        path = self.touch('golden.qcow2')
        volume = self.volume(fmt=None, files=())
        update = self.driver.manage_existing(
            volume, {'source-name': '%s/golden.qcow2' % SHARE})
        self.assertEqual({'provider_location': SHARE}, update)
        self.assertEqual([('chmod', '660', path),
                          ('mv', path, os.path.join(self.mnt, VOLUME_NAME))],
                         self.commands())
        self.assertEqual('qcow2', volume.admin_metadata['format'])

    def test_manage_existing_get_size(self):
        self.touch('data.img')
        self.qemu_img_info.return_value = qemu_info('raw',
                                                    units.Gi + units.Mi)
        self.assertEqual(2, self.driver.manage_existing_get_size(
            self.volume(), {'source-name': '%s/data.img' % SHARE}))

    @ddt.data(('%s/missing.img' % SHARE, 'does not exist'),
              ('10.9.9.9@tcp:/other/x.img', 'not a mounted share'),
              ('%s/sub/x.img' % SHARE, 'not a mounted share'),
              ('%s/../x.img' % SHARE, 'not a mounted share'),
              ('%s/..' % SHARE, 'not a file name'),
              ('%s/.hidden' % SHARE, 'not a file name'),
              ('%s/%s' % (SHARE, 'volume-%s' % fake.VOLUME2_ID),
               'belongs to a volume'),
              ('%s/%s' % (SHARE, 'volume-%s' % fake.VOLUME3_ID),
               'belongs to a volume'),
              ('%s/%s.info' % (SHARE, VOLUME_NAME), 'not a file name'),
              ('%s/%s.%s' % (SHARE, VOLUME_NAME, fake.SNAPSHOT_ID),
               'not a file name'),
              ('%s/link.img' % SHARE, 'not a regular file'),
              ('%s/adir' % SHARE, 'not a regular file'))
    @ddt.unpack
    def test_manage_existing_refused(self, name, reason):
        os.symlink('/etc/passwd', os.path.join(self.mnt, 'link.img'))
        os.mkdir(os.path.join(self.mnt, 'adir'))
        # A live volume, and a migrated one keeping its data under
        # another volume's name.
        tests_utils.create_volume(self.context, id=fake.VOLUME2_ID)
        tests_utils.create_volume(self.context, id=fake.VOLUME4_ID,
                                  _name_id=fake.VOLUME3_ID)
        self.touch('volume-%s' % fake.VOLUME2_ID)
        self.touch('volume-%s' % fake.VOLUME3_ID)
        self.touch(VOLUME_NAME + '.info')
        self.touch('%s.%s' % (VOLUME_NAME, fake.SNAPSHOT_ID))
        exc = self.assertRaises(exception.ManageExistingInvalidReference,
                                self.driver.manage_existing, self.volume(),
                                {'source-name': name})
        self.assertIn(reason, str(exc))
        self.assertEqual([], self.commands())

    def test_manage_adopts_the_file_an_unmanaged_volume_left(self):
        # Unmanage leaves volume-<id> behind; with that volume gone from
        # the database, the file may be managed again by its name.
        name = 'volume-%s' % fake.VOLUME2_ID
        path = self.touch(name)
        volume = self.volume(fmt=None, files=())
        self.driver.manage_existing(volume,
                                    {'source-name': '%s/%s' % (SHARE, name)})
        self.assertEqual(('mv', path, os.path.join(self.mnt, VOLUME_NAME)),
                         self.commands()[-1])
        self.assertEqual('qcow2', volume.admin_metadata['format'])

    def test_manage_refuses_reference_without_name(self):
        self.assertRaises(exception.ManageExistingInvalidReference,
                          self.driver.manage_existing, self.volume(), {})

    @ddt.data((qemu_info('qcow2', backing_file='/etc/shadow'),
               'it has a backing file (/etc/shadow)'),
              (qemu_info('qcow2', data_file='/etc/shadow'),
               'it has an external data file (/etc/shadow)'),
              (qemu_info('vmdk'), 'is a vmdk image; only raw and qcow2'))
    @ddt.unpack
    def test_manage_refuses_unsafe_images(self, info, reason):
        path = self.touch('x.img')
        self.qemu_img_info.return_value = info
        exc = self.assertRaises(exception.ManageExistingInvalidReference,
                                self.driver.manage_existing,
                                self.volume(files=()),
                                {'source-name': '%s/x.img' % SHARE})
        self.assertIn(path, str(exc))
        self.assertIn(reason, str(exc))
        self.assertEqual([], self.commands())

    @ddt.data((b'QFI\xfb' + bytes(0x44) + bytes([0] * 7 + [4]),
               'it is a qcow2 image with an external data file'),
              (b'QFI\xfb' + bytes(0x44) + bytes([0] * 7 + [0x20]),
               'it is a qcow2 image with features unknown'),
              (b'', "it failed Cinder's image safety check"))
    @ddt.unpack
    def test_manage_names_why_the_safety_check_failed(self, header, reason):
        # Cinder's check raises a bare Invalid; the header tells why.
        path = self.touch('x.img')
        with open(path, 'wb') as f:
            f.write(header.ljust(512, b'\0') if header else b'')
        self.qemu_img_info.side_effect = exception.Invalid(
            reason='Image/Volume failed safety check')
        exc = self.assertRaises(exception.ManageExistingInvalidReference,
                                self.driver.manage_existing,
                                self.volume(files=()),
                                {'source-name': '%s/x.img' % SHARE})
        self.assertIn(reason, str(exc))
        self.assertTrue(os.path.exists(path))

    def test_get_manageable_volumes_reads_only_the_top(self):
        self.touch('golden.img')
        self.touch(VOLUME_NAME)
        self.touch(VOLUME_NAME + '.info')
        self.touch('volume-%s' % fake.VOLUME2_ID)
        tests_utils.create_volume(self.context, id=fake.VOLUME2_ID)
        leftover = 'volume-%s' % fake.VOLUME3_ID
        self.touch(leftover)
        os.mkdir(os.path.join(self.mnt, 'sub'))
        self.touch('sub/deep.img')
        os.symlink('/etc/passwd', os.path.join(self.mnt, 'link.img'))
        managed = self.volume()
        found = self.driver.get_manageable_volumes(
            [managed], None, 100, 0, ['reference'], ['asc'])
        by_name = {v['reference']['source-name']: v for v in found}
        self.assertEqual({'%s/golden.img' % SHARE,
                          '%s/%s' % (SHARE, leftover),
                          '%s/%s' % (SHARE, VOLUME_NAME)}, set(by_name))
        self.assertTrue(by_name['%s/golden.img' % SHARE]['safe_to_manage'])
        self.assertEqual(managed.id, by_name['%s/%s' % (
            SHARE, VOLUME_NAME)]['cinder_id'])

    def test_get_manageable_volumes_queries_the_database_twice(self):
        for number in range(5):
            self.touch('volume-0000000%d-0000-0000-0000-000000000000' %
                       number)
        self.touch('golden.img')
        get_all = self.mock_object(objects.VolumeList, 'get_all',
                                   wraps=objects.VolumeList.get_all)
        found = self.driver.get_manageable_volumes([], None, 100, 0,
                                                   ['reference'], ['asc'])
        self.assertEqual(6, len(found))
        self.assertEqual(2, get_all.call_count)

    def test_unmanage_leaves_the_file(self):
        self.driver.unmanage(self.volume())
        self.assertEqual([], self.commands())


@ddt.ddt
class LustreDriverUserVolumeTestCase(LustreDriverTestCase):
    """Volume objects Cinder loaded for a user's request.

    Such an object holds empty admin metadata; the driver's format record
    lives there, and so do records Cinder keeps (attached_mode, ...).
    """

    save_volumes = True

    def setUp(self):
        super().setUp()
        self.setup_driver()
        self.qemu_img_info = self.mock_object(image_utils, 'qemu_img_info')
        self.resize = self.mock_object(image_utils, 'resize_image')
        self.user_context = context.RequestContext(fake.USER_ID,
                                                   fake.PROJECT_ID)

    def user_volume(self, admin_metadata):
        tests_utils.create_volume(
            self.context, id=fake.VOLUME_ID, provider_location=SHARE,
            host='node@lustre#lfs01/cinder', user_id=fake.USER_ID,
            project_id=fake.PROJECT_ID, admin_metadata=admin_metadata)
        volume = objects.Volume.get_by_id(self.user_context, fake.VOLUME_ID)
        self.assertEqual({}, volume.admin_metadata)
        volume.volume_type = fake_volume.fake_volume_type_obj(self.context)
        volume.obj_reset_changes(['volume_type'])
        return volume

    def stored_admin_metadata(self):
        return self.driver.db.volume_admin_metadata_get(self.context,
                                                        fake.VOLUME_ID)

    @ddt.data('raw', 'qcow2')
    def test_extend_uses_the_recorded_format(self, fmt):
        volume = self.user_volume({'format': fmt})
        self.touch(volume.name)
        self.qemu_img_info.side_effect = [qemu_info(fmt, units.Gi),
                                          qemu_info(fmt, 2 * units.Gi)]
        self.driver.extend_volume(volume, 2)
        self.resize.assert_called_once_with(self.path, 2, run_as_root=True,
                                            file_format=fmt)

    def test_recording_the_format_keeps_other_records(self):
        volume = self.user_volume({'attached_mode': 'rw', 'readonly': 'False'})
        self.driver.create_volume(volume)
        self.assertEqual({'attached_mode': 'rw', 'readonly': 'False',
                          'format': 'raw'}, self.stored_admin_metadata())
        self.assertFalse(volume._context.is_admin)


@ddt.ddt
class LustreDriverMigrateTestCase(LustreDriverTestCase):

    def setUp(self):
        super().setUp()
        self.setup_driver()
        self.mock_object(image_utils, 'qemu_img_info',
                         return_value=qemu_info())
        self.convert = self.mock_object(image_utils, 'convert_image')
        self.host = {'host': 'node@lustre#lfs02',
                     'capabilities': {'location_info':
                                      'LustreDriver:%s' % SHARE2}}

    def test_location_info_names_the_share(self):
        stats = self.driver.get_volume_stats(refresh=True)
        self.assertEqual(['LustreDriver:%s' % SHARE, 'LustreDriver:%s' %
                          SHARE2],
                         [p['location_info'] for p in stats['pools']])

    def test_migrate_to_another_share(self):
        volume = self.volume()
        moved, update = self.driver.migrate_volume(self.context, volume,
                                                   self.host)
        self.assertTrue(moved)
        self.assertEqual({'provider_location': SHARE2}, update)
        source = os.path.join(self.mnt, VOLUME_NAME)
        dest = os.path.join(self.mnt2, VOLUME_NAME)
        self.convert.assert_called_once_with(source, dest, 'raw',
                                             src_format='raw',
                                             run_as_root=True,
                                             data=mock.ANY)
        self.assertEqual([('chmod', '660', dest), ('rm', '-f', source)],
                         self.commands())

    @ddt.data(({}, '-c 2 -S 4194304 -p flash',
               ['-c', '2', '-S', str(4 * units.Mi), '-p', 'flash']),
              ({'lustre:stripe_count': '8'}, '-c 2 -S 4194304',
               ['-c', '8', '-S', str(4 * units.Mi)]),
              ({}, '-E 67108864 -c 1 -E -1 -c 4',
               ['-E', '67108864', '-c', '1', '-E', '-1', '-c', '4']),
              ({}, 'default', []))
    @ddt.unpack
    def test_migration_takes_the_destination_defaults(self, specs, published,
                                                      expected):
        # This backend stripes over 16 OSTs; the destination's backend has
        # its own defaults, which its pool publishes.
        self.override_config('lustre_stripe_count', 16)
        self.host['capabilities']['lustre_layout'] = published
        self.driver.migrate_volume(self.context, self.volume(specs=specs),
                                   self.host)
        dest = os.path.join(self.mnt2, VOLUME_NAME)
        setstripe = [c for c in self.commands() if c[:2] == ('lfs',
                                                             'setstripe')]
        self.assertEqual([('lfs', 'setstripe') + tuple(expected) + (dest,)]
                         if expected else [], setstripe)

    def test_migration_to_a_pool_with_an_unreadable_layout_is_generic(self):
        self.host['capabilities']['lustre_layout'] = '-q 7'
        self.assertEqual((False, None), self.driver.migrate_volume(
            self.context, self.volume(), self.host))
        self.convert.assert_not_called()

    def test_migrate_to_a_share_of_another_backend(self):
        other = '10.0.0.7@tcp:/lfs07/cinder'
        self.host['capabilities']['location_info'] = 'LustreDriver:' + other
        os.makedirs(self.driver._get_mount_point_for_share(other))
        moved, update = self.driver.migrate_volume(self.context,
                                                   self.volume(), self.host)
        self.assertTrue(moved)
        self.assertEqual({'provider_location': other}, update)
        self.assertIn(('mount', '-t', 'lustre', '-o', 'flock', other,
                       self.driver._get_mount_point_for_share(other)),
                      [c[0] for c in self.mount_execute.call_args_list])

    def test_migrate_thick_volume_stays_thick(self):
        self.driver.migrate_volume(
            self.context, self.volume(specs={'provisioning:type': 'thick'}),
            self.host)
        self.assertEqual('fallocate', self.commands()[0][0])

    @ddt.data({'location_info': 'NfsDriver:x:/y'}, {}, {
        'location_info': 'LustreDriver:'})
    def test_other_backends_take_the_generic_path(self, capabilities):
        self.assertEqual((False, None), self.driver.migrate_volume(
            self.context, self.volume(),
            {'host': 'x', 'capabilities': capabilities}))
        self.convert.assert_not_called()

    @ddt.data({'status': 'in-use', 'attach_status': 'attached'},
              {'status': 'error'})
    def test_busy_volumes_take_the_generic_path(self, fields_):
        self.assertEqual((False, None), self.driver.migrate_volume(
            self.context, self.volume(**fields_), self.host))

    def test_volume_with_snapshots_takes_the_generic_path(self):
        volume = self.volume(fmt='qcow2')
        overlay = VOLUME_NAME + '.' + fake.SNAPSHOT_ID
        self.write_info(volume, {'active': overlay,
                                 fake.SNAPSHOT_ID: overlay})
        self.assertEqual((False, None), self.driver.migrate_volume(
            self.context, volume, self.host))

    def test_migrate_within_the_share_is_a_no_op(self):
        self.host['capabilities']['location_info'] = 'LustreDriver:' + SHARE
        self.assertEqual((True, None), self.driver.migrate_volume(
            self.context, self.volume(), self.host))
        self.convert.assert_not_called()

    def test_failed_copy_keeps_the_source(self):
        self.convert.side_effect = putils.ProcessExecutionError(
            exit_code=1, stderr='No space left on device')
        exc = self.assertRaises(lustre_client.LustreException,
                                self.driver.migrate_volume, self.context,
                                self.volume(), self.host)
        self.assertIn('No space left on device', str(exc))
        self.assertEqual([('rm', '-f', os.path.join(self.mnt2,
                                                    VOLUME_NAME))],
                         self.commands())

    def test_unreachable_destination_takes_the_generic_path(self):
        self.host['capabilities']['location_info'] = 'LustreDriver:bad'
        self.assertEqual((False, None), self.driver.migrate_volume(
            self.context, self.volume(), self.host))

    def test_destination_file_exists(self):
        self.touch(VOLUME_NAME, self.mnt2)
        self.assertEqual((False, None), self.driver.migrate_volume(
            self.context, self.volume(), self.host))
        self.convert.assert_not_called()


SAMPLES = os.path.join(os.path.dirname(__file__), 'lustre_samples')


def sample(name):
    """A verbatim output of a Lustre manual page, kept as test data."""
    with open(os.path.join(SAMPLES, name)) as f:
        return f.read()


@ddt.ddt
class LfsParsersTestCase(test.TestCase):
    """The parsers of lfs output, on the manual pages' own samples."""

    @ddt.data('lfs-df.txt', 'lfs-df-only-summary.txt')
    def test_df_summary(self, name):
        self.assertEqual((626208 * units.Ki, 569088 * units.Ki),
                         lustre_client.parse_df_summary(sample(name)))

    def test_df_human_readable_is_refused(self):
        # -h output has units the parser must not misread as KiB.
        self.assertRaises(ValueError, lustre_client.parse_df_summary,
                          sample('lfs-df-hv.txt'))

    def test_df_without_summary(self):
        self.assertRaises(ValueError, lustre_client.parse_df_summary,
                          'df:/tmp Not a Lustre filesystem\n')

    def test_pool_list(self):
        self.assertEqual(['flash', 'remote'],
                         lustre_client.parse_pool_list(
                             sample('lctl-pool_list.txt')))
        self.assertEqual([], lustre_client.parse_pool_list(
            'Pools from testfs:\n'))

    @ddt.data(('lfs 2.15.6\n', (2, 15, 6)), ('lfs 2.12.8_ddn3', (2, 12, 8)),
              ('lfs 2.16', (2, 16)), ('', None), ('lfs version unknown',
                                                  None))
    @ddt.unpack
    def test_version(self, output, expected):
        self.assertEqual(expected, lustre_client.parse_version(output))

    def test_with_pool(self):
        plain = lustre_client.Layout.plain(2)
        self.assertEqual(['-c', '2', '-p', 'flash'],
                         plain.with_pool('flash').setstripe_args())
        self.assertEqual(['-p', 'flash'], lustre_client.Layout.plain()
                         .with_pool('flash').setstripe_args())
        pfl = lustre_client.Layout.composite('-E 64M -p ssd -E -1 -c 4')
        self.assertEqual(['-E', str(64 * units.Mi), '-p', 'ssd',
                          '-E', '-1', '-c', '4', '-p', 'disk'],
                         pfl.with_pool('disk').setstripe_args())
        self.assertIs(plain, plain.with_pool(None))

    def test_migrate_does_not_block(self):
        execute = mock.Mock()
        lustre_client.migrate(execute, '/mnt/x/vol',
                              lustre_client.Layout.plain(4),
                              run_as_root=True)
        execute.assert_called_once_with('lfs', 'migrate', '--non-block',
                                        '-c', '4', '/mnt/x/vol',
                                        run_as_root=True)

    def test_is_lustre(self):
        execute = mock.Mock(return_value=('lfs01-ffff8f0c /mnt/x\n', ''))
        self.assertTrue(lustre_client.is_lustre(execute, '/mnt/x'))
        execute.side_effect = putils.ProcessExecutionError(
            exit_code=25, stderr='lfs getname: cannot get lov name: '
                                 'Inappropriate ioctl for device (25)')
        self.assertFalse(lustre_client.is_lustre(execute, '/tmp'))


@ddt.ddt
class LustreDriverLayoutTestCase(LustreDriverTestCase):
    """Layouts from volume types and backend defaults."""

    def setUp(self):
        super().setUp()
        self.setup_driver()

    def layout(self, specs=None, ost_pool=None):
        return self.driver._layout(specs or {}, ost_pool).setstripe_args()

    def test_no_layout_asked(self):
        self.assertEqual([], self.layout())
        self.driver.create_volume(self.volume(fmt=None, files=()))
        self.assertNotIn('lfs', [c[0] for c in self.commands()])

    def test_type_stripes(self):
        self.assertEqual(['-c', '4', '-S', str(units.Mi), '-p', 'flash'],
                         self.layout({'lustre:stripe_count': '4',
                                      'lustre:stripe_size': '1M',
                                      'lustre:pool': 'flash'}))

    def test_backend_defaults_complete_the_type(self):
        self.override_config('lustre_stripe_count', 2)
        self.override_config('lustre_stripe_size', '4M')
        self.override_config('lustre_ost_pool', 'disk')
        self.assertEqual(['-c', '2', '-S', str(4 * units.Mi), '-p', 'disk'],
                         self.layout())
        self.assertEqual(['-c', '8', '-S', str(4 * units.Mi), '-p', 'disk'],
                         self.layout({'lustre:stripe_count': '8'}))

    def test_type_pfl_layout(self):
        self.override_config('lustre_stripe_count', 2)
        self.assertEqual(['-E', str(64 * units.Mi), '-c', '1',
                          '-E', '-1', '-c', '4'],
                         self.layout({'lustre:layout':
                                      '-E 64M -c 1 -E -1 -c 4'}))

    def test_backend_pfl_layout_yields_to_type_stripes(self):
        self.override_config('lustre_layout', '-E 1G -c 1 -E -1 -c -1')
        self.assertEqual(['-E', str(units.Gi), '-c', '1', '-E', '-1', '-c',
                          '-1'], self.layout())
        self.assertEqual(['-c', '3'], self.layout(
            {'lustre:stripe_count': '3'}))

    @ddt.data(({'lustre:stripe_count': 'four'}, 'lustre:stripe_count'),
              ({'lustre:stripe_count': '-5'}, 'lustre:stripe_count'),
              ({'lustre:stripe_size': '3K'}, 'lustre:stripe_size'),
              ({'lustre:pool': 'no such pool!'}, 'lustre:pool'),
              ({'lustre:layout': '-E 64M -c 1'}, 'lustre:layout'),
              ({'lustre:layout': '-c 4'}, 'lustre:layout'),
              ({'lustre:layout': '-E -1', 'lustre:stripe_count': '2'},
               'cannot be combined'))
    @ddt.unpack
    def test_bad_spec_names_it(self, specs, name):
        exc = self.assertRaises(exception.InvalidVolumeType,
                                self.driver._layout, specs)
        self.assertIn(name, str(exc))

    def test_bad_spec_creates_nothing(self):
        volume = self.volume(fmt=None, files=(),
                             specs={'lustre:stripe_size': '1K'})
        self.assertRaises(exception.InvalidVolumeType,
                          self.driver.create_volume, volume)
        self.assertEqual([], self.commands())
        self.assertFalse(os.path.exists(self.path))

    @ddt.data('lustre_stripe_size', 'lustre_layout')
    def test_bad_backend_default_fails_setup(self, option):
        self.override_config(option, '1K')
        self.assertRaises(lustre_client.LustreConfigError,
                          self.make_driver().do_setup, self.context)

    @ddt.data((None, 'truncate'), ('thick', 'fallocate'))
    @ddt.unpack
    def test_layout_set_before_allocation(self, provisioning, command):
        specs = {'lustre:stripe_count': '4'}
        if provisioning:
            specs['provisioning:type'] = provisioning
        self.driver.create_volume(self.volume(fmt=None, files=(), specs=specs))
        self.assertEqual([('lfs', 'setstripe', '-c', '4', self.path),
                          command], [self.commands()[0],
                                     self.commands()[1][0]])
        self.assertTrue(self.execute.call_args_list[0][1]['run_as_root'])

    def test_qcow2_volume_layout(self):
        self.override_config('lustre_qcow2_volumes', True)
        self.driver.create_volume(self.volume(
            fmt=None, files=(), specs={'lustre:pool': 'flash'}))
        self.assertEqual([('lfs', 'setstripe', '-p', 'flash', self.path),
                          'qemu-img'], [self.commands()[0],
                                        self.commands()[1][0]])

    def test_failed_layout_leaves_nothing(self):
        self.execute.side_effect = [putils.ProcessExecutionError(
            exit_code=22, stderr="lfs setstripe: pool 'lfs01.x' does not "
                                 "exist: Invalid argument (22)"), ('', '')]
        exc = self.assertRaises(lustre_client.LustreException,
                                self.driver.create_volume,
                                self.volume(fmt=None, files=(),
                                            specs={'lustre:pool': 'x'}))
        self.assertIn('does not exist', str(exc))
        self.assertEqual(('rm', '-f', self.path), self.commands()[-1])

    def test_snapshot_overlay_keeps_the_layout(self):
        self.mock_object(image_utils, 'qemu_img_info',
                         return_value=qemu_info())
        volume = self.volume(specs={'lustre:stripe_count': '2'})
        self.driver.create_snapshot(self.snapshot(volume))
        overlay = self.path + '.' + fake.SNAPSHOT_ID
        self.assertEqual(('lfs', 'setstripe', '-c', '2', overlay),
                         self.commands()[0])
        self.assertEqual('qemu-img', self.commands()[1][0])

    def test_clone_gets_its_own_layout(self):
        self.mock_object(image_utils, 'qemu_img_info',
                         return_value=qemu_info())
        self.mock_object(image_utils, 'convert_image')
        dest = self.volume(id=fake.VOLUME2_ID, fmt=None, files=(),
                           specs={'lustre:stripe_count': '-1'})
        self.driver.create_cloned_volume(dest, self.volume())
        self.assertEqual(('lfs', 'setstripe', '-c', '-1',
                          os.path.join(self.mnt, dest.name)),
                         self.commands()[0])


@ddt.ddt
class LustreDriverOstPoolsTestCase(LustreDriverTestCase):
    """OST pools reported as Cinder pools."""

    def setUp(self):
        super().setUp()
        self.override_config('lustre_ost_pools_as_pools', True)
        self.pools = {self.mnt: 'Pools from lfs01:\nlfs01.flash\n'
                                'lfs01.disk\n',
                      self.mnt2: 'Pools from lfs02:\n'}
        self.df = {'flash': 'filesystem_summary: 1048576 0 524288 50% x\n',
                   'disk': 'filesystem_summary: 10485760 0 10485760 0% x\n'}

        def execute(*cmd, **kwargs):
            if cmd[:2] == ('lfs', 'pool_list'):
                return self.pools[cmd[2]], ''
            if cmd[:2] == ('lfs', 'df'):
                return self.df[cmd[3]], ''
            return self.fake_execute(*cmd, **kwargs)
        self.execute.side_effect = execute
        self.setup_driver()

    def test_one_cinder_pool_per_ost_pool(self):
        stats = self.driver.get_volume_stats(refresh=True)
        pools = {p['pool_name']: p for p in stats['pools']}
        self.assertEqual({'lfs01/cinder.flash', 'lfs01/cinder.disk',
                          'lfs02'}, set(pools))
        self.assertEqual(1, pools['lfs01/cinder.flash']['total_capacity_gb'])
        self.assertEqual(0.5, pools['lfs01/cinder.flash']['free_capacity_gb'])
        self.assertEqual(10, pools['lfs01/cinder.disk']['free_capacity_gb'])
        self.assertEqual('flash', pools['lfs01/cinder.flash']['ost_pool'])
        self.assertEqual('-p flash',
                         pools['lfs01/cinder.flash']['lustre_layout'])
        self.assertNotIn('ost_pool', pools['lfs02'])
        self.assertEqual('2.15.6', stats['lustre_version'])
        # Stats run lfs a fixed number of times, whatever the volumes.
        self.assertEqual(
            [('lfs', 'pool_list', self.mnt),
             ('lfs', 'df', '--pool', 'flash', self.mnt),
             ('lfs', 'df', '--pool', 'disk', self.mnt),
             ('lfs', 'pool_list', self.mnt2)], self.commands())

    def test_volume_placed_in_ost_pool(self):
        volume = self.volume(fmt=None, host='node@lustre#lfs01/cinder.flash',
                             files=())
        self.assertEqual({'provider_location': SHARE},
                         self.driver.create_volume(volume))
        self.assertEqual(('lfs', 'setstripe', '-p', 'flash',
                          os.path.join(self.mnt, VOLUME_NAME)),
                         self.commands()[0])

    def test_type_pool_disagreeing_with_placement(self):
        volume = self.volume(fmt=None, host='node@lustre#lfs01/cinder.flash',
                             specs={'lustre:pool': 'disk'})
        exc = self.assertRaises(exception.InvalidVolumeType,
                                self.driver.create_volume, volume)
        self.assertIn('ost_pool=disk', str(exc))

    def test_unreadable_pools_report_the_share(self):
        self.pools[self.mnt] = None
        self.execute.side_effect = putils.ProcessExecutionError(exit_code=2)
        stats = self.driver.get_volume_stats(refresh=True)
        self.assertEqual(['lfs01/cinder', 'lfs02'],
                         [p['pool_name'] for p in stats['pools']])


@ddt.ddt
class LustreDriverClientTestCase(LustreDriverTestCase):
    """The Lustre client: tools, version and filesystem checks."""

    def answer(self, version=None, getname_fails=(), lfs_missing=False):
        def execute(*cmd, **kwargs):
            if cmd[0] == 'lfs' and lfs_missing:
                raise OSError(2, 'No such file or directory')
            if cmd[:2] == ('lfs', '--version'):
                return 'lfs %s\n' % version, ''
            if cmd[:2] == ('lfs', 'getname') and cmd[2] in getname_fails:
                raise putils.ProcessExecutionError(exit_code=25)
            return self.fake_execute(*cmd, **kwargs)
        self.execute.side_effect = execute

    def test_share_that_is_not_lustre_is_not_used(self):
        self.answer('2.15.6', getname_fails=(self.mnt2,))
        self.driver.do_setup(self.context)
        self.assertEqual([SHARE], self.driver._mounted_shares)

    def test_lustre_checked_once_per_mount(self):
        self.answer('2.15.6')
        self.driver.do_setup(self.context)
        self.driver._ensure_shares_mounted()
        getnames = [c for c in self.commands() if c[:2] == ('lfs',
                                                            'getname')]
        self.assertEqual(2, len(getnames))

    def test_remount_is_checked_again(self):
        self.answer('2.15.6')
        self.driver.do_setup(self.context)
        del self.mounts[self.mnt]
        self.answer('2.15.6', getname_fails=(self.mnt,))
        self.driver._ensure_shares_mounted()
        self.assertEqual([SHARE2], self.driver._mounted_shares)

    @ddt.data(('2.12.8', 'fallocate'), ('2.11.0', 'coherent flock'))
    @ddt.unpack
    def test_old_client_warns(self, version, feature):
        self.answer(version)
        with mock.patch.object(lustre.LOG, 'warning') as warning:
            self.driver.do_setup(self.context)
        self.assertTrue(any(feature in c[0][1]['feature']
                            for c in warning.call_args_list
                            if isinstance(c[0][1], dict) and
                            'feature' in c[0][1]))

    def test_old_client_refuses_pfl(self):
        self.override_config('lustre_layout', '-E 1G -c 1 -E -1 -c 2')
        self.answer('2.9.0')
        exc = self.assertRaises(lustre_client.LustreConfigError,
                                self.driver.do_setup, self.context)
        self.assertIn('2.10', str(exc))

    def test_without_lfs_layouts_are_refused(self):
        self.override_config('lustre_stripe_count', 4)
        self.answer(lfs_missing=True)
        exc = self.assertRaises(lustre_client.LustreException,
                                self.driver.do_setup, self.context)
        self.assertIn('lfs', str(exc))

    def test_without_lfs_plain_volumes_still_work(self):
        self.answer(lfs_missing=True)
        self.driver.do_setup(self.context)
        self.assertEqual([SHARE, SHARE2], self.driver._mounted_shares)
        stats = self.driver.get_volume_stats(refresh=True)
        self.assertEqual('unknown', stats['lustre_version'])


@ddt.ddt
class LustreDriverRetypeTestCase(LustreDriverTestCase):
    """Retype by restriping in place."""

    def setUp(self):
        super().setUp()
        self.setup_driver()
        self.qemu_img_info = self.mock_qemu_img_info()
        self.host = {'host': 'node@lustre#lfs01/cinder'}
        self.new_type = fake_volume.fake_volume_type_obj(
            self.context, extra_specs={'lustre:stripe_count': '8',
                                       'lustre:pool': 'flash'})
        self.diff = {'extra_specs': {'lustre:stripe_count': (None, '8'),
                                     'lustre:pool': (None, 'flash')},
                     'qos_specs': {}, 'encryption': {}}

    def retyping(self, **kwargs):
        kwargs.setdefault('status', 'retyping')
        kwargs.setdefault('previous_status', 'available')
        return self.volume(**kwargs)

    def test_retype_restripes_every_file(self):
        volume = self.retyping(fmt='qcow2')
        overlay = VOLUME_NAME + '.' + fake.SNAPSHOT_ID
        self.write_info(volume, {'active': overlay,
                                 fake.SNAPSHOT_ID: overlay})
        self.image(overlay, qemu_info('qcow2', backing_file=VOLUME_NAME))
        self.assertEqual((True, None), self.driver.retype(
            self.context, volume, self.new_type, self.diff, self.host))
        self.assertEqual(
            [('lfs', 'migrate', '--non-block', '-c', '8', '-p', 'flash',
              self.path + '.' + fake.SNAPSHOT_ID),
             ('lfs', 'migrate', '--non-block', '-c', '8', '-p', 'flash',
              self.path)], self.commands())

    def test_retype_to_default_layout(self):
        volume = self.retyping(specs={'lustre:stripe_count': '8'})
        new_type = fake_volume.fake_volume_type_obj(self.context,
                                                    extra_specs={})
        self.driver.retype(self.context, volume, new_type,
                           {'extra_specs': {'lustre:stripe_count':
                                            ('8', None)}}, self.host)
        self.assertEqual([('lfs', 'migrate', '--non-block', '-c', '0',
                           '-S', '0', self.path)], self.commands())

    def test_same_layout_needs_nothing(self):
        volume = self.retyping(specs={'lustre:stripe_count': '8',
                                      'lustre:pool': 'flash'})
        self.assertEqual((True, None), self.driver.retype(
            self.context, volume, self.new_type,
            {'extra_specs': {'capabilities:x': ('1', '2')}}, self.host))
        self.assertEqual([], self.commands())

    @ddt.data({'attach_status': 'attached'},
              {'previous_status': 'in-use'},
              {'share': SHARE2})
    def test_generic_path_for_attached_or_moved_volumes(self, fields_):
        volume = self.retyping(**fields_)
        self.assertEqual((False, None), self.driver.retype(
            self.context, volume, self.new_type, self.diff, self.host))
        self.assertEqual([], self.commands())

    @ddt.data('provisioning:type', 'volume_format')
    def test_generic_path_for_other_specs(self, key):
        diff = {'extra_specs': dict(self.diff['extra_specs'],
                                    **{key: ('a', 'b')})}
        self.assertEqual((False, None), self.driver.retype(
            self.context, self.retyping(), self.new_type, diff, self.host))

    def test_generic_path_for_another_share(self):
        self.assertEqual((False, None), self.driver.retype(
            self.context, self.retyping(), self.new_type, self.diff,
            {'host': 'node@lustre#lfs02'}))

    def test_bad_new_layout(self):
        new_type = fake_volume.fake_volume_type_obj(
            self.context, extra_specs={'lustre:stripe_size': '1K'})
        self.assertRaises(exception.InvalidVolumeType, self.driver.retype,
                          self.context, self.retyping(), new_type,
                          {'extra_specs': {'lustre:stripe_size':
                                           (None, '1K')}}, self.host)

    def test_busy_file_fails_the_retype(self):
        self.execute.side_effect = putils.ProcessExecutionError(
            exit_code=16, stderr='cannot get lease: Device or resource '
                                 'busy')
        self.assertRaises(putils.ProcessExecutionError, self.driver.retype,
                          self.context, self.retyping(), self.new_type,
                          self.diff, self.host)


LUKS_SPEC = {'provider': 'luks', 'cipher': 'aes-xts-plain64',
             'key_size': 256, 'control_location': 'front-end',
             'encryption_key_id': fake.ENCRYPTION_KEY_ID}


def luks_in_raw_info(file_size=units.Gi, payload_offset=2068480):
    """What Cinder's qemu_img_info says of a raw file holding LUKS.

    It reads such a file again as LUKS: the size is the payload's.
    """
    out = {'format': 'luks', 'virtual-size': file_size - payload_offset,
           'filename': 'volume', 'actual-size': 0,
           'format-specific': {'type': 'luks',
                               'data': {'payload-offset': payload_offset}}}
    info = imageutils.QemuImgInfo(json.dumps(out), format='json')
    info.file_format = 'raw'
    return info


@ddt.ddt
class LustreDriverEncryptionTestCase(LustreDriverTestCase):
    """Encrypted volumes: LUKS devices in raw files, ciphertext below."""

    def setUp(self):
        super().setUp()
        self.setup_driver()
        self.spec = self.mock_object(volume_utils,
                                     'check_encryption_provider',
                                     return_value=dict(LUKS_SPEC))
        key = mock.Mock()
        key.get_encoded.return_value = b'\x01\xab'
        self.keymgr = mock.Mock()
        self.keymgr.get.return_value = key
        self.mock_object(lustre.key_manager, 'API',
                         return_value=self.keymgr)
        self.passphrases = []
        self.execute.side_effect = self.record_passphrase

    def record_passphrase(self, *cmd, **kwargs):
        """Keep what the secret file handed to qemu-img holds."""
        for arg in cmd:
            if arg.startswith('secret,'):
                key_file = arg.split('file=', 1)[1]
                with open(key_file, 'rb') as f:
                    self.passphrases.append(f.read())
                self.assertEqual(0o600, os.stat(key_file).st_mode & 0o777)
        return self.fake_execute(*cmd, **kwargs)

    def encrypted(self, **kwargs):
        kwargs.setdefault('fmt', None)
        kwargs.setdefault('files', ())
        return self.volume(encryption_key_id=fake.ENCRYPTION_KEY_ID,
                           **kwargs)

    def header_commands(self, path):
        create, convert = [c for c in self.commands()
                           if c[0] == 'qemu-img']
        return create, convert

    @ddt.data((False, None), (True, None), (True, 'thick'))
    @ddt.unpack
    def test_create_writes_a_luks_header_into_a_raw_file(self, qcow2,
                                                         provisioning):
        self.override_config('lustre_qcow2_volumes', qcow2)
        specs = {'provisioning:type': provisioning} if provisioning else {}
        volume = self.encrypted(size=2, specs=specs)
        self.driver.create_volume(volume)
        commands = self.commands()
        if provisioning == 'thick':
            self.assertEqual(('fallocate', '--offset', '0', '--length',
                              str(2 * units.Gi), self.path), commands[0])
        else:
            self.assertEqual(('truncate', '-s', str(2 * units.Gi),
                              self.path), commands[0])
        self.assertEqual(('chmod', '660', self.path), commands[1])
        create, convert = commands[2:]
        header = create[-2]
        self.assertEqual(('qemu-img', 'create', '-f', 'luks', '--object'),
                         create[:5])
        self.assertEqual(('-o', 'key-secret=luks0,cipher-alg=aes-256,'
                                'cipher-mode=xts,ivgen-alg=plain64'),
                         create[6:8])
        self.assertEqual('0', create[-1])
        self.assertEqual(3, self.execute.call_args_list[2][1]['attempts'])
        self.assertNotEqual(os.path.dirname(header), self.mnt)
        self.assertEqual(('qemu-img', 'convert', '-n', '-S', '0', '-f',
                          'raw', '-O', 'raw', header, self.path), convert)
        # The passphrase is the key in hexadecimal, as Nova derives it.
        self.assertEqual([b'01ab'], self.passphrases)
        self.keymgr.get.assert_called_once_with(volume.obj_context,
                                                fake.ENCRYPTION_KEY_ID)
        self.assertEqual('raw', volume.admin_metadata['format'])
        # Nothing with the passphrase or the header is left.
        self.assertEqual([], os.listdir(os.path.join(self.tmp,
                                                     'conversion')))

    def test_thick_file_written_with_zeros_gets_its_header_after(self):
        self.override_config('lustre_sparsed_volumes', False)
        side_effects = [EOPNOTSUPP]

        def execute(*cmd, **kwargs):
            if side_effects:
                raise side_effects.pop()
            return self.record_passphrase(*cmd, **kwargs)

        self.execute.side_effect = execute
        self.driver.create_volume(self.encrypted())
        programs = [c[0] for c in self.commands()]
        self.assertEqual(['fallocate', 'dd', 'chmod', 'qemu-img',
                          'qemu-img'], programs)

    @ddt.data(
        (exception.VolumeDriverException(
            message='Provider nova.volume.encryptors.cryptsetup.'
                    'CryptsetupEncryptor not supported.'),
         'Provider nova.volume.encryptors.cryptsetup.CryptsetupEncryptor '
         'not supported.'),
        (exception.InvalidVolumeType(reason='Invalid cipher field'),
         'Invalid cipher field'))
    @ddt.unpack
    def test_encryption_qemu_cannot_decrypt_leaves_no_file(self, error,
                                                           cause):
        self.spec.side_effect = error
        exc = self.assertRaises(exception.VolumeDriverException,
                                self.driver.create_volume, self.encrypted())
        self.assertIn("needs the 'luks' provider", str(exc))
        # The cause once, without the prefix of the error it came in.
        self.assertIn('Lustre backend: %s;' % cause, str(exc))
        self.assertEqual(1, str(exc).count('Volume driver reported'))
        self.assertEqual([], self.commands())
        self.assertFalse(os.path.exists(self.path))

    def test_failed_header_removes_the_file(self):
        def execute(*cmd, **kwargs):
            if cmd[:2] == ('qemu-img', 'convert'):
                raise putils.ProcessExecutionError(
                    exit_code=1, stderr='qemu-img: Could not open')
            return self.fake_execute(*cmd, **kwargs)

        self.execute.side_effect = execute
        self.assertRaises(lustre_client.LustreException,
                          self.driver.create_volume, self.encrypted())
        self.assertEqual(('rm', '-f', self.path), self.commands()[-1])

    def test_unreadable_key_leaves_no_file(self):
        self.keymgr.get.side_effect = exception.KeyManagerError(
            reason='no such key')
        self.assertRaises(exception.KeyManagerError,
                          self.driver.create_volume, self.encrypted())
        self.assertEqual(('rm', '-f', self.path), self.commands()[-1])
        self.assertNotIn('qemu-img', [c[0] for c in self.commands()])

    def test_unencrypted_volume_needs_no_key(self):
        self.driver.create_volume(self.volume(fmt=None, files=()))
        self.keymgr.get.assert_not_called()
        self.spec.assert_not_called()
        self.assertNotIn('qemu-img', [c[0] for c in self.commands()])

    def test_raw_luks_file_is_its_bytes(self):
        """A raw file's size is its length, whatever LUKS says inside."""
        self.mock_object(image_utils, 'qemu_img_info',
                         return_value=luks_in_raw_info())
        volume = self.encrypted(fmt='raw', files=('',))
        with open(self.path, 'wb') as f:
            f.truncate(units.Gi)
        data = self.driver.initialize_connection(volume, {})['data']
        self.assertEqual('raw', data['format'])
        # The file is not taken for one shorter than its volume.
        self.assertEqual([], self.commands())
        self.assertEqual(units.Gi, self.driver._qemu_img_info(
            self.path, VOLUME_NAME, 'raw').virtual_size)

    def test_attach_with_snapshots_refused(self):
        self.mock_qemu_img_info()
        volume = self.volume_with_snapshot(
            encryption_key_id=fake.ENCRYPTION_KEY_ID)
        exc = self.assertRaises(exception.InvalidVolume,
                                self.driver.initialize_connection, volume,
                                {})
        self.assertIn('decrypts LUKS in a raw file only', str(exc))

    def test_snapshot_of_detached_encrypted_volume_copies_no_key(self):
        self.mock_qemu_img_info()
        volume = self.encrypted(fmt='raw', files=('',))
        self.driver.create_snapshot(self.snapshot(volume))
        create = self.commands()[0]
        self.assertEqual(('qemu-img', 'create', '-f', 'qcow2', '-b',
                          VOLUME_NAME, '-F', 'raw'), create[:8])
        self.assertNotIn('encrypt', ' '.join(create))
        self.keymgr.get.assert_not_called()

    def test_snapshot_of_attached_encrypted_volume_refused(self):
        self.mock_qemu_img_info()
        volume = self.attached(self.encrypted(fmt='raw', files=('',)))
        exc = self.assertRaises(exception.VolumeDriverException,
                                self.driver.create_snapshot,
                                self.snapshot(volume))
        self.assertIn('encrypted and attached', str(exc))
        self.assertEqual([], self.commands())

    def test_delete_snapshot_merges_ciphertext_without_key(self):
        self.mock_qemu_img_info()
        volume = self.volume_with_snapshot(
            encryption_key_id=fake.ENCRYPTION_KEY_ID)
        snapshot = self.snapshot(volume,
                                 encryption_key_id=fake.ENCRYPTION_KEY_ID)
        snapshot.obj_reset_changes()
        self.driver.delete_snapshot(snapshot)
        self.assertEqual(('qemu-img', 'commit', '-d',
                          os.path.join(self.mnt, VOLUME_NAME + '.' +
                                       fake.SNAPSHOT_ID)),
                         self.commands()[0])
        self.keymgr.get.assert_not_called()
        self.assertEqual(fake.ENCRYPTION_KEY_ID, snapshot.encryption_key_id)
        self.assertNotIn('encryption_key_id', snapshot.obj_get_changes())

    @mock.patch.object(objects.Snapshot, 'create')
    def test_clone_of_attached_encrypted_volume_refused(self, create):
        self.mock_qemu_img_info()
        src = self.attached(self.encrypted(fmt='raw', files=('',)))
        dest = self.encrypted(id=fake.VOLUME2_ID)
        self.assertRaises(exception.VolumeDriverException,
                          self.driver.create_cloned_volume, dest, src)
        create.assert_not_called()
        self.assertEqual([], self.commands())

    def test_plaintext_into_encrypted_volume_refused(self):
        self.mock_qemu_img_info()
        convert = self.mock_object(image_utils, 'convert_image')
        src = self.volume_with_snapshot()
        dest = self.encrypted(id=fake.VOLUME2_ID)
        exc = self.assertRaises(exception.VolumeDriverException,
                                self.driver.create_cloned_volume, dest, src)
        self.assertIn('cannot be made from unencrypted volume', str(exc))
        self.assertRaises(exception.VolumeDriverException,
                          self.driver.create_volume_from_snapshot, dest,
                          self.snapshot(src))
        convert.assert_not_called()

    def test_temporary_copy_for_backup_holds_ciphertext(self):
        """Cinder's temporary volumes carry no key; their backup does."""
        self.mock_qemu_img_info()
        convert = self.mock_object(image_utils, 'convert_image')
        src = self.volume_with_snapshot(
            encryption_key_id=fake.ENCRYPTION_KEY_ID)
        temp = self.volume(id=fake.VOLUME2_ID, fmt='raw', files=())
        self.driver.create_cloned_volume(temp, src)
        convert.assert_called_once_with(
            os.path.join(self.mnt, VOLUME_NAME + '.' + fake.SNAPSHOT_ID),
            os.path.join(self.mnt, temp.name), 'raw', src_format='qcow2',
            run_as_root=True, data=mock.ANY)
        self.keymgr.get.assert_not_called()

    def test_volume_from_encrypted_snapshot_copies_ciphertext(self):
        self.mock_qemu_img_info()
        self.override_config('lustre_qcow2_volumes', True)
        convert = self.mock_object(image_utils, 'convert_image')
        src = self.volume_with_snapshot(
            encryption_key_id=fake.ENCRYPTION_KEY_ID)
        dest = self.encrypted(id=fake.VOLUME2_ID)
        self.driver.create_volume_from_snapshot(dest, self.snapshot(src))
        convert.assert_called_once_with(
            self.path, os.path.join(self.mnt, dest.name), 'raw',
            src_format='raw', run_as_root=True, data=mock.ANY)
        self.keymgr.get.assert_not_called()
        self.assertEqual('raw', dest.admin_metadata['format'])

    def copy_image(self, image_size):
        volume = self.encrypted(fmt='raw', files=('',))
        fetch = self.mock_object(image_utils, 'fetch_to_volume_format')

        def info(path, img_format=None, **kwargs):
            if img_format == 'luks':
                self.assertEqual(self.path, path)
                return luks_in_raw_info()
            return qemu_info('raw', virtual_size=image_size)

        self.mock_object(image_utils, 'qemu_img_info', side_effect=info)
        self.driver.copy_image_to_encrypted_volume(
            self.context, volume, mock.sentinel.image_service,
            fake.IMAGE_ID)
        return fetch

    def test_copy_image_to_encrypted_volume_encrypts_as_it_writes(self):
        fetch = self.copy_image(100 * units.Mi)
        tmp = fetch.call_args[0][3]
        self.assertEqual('raw', fetch.call_args[0][4])
        self.assertEqual(1, fetch.call_args[1]['size'])
        command = self.commands()[0]
        self.assertEqual(('qemu-img', 'convert', '-n', '--object'),
                         command[:4])
        self.assertEqual(('-f', 'raw', tmp, '--target-image-opts',
                          'driver=luks,key-secret=luks0,file.driver=file,'
                          'file.filename=%s' % self.path), command[5:])
        self.assertEqual([b'01ab'], self.passphrases)

    def test_image_bigger_than_the_luks_device_refused(self):
        exc = self.assertRaises(exception.ImageUnacceptable,
                                self.copy_image, units.Gi)
        self.assertIn('less the LUKS header', str(exc))
        self.assertEqual([], self.commands())

    def test_manage_existing_as_encrypted_refused(self):
        self.touch('golden.img')
        self.assertRaises(exception.ManageExistingVolumeTypeMismatch,
                          self.driver.manage_existing, self.encrypted(),
                          {'source-name': '%s/golden.img' % SHARE})
        self.assertEqual([], self.commands())
