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

"""Lustre layouts, OST pools and restriping, read back with lfs getstripe."""

import os

import ddt
from oslo_concurrency import processutils as putils
from oslo_utils import units

from cinder import exception
from cinder.tests.functional.lustre import base
from cinder.volume.drivers import lustre_client
from cinder.volume import volume_types

MI = units.Mi


def getstripe(path, *fields):
    return base.run('lfs', 'getstripe', *fields, path)[1]


@ddt.ddt
class LustreLayoutTestCase(base.LustreFunctionalTestCase):

    def setUp(self):
        super().setUp()
        self.striped = self.volume_type('striped', **{
            'lustre:stripe_count': '2', 'lustre:stripe_size': '1M',
            'lustre:pool': 'disk'})

    def assertLayout(self, path, count, size, pool=None):
        out = getstripe(path)
        self.assertIn('lmm_stripe_count:  %d' % count, out, path)
        self.assertIn('lmm_stripe_size:   %d' % size, out, path)
        if pool:
            self.assertIn('lmm_pool:          %s' % pool, out, path)

    @ddt.data('thin', 'thick', 'qcow2')
    def test_new_volume_gets_the_type_layout(self, kind):
        self.driver = self.make_driver(lustre_qcow2_volumes=kind == 'qcow2')
        vtype = self.volume_type('t-' + kind, **{
            'lustre:stripe_count': '2', 'lustre:stripe_size': '1M',
            'lustre:pool': 'disk',
            'provisioning:type': 'thick' if kind == 'thick' else 'thin'})
        volume = self.create_volume(vtype=vtype)
        self.assertLayout(self.driver.local_path(volume), 2, MI, 'disk')
        self.guest_write(volume, 0, MI, 0x11)
        self.assertGuestSees(volume)

    def test_pfl_layout(self):
        vtype = self.volume_type('pfl', **{
            'lustre:layout': '-E 64M -c 1 -E -1 -c 4 -S 4M'})
        volume = self.create_volume(vtype=vtype)
        self.guest_write(volume, 100 * MI, MI, 0x12)
        out = getstripe(self.driver.local_path(volume))
        self.assertIn('lcm_entry_count:   2', out)
        self.assertIn('lcme_extent.e_end:   67108864', out)
        self.assertIn('lmm_stripe_count:  4', out)
        self.assertGuestSees(volume)

    def test_backend_default_layout(self):
        self.driver = self.make_driver(lustre_stripe_count=4,
                                       lustre_stripe_size='2M')
        volume = self.create_volume()
        self.assertLayout(self.driver.local_path(volume), 4, 2 * MI)

    def test_overlays_clones_and_restores_keep_layouts(self):
        volume = self.create_volume(vtype=self.striped)
        self.guest_write(volume, 0, MI, 0x21)
        snapshot = self.create_snapshot(volume)
        overlay = self.driver._get_new_snap_path(snapshot)
        self.assertLayout(overlay, 2, MI, 'disk')
        clone = self.create_volume(vtype=self.striped, create=False)
        clone.update(self.driver.create_cloned_volume(clone, volume))
        clone.save()
        self.assertLayout(self.driver.local_path(clone), 2, MI, 'disk')
        self.assertGuestSees(clone, self.model(volume))
        self.driver.revert_to_snapshot(self.context, volume, snapshot)
        self.assertLayout(overlay, 2, MI, 'disk')

    @ddt.data(({'lustre:stripe_size': '100K'}, exception.InvalidVolumeType,
               'lustre:stripe_size'),
              ({'lustre:pool': 'tape'}, lustre_client.LustreException,
               "pool 'lfs01.tape' does not exist"))
    @ddt.unpack
    def test_bad_layout_leaves_nothing(self, specs, error, fragment):
        # A bad spec is refused before the file exists; a pool only lfs
        # knows is missing fails setstripe, and the file goes.
        vtype = self.volume_type('bad', **specs)
        volume = self.create_volume(vtype=vtype, create=False)
        exc = self.assertRaises(error, self.driver.create_volume, volume)
        self.assertIn(fragment, str(exc))
        self.assertEqual([], self.files())

    def test_retype_restripes_in_place(self):
        volume = self.create_volume(vtype=self.striped)
        self.guest_write(volume, 0, 3 * MI, 0x31)
        self.create_snapshot(volume)
        self.guest_write(volume, 5 * MI, MI, 0x32)
        # The disk pool has two OSTs: go from two stripes of 1M to
        # four stripes of 2M over the whole filesystem.
        wide = self.volume_type('wide', **{'lustre:stripe_count': '4',
                                           'lustre:stripe_size': '2M'})
        inode = os.stat(self.driver.local_path(volume)).st_ino
        volume.previous_status = volume.status
        volume.status = 'retyping'
        diff, _same = volume_types.volume_types_diff(
            self.context, self.striped.id, wide.id)
        retyped, update = self.driver.retype(
            self.context, volume, wide, diff,
            {'host': 'node@lustre#lfs01/cinder'})
        self.assertTrue(retyped)
        self.assertIsNone(update)
        path = self.driver.local_path(volume)
        self.assertEqual(inode, os.stat(path).st_ino)
        self.assertLayout(path, 4, 2 * MI)
        self.assertLayout(self.driver._local_path_active_image(volume), 4,
                          2 * MI)
        volume.status = 'available'
        self.assertGuestSees(volume)

    def test_retype_of_a_busy_file_fails_cleanly(self):
        volume = self.create_volume(vtype=self.striped)
        wide = self.volume_type('wide2', **{'lustre:stripe_count': '4'})
        volume.previous_status = 'available'
        volume.status = 'retyping'
        with open(self.driver.local_path(volume), 'rb'):
            self.assertRaises(putils.ProcessExecutionError,
                              self.driver.retype, self.context,
                              volume, wide,
                              {'extra_specs': {'lustre:stripe_count':
                                               ('2', '4')}},
                              {'host': 'node@lustre#lfs01/cinder'})
        self.assertLayout(self.driver.local_path(volume), 2, MI, 'disk')


class LustreOstPoolsTestCase(base.LustreFunctionalTestCase):

    def test_ost_pools_are_cinder_pools(self):
        self.driver = self.make_driver(lustre_ost_pools_as_pools=True)
        stats = self.driver.get_volume_stats(refresh=True)
        pools = {p['pool_name']: p for p in stats['pools']}
        self.assertEqual({'lfs01/cinder.flash', 'lfs01/cinder.disk',
                          'lfs02'}, set(pools))
        # lfs01 has 4 OSTs, 2 in each pool: each pool has half the space.
        total = sum(p['total_capacity_gb'] for name, p in pools.items()
                    if name.startswith('lfs01'))
        self.assertAlmostEqual(8, total, delta=0.5)
        self.assertAlmostEqual(pools['lfs01/cinder.flash'][
            'total_capacity_gb'], total / 2, delta=0.1)
        self.assertEqual('flash', pools['lfs01/cinder.flash']['ost_pool'])
        self.assertEqual('2.15.6', stats['lustre_version'])
        volume = self.create_volume(pool='lfs01/cinder.flash')
        out = getstripe(self.driver.local_path(volume), '-p')
        self.assertEqual('flash', out.strip())
        self.assertEqual(base.SHARE1, volume.provider_location)
