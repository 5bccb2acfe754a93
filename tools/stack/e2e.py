#!/usr/bin/env python3
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
"""End-to-end data correctness of the drivers, through the real services.

Tempest checks statuses; this checks what the guest sees.  For each backend
of the running stack (stack.sh) and each of thin (qcow2) and thick (raw)
volumes, it acts as the hypervisor as demo.sh does: an attachment through
the attachments API, a mount of the export the connection info names at a
mount point of its own, qemu-io on the file it names in the format it
names.  A guest checksum is the SHA-256 of what ``qemu-img convert -O raw``
gives, never of the file.  Each check prints a PASS or FAIL line and the
suite goes on; everything it made is deleted in the end, also on failure,
and then no file of it may be left on the shares.

Usage (as root, the stack up):  /usr/bin/python3 tools/stack/e2e.py [PART...]
PART: volume (the above), compute (volumes attached by Nova to a real
guest, e2e_compute.py), encryption (LUKS volumes in that guest,
e2e_encryption.py); by default all, the last two only if the stack runs
Nova.  Results in $STACK_BASE/logs/e2e-results.txt; exit status 1 if a
check failed.
"""

import contextlib
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stackapi  # noqa: E402

BASE = os.environ.get('STACK_BASE', '/var/tmp/cinder-lustre-stack')
HV_BASE = os.path.join(BASE, 'e2e-mnt')      # the hypervisor's mounts
WORK = os.path.join(BASE, 'e2e')             # guest images being hashed
RESULTS = os.path.join(BASE, 'logs', 'e2e-results.txt')
MiB = 1024 ** 2
GiB = 1024 ** 3
TIMEOUT = 600
# The format a thin and a thick volume has (stack.sh sets
# lustre_qcow2_volumes); the disk format of the upload to Glance.
FORMATS = {'thin': 'qcow2', 'thick': 'raw'}
QCOW2_UPLOAD = ('lustre2', 'thick')
BUSY = ('creating', 'backing-up', 'restoring', 'restoring-backup',
        'downloading', 'uploading', 'attaching', 'detaching', 'extending',
        'reverting', 'retyping', 'maintenance')


class CheckFailed(Exception):
    """A step could not go on; the check that failed is recorded."""


def load_openrc():
    with open(os.path.join(BASE, 'openrc')) as openrc:
        for line in openrc:
            words = shlex.split(line, comments=True)
            if words[:1] == ['export'] and '=' in words[1]:
                key, value = words[1].split('=', 1)
                os.environ[key] = os.path.expandvars(value)


def run(*cmd):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode:
        raise CheckFailed('%s: %s' % (' '.join(cmd), proc.stdout.strip()))
    return proc.stdout


class Disk(object):
    """What the guest sees of one attached volume."""

    def __init__(self, path, fmt, info):
        self.path, self.fmt, self.info = path, fmt, info

    def io(self, *commands):
        """qemu-io as the guest; False on an I/O error or a mismatch."""
        args = ['qemu-io', '-f', self.fmt]
        for command in commands:
            args += ['-c', command]
        proc = subprocess.run(args + [self.path], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        out = proc.stdout.lower()
        if proc.returncode or 'fail' in out or 'error' in out:
            print('    qemu-io: %s' % proc.stdout.strip()[-300:])
            return False
        return True

    def write(self, *commands):
        if not self.io(*commands):
            raise CheckFailed('guest write failed: %s' % ', '.join(commands))

    def sha(self):
        os.makedirs(WORK, exist_ok=True)
        raw = os.path.join(WORK, 'guest.raw')
        try:
            run('qemu-img', 'convert', '-f', self.fmt, '-O', 'raw',
                self.path, raw)
            digest = hashlib.sha256()
            with open(raw, 'rb') as image:
                for block in iter(lambda: image.read(4 * MiB), b''):
                    digest.update(block)
            return digest.hexdigest()[:16]
        finally:
            if os.path.exists(raw):
                os.unlink(raw)

    def virtual_size(self):
        return json.loads(run('qemu-img', 'info', '-f', self.fmt,
                              '--force-share', '--output=json',
                              self.path))['virtual-size']

    def probed_format(self):
        """The format qemu finds in the file, not told."""
        return json.loads(run('qemu-img', 'info', '--force-share',
                              '--output=json', self.path))['format']


class Suite(object):

    def __init__(self):
        load_openrc()
        self.api = stackapi.Api()
        self.glance = self.api.endpoints['image']
        self.results = []
        self.stamp = time.strftime('%H%M%S')
        # What the suite made, deleted in reverse order in the end.
        self.made = []
        self.attachments = {}
        self.type_names = {}

    # --- reporting ---------------------------------------------------------

    def check(self, ok, what):
        line = '%s  %s' % ('PASS' if ok else 'FAIL', what)
        print('  ' + line)
        self.results.append(line)
        return ok

    def require(self, ok, what):
        if not self.check(ok, what):
            raise CheckFailed(what)

    def same(self, found, expected, what):
        return self.check(found == expected, '%s (%s, expected %s)'
                          % (what, found, expected))

    # --- Cinder and Glance -------------------------------------------------

    def call(self, method, path, body=None, **kwargs):
        return self.api.call(method, path, body, **kwargs)

    def wait(self, kind, res_id, status='available'):
        stackapi.wait(self.api, kind, res_id, status, TIMEOUT)

    def get(self, kind, res_id):
        return self.call('GET', '/%ss/%s' % (kind, res_id))[kind]

    def action(self, volume_id, name, body=None):
        return self.call('POST', '/volumes/%s/action' % volume_id,
                         {name: body})

    def volume(self, name, type_id, size=1, **source):
        """Create a volume and wait until it is available.

        source: snapshot_id=..., source_volid=... or imageRef=...
        """
        body = dict(name='e2e-%s-%s' % (name, self.stamp), size=size,
                    volume_type=type_id, **source)
        vol = self.call('POST', '/volumes', {'volume': body})['volume']
        self.made.append(('volume', vol['id']))
        self.wait('volume', vol['id'])
        return vol['id']

    def snapshot(self, volume_id, name):
        body = {'volume_id': volume_id,
                'name': 'e2e-%s-%s' % (name, self.stamp)}
        snap = self.call('POST', '/snapshots',
                         {'snapshot': body})['snapshot']
        self.made.append(('snapshot', snap['id']))
        self.wait('snapshot', snap['id'])
        return snap['id']

    def backup(self, volume_id, name, **options):
        body = dict(volume_id=volume_id, name='e2e-%s-%s' % (name, self.stamp),
                    **options)
        backup = self.call('POST', '/backups', {'backup': body})['backup']
        self.made.append(('backup', backup['id']))
        self.wait('backup', backup['id'])
        return backup['id']

    def restore(self, backup_id, volume_id=None, name=None):
        body = {'volume_id': volume_id} if volume_id else {
            'name': 'e2e-%s-%s' % (name, self.stamp)}
        restored = self.call('POST', '/backups/%s/restore' % backup_id,
                             {'restore': body})['restore']
        if not volume_id:
            self.made.append(('volume', restored['volume_id']))
        self.wait('backup', backup_id)
        self.wait('volume', restored['volume_id'])
        return restored['volume_id']

    def delete(self, kind, res_id):
        if kind == 'image':
            self.call('DELETE', '/v2/images/%s' % res_id, url=self.glance,
                      missing_ok=True)
            return
        if kind == 'type':
            self.call('DELETE', '/types/%s' % res_id, missing_ok=True)
            return
        # What the suite left busy (a failed step, an interrupt) cannot be
        # deleted yet.
        for _i in range(TIMEOUT):
            found = self.call('GET', '/%ss/%s' % (kind, res_id),
                              missing_ok=True)
            if not found or found[kind]['status'] not in BUSY:
                break
            time.sleep(1)
        self.call('DELETE', '/%ss/%s' % (kind, res_id), missing_ok=True)
        self.wait(kind, res_id, 'deleted')

    def forget(self, kind, res_id):
        self.delete(kind, res_id)
        self.made.remove((kind, res_id))

    def volume_type(self, backend, provisioning):
        name = 'e2e-%s-%s-%s' % (backend or 'any', provisioning, self.stamp)
        specs = {'provisioning:type': provisioning}
        if backend:
            specs['volume_backend_name'] = backend
        body = {'name': name, 'os-volume-type-access:is_public': True,
                'extra_specs': specs}
        vtype = self.call('POST', '/types',
                          {'volume_type': body})['volume_type']
        self.made.append(('type', vtype['id']))
        self.type_names[vtype['id']] = name
        return vtype['id']

    def host(self, volume_id):
        return self.get('volume', volume_id)['os-vol-host-attr:host']

    # --- the hypervisor ----------------------------------------------------

    @contextlib.contextmanager
    def attached(self, volume_id, fmt=None):
        """Attach as Nova would, mount the export, yield the guest's Disk.

        fmt: the format the connection info must name (a check).
        """
        conn = stackapi.attach(self.api, volume_id)
        self.attachments[conn['attachment_id']] = None
        mount_point = None
        try:
            # The attachments API flattens {driver_volume_type, data}.
            info = conn['connection_info']
            data = info.get('data', info)
            self.require(info['driver_volume_type'] == 'lustre' and
                         data['format'] == (fmt or data['format']),
                         'attached %s: lustre, %s (connection info: %s, %s)'
                         % (data['name'], fmt or 'any format',
                            info['driver_volume_type'], data['format']))
            mount_point = os.path.join(HV_BASE, hashlib.md5(
                data['export'].encode()).hexdigest())
            self.attachments[conn['attachment_id']] = mount_point
            os.makedirs(mount_point, exist_ok=True)
            if not os.path.ismount(mount_point):
                run('mount', '-t', 'lustre',
                    *shlex.split(data.get('options') or ''),
                    data['export'], mount_point)
            disk = Disk(os.path.join(mount_point, data['name']),
                        data['format'], data)
            # A raw volume that starts with a qcow2 header (a container
            # copied as data) would be probed as qcow2.
            probed = disk.probed_format()
            self.require(probed == data['format'],
                         '  and qemu-img finds that format in the file (%s)'
                         % probed)
            yield disk
        finally:
            self.detach(conn['attachment_id'])

    def detach(self, attachment_id):
        mount_point = self.attachments.pop(attachment_id, None)
        if mount_point and os.path.ismount(mount_point):
            subprocess.run(['umount', mount_point])
        self.call('DELETE', '/attachments/%s' % attachment_id,
                  missing_ok=True)

    def holds(self, volume_id, sha, size, what, fmt=None):
        """Check the guest's checksum and size, and a raw file's size."""
        with self.attached(volume_id, fmt) as disk:
            self.same(disk.sha(), sha, '%s: guest checksum' % what)
            self.same(disk.virtual_size(), size * GiB,
                      '%s: virtual size' % what)
            if disk.fmt == 'raw':
                self.same(os.stat(disk.path).st_size, size * GiB,
                          '%s: raw file size' % what)

    # --- the checks --------------------------------------------------------

    def combination(self, backend, provisioning, types, pools):
        """The checks of issue 11 on one backend, for one provisioning.

        The order makes each precondition hold: revert only to the latest
        snapshot, migration and restore into an existing volume only of
        volumes without snapshots, extend last (the snapshots are 1 GiB).
        """
        fmt = FORMATS[provisioning]
        vtype = types[backend, provisioning]
        other = next(b for b, p in types if b not in (backend, None))
        sha = {}

        print('\n== %s, %s volumes (%s) ==' % (backend, provisioning, fmt))
        print('-- create, write, read back')
        vol = self.volume('vol', vtype)
        with self.attached(vol, fmt) as disk:
            self.same(disk.virtual_size(), GiB, 'new volume: virtual size')
            allocated = os.stat(disk.path).st_blocks * 512
            if provisioning == 'thick':
                self.check(allocated >= GiB, 'new volume: file preallocated '
                           '(%d bytes allocated)' % allocated)
            else:
                self.check(allocated < MiB, 'new volume: file small '
                           '(%d bytes allocated)' % allocated)
            disk.write('write -P 0x11 0 1M', 'write -P 0x12 512M 1M',
                       'write -P 0x13 1023M 1M')
            self.check(disk.io('read -P 0x11 0 1M', 'read -P 0x12 512M 1M',
                               'read -P 0x13 1023M 1M', 'read -P 0 1M 511M'),
                       'guest reads back 0x11@0, 0x12@512M, 0x13@1023M '
                       '(last MiB), zeros between')
            sha['v1'] = sha['s1'] = disk.sha()

        print('-- snapshots s1 and s2, a volume from each')
        s1 = self.snapshot(vol, 's1')
        # A volume with snapshots is attached as its active qcow2 overlay.
        with self.attached(vol, 'qcow2') as disk:
            self.same(disk.sha(), sha['v1'], 'after snapshot s1: checksum')
            disk.write('write -P 0x21 0 1M', 'write -P 0x22 256M 1M',
                       'write -P 0x23 1023M 512k')
            sha['s2'] = disk.sha()
        s2 = self.snapshot(vol, 's2')
        with self.attached(vol, 'qcow2') as disk:
            disk.write('write -P 0x31 512M 1M', 'write -P 0x32 768M 1M')
            sha['now'] = disk.sha()
        for name, snap in (('s1', s1), ('s2', s2)):
            from_snap = self.volume('from-' + name, vtype, snapshot_id=snap)
            self.holds(from_snap, sha[name], 1,
                       'volume from %s = its point in time' % name, fmt)
            self.forget('volume', from_snap)

        print('-- clone of the volume with snapshots')
        clone = self.volume('clone', vtype, source_volid=vol)
        self.holds(clone, sha['now'], 1, 'clone = source now', fmt)

        print('-- revert to the latest snapshot: s2, then s1 once s2 is gone')
        self.action(vol, 'revert', {'snapshot_id': s2})
        self.wait('volume', vol)
        self.holds(vol, sha['s2'], 1, 'reverted to s2', 'qcow2')
        self.forget('snapshot', s2)
        self.action(vol, 'revert', {'snapshot_id': s1})
        self.wait('volume', vol)
        self.holds(vol, sha['v1'], 1, 'after deleting s2, reverted to s1',
                   'qcow2')
        with self.attached(vol, 'qcow2') as disk:
            disk.write('write -P 0x41 0 512k', 'write -P 0x42 300M 1M')
            sha['full'] = disk.sha()

        print('-- backups of the volume with snapshot s1, restores into new '
              'volumes')
        full = self.backup(vol, 'full')
        with self.attached(vol, 'qcow2') as disk:
            disk.write('write -P 0x51 100M 1M', 'write -P 0x52 1023M 1M')
            sha['inc'] = disk.sha()
        inc = self.backup(vol, 'inc', incremental=True)
        from_s1 = self.backup(vol, 'from-s1', snapshot_id=s1)
        # A restored volume is raw, whatever it was (the driver's design):
        # the backup holds the guest's bytes.
        restored = self.restore(full, name='restored-full')
        self.holds(restored, sha['full'], 1,
                   'full backup restored to a new volume (default type)',
                   'raw')
        for name, backup in (('inc', inc), ('s1', from_s1)):
            target = self.volume('restore-target-' + name, vtype)
            self.restore(backup, volume_id=target)
            self.holds(target, sha[name], 1,
                       'backup %s restored into a new %s volume'
                       % (name, provisioning), 'raw')
            self.forget('volume', target)

        print('-- upload to Glance, volume from the image')
        disk_format = ('qcow2' if (backend, provisioning) == QCOW2_UPLOAD
                       else 'raw')
        image = self.action(vol, 'os-volume_upload_image', {
            'image_name': 'e2e-%s-%s' % (backend, self.stamp),
            'disk_format': disk_format, 'container_format': 'bare',
            'force': False})['os-volume_upload_image']['image_id']
        self.made.append(('image', image))
        self.wait('volume', vol)
        status = self.wait_image(image)
        from_image = None
        if self.check(status == 'active', 'volume with a snapshot uploaded '
                      'as a %s image (%s)' % (disk_format, status)):
            from_image = self.volume('from-image', types[None, provisioning],
                                     imageRef=image)
            self.holds(from_image, sha['inc'], 1, 'volume from the %s '
                       'image = the uploaded volume' % disk_format, fmt)
        self.forget('image', image)

        print('-- migration and retype (volumes without snapshots)')
        if from_image:
            # Its type names no backend (one that does keeps the scheduler
            # from moving it): to a pool of the backend it is not on.
            here = self.host(from_image).split('@')[1].split('#')[0]
            dest = next(pool for name, pool in sorted(pools.items())
                        if name != here)
            self.action(from_image, 'os-migrate_volume', {
                'host': dest, 'force_host_copy': False})
            status = self.wait_migration(from_image)
            self.same((status, self.host(from_image)), ('success', dest),
                      'volume from the image migrated')
            self.holds(from_image, sha['inc'], 1, 'migrated volume', fmt)
        new_type = self.type_names[types[other, provisioning]]
        self.action(clone, 'os-retype', {'new_type': new_type,
                                         'migration_policy': 'on-demand'})
        found = self.wait_retype(clone, new_type)
        self.same((found['status'], found['volume_type'],
                   found['os-vol-host-attr:host'].split('#')[0]),
                  ('available', new_type, pools[other].split('#')[0]),
                  'clone retyped to %s %s (migration status %s)'
                  % (other, provisioning, found.get('migration_status')))
        self.holds(clone, sha['now'], 1, 'retyped clone', fmt)

        print('-- restores into existing volumes')
        # Only into volumes without snapshots: the driver refuses the rest.
        with self.attached(clone, fmt) as disk:
            disk.write('write -P 0x61 0 1M', 'write -P 0x62 1023M 1M')
        self.restore(full, volume_id=clone)
        self.holds(clone, sha['full'], 1,
                   'full backup restored into the clone (written over)',
                   'raw')
        self.restore(inc, volume_id=restored)
        self.holds(restored, sha['inc'], 1,
                   'incremental backup restored into the full\'s volume',
                   'raw')
        big = self.volume('restore-2g', vtype, size=2)
        self.restore(full, volume_id=big)
        with self.attached(big, 'raw') as disk:
            self.same(disk.virtual_size(), 2 * GiB,
                      'full backup restored into a 2 GiB volume: size')
            self.same(os.stat(disk.path).st_size, 2 * GiB,
                      'full backup restored into a 2 GiB volume: file size')
            self.check(disk.io('read -P 0x41 0 512k', 'read -P 0 1G 1G'),
                       'that volume holds the backup\'s 0x41@0 and its '
                       'second GiB reads zeros')
        self.forget('volume', big)

        print('-- extend the volume with a snapshot to 2 GiB')
        try:
            self.action(vol, 'os-extend', {'new_size': 2})
            self.wait('volume', vol)
        except stackapi.ApiError as exc:
            self.check(False, 'extend with a snapshot: %s' % exc)
            return
        with self.attached(vol, 'qcow2') as disk:
            self.same(disk.virtual_size(), 2 * GiB, 'extended: virtual size')
            self.check(disk.io('read -P 0x41 0 512k', 'read -P 0x42 300M 1M',
                               'read -P 0x52 1023M 1M', 'read -P 0 1G 1G'),
                       'extended: old data (0x41@0, 0x42@300M, 0x52@1023M) '
                       'intact, the new GiB reads zeros')
            self.check(disk.io('write -P 0x71 2047M 1M',
                               'read -P 0x71 2047M 1M'),
                       'extended: the guest writes its new last MiB')

    def wait_image(self, image_id):
        status = None
        for _i in range(TIMEOUT):
            status = self.call('GET', '/v2/images/%s' % image_id,
                               url=self.glance)['status']
            if status in ('active', 'killed', 'deleted'):
                break
            time.sleep(1)
        return status

    def wait_retype(self, volume_id, type_name):
        """The volume once it has the type, or has failed to get it."""
        for _i in range(TIMEOUT):
            found = self.get('volume', volume_id)
            if (found['status'] == 'available' and
                    found['volume_type'] == type_name or
                    found['status'].startswith('error') or
                    found.get('migration_status') == 'error'):
                break
            time.sleep(1)
        return found

    def wait_migration(self, volume_id):
        status = None
        for _i in range(TIMEOUT):
            found = self.get('volume', volume_id)
            status = found.get('migration_status')
            if found['status'] == 'available' and status not in (
                    'starting', 'migrating', 'completing'):
                break
            if found['status'].startswith('error'):
                break
            time.sleep(1)
        return status

    # --- leftovers ---------------------------------------------------------

    @staticmethod
    def share_files():
        """Every file on the volume and backup shares."""
        found = set()
        for top in ('mnt', 'backup-mnt'):
            top = os.path.join(BASE, top)
            for share in os.listdir(top) if os.path.isdir(top) else ():
                path = os.path.join(top, share)
                if not os.path.ismount(path):
                    continue
                for root, _dirs, files in os.walk(path):
                    found.update(os.path.join(root, name) for name in files)
        return found

    def cleanup(self, order=('image', 'backup', 'snapshot', 'volume',
                             'type')):
        print('-- deleting what the suite made: %s' % ', '.join(order))
        for attachment in list(self.attachments):
            self.detach(attachment)
        for kind in order:
            for made in reversed(list(self.made)):
                if made[0] != kind:
                    continue
                try:
                    self.delete(*made)
                    self.made.remove(made)
                except stackapi.ApiError as exc:
                    print('  could not delete %s %s: %s' % (made + (exc,)))
        left = [made for made in self.made if made[0] in order]
        self.check(not left, 'deleted (%s left)' % (
            ', '.join('%s %s' % made for made in left) or 'nothing'))

    def check_leftovers(self, before):
        left = sorted(self.share_files() - before)
        self.check(not left, 'no new file left on the shares (%s)'
                   % (', '.join(left) or 'none'))
        junk = sorted(path for path in self.share_files()
                      if path.endswith(('.info', '.restore')) or
                      'tmp-snap' in os.path.basename(path))
        self.check(not junk, 'no .info, tmp-snap or .restore file on the '
                   'shares (%s)' % (', '.join(junk) or 'none'))
        with open('/proc/mounts') as mounts:
            ours = [line.split()[1] for line in mounts
                    if line.split()[1].startswith(HV_BASE + '/')]
        self.check(not ours, 'no hypervisor mount left (%s)'
                   % (', '.join(ours) or 'none'))

    def run(self):
        before = self.share_files()
        pools = {}
        for pool in self.call('GET', '/scheduler-stats/get_pools')['pools']:
            backend = pool['name'].split('@')[1].split('#')[0]
            pools.setdefault(backend, pool['name'])
        backends = sorted(pools)
        try:
            if len(backends) < 2:
                self.check(False, 'two backends to migrate between (%s)'
                           % backends)
                return
            # Types of each backend, and types of any backend (None).
            types = {(b, p): self.volume_type(b, p)
                     for b in backends + [None] for p in FORMATS}
            for backend in backends:
                for provisioning in FORMATS:
                    try:
                        self.combination(backend, provisioning, types, pools)
                    except (CheckFailed, stackapi.ApiError) as exc:
                        self.check(False, '%s %s: could not go on: %s'
                                   % (backend, provisioning, exc))
                    except Exception:
                        traceback.print_exc()
                        self.check(False, '%s %s: the suite broke'
                                   % (backend, provisioning))
                    # Space on the shares is for one combination at a time.
                    self.cleanup(('image', 'backup', 'snapshot', 'volume'))
        finally:
            print('\n== end ==')
            self.cleanup()
            self.check_leftovers(before)


def main(parts):
    import e2e_compute  # noqa: imports this module
    import e2e_encryption  # noqa: imports this module
    start = time.time()
    results = []
    try:
        for part in parts or ('volume', 'compute', 'encryption'):
            if part == 'volume':
                suite = Suite()
            elif part in ('compute', 'encryption'):
                suite = (e2e_compute.ComputeSuite() if part == 'compute'
                         else e2e_encryption.EncryptionSuite())
                if not e2e_compute.available(suite.api):
                    if parts:
                        suite.check(False, 'compute part: the stack runs '
                                    'no Nova (STACK_NOVA=0)')
                        results += suite.results
                    continue
            else:
                sys.exit('unknown part %s (volume, compute, encryption)'
                         % part)
            print('\n==== e2e part: %s ====' % part)
            try:
                suite.run()
            finally:
                results += suite.results
    finally:
        passed = sum(line.startswith('PASS') for line in results)
        failed = len(results) - passed
        summary = 'e2e: %d passed, %d failed (%d s)' % (
            passed, failed, time.time() - start)
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        with open(RESULTS, 'w') as out:
            out.write('\n'.join(results + ['', summary]) + '\n')
        print('\n' + summary)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
