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
"""The cluster part of e2e.py: two cinder-volume services on one backend.

stack.sh (unless STACK_CLUSTER=0) runs cinder-volume twice, as the
hosts lustre-stack and lustre-stack-2 of the cluster lustre-cluster, each
with its own state directory and file locks, the same backends (two nodes
configured alike, sharing the filesets, the database and etcd; on one
machine they also share the mounts).  Through the API:

- the cluster has both members, up;
- load: N concurrent creates, then a concurrent clone of each; both
  members serve, and clones hold their source's pattern.  The same again
  with one member stopped: the cluster's throughput against a single
  service's, in the same run;
- a member killed (SIGKILL) in the middle of concurrent clones: the other
  keeps serving; once Cinder sees the member down, the work-cleanup API
  (volume API 3.24) has the survivor clean up after it; every volume ends
  available or error and is deleted; the killed member starts again and
  rejoins;
- unmanage and manage back, once by the host the volume had (as
  Tempest's test_unmanage_manage_volume does) and once by its cluster
  (volume API 3.16): the volume comes back on the same cluster pool, with
  its bytes;
- a retype in place (to another type of the same backend, migration
  policy never): same cluster pool, no migration, the same bytes;
- in the end no file is left on the shares and no lock in etcd.

E2E_CLUSTER_N sets N (default 100).
"""

import base64
import concurrent.futures
import json
import os
import signal
import subprocess
import time
import urllib.request

import e2e

CLUSTER_API = 'volume 3.24'      # clusters (3.7), workers cleanup (3.24)
MEMBERS = {'lustre-stack': 'cinder-volume',
           'lustre-stack-2': 'cinder-volume-2'}
ETCD = 'http://127.0.0.1:2379'
RUN = os.path.join(e2e.BASE, 'run')
LOGS = os.path.join(e2e.BASE, 'logs')
N = int(os.environ.get('E2E_CLUSTER_N', '100'))
PATTERN = 'write -P 0x5c 0 4M'
CHECK = 'read -P 0x5c 0 4M'


def clustered(api):
    """Whether the stack runs the cluster layout."""
    services = api.call('GET', '/os-services?binary=cinder-volume',
                        version=CLUSTER_API)['services']
    return any(service.get('cluster') for service in services)


def etcd_lock_keys():
    """The keys tooz's locks hold in etcd (its v3 JSON gateway)."""
    body = json.dumps({'key': 'AA==', 'range_end': 'AA==',
                       'keys_only': True}).encode()   # every key
    req = urllib.request.Request(ETCD + '/v3/kv/range', data=body,
                                 headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=10) as resp:
        found = json.load(resp).get('kvs', [])
    keys = [base64.b64decode(kv['key']).decode(errors='replace')
            for kv in found]
    return [key for key in keys if 'lock' in key.lower()]


class Member(object):
    """One cinder-volume service of the stack, as stack.sh spawned it."""

    def __init__(self, host):
        self.host, self.name = host, MEMBERS[host]
        self.pid_file = os.path.join(RUN, self.name + '.pid')
        self.cmdline = self.environ = self.cwd = None
        self.as_user = {}

    def pid(self):
        with open(self.pid_file) as pid:
            return int(pid.read())

    def stop(self, sig):
        """Signal the service's process group and wait until it is gone."""
        pid = self.pid()
        with open('/proc/%d/cmdline' % pid, 'rb') as cmd:
            self.cmdline = cmd.read().rstrip(b'\0').split(b'\0')
        self.cwd = os.readlink('/proc/%d/cwd' % pid)
        # Its user and groups: stack.sh runs it unprivileged.
        self.as_user = e2e.credentials(pid)
        with open('/proc/%d/environ' % pid, 'rb') as env:
            self.environ = dict(item.split(b'=', 1) for item in
                                env.read().split(b'\0') if b'=' in item)
        os.killpg(pid, sig)
        deadline = time.time() + 60
        while self.group_alive(pid):
            if time.time() > deadline:
                os.killpg(pid, signal.SIGKILL)
                deadline += 60
            time.sleep(0.1)

    @staticmethod
    def group_alive(pgid):
        """Whether a process of the group runs (PID 1 reaps no zombie)."""
        for entry in os.listdir('/proc'):
            try:
                with open('/proc/%s/stat' % entry) as stat:
                    fields = stat.read().rsplit(')', 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != 'Z':
                return True
        return False

    def start(self):
        """Start it again as stack.sh did (its own session, its log)."""
        with open(os.path.join(LOGS, self.name + '.log'), 'ab') as log:
            proc = subprocess.Popen(self.cmdline, env=self.environ,
                                    cwd=self.cwd,
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT,
                                    start_new_session=True, **self.as_user)
        with open(self.pid_file, 'w') as pid:
            pid.write('%d\n' % proc.pid)


class ClusterSuite(e2e.Suite):

    def __init__(self):
        super(ClusterSuite, self).__init__()
        self.members = {host: Member(host) for host in MEMBERS}
        self.figures = []

    # --- the cluster as Cinder sees it -----------------------------------

    def services(self):
        """{host: (state, cluster, last heartbeat)} of cinder-volume."""
        found = {}
        for service in self.call('GET', '/os-services?binary=cinder-volume',
                                 version=CLUSTER_API)['services']:
            host = service['host'].split('@')[0]
            state, _c, beat = found.get(host, ('up', None, '~'))
            if service['state'] != 'up':
                state = 'down'
            found[host] = (state, service.get('cluster'),
                           min(beat, service['updated_at'] or ''))
        return found

    def wait_members(self, wanted, since=None, timeout=180):
        """Until each member's state is as wanted ({host: 'up'|'down'}).

        since: a member that must be up has reported after this time (an
        ISO UTC string): a stopped service looks up for a minute.
        """
        deadline = time.time() + timeout
        while time.time() < deadline:
            services = self.services()
            if all(host in services and services[host][0] == state and
                   (state == 'down' or services[host][2] > (since or ''))
                   for host, state in wanted.items()):
                return True
            time.sleep(2)
        return False

    @staticmethod
    def now():
        return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())

    # --- many at once ----------------------------------------------------

    def post_volumes(self, bodies):
        """POST each volume at once; their ids, in order."""
        def post(body):
            vol = self.call('POST', '/volumes', {'volume': body})['volume']
            return vol['id']
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            ids = list(pool.map(post, bodies))
        self.made.extend(('volume', vol_id) for vol_id in ids)
        return ids

    def settle(self, ids, timeout=e2e.TIMEOUT):
        """Wait until no volume is busy; {id: volume} as they ended."""
        deadline = time.time() + timeout
        pending, ended = set(ids), {}
        while pending and time.time() < deadline:
            for vol in self.call('GET', '/volumes/detail?all_tenants=1',
                                 version=CLUSTER_API)['volumes']:
                if vol['id'] in pending and vol['status'] not in e2e.BUSY:
                    ended[vol['id']] = vol
                    pending.discard(vol['id'])
            if pending:
                time.sleep(1)
        for vol_id in pending:
            ended[vol_id] = self.get('volume', vol_id)
        return ended

    def delete_all(self, ids):
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda vol_id: self.forget('volume', vol_id), ids))

    def load(self, label, vtype):
        """N creates, then a clone of each: seconds, hosts, the clones.

        Two of the new volumes get the pattern before they are cloned (a
        clone of one volume holds its lock: clones of one source would
        measure that lock, not the services).
        """
        served, seconds, sources = {}, [], []
        for step in ('creates', 'clones'):
            bodies = [dict(name='e2e-cl-%s-%d-%s' % (step, i, self.stamp),
                           size=1, volume_type=vtype)
                      for i in range(N)]
            for body, source in zip(bodies, sources):
                body['source_volid'] = source
            start = time.time()
            ids = self.post_volumes(bodies)
            ended = self.settle(ids)
            seconds.append(time.time() - start)
            bad = sorted(v['id'] for v in ended.values()
                         if v['status'] != 'available')
            self.require(not bad, '%s: %d %s available, none failed (%s)'
                         % (label, N, step, ', '.join(bad) or 'none'))
            for vol in ended.values():
                host = vol['os-vol-host-attr:host'].split('@')[0]
                served[host] = served.get(host, 0) + 1
            if step == 'creates':
                for vol_id in (ids[0], ids[-1]):
                    with self.attached(vol_id) as disk:
                        disk.write(PATTERN)
                sources = ids
        return seconds, served, ids

    # --- manage --------------------------------------------------------------

    def share_of(self, pool):
        """The share of a pool (CLUSTER@BACKEND#FILESET), as configured."""
        backend, fileset = pool.split('@')[1].split('#')
        with open(os.path.join(e2e.BASE, 'etc', 'cinder',
                               backend + '_shares')) as shares:
            for line in shares:
                share = (line.split() or [''])[0]
                if share.partition(':/')[2] == fileset:
                    return share
        raise e2e.CheckFailed('no share of pool %s in %s_shares'
                              % (pool, backend))

    def manage(self, vol_id, where, what):
        """Unmanage a volume, manage its file back by where; the new id."""
        old = self.call('GET', '/volumes/%s' % vol_id,
                        version='volume 3.61')['volume']
        share = self.share_of(old['cluster_name'])
        self.action(vol_id, 'os-unmanage')
        self.wait('volume', vol_id, 'deleted')
        self.made.remove(('volume', vol_id))
        body = dict(where, name='e2e-cl-managed-%s' % self.stamp,
                    volume_type=old['volume_type'],
                    ref={'source-name': '%s/volume-%s' % (share, vol_id)})
        new = self.call('POST', '/manageable_volumes',
                        {'volume': body})['volume']
        self.made.append(('volume', new['id']))
        self.wait('volume', new['id'])
        found = self.call('GET', '/volumes/%s' % new['id'],
                          version='volume 3.61')['volume']
        host = found['os-vol-host-attr:host']
        self.same((found['size'], found['volume_type'],
                   found['cluster_name'], host.split('@', 1)[1],
                   host.split('@')[0] in MEMBERS),
                  (old['size'], old['volume_type'], old['cluster_name'],
                   old['os-vol-host-attr:host'].split('@', 1)[1], True),
                  'managed back by %s: size, type, cluster pool, backend '
                  'pool, host a member (host was %s, is %s)'
                  % (what, old['os-vol-host-attr:host'], host))
        with self.attached(new['id']) as disk:
            self.check(disk.io(CHECK), 'volume managed back by %s holds '
                       'its bytes' % what)
        return new['id']

    def check_manage(self, vtype):
        print('-- manage: unmanage, then manage back by host and by cluster')
        vol_id = self.volume('cl-manage', vtype)
        with self.attached(vol_id) as disk:
            disk.write(PATTERN)
        host = self.host(vol_id)
        vol_id = self.manage(vol_id, {'host': host}, 'its host %s' % host)
        cluster = self.placement(vol_id)
        vol_id = self.manage(vol_id, {'cluster': cluster},
                             'its cluster %s' % cluster)
        self.forget('volume', vol_id)

    def check_retype_in_place(self, vtype, backend):
        """Retype without migration; the volume stays on its cluster pool.

        Its host may change to the other member: Cinder sets it to the
        scheduler's choice.
        """
        print('-- retype in place: another type of %s, migration never'
              % backend)
        vol_id = self.volume('cl-retype', vtype)
        with self.attached(vol_id) as disk:
            disk.write(PATTERN)
        before = self.placement(vol_id)
        other = self.type_names[self.volume_type(backend, 'thin', '-2')]
        self.action(vol_id, 'os-retype', {'new_type': other,
                                          'migration_policy': 'never'})
        found = self.wait_retype(vol_id, other)
        after = self.call('GET', '/volumes/%s' % vol_id,
                          version='volume 3.61')['volume']
        self.same((found['status'], found['volume_type'],
                   found.get('migration_status'), after['cluster_name'],
                   after['os-vol-host-attr:host'].split('@')[0] in MEMBERS),
                  ('available', other, None, before, True),
                  'retyped in place: status, type, no migration, cluster '
                  'pool, host a member (host %s)'
                  % after['os-vol-host-attr:host'])
        with self.attached(vol_id) as disk:
            self.check(disk.io(CHECK), 'volume retyped in place holds its '
                       'bytes')
        self.forget('volume', vol_id)

    # --- the checks --------------------------------------------------------

    def check_members(self, what):
        services = self.services()
        self.check(sorted(services) == sorted(MEMBERS) and
                   all(state == 'up' and cluster and
                       cluster.startswith('lustre-cluster@')
                       for state, cluster, _beat in services.values()),
                   '%s: both members up in lustre-cluster (%s)'
                   % (what, services))
        clusters = self.call('GET', '/clusters/detail?binary=cinder-volume',
                             version=CLUSTER_API)['clusters']
        self.check(clusters and all(c['num_hosts'] == 2 and
                                    c['num_down_hosts'] == 0 and
                                    c['state'] == 'up' for c in clusters),
                   '%s: every cluster of the backends has 2 hosts, 0 down '
                   '(%s)' % (what, ', '.join(
                       '%s %s/%s down' % (c['name'], c['num_down_hosts'],
                                          c['num_hosts'])
                       for c in clusters)))

    def check_load(self, vtype, source):
        """The cluster against one service; source survives."""
        print('-- load: %d creates then %d clones, both members' % (N, N))
        both, served, clones = self.load('cluster', vtype)
        self.check(all(served.get(host) for host in MEMBERS),
                   'both members served (%s)' % served)
        for vol_id in (clones[0], clones[-1]):
            with self.attached(vol_id) as disk:
                self.check(disk.io(CHECK), 'clone %s holds its source\'s '
                           'pattern' % vol_id)
        self.delete_all([vol_id for kind, vol_id in list(self.made)
                         if kind == 'volume' and vol_id != source])

        print('-- load: the same with lustre-stack-2 stopped')
        member = self.members['lustre-stack-2']
        member.stop(signal.SIGTERM)
        try:
            one, served, _last = self.load('one service', vtype)
            self.check(set(served) == {'lustre-stack'},
                       'only lustre-stack served (%s)' % served)
            self.delete_all([vol_id for kind, vol_id in list(self.made)
                             if kind == 'volume' and vol_id != source])
        finally:
            restarted = self.now()
            member.start()
        self.require(self.wait_members({'lustre-stack-2': 'up'}, restarted),
                     'lustre-stack-2 rejoins the cluster')
        for i, step in enumerate(('creates', 'clones')):
            line = ('%d concurrent %s: cluster %.1f s, one service %.1f s '
                    '(%.2fx)' % (N, step, both[i], one[i], one[i] / both[i]))
            self.figures.append(line)
            print('  ' + line)

    def check_kill(self, vtype, source):
        count = max(10, N // 5)
        print('-- kill: lustre-stack-2 killed during %d clones' % count)
        bodies = [dict(name='e2e-cl-kill-%d-%s' % (i, self.stamp), size=1,
                       volume_type=vtype, source_volid=source)
                  for i in range(count)]
        ids = self.post_volumes(bodies)
        # Aim at the window: kill once the member holds clones it has not
        # finished (its host set on them, still creating).
        deadline = time.time() + 120
        caught = []
        while time.time() < deadline and not caught:
            vols = [v for v in self.call(
                'GET', '/volumes/detail?all_tenants=1',
                version=CLUSTER_API)['volumes'] if v['id'] in ids]
            caught = [v['id'] for v in vols if v['status'] == 'creating' and
                      (v['os-vol-host-attr:host'] or '')
                      .startswith('lustre-stack-2@')]
            if not caught and all(v['status'] not in e2e.BUSY
                                  for v in vols):
                break
        self.require(caught, 'lustre-stack-2 caught working on clones '
                     '(%d of %d)' % (len(caught), count))
        member = self.members['lustre-stack-2']
        member.stop(signal.SIGKILL)
        killed_at = time.time()

        survivor = self.volume('cl-after-kill', vtype, source_volid=source)
        self.check(self.host(survivor).startswith('lustre-stack@'),
                   'lustre-stack keeps serving: a clone made after the kill '
                   'is available (%.1f s after it)'
                   % (time.time() - killed_at))
        self.require(self.wait_members({'lustre-stack-2': 'down'}),
                     'Cinder sees lustre-stack-2 down (%.0f s after the '
                     'kill)' % (time.time() - killed_at))
        services = self.call('GET', '/os-services?binary=cinder-volume',
                             version=CLUSTER_API)['services']
        dead = [s for s in services if s['host'].startswith('lustre-stack-2@')]
        cleaning = []
        for service in dead:
            answer = self.call('POST', '/workers/cleanup', {
                'cluster_name': service['cluster'], 'host': service['host'],
                'binary': 'cinder-volume'}, version=CLUSTER_API)
            cleaning += answer['cleaning']
        self.check(len(cleaning) == len(dead), 'work-cleanup API: the '
                   'survivor cleans up after %d dead backends (%s)' % (
                       len(dead), [s['host'] for s in cleaning]))
        ended = self.settle(ids, timeout=120)
        # A request the member had taken from its queue but not begun
        # (oslo.messaging acknowledges on receipt) is lost with it: the
        # volume stays creating, its work entry the scheduler's.  That
        # entry is cleaned through the scheduler.
        lost = [v['id'] for v in ended.values() if v['status'] == 'creating']
        for vol_id in lost:
            self.call('POST', '/workers/cleanup', {
                'binary': 'cinder-scheduler', 'is_up': True,
                'resource_type': 'Volume', 'resource_id': vol_id},
                version=CLUSTER_API)
        if lost:
            ended.update(self.settle(lost))
        statuses = {}
        for vol in ended.values():
            statuses[vol['status']] = statuses.get(vol['status'], 0) + 1
        self.check(set(statuses) <= {'available', 'error'},
                   'every clone ends available or error (%s; %d lost in the '
                   'killed member\'s queue, cleaned through the scheduler)'
                   % (statuses, len(lost)))
        good = [v['id'] for v in ended.values() if v['status'] == 'available']
        for vol_id in good[:2]:
            with self.attached(vol_id) as disk:
                self.check(disk.io(CHECK), 'clone %s finished by the cluster '
                           'holds the pattern' % vol_id)
        self.delete_all(ids + [survivor])
        self.check(True, 'every clone deleted, errors too (%d)' % len(ids))
        restarted = self.now()
        member.start()
        self.require(self.wait_members({'lustre-stack-2': 'up'}, restarted),
                     'the killed member starts again and rejoins')
        self.figures.append('kill: %d clones, %d caught on the killed member,'
                            ' ended %s, %d lost in its queue'
                            % (count, len(caught), statuses, len(lost)))

    def run(self):
        before = self.share_files()
        pool = self.call('GET', '/scheduler-stats/get_pools')['pools'][0]
        backend = pool['name'].split('@')[1].split('#')[0]
        self.raise_quota()
        try:
            self.check_members('at the start')
            vtype = self.volume_type(backend, 'thin')
            source = self.volume('cl-source', vtype)
            with self.attached(source) as disk:
                disk.write(PATTERN)
            self.check_load(vtype, source)
            self.check_kill(vtype, source)
            self.check_manage(vtype)
            self.check_retype_in_place(vtype, backend)
            self.check_members('at the end')
        except (e2e.CheckFailed, e2e.stackapi.ApiError) as exc:
            self.check(False, 'cluster part: could not go on: %s' % exc)
        finally:
            print('\n== end ==')
            for member in self.members.values():
                if member.cmdline and not self.alive(member):
                    member.start()
            self.cleanup()
            self.restore_quota()
            self.check_leftovers(before)
            locks = etcd_lock_keys()
            self.check(not locks, 'no lock left in etcd (%s)'
                       % (', '.join(locks) or 'none'))
            for line in self.figures:
                print('  figure: ' + line)

    @staticmethod
    def alive(member):
        try:
            os.killpg(member.pid(), 0)
            return True
        except (OSError, ValueError):
            return False

    # --- quota: N volumes at once ----------------------------------------

    def project_id(self):
        auth = os.environ['OS_AUTH_URL'].rstrip('/')
        found = self.call('GET', '/projects?name=%s'
                          % os.environ['OS_PROJECT_NAME'], url=auth)
        return found['projects'][0]['id']

    def raise_quota(self):
        self.call('PUT', '/os-quota-sets/%s' % self.project_id(),
                  {'quota_set': {'volumes': -1, 'gigabytes': -1}})

    def restore_quota(self):
        self.call('DELETE', '/os-quota-sets/%s' % self.project_id(),
                  missing_ok=True)
