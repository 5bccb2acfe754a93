"""``lustre-standin``: administration of the stand-in (root only).

These are the things a Lustre administrator would do on the servers:
create a fileset directory, define an OST pool; plus fault injection for
tests and a cleanup that unmounts everything the stand-in mounted.
"""

import argparse
import grp
import os
import pwd
import sys

from lustre_standin import config as config_mod
from lustre_standin import server
from lustre_standin import spec as spec_mod
from lustre_standin import state as state_mod
from lustre_standin import util


def build_parser():
    parser = argparse.ArgumentParser(
        prog='lustre-standin',
        description='Administer the Lustre stand-in (tests and demos only).')
    parser.add_argument('--config', help='configuration file (default: '
                        '$LUSTRE_STANDIN_CONF or %s)'
                        % config_mod.DEFAULT_PATH)
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    sub.add_parser('status', help='show filesystems, mounts, pools, faults')
    mkdir = sub.add_parser('mkdir', help='create a fileset directory on the '
                           'server side (mounts the server if needed)')
    mkdir.add_argument('fsname')
    mkdir.add_argument('subdir', help='/SUBDIR, e.g. /cinder')
    mkdir.add_argument('--mode', default='0755', help='octal mode (0755)')
    mkdir.add_argument('--owner', help='USER[:GROUP] to own the directory')
    fault = sub.add_parser('fault', help='make the next mounts of FSNAME '
                           'fail or hang')
    fault.add_argument('fsname')
    fault.add_argument('action', choices=('fail', 'hang', 'clear'))
    fault.add_argument('values', nargs='*',
                       help='fail N | hang SECONDS [COUNT] | clear')
    pool = sub.add_parser('pool', help='define, change or remove (none) an '
                          'OST pool')
    pool.add_argument('fsname')
    pool.add_argument('pool')
    pool.add_argument('osts', help='OST indices such as 0-3,6, or "none"')
    sub.add_parser('cleanup', help='unmount every client and server mount '
                   'of the stand-in and detach its loop devices')
    unmount = sub.add_parser('unmount', help='unmount everything at or '
                             'below DIR, deepest first, lazily if busy')
    unmount.add_argument('dir')
    return parser


def main(argv):
    args = build_parser().parse_args(argv[1:])
    config = config_mod.load('lustre-standin', args.config)
    if config is None:
        return 1
    state = state_mod.State(config)
    if args.command != 'status' and os.geteuid() != 0:
        print('lustre-standin: %s must run as root' % args.command,
              file=sys.stderr)
        return 1
    handler = {'status': status, 'mkdir': make_fileset, 'fault': fault,
               'pool': define_pool, 'cleanup': cleanup,
               'unmount': unmount_dir}[args.command]
    try:
        return handler(config, state, args)
    except (util.CommandError, server.ServerError, ValueError,
            config_mod.ConfigError, KeyError) as exc:
        print('lustre-standin: %s' % exc, file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1


def check_fsname(name):
    try:
        spec_mod.parse_spec('standin@tcp:/' + name)
    except spec_mod.SpecError:
        raise ValueError('invalid filesystem name %r' % name)


def status(config, state, args):
    with state.locked() as registry:
        table = state_mod.MountTable()
        names = sorted(set(config.configured_names()) |
                       set(registry['servers']) |
                       set(entry['fsname'] for entry in registry['clients']))
        print('config: %s' % config.path)
        print('state directory: %s' % config.state_dir)
        print('version: %s' % config.version)
        for name in names:
            fs = config.fs(name, registry['pools'].get(name))
            image = state.image_path(name)
            used = ''
            if os.path.exists(image):
                used = ', %d MiB allocated' % (
                    os.stat(image).st_blocks * 512 // (1 << 20))
            print('filesystem %s: %d MiB image%s, %d OSTs'
                  % (name, fs.size // (1 << 20), used, fs.osts))
            entry = registry['servers'].get(name)
            if entry:
                live = state_mod.server_is_live(entry, table)
                print('  server: %s on %s (%s)' % (
                    entry['mountpoint'], entry['loop'],
                    'mounted' if live else 'gone'))
            for pool_name, members in sorted(fs.pools.items()):
                print('  pool %s: %s' % (pool_name,
                                         ','.join(map(str, members))))
            fault_entry = registry['faults'].get(name)
            if fault_entry:
                print('  faults: fail next %d, hang %ss for next %d' % (
                    fault_entry.get('fail', 0), fault_entry.get('hang', 0),
                    fault_entry.get('hang_count', 0)))
        for entry in registry['clients']:
            live = state_mod.client_is_live(entry, table)
            print('client %s: %s -o %s (%s)' % (
                entry['mountpoint'], entry['spec'], entry['options'],
                'mounted' if live else 'gone'))
    return 0


def make_fileset(config, state, args):
    check_fsname(args.fsname)
    parts = [part for part in args.subdir.split('/') if part]
    if not parts or any(part in ('.', '..') for part in parts):
        raise ValueError('invalid fileset %r' % args.subdir)
    mode = int(args.mode, 8)
    uid = gid = -1
    if args.owner:
        user, _sep, group = args.owner.partition(':')
        uid = pwd.getpwnam(user).pw_uid if user else -1
        gid = grp.getgrnam(group).gr_gid if group else -1
    with state.locked(exclusive=True) as registry:
        fs = config.fs(args.fsname, registry['pools'].get(args.fsname))
        entry = server.ensure_server(state, registry, fs)
        path = entry['mountpoint']
        for part in parts:
            path = os.path.join(path, part)
            if not os.path.isdir(path):
                os.mkdir(path, mode)
                os.chmod(path, mode)
        if uid != -1 or gid != -1:
            os.chown(path, uid, gid)
    print(path)
    return 0


def fault(config, state, args):
    check_fsname(args.fsname)
    values = args.values
    if args.action == 'fail' and len(values) == 1:
        setting = {'fail': int(values[0])}
    elif args.action == 'hang' and len(values) in (1, 2):
        setting = {'hang': float(values[0]),
                   'hang_count': int(values[1]) if len(values) > 1 else 1}
    elif args.action == 'clear' and not values:
        setting = None
    else:
        raise ValueError('usage: fault FSNAME fail N | hang SECONDS [COUNT]'
                         ' | clear')
    with state.locked(exclusive=True) as registry:
        if setting is None:
            registry['faults'].pop(args.fsname, None)
        else:
            registry['faults'].setdefault(args.fsname, {}).update(setting)
    return 0


def define_pool(config, state, args):
    check_fsname(args.fsname)
    if len(args.pool) > config_mod.MAX_POOL_NAME or '.' in args.pool or \
            not args.pool:
        raise ValueError('invalid pool name %r' % args.pool)
    with state.locked(exclusive=True) as registry:
        fs = config.fs(args.fsname, registry['pools'].get(args.fsname))
        if args.osts == 'none':
            members = []
        else:
            members = util.parse_index_list(args.osts)
            if members[-1] >= fs.osts:
                raise ValueError('%s has only %d OSTs'
                                 % (args.fsname, fs.osts))
        registry['pools'].setdefault(args.fsname, {})[args.pool] = members
    return 0


def cleanup(config, state, args):
    if not os.path.isdir(state.root):
        return 0
    with state.locked(exclusive=True) as registry:
        warn(server.cleanup(state, registry))
    return 0


def unmount_dir(config, state, args):
    warn(server.unmount_under(os.path.abspath(args.dir)))
    return 0


def warn(warnings):
    for warning in warnings:
        print('lustre-standin: warning: %s' % warning, file=sys.stderr)
