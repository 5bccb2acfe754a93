"""Device string and option syntax, and mount.lustre's own answers."""

import errno
import os
import shutil
import tempfile
import unittest

from lustre_standin import spec
from lustre_standin import util
from tests import base


class ParseSpecTest(unittest.TestCase):
    """The MGSNODE[:MGSNODE...]:/FSNAME[/SUBDIR] rules (mount.lustre.8)."""

    def test_single_ip_nid(self):
        parsed = spec.parse_spec('10.0.0.1@tcp:/lfs01')
        self.assertEqual([['10.0.0.1@tcp']], parsed.nodes)
        self.assertEqual('lfs01', parsed.fsname)
        self.assertEqual('', parsed.subdir)

    def test_failover_nodes_with_several_nids_and_subdir(self):
        parsed = spec.parse_spec(
            'mgs1@tcp0,mgs1ib@o2ib0:mgs2@tcp0,mgs2ib@o2ib0:/testfs/dir')
        self.assertEqual([['mgs1@tcp0', 'mgs1ib@o2ib0'],
                          ['mgs2@tcp0', 'mgs2ib@o2ib0']], parsed.nodes)
        self.assertEqual('testfs', parsed.fsname)
        self.assertEqual('dir', parsed.subdir)

    def test_hostname_without_nettype_defaults_to_tcp(self):
        parsed = spec.parse_spec('cfs21:/testfs')
        self.assertEqual(['cfs21'], parsed.nids())
        self.assertEqual('testfs', parsed.fsname)

    def test_other_network_types_and_numbers(self):
        for text in ('10.0.0.2@o2ib1:/fs', '12@gni:/fs', '0x1f@kfi3:/fs',
                     'host.example.com@tcp12:/fs', '5@ptlf:/fs',
                     '10.1.1.1@gip:/fs', '0@lo:/fs'):
            self.assertEqual('fs', spec.parse_spec(text).fsname, text)

    def test_deep_subdir_and_slashes_the_kernel_strips(self):
        parsed = spec.parse_spec('mgs@tcp://fs/a/b/')
        self.assertEqual('fs', parsed.fsname)
        self.assertEqual('a/b', parsed.subdir)

    def assertSpecError(self, text, code, nid_error=False):
        with self.assertRaises(spec.SpecError) as ctx:
            spec.parse_spec(text)
        self.assertEqual(code, ctx.exception.code, text)
        self.assertEqual(nid_error, ctx.exception.nid_error, text)
        return ctx.exception

    def test_bad_nids(self):
        for text in ('x@@tcp:/fs', '10.0.0.1@tcpx:/fs', '10.0.0.256@tcp:/fs',
                     '10.0.0.1@foo:/fs', '1.2.3@tcp:/fs', ':/fs',
                     'a@tcp,,b@tcp:/fs', 'a@tcp::/fs', '1abc@tcp:/fs',
                     'abc@gni:/fs', '0@lo1:/fs', 'mgs @tcp:/fs'):
            self.assertSpecError(text, errno.EINVAL, nid_error=True)

    def test_nid_error_reports_the_rest_of_the_string(self):
        exc = self.assertSpecError('a@tcp,x@@tcp:/fs', errno.EINVAL,
                                   nid_error=True)
        self.assertEqual('x@@tcp:/fs', str(exc))

    def test_missing_fsname(self):
        self.assertSpecError('10.0.0.1@tcp:/', errno.EINVAL)
        self.assertSpecError('10.0.0.1@tcp:/ /x', errno.EINVAL)

    def test_not_a_client_spec(self):
        self.assertSpecError('10.0.0.1@tcp', errno.EINVAL)
        self.assertSpecError('/dev/sdb', errno.EINVAL)

    def test_fsname_too_long(self):
        self.assertSpecError('10.0.0.1@tcp:/abcdefghi', errno.ENAMETOOLONG)
        self.assertEqual('abcdefgh',
                         spec.parse_spec('10.0.0.1@tcp:/abcdefgh').fsname)

    def test_fsname_characters(self):
        self.assertEqual('a_b-9', spec.parse_spec('m@tcp:/a_b-9').fsname)
        for name in ('lfs 01', 'lfs.01', 'lfs:01', 'lfs@01'):
            self.assertSpecError('m@tcp:/' + name, errno.EINVAL)

    def test_bad_subdir_components(self):
        for tail in ('/fs/a//b', '/fs/..', '/fs/a/../b', '/fs/./a',
                     '/fs/.'):
            self.assertSpecError('m@tcp:' + tail, errno.EINVAL)


class ParseOptionsTest(unittest.TestCase):

    def test_client_and_generic_options(self):
        text = ('rw,flock,localflock,noflock,lazystatfs,nolazystatfs,'
                'user_xattr,nouser_xattr,always_ping,verbose,noverbose,'
                'user_fid2path,nouser_fid2path,network=tcp0,'
                'mgsname=mgs@tcp,test_dummy_encryption,noencrypt,retry=3,'
                'mgssec=null,skpath=/etc/keys,exclude=fs-OST0001,noatime,'
                'atime,relatime,nodiratime,nodev,dev,nosuid,suid,noexec,'
                'exec,sync,async,defaults,_netdev,noauto,auto,user,'
                'nouser,nofail')
        options = spec.parse_options(text)
        self.assertEqual(3, options.retry)
        self.assertFalse(options.readonly)
        self.assertIn('flock', options.lustre)

    def test_ro_and_rw(self):
        self.assertTrue(spec.parse_options('rw,ro').readonly)
        self.assertFalse(spec.parse_options('ro,rw').readonly)

    def test_unknown_options_are_refused(self):
        for text in ('rw,bogus', 'acl', 'flock=1', 'network=foo',
                     'mgssec=krb9', 'mgsname='):
            with self.assertRaises(spec.SpecError) as ctx:
                spec.parse_options(text)
            self.assertEqual(errno.EINVAL, ctx.exception.code, text)

    def test_retry_is_clamped_like_atoi(self):
        self.assertEqual(99, spec.parse_options('retry=500').retry)
        self.assertEqual(0, spec.parse_options('retry=x').retry)


class SizeParsingTest(unittest.TestCase):

    def test_llapi_parse_size(self):
        self.assertEqual(1 << 20, util.llapi_parse_size('1M'))
        self.assertEqual(64 << 10, util.llapi_parse_size('64k'))
        self.assertEqual(3 << 29, util.llapi_parse_size('1.5G'))
        self.assertEqual(512, util.llapi_parse_size('1b'))
        self.assertEqual(16, util.llapi_parse_size('0x10'))
        self.assertEqual(8, util.llapi_parse_size('010'))
        self.assertIsNone(util.llapi_parse_size('-1'))
        self.assertIsNone(util.llapi_parse_size('1X'))
        self.assertIsNone(util.llapi_parse_size('1MB'))

    def test_c_strtol(self):
        self.assertEqual((-1, ''), util.c_strtol('-1'))
        self.assertEqual((255, ''), util.c_strtol('0xff'))
        self.assertEqual((2, 'x'), util.c_strtol('2x'))
        self.assertEqual((0, 'abc'), util.c_strtol('abc'))


class HelperCommandLineTest(unittest.TestCase):
    """mount.lustre's own checks, before anything is mounted."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='standin-spec-')
        cls.addClassCleanup(shutil.rmtree, cls.tmp)
        conf = os.path.join(cls.tmp, 'standin.conf')
        with open(conf, 'w') as out:
            # Failed mounts are logged in the state directory.
            out.write('[standin]\nstate_dir = %s/state\n' % cls.tmp)
        cls.env = dict(os.environ, LUSTRE_STANDIN_CONF=conf,
                       PYTHONDONTWRITEBYTECODE='1')

    def helper(self, *args):
        return base.run([base.MOUNT_HELPER] + list(args), env=self.env)

    def test_no_arguments(self):
        result = self.helper()
        self.assertEqual(errno.EINVAL, result.returncode)
        self.assertIn('mount.lustre: too few arguments', result.stderr)
        self.assertIn('usage: mount.lustre', result.stderr)

    def test_help_and_version(self):
        result = self.helper('-h')
        self.assertEqual(0, result.returncode)
        self.assertIn('usage: mount.lustre', result.stdout)
        result = self.helper('-V')
        self.assertEqual(0, result.returncode)
        self.assertEqual('mount.lustre 2.15.6 (libmount)\n', result.stdout)

    def test_unknown_helper_option(self):
        result = self.helper('-x', 'm@tcp:/fs', self.tmp)
        self.assertEqual(errno.EINVAL, result.returncode)
        self.assertIn("unknown option '?'", result.stderr)

    def test_bad_nid(self):
        result = self.helper('x@@tcp:/fs', self.tmp, '-o', 'rw')
        self.assertEqual(errno.EINVAL, result.returncode)
        self.assertTrue(result.stderr.startswith(
            "mount.lustre: Can't parse NID 'x@@tcp:/fs'\n"), result.stderr)

    def test_missing_mountpoint(self):
        missing = os.path.join(self.tmp, 'missing')
        result = self.helper('m@tcp:/fs', missing)
        self.assertEqual(errno.ENOENT, result.returncode)
        self.assertEqual('warning: %s: cannot resolve: No such file or '
                         'directory\n' % missing, result.stderr)

    def test_server_device(self):
        result = self.helper('/dev/sdb1', self.tmp)
        self.assertEqual(errno.EINVAL, result.returncode)
        self.assertEqual('mount.lustre: cannot mount /dev/sdb1: no server '
                         'support\n', result.stderr)

    def test_fsname_errors_come_from_mount(self):
        result = self.helper('m@tcp:/toolongname', self.tmp, '-o', 'rw')
        self.assertEqual(errno.ENAMETOOLONG, result.returncode)
        self.assertEqual('mount.lustre: mount m@tcp:/toolongname at %s '
                         'failed: File name too long\n' % self.tmp,
                         result.stderr)
        result = self.helper('m@tcp:/bad.name', self.tmp, '-o', 'rw')
        self.assertEqual(errno.EINVAL, result.returncode)
        self.assertIn("Is 'bad.name' the correct filesystem name?",
                      result.stderr)

    def test_unknown_option_is_invalid_argument(self):
        result = self.helper('m@tcp:/fs', self.tmp, '-o', 'rw,bogus')
        self.assertEqual(errno.EINVAL, result.returncode)
        self.assertEqual(
            'mount.lustre: mount m@tcp:/fs at %s failed: Invalid argument\n'
            'This may have multiple causes.\n'
            "Is 'fs' the correct filesystem name?\n"
            'Are the mount options correct?\n'
            'Check the syslog for more info.\n' % self.tmp, result.stderr)
