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
volumes, it walks one volume's journey (Journey) acting as the hypervisor:
an attachment through the attachments API, a mount of the export the
connection info names at a mount point of its own, qemu-io on the file it
names in the format it names.  A guest checksum is the SHA-256 of what
``qemu-img convert -O raw`` gives, never of the file.  Each check prints a
PASS or FAIL line and the suite goes on; everything it made is deleted in
the end, also on failure, and then no file of it may be left on the shares.

Usage (as root, the stack up):  /usr/bin/python3 tools/stack/e2e.py [PART...]
PART: volume (the above), compute (volumes attached by Nova to a real
guest, e2e_compute.py), encryption (LUKS volumes in that guest,
e2e_encryption.py), cluster (two cinder-volume services of one cluster
under load and a kill, e2e_cluster.py); by default all four, the compute
and encryption parts only if the stack runs Nova, the cluster part only if
it runs the cluster.  demo (what demo.sh runs): the volume journey on the
first backend only, each call shown as the operator's openstack or cinder
command, then the compute and encryption parts if the stack runs Nova.
Results in $STACK_BASE/logs/e2e-results.txt (demo: demo-results.txt);
exit status 1 if a check failed.

E2E_JOURNEYS limits the volume part to some backend:provisioning pairs,
e.g. "lustre1:thin lustre2:thick" (what the gate runs: both formats, both
backends, each migrating to the other); by default every pair.
"""

import contextlib
import glob
import hashlib
import json
import os
import pwd
import re
import shlex
import stat
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
RUN = os.path.join(BASE, 'run')
LOGS = os.path.join(BASE, 'logs')
# The services stack.sh runs as its unprivileged user (named in
# run/service-user), and the link under /etc through which they are given
# their configuration (the privsep rules of Cinder's and Nova's filters
# accept only a file under /etc).
UNPRIVILEGED = ('cinder-api', 'cinder-scheduler', 'cinder-volume',
                'cinder-volume-2', 'cinder-backup', 'nova-api',
                'nova-conductor', 'nova-scheduler', 'nova-compute')
ETC_LINK = '/etc/cinder-lustre-stack'
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


def owner_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def backend_of(pool):
    """The backend of a pool or host name: lustre2 of X@lustre2#POOL."""
    return pool.split('@')[1].split('#')[0]


class CheckFailed(Exception):
    """A step could not go on; the check that failed is recorded."""


def service_user():
    """The user stack.sh runs Cinder's and Nova's services as, or None."""
    try:
        with open(os.path.join(RUN, 'service-user')) as f:
            return pwd.getpwnam(f.read().strip())
    except (OSError, KeyError):
        return None


def proc_status(pid):
    """/proc/PID/status as a dict of its fields' words."""
    with open('/proc/%d/status' % pid) as f:
        return {key: value.split() for key, _sep, value in
                (line.partition(':') for line in f)}


def credentials(pid):
    """How to start a process with the user and groups of process PID.

    Keyword arguments of subprocess.Popen, to restart a service as
    stack.sh started it.
    """
    status = proc_status(pid)
    uid, gid = int(status['Uid'][0]), int(status['Gid'][0])
    if uid == os.getuid():
        return {}
    return {'user': uid, 'group': gid,
            'extra_groups': [int(g) for g in status.get('Groups', [])]}


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
    """The stack's REST API, the hypervisor, and what the checks made.

    demo: show, before each call, the operator's command that does the
    same, run a few listings through the CLIs, and walk the journey on the
    first backend only (retype and migration need a second one).
    """

    def __init__(self, demo=False):
        load_openrc()
        self.demo = demo
        self.api = stackapi.Api()
        self.glance = self.api.endpoints['image']
        self.results = []
        self.stamp = time.strftime('%H%M%S')
        # What the suite made, deleted in reverse order in the end.
        self.made = []
        self.attachments = {}
        self.type_names = {}
        # The clusters (CLUSTER@BACKEND) of the volume services: a pool of
        # a clustered backend is named after its cluster.
        self.clusters = {service['cluster'] for service in self.call(
            'GET', '/os-services?binary=cinder-volume')['services']
            if service.get('cluster')}

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

    def say(self, *command):
        """In the demo, the operator's command for the call that follows."""
        if self.demo:
            print('  $ ' + ' '.join(shlex.quote(str(word))
                                    for word in command if word != ''))

    def show(self, *command):
        """In the demo, run a listing through the CLI, as an operator."""
        if self.demo:
            self.say(*command)
            proc = subprocess.run(command, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
            print(proc.stdout.rstrip())

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
        option = {'snapshot_id': '--snapshot', 'source_volid': '--source',
                  'imageRef': '--image'}
        self.say('openstack', 'volume', 'create', '--size', size, '--type',
                 self.type_names.get(type_id, type_id),
                 *[word for key, value in source.items()
                   for word in (option[key], value)], body['name'])
        vol = self.call('POST', '/volumes', {'volume': body})['volume']
        self.made.append(('volume', vol['id']))
        self.wait('volume', vol['id'])
        return vol['id']

    def snapshot(self, volume_id, name):
        body = {'volume_id': volume_id,
                'name': 'e2e-%s-%s' % (name, self.stamp)}
        self.say('openstack', 'volume', 'snapshot', 'create', '--volume',
                 volume_id, body['name'])
        snap = self.call('POST', '/snapshots',
                         {'snapshot': body})['snapshot']
        self.made.append(('snapshot', snap['id']))
        self.wait('snapshot', snap['id'])
        return snap['id']

    def backup(self, volume_id, name, **options):
        body = dict(volume_id=volume_id, name='e2e-%s-%s' % (name, self.stamp),
                    **options)
        self.say('openstack', 'volume', 'backup', 'create', '--name',
                 body['name'], '--incremental' if 'incremental' in options
                 else '', *(('--snapshot', options['snapshot_id'])
                            if 'snapshot_id' in options else ()), volume_id)
        backup = self.call('POST', '/backups', {'backup': body})['backup']
        self.made.append(('backup', backup['id']))
        self.wait('backup', backup['id'])
        return backup['id']

    def restore(self, backup_id, volume_id=None, name=None):
        body = {'volume_id': volume_id} if volume_id else {
            'name': 'e2e-%s-%s' % (name, self.stamp)}
        self.say('cinder', 'backup-restore', *(
            ('--volume', volume_id) if volume_id else
            ('--name', body['name'])), backup_id)
        restored = self.call('POST', '/backups/%s/restore' % backup_id,
                             {'restore': body})['restore']
        if not volume_id:
            self.made.append(('volume', restored['volume_id']))
        self.wait('backup', backup_id)
        self.wait('volume', restored['volume_id'])
        return restored['volume_id']

    def delete(self, kind, res_id):
        noun = {'image': ['image'], 'volume': ['volume'],
                'type': ['volume', 'type']}.get(kind, ['volume', kind])
        self.say('openstack', *noun, 'delete', res_id)
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

    def volume_type(self, backend, provisioning, label=''):
        name = 'e2e-%s-%s%s-%s' % (backend or 'any', provisioning, label,
                                   self.stamp)
        specs = {'provisioning:type': provisioning}
        if backend:
            specs['volume_backend_name'] = backend
        body = {'name': name, 'os-volume-type-access:is_public': True,
                'extra_specs': specs}
        self.say('openstack', 'volume', 'type', 'create', *[
            word for key, value in sorted(specs.items())
            for word in ('--property', '%s=%s' % (key, value))], name)
        vtype = self.call('POST', '/types',
                          {'volume_type': body})['volume_type']
        self.made.append(('type', vtype['id']))
        self.type_names[vtype['id']] = name
        return vtype['id']

    def host(self, volume_id):
        return self.get('volume', volume_id)['os-vol-host-attr:host']

    def placement(self, volume_id):
        """Where a volume is, named as get_pools names its pool.

        In a cluster that is the volume's cluster_name (shown from volume
        API 3.61); its host is then the member that last served it.
        """
        vol = self.call('GET', '/volumes/%s' % volume_id,
                        version='volume 3.61')['volume']
        return vol.get('cluster_name') or vol['os-vol-host-attr:host']

    def revert(self, volume_id, snapshot_id):
        self.say('cinder', '--os-volume-api-version', '3.40',
                 'revert-to-snapshot', snapshot_id)
        self.action(volume_id, 'revert', {'snapshot_id': snapshot_id})
        self.wait('volume', volume_id)

    def extend(self, volume_id, size):
        self.say('openstack', 'volume', 'set', '--size', size, volume_id)
        self.action(volume_id, 'os-extend', {'new_size': size})
        self.wait('volume', volume_id)

    def upload(self, volume_id, name, disk_format):
        """Upload to Glance; the image's final status."""
        name = 'e2e-%s-%s' % (name, self.stamp)
        self.say('openstack', 'image', 'create', '--volume', volume_id,
                 '--disk-format', disk_format, '--container-format', 'bare',
                 name)
        image = self.action(volume_id, 'os-volume_upload_image', {
            'image_name': name, 'disk_format': disk_format,
            'container_format': 'bare',
            'force': False})['os-volume_upload_image']['image_id']
        self.made.append(('image', image))
        self.wait('volume', volume_id)
        return image, self.wait_image(image)

    def migrate(self, volume_id, pool):
        """Migrate to a pool as get_pools names it; the final status.

        The API finds the pool of a clustered backend only as 'cluster'
        (volume API 3.16), that of a single service only as 'host'.
        """
        if pool.split('#')[0] in self.clusters:
            self.say('openstack', '--os-volume-api-version', '3.16',
                     'volume', 'migrate', '--cluster', pool, volume_id)
            where = {'cluster': pool}
        else:
            self.say('openstack', 'volume', 'migrate', '--host', pool,
                     volume_id)
            where = {'host': pool}
        self.action(volume_id, 'os-migrate_volume',
                    dict(where, force_host_copy=False))
        return self.wait_migration(volume_id)

    def retype(self, volume_id, type_name):
        """Retype, migrating if need be; the volume in the end."""
        self.say('openstack', 'volume', 'set', '--type', type_name,
                 '--retype-policy', 'on-demand', volume_id)
        self.action(volume_id, 'os-retype', {
            'new_type': type_name, 'migration_policy': 'on-demand'})
        return self.wait_retype(volume_id, type_name)

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
            if self.demo:
                print('  hypervisor: %s %s %s (%s)' % (
                    info['driver_volume_type'], data['export'], data['name'],
                    data['format']))
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

    # --- privileges ----------------------------------------------------------

    def check_service_users(self):
        """Cinder's (and Nova's) services run as the unprivileged user."""
        user = service_user()
        self.require(user is not None and user.pw_uid != 0,
                     'the stack names an unprivileged service user (%s)'
                     % (user and user.pw_name))
        found = {}
        for name in UNPRIVILEGED:
            try:
                with open(os.path.join(RUN, name + '.pid')) as f:
                    pid = int(f.read())
                status = proc_status(pid)
            except (OSError, ValueError):
                continue
            found[name] = {int(uid) for uid in status['Uid']} | {
                int(gid) for gid in status['Gid']}
        self.check('cinder-volume' in found and 'cinder-api' in found,
                   'the Cinder services\' PIDs are in %s (%s)'
                   % (RUN, ', '.join(sorted(found)) or 'none'))
        wrong = sorted(name for name, ids in found.items()
                       if ids != {user.pw_uid, user.pw_gid})
        self.check(not wrong, 'every one runs with the uid and gid of %s '
                   '(real, effective, saved, filesystem), none as root '
                   '(other: %s)' % (user.pw_name, ', '.join(wrong) or 'none'))

    def check_privsep(self):
        """privsep daemons: root, started through sudo and rootwrap."""
        daemons = []
        for pid in filter(str.isdigit, os.listdir('/proc')):
            try:
                with open('/proc/%s/cmdline' % pid, 'rb') as f:
                    argv = [a.decode(errors='replace')
                            for a in f.read().split(b'\0') if a]
                status = proc_status(int(pid))
            except OSError:
                continue
            if (not any(a.endswith('/privsep-helper') for a in argv[:2]) or
                    not any(BASE in a for a in argv)):
                continue
            confs = [argv[i + 1] for i, a in enumerate(argv[:-1])
                     if a == '--config-file']
            context = argv[argv.index('--privsep_context') + 1] if (
                '--privsep_context' in argv) else '?'
            daemons.append((pid, int(status['Uid'][1]), confs, context))
        self.check(bool(daemons), 'privsep daemons of the stack running: %s'
                   % (', '.join('%s (%s)' % (d[0], d[3]) for d in daemons)
                      or 'none'))
        self.check(daemons and all(uid == 0 for _p, uid, _c, _x in daemons),
                   'every privsep daemon runs as root')
        self.check(daemons and all(
            confs and all(c.startswith(ETC_LINK + '/') for c in confs)
            for _p, _u, confs, _x in daemons),
            'every one was given its configuration under %s, which only '
            'the privsep rules of the installed filters accept' % ETC_LINK)
        # The services log each helper's command line as they start it.
        started, other = 0, []
        pattern = re.compile(r"Running privsep helper: \[([^\]]*)\]")
        for log in glob.glob(os.path.join(LOGS, '*.log')):
            with open(log, errors='replace') as f:
                for line in f:
                    match = pattern.search(line)
                    if not match:
                        continue
                    words = [w.strip(" '") for w in match.group(1).split(',')]
                    if (words[:1] == ['sudo'] and
                            re.match(r'(cinder|nova)-rootwrap$', words[1]) and
                            words[2].startswith(ETC_LINK + '/')):
                        started += 1
                    else:
                        other.append(' '.join(words[:4]))
        self.check(started and not other,
                   'the services started %d privsep helpers, each as "sudo '
                   'cinder-rootwrap|nova-rootwrap %s/.../rootwrap.conf '
                   'privsep-helper ..." (other: %s)'
                   % (started, ETC_LINK, ', '.join(other[:3]) or 'none'))

    def check_rootwrap_denials(self):
        """No command the services ran as root was refused by rootwrap."""
        denied = []
        for log in glob.glob(os.path.join(LOGS, '*.log')):
            with open(log, errors='replace') as f:
                denied += ['%s: %s' % (os.path.basename(log), line.strip())
                           for line in f
                           if 'Unauthorized command' in line or
                           'No filter matched' in line]
        self.check(not denied, 'no rootwrap denial in the services\' logs '
                   '(%d: %s)' % (len(denied), '; '.join(denied[:2])[:400]))

    def check_share_modes(self):
        """No volume or backup file readable by other users."""
        user = service_user()
        files = self.share_files()
        open_files = sorted(path for path in files
                            if os.lstat(path).st_mode & 0o007)
        self.check(files and not open_files,
                   'no file of the %d on the shares is open to other users '
                   '(%s)' % (len(files), ', '.join(open_files[:5]) or 'none'))
        tops = [os.path.join(BASE, top, share)
                for top in ('mnt', 'backup-mnt')
                for share in os.listdir(os.path.join(BASE, top))
                if os.path.ismount(os.path.join(BASE, top, share))]
        wrong = ['%s %s %o' % (top, owner_name(os.stat(top).st_uid),
                               stat.S_IMODE(os.stat(top).st_mode))
                 for top in tops
                 if (os.stat(top).st_mode & 0o007 or user is None or
                     os.stat(top).st_uid != user.pw_uid)]
        self.check(tops and not wrong, 'the %d mounted shares are the service '
                   "user's, closed to other users (other: %s)"
                   % (len(tops), ', '.join(wrong) or 'none'))

    def journeys(self, backends):
        """The (backend, provisioning) pairs to walk, E2E_JOURNEYS's."""
        every = [(b, p) for b in (backends[:1] if self.demo else backends)
                 for p in FORMATS]
        wanted = os.environ.get('E2E_JOURNEYS', '').split()
        if not wanted:
            return every
        chosen = [pair for pair in every if ':'.join(pair) in wanted]
        self.check(len(chosen) == len(wanted), 'E2E_JOURNEYS %s: walking %s'
                   % (' '.join(wanted),
                      ', '.join(':'.join(pair) for pair in chosen)))
        return chosen

    def run(self):
        before = self.share_files()
        print('\n== privileges: who runs what ==')
        self.check_service_users()
        pools = {}
        for pool in self.call('GET', '/scheduler-stats/get_pools')['pools']:
            pools.setdefault(backend_of(pool['name']), pool['name'])
        backends = sorted(pools)
        try:
            if len(backends) < 2 and not self.demo:
                self.check(False, 'two backends to migrate between (%s)'
                           % backends)
                return
            # Types of each backend, and types of any backend (None).
            types = {(b, p): self.volume_type(b, p)
                     for b in backends + [None] for p in FORMATS}
            self.show('openstack', 'volume', 'type', 'list', '--long')
            for backend, provisioning in self.journeys(backends):
                try:
                    Journey(self, backend, provisioning, types,
                            pools).run()
                except (CheckFailed, stackapi.ApiError) as exc:
                    self.check(False, '%s %s: could not go on: %s'
                               % (backend, provisioning, exc))
                except Exception:
                    traceback.print_exc()
                    self.check(False, '%s %s: the suite broke'
                               % (backend, provisioning))
                # Space on the shares is for one combination at a time.
                self.check_share_modes()
                self.cleanup(('image', 'backup', 'snapshot', 'volume'))
            print('\n== privileges: root helpers ==')
            self.check_privsep()
            self.check_rootwrap_denials()
        finally:
            print('\n== end ==')
            self.cleanup()
            self.check_leftovers(before)


class Journey(object):
    """One volume's life on one backend, thin or thick, step by step.

    The order makes each precondition hold: revert only to the latest
    snapshot, migration and restore into an existing volume only of
    volumes without snapshots, extend last (the snapshots are 1 GiB).
    Each step leaves what the next ones use in attributes.
    """

    def __init__(self, suite, backend, provisioning, types, pools):
        self.suite = suite
        self.backend, self.provisioning = backend, provisioning
        self.fmt = FORMATS[provisioning]
        self.types, self.pools = types, pools
        self.vtype = types[backend, provisioning]
        # The backend retype and migration move to; None: only one.
        self.other = next((b for b, _p in types
                           if b not in (backend, None)), None)
        self.sha = {}
        self.vol = self.s1 = self.clone = self.from_image = None
        self.s2 = self.full = self.inc = self.restored = None

    def steps(self):
        return [
            ('create, write, read back', self.create),
            ('snapshots s1 and s2, a volume from each', self.snapshots),
            ('clone of the volume with snapshots', self.clone_volume),
            ('revert to the latest snapshot: s2, then s1 once s2 is gone',
             self.revert),
            ('backups of the volume with snapshot s1, restores into new '
             'volumes', self.backups),
            ('upload to Glance, volume from the image', self.image),
            ('migration and retype (volumes without snapshots)',
             self.migrate_retype),
            ('restores into existing volumes', self.restore_into_existing),
            ('extend the volume with a snapshot to 2 GiB', self.extend),
        ]

    def run(self):
        print('\n== %s, %s volumes (%s) ==' % (
            self.backend, self.provisioning, self.fmt))
        for title, step in self.steps():
            print('-- ' + title)
            step()

    def create(self):
        s = self.suite
        self.vol = s.volume('vol', self.vtype)
        with s.attached(self.vol, self.fmt) as disk:
            s.same(disk.virtual_size(), GiB, 'new volume: virtual size')
            allocated = os.stat(disk.path).st_blocks * 512
            if self.provisioning == 'thick':
                s.check(allocated >= GiB, 'new volume: file preallocated '
                        '(%d bytes allocated)' % allocated)
            else:
                s.check(allocated < MiB, 'new volume: file small '
                        '(%d bytes allocated)' % allocated)
            disk.write('write -P 0x11 0 1M', 'write -P 0x12 512M 1M',
                       'write -P 0x13 1023M 1M')
            s.check(disk.io('read -P 0x11 0 1M', 'read -P 0x12 512M 1M',
                            'read -P 0x13 1023M 1M', 'read -P 0 1M 511M'),
                    'guest reads back 0x11@0, 0x12@512M, 0x13@1023M '
                    '(last MiB), zeros between')
            self.sha['v1'] = self.sha['s1'] = disk.sha()
            info = os.stat(disk.path)
            user = service_user()
            s.same((owner_name(info.st_uid),
                    '%o' % stat.S_IMODE(info.st_mode)),
                   (user and user.pw_name, '660'),
                   'new volume: the file is the service user\'s, mode 0660 '
                   '(owner, mode)')
        s.show('openstack', 'volume', 'list', '--long')

    def snapshots(self):
        s, sha = self.suite, self.sha
        self.s1 = s.snapshot(self.vol, 's1')
        # A volume with snapshots is attached as its active qcow2 overlay.
        with s.attached(self.vol, 'qcow2') as disk:
            s.same(disk.sha(), sha['v1'], 'after snapshot s1: checksum')
            disk.write('write -P 0x21 0 1M', 'write -P 0x22 256M 1M',
                       'write -P 0x23 1023M 512k')
            sha['s2'] = disk.sha()
        self.s2 = s.snapshot(self.vol, 's2')
        with s.attached(self.vol, 'qcow2') as disk:
            disk.write('write -P 0x31 512M 1M', 'write -P 0x32 768M 1M')
            sha['now'] = disk.sha()
        for name, snap in (('s1', self.s1), ('s2', self.s2)):
            from_snap = s.volume('from-' + name, self.vtype, snapshot_id=snap)
            s.holds(from_snap, sha[name], 1,
                    'volume from %s = its point in time' % name, self.fmt)
            s.forget('volume', from_snap)

    def clone_volume(self):
        s = self.suite
        self.clone = s.volume('clone', self.vtype, source_volid=self.vol)
        s.holds(self.clone, self.sha['now'], 1, 'clone = source now',
                self.fmt)

    def revert(self):
        s, sha = self.suite, self.sha
        s.revert(self.vol, self.s2)
        s.holds(self.vol, sha['s2'], 1, 'reverted to s2', 'qcow2')
        s.forget('snapshot', self.s2)
        s.revert(self.vol, self.s1)
        s.holds(self.vol, sha['v1'], 1, 'after deleting s2, reverted to s1',
                'qcow2')
        with s.attached(self.vol, 'qcow2') as disk:
            disk.write('write -P 0x41 0 512k', 'write -P 0x42 300M 1M')
            sha['full'] = disk.sha()

    def backups(self):
        s, sha = self.suite, self.sha
        self.full = s.backup(self.vol, 'full')
        with s.attached(self.vol, 'qcow2') as disk:
            disk.write('write -P 0x51 100M 1M', 'write -P 0x52 1023M 1M')
            sha['inc'] = disk.sha()
        self.inc = s.backup(self.vol, 'inc', incremental=True)
        from_s1 = s.backup(self.vol, 'from-s1', snapshot_id=self.s1)
        s.show('openstack', 'volume', 'backup', 'list')
        # A restored volume is raw, whatever it was (the driver's design):
        # the backup holds the guest's bytes.
        self.restored = s.restore(self.full, name='restored-full')
        s.holds(self.restored, sha['full'], 1,
                'full backup restored to a new volume (default type)', 'raw')
        for name, backup in (('inc', self.inc), ('s1', from_s1)):
            target = s.volume('restore-target-' + name, self.vtype)
            s.restore(backup, volume_id=target)
            s.holds(target, sha[name], 1,
                    'backup %s restored into a new %s volume'
                    % (name, self.provisioning), 'raw')
            s.forget('volume', target)

    def image(self):
        s = self.suite
        disk_format = ('qcow2' if (self.backend, self.provisioning) ==
                       QCOW2_UPLOAD else 'raw')
        image, status = s.upload(self.vol, self.backend, disk_format)
        if s.check(status == 'active', 'volume with a snapshot uploaded '
                   'as a %s image (%s)' % (disk_format, status)):
            self.from_image = s.volume(
                'from-image', self.types[None, self.provisioning],
                imageRef=image)
            s.holds(self.from_image, self.sha['inc'], 1, 'volume from the '
                    '%s image = the uploaded volume' % disk_format, self.fmt)
        s.forget('image', image)

    def migrate_retype(self):
        s = self.suite
        if self.other is None:
            print('  SKIPPED: only one backend (set LUSTRE_SHARE2)')
            return
        if self.from_image:
            # Its type names no backend (one that does keeps the scheduler
            # from moving it): to a pool of the backend it is not on.
            here = backend_of(s.host(self.from_image))
            dest = next(pool for name, pool in sorted(self.pools.items())
                        if name != here)
            status = s.migrate(self.from_image, dest)
            found = s.placement(self.from_image)
            if dest.split('#')[0] in s.clusters:
                # Cinder keeps the cluster and backend of a migration by
                # cluster, not the pool: its scheduler picks that.
                found, dest = found.split('#')[0], dest.split('#')[0]
            s.same((status, found), ('success', dest),
                   'volume from the image migrated')
            s.holds(self.from_image, self.sha['inc'], 1, 'migrated volume',
                    self.fmt)
        new_type = s.type_names[self.types[self.other, self.provisioning]]
        found = s.retype(self.clone, new_type)
        s.same((found['status'], found['volume_type'],
                s.placement(self.clone).split('#')[0]),
               ('available', new_type, self.pools[self.other].split('#')[0]),
               'clone retyped to %s %s (migration status %s)'
               % (self.other, self.provisioning,
                  found.get('migration_status')))
        s.holds(self.clone, self.sha['now'], 1, 'retyped clone', self.fmt)

    def restore_into_existing(self):
        # Only into volumes without snapshots: the driver refuses the rest.
        s, sha = self.suite, self.sha
        with s.attached(self.clone, self.fmt) as disk:
            disk.write('write -P 0x61 0 1M', 'write -P 0x62 1023M 1M')
        s.restore(self.full, volume_id=self.clone)
        s.holds(self.clone, sha['full'], 1,
                'full backup restored into the clone (written over)', 'raw')
        s.restore(self.inc, volume_id=self.restored)
        s.holds(self.restored, sha['inc'], 1,
                'incremental backup restored into the full\'s volume', 'raw')
        big = s.volume('restore-2g', self.vtype, size=2)
        s.restore(self.full, volume_id=big)
        with s.attached(big, 'raw') as disk:
            s.same(disk.virtual_size(), 2 * GiB,
                   'full backup restored into a 2 GiB volume: size')
            s.same(os.stat(disk.path).st_size, 2 * GiB,
                   'full backup restored into a 2 GiB volume: file size')
            s.check(disk.io('read -P 0x41 0 512k', 'read -P 0 1G 1G'),
                    'that volume holds the backup\'s 0x41@0 and its '
                    'second GiB reads zeros')
        s.forget('volume', big)

    def extend(self):
        s = self.suite
        try:
            s.extend(self.vol, 2)
        except stackapi.ApiError as exc:
            s.check(False, 'extend with a snapshot: %s' % exc)
            return
        with s.attached(self.vol, 'qcow2') as disk:
            s.same(disk.virtual_size(), 2 * GiB, 'extended: virtual size')
            s.check(disk.io('read -P 0x41 0 512k', 'read -P 0x42 300M 1M',
                            'read -P 0x52 1023M 1M', 'read -P 0 1G 1G'),
                    'extended: old data (0x41@0, 0x42@300M, 0x52@1023M) '
                    'intact, the new GiB reads zeros')
            s.check(disk.io('write -P 0x71 2047M 1M',
                            'read -P 0x71 2047M 1M'),
                    'extended: the guest writes its new last MiB')


DEFAULT_PARTS = ('volume', 'compute', 'encryption', 'cluster')


def main(parts):
    import e2e_cluster  # noqa: imports this module
    import e2e_compute  # noqa: imports this module
    import e2e_encryption  # noqa: imports this module
    # part: (suite, whether the stack has what it needs, what it lacks)
    optional = {
        'compute': (e2e_compute.ComputeSuite, e2e_compute.available,
                    'no Nova (STACK_NOVA=0)'),
        'encryption': (e2e_encryption.EncryptionSuite, e2e_compute.available,
                       'no Nova (STACK_NOVA=0)'),
        'cluster': (e2e_cluster.ClusterSuite, e2e_cluster.clustered,
                    'one cinder-volume service (STACK_CLUSTER=0)')}
    start = time.time()
    results = []
    name, results_file = 'e2e', RESULTS
    demo = parts == ['demo']
    if demo:
        name = 'demo'
        results_file = os.path.join(BASE, 'logs', 'demo-results.txt')
        parts = ['volume', 'compute', 'encryption']
    try:
        for part in parts or DEFAULT_PARTS:
            if part == 'volume':
                suite = Suite(demo=demo)
            elif part in optional:
                make, available, lacking = optional[part]
                suite = make()
                suite.demo = demo
                if not available(suite.api):
                    if demo:
                        print('\n(the %s part needs what the stack does not '
                              'run: %s)' % (part, lacking))
                    elif parts:
                        suite.check(False, '%s part: the stack runs %s'
                                    % (part, lacking))
                        results += suite.results
                    continue
            else:
                sys.exit('unknown part %s (%s, demo)'
                         % (part, ', '.join(DEFAULT_PARTS)))
            print('\n==== e2e part: %s ====' % part)
            try:
                suite.run()
            finally:
                results += suite.results
    finally:
        passed = sum(line.startswith('PASS') for line in results)
        failed = len(results) - passed
        summary = '%s: %d passed, %d failed (%d s)' % (
            name, passed, failed, time.time() - start)
        os.makedirs(os.path.dirname(results_file), exist_ok=True)
        with open(results_file, 'w') as out:
            out.write('\n'.join(results + ['', summary]) + '\n')
        print('\n' + summary)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
