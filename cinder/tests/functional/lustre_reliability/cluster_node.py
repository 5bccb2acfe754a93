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

"""One node of a test cluster: a Lustre driver in a process of its own.

test_cluster starts several of these, each with its own ``host``, one
``cluster``, one database (a SQLite file) and one coordination backend.  A
node reads requests, one JSON object a line, on standard input, runs each
in a thread of its own (as cinder-volume runs requests concurrently), and
answers each with one JSON line on standard output::

    {"id": 3, "op": "create_snapshot", "volume_id": "..."}
    {"id": 3, "ok": true, "result": "...", "lock_wait": 0.01,
     "acquired_at": [1764750000.1], "seconds": 0.4}

``lock_wait`` is the time spent waiting for the driver's locks, and
``acquired_at`` when each was obtained (wall clock).  A node can be told to
stop, or to kill itself with SIGKILL, just before or after the driver runs
a command (``hook``), and to stop locking (``locks``) to show what the locks
prevent.  Usage::

    python .../lustre_reliability/cluster_node.py CONF

where CONF is a JSON file of settings (see ``main``).  It runs as a script,
not as a module of the test package, which patches threads and I/O with
eventlet: a node serves its requests on real threads.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback

from oslo_concurrency import processutils as putils
from oslo_config import cfg

CONF = cfg.CONF


class Node(object):

    def __init__(self, settings):
        from cinder import context
        from cinder import coordination
        from cinder import objects
        import cinder.privsep
        from cinder.volume import configuration
        from cinder.volume.drivers import lustre
        from cinder.volume.drivers import remotefs

        self.settings = settings
        self.context = context.get_admin_context()
        self.objects = objects
        self.out_lock = threading.Lock()
        self.hooks = []
        self.hook_lock = threading.Lock()
        self.locking = True
        self.waits = threading.local()
        cinder.privsep.sys_admin_pctxt.set_client_mode(False)
        self._serialise_database_writes()
        self.execute = putils.execute
        # image_utils runs qemu-img convert through processutils.
        putils.execute = self.hooked_execute
        self._wrap_locks(coordination)
        coordination.COORDINATOR.start()
        driver_conf = configuration.Configuration(None)
        driver_conf.append_config_values(lustre.lustre_opts)
        driver_conf.append_config_values(remotefs.nas_opts)
        for name, value in settings['options'].items():
            CONF.set_override(name, value)
        self.driver = lustre.LustreDriver(
            execute=self.hooked_execute, configuration=driver_conf,
            host=CONF.host, cluster_name=CONF.cluster)
        self.driver.do_setup(self.context)
        self.driver.check_for_setup_error()

    @staticmethod
    def _serialise_database_writes():
        """Let the nodes share one SQLite file without 'database is locked'.

        pysqlite starts transactions late, and SQLite refuses at once a
        reader that would become a writer beside another writer; each
        transaction here takes the write lock first, and waits for it.
        (A real cluster shares a MySQL or PostgreSQL database.)
        """
        from cinder.db import api as db_api
        from sqlalchemy import event

        engine = db_api.get_engine()

        @event.listens_for(engine, 'connect')
        def connect(dbapi_connection, _record):
            dbapi_connection.execute('PRAGMA busy_timeout = 60000')

        # oslo.db begins each transaction with its own BEGIN.
        @event.listens_for(engine, 'before_cursor_execute', retval=True)
        def immediate(_conn, _cursor, statement, parameters, _context,
                      _executemany):
            if statement == 'BEGIN':
                statement = 'BEGIN IMMEDIATE'
            return statement, parameters

        # Connections opened before (oslo.db tries one) start afresh.
        engine.dispose()

    def _wrap_locks(self, coordination):
        node = self
        get_lock = coordination.COORDINATOR.get_lock

        class Timed(object):
            """A coordination lock that says how long it was waited for."""

            def __init__(self, lock):
                self.lock = lock
                self.name = lock.name

            def acquire(self, *args, **kwargs):
                if not node.locking:
                    return True
                start = time.monotonic()
                result = self.lock.acquire(*args, **kwargs)
                records = getattr(node.waits, 'records', None)
                if records is not None:
                    records.append((time.monotonic() - start, time.time()))
                return result

            def release(self):
                if node.locking:
                    return self.lock.release()
                return True

        coordination.COORDINATOR.get_lock = lambda name: Timed(
            get_lock(name))

    # Commands

    def hooked_execute(self, *cmd, **kwargs):
        words = tuple(str(arg) for arg in cmd)
        hook = None
        with self.hook_lock:
            for candidate in self.hooks:
                size = len(candidate['words'])
                if words[:size] == tuple(candidate['words']):
                    hook = candidate
                    self.hooks.remove(candidate)
                    break
        if hook and hook['when'] == 'before':
            self.act(hook)
        result = self.execute(*cmd, **kwargs)
        if hook and hook['when'] == 'after':
            self.act(hook)
        return result

    def act(self, hook):
        if hook['action'] == 'die':
            os.killpg(0, signal.SIGKILL)
        with open(hook['marker'] + '.reached', 'w'):
            pass
        while not os.path.exists(hook['marker'] + '.go'):
            time.sleep(0.05)

    # Requests

    def volume(self, volume_id):
        return self.objects.Volume.get_by_id(self.context, volume_id)

    def new_volume(self, size, **fields):
        volume = self.objects.Volume(
            context=self.context, size=size, status='creating',
            host='%s#%s' % (CONF.host, self.settings['pool']),
            cluster_name=CONF.cluster, attach_status='detached',
            user_id='user', project_id='project',
            volume_type_id=self.settings['volume_type_id'], **fields)
        volume.create()
        return self.volume(volume.id)

    def finish(self, volume, update):
        volume.update(update or {})
        volume.status = 'available'
        volume.save()
        return volume.id

    def op_create_volume(self, size=1):
        volume = self.new_volume(size)
        return self.finish(volume, self.driver.create_volume(volume))

    def op_clone(self, volume_id, size=None):
        source = self.volume(volume_id)
        volume = self.new_volume(size or source.size,
                                 source_volid=source.id)
        self.reply_early('created', volume.id)
        return self.finish(volume, self.driver.create_cloned_volume(
            volume, source))

    def op_from_snapshot(self, snapshot_id, size):
        snapshot = self.objects.Snapshot.get_by_id(self.context, snapshot_id)
        volume = self.new_volume(size, snapshot_id=snapshot_id)
        return self.finish(volume, self.driver.create_volume_from_snapshot(
            volume, snapshot))

    def op_create_snapshot(self, volume_id):
        volume = self.volume(volume_id)
        snapshot = self.objects.Snapshot(
            context=self.context, volume_id=volume.id, status='creating',
            volume_size=volume.size, user_id='user', project_id='project',
            volume_type_id=volume.volume_type_id)
        snapshot.create()
        snapshot = self.objects.Snapshot.get_by_id(self.context, snapshot.id)
        self.reply_early('created', snapshot.id)
        self.driver.create_snapshot(snapshot)
        snapshot.status = 'available'
        snapshot.save()
        return snapshot.id

    def op_delete_snapshot(self, snapshot_id):
        snapshot = self.objects.Snapshot.get_by_id(self.context, snapshot_id)
        snapshot.status = 'deleting'
        snapshot.save()
        self.driver.delete_snapshot(snapshot)
        snapshot.destroy()

    def op_extend(self, volume_id, size):
        volume = self.volume(volume_id)
        self.driver.extend_volume(volume, size)
        volume.size = size
        volume.save()

    def op_delete_volume(self, volume_id):
        volume = self.volume(volume_id)
        self.driver.delete_volume(volume)
        volume.destroy()

    def op_connect(self, volume_id):
        data = self.driver.initialize_connection(self.volume(volume_id),
                                                 {})['data']
        return {'export': data['export'], 'name': data['name'],
                'format': data['format']}

    def op_write(self, volume_id, offset, length, pattern):
        data = self.driver.initialize_connection(self.volume(volume_id),
                                                 {})['data']
        subprocess.run(['qemu-io', '-f', data['format'], '-c',
                        'write -P %d %d %d' % (pattern, offset, length),
                        data['device_path']], check=True,
                       stdout=subprocess.DEVNULL)

    def op_hook(self, when, words, action, marker=None):
        with self.hook_lock:
            self.hooks.append({'when': when, 'words': words,
                               'action': action, 'marker': marker})

    def op_locks(self, enabled):
        self.locking = enabled

    def op_ping(self):
        return os.getpid()

    def reply_early(self, what, value):
        """Say what a request created before it is done (the test waits)."""
        request = getattr(self.waits, 'request', None)
        if request is not None:
            self.send({'id': request, 'early': what, 'value': value})

    def send(self, message):
        with self.out_lock:
            sys.stdout.write(json.dumps(message) + '\n')
            sys.stdout.flush()

    def handle(self, request):
        self.waits.records = []
        self.waits.request = request['id']
        start = time.monotonic()
        args = {key: value for key, value in request.items()
                if key not in ('id', 'op')}
        reply = {'id': request['id']}
        try:
            reply['result'] = getattr(self, 'op_' + request['op'])(**args)
            reply['ok'] = True
        except Exception as exc:
            reply['ok'] = False
            reply['error'] = '%s: %s' % (type(exc).__name__, exc)
            reply['error_class'] = '%s.%s' % (type(exc).__module__,
                                              type(exc).__name__)
            traceback.print_exc(file=sys.stderr)
        reply['seconds'] = time.monotonic() - start
        reply['lock_wait'] = sum(wait for wait, _at in self.waits.records)
        reply['acquired_at'] = [at for _wait, at in self.waits.records]
        self.send(reply)

    def serve(self):
        self.send({'ready': os.getpid()})
        for line in sys.stdin:
            if not line.strip():
                continue
            threading.Thread(target=self.handle,
                             args=(json.loads(line),)).start()


def main(argv):
    """Settings (JSON): host, cluster, state_path, database, backend_url,

    pool, volume_type_id, log_file, and the driver options (options).
    """
    with open(argv[1]) as f:
        settings = json.load(f)
    from cinder import objects
    objects.register_all()
    from cinder.common import config  # noqa: F401 -- registers options
    from cinder import coordination  # noqa: F401
    from cinder.db import api  # noqa: F401
    from oslo_log import log as logging
    logging.register_options(CONF)
    # cinder-volume's own option (cinder.cmd.volume), which this is not.
    CONF.register_opt(cfg.StrOpt('cluster', help='The cluster of the node.'))
    CONF([], project='cinder', default_config_files=[])
    CONF.set_override('host', settings['host'])
    CONF.set_override('cluster', settings['cluster'])
    CONF.set_override('state_path', settings['state_path'])
    CONF.set_override('connection', settings['database'], 'database')
    CONF.set_override('backend_url', settings['backend_url'],
                      'coordination')
    CONF.set_override('lock_path', settings['state_path'],
                      'oslo_concurrency')
    CONF.set_override('log_file', settings['log_file'])
    CONF.set_override('debug', True)
    logging.setup(CONF, 'cinder')
    try:
        node = Node(settings)
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        # Coordination threads must not keep a node that failed alive.
        os._exit(1)
    node.serve()
    os._exit(0)


if __name__ == '__main__':
    main(sys.argv)
