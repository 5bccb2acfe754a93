"""The ``lfs`` emulator: command dispatch, df, getname and pool_list.

Exit statuses follow lfs 2.15: a usage error prints the command's help
and exits with 4 (libcfs's CMD_HELP); other failures exit with the errno.
"""

import errno
import os
import sys

from lustre_standin import cmdline
from lustre_standin import config as config_mod
from lustre_standin import getstripe
from lustre_standin import project
from lustre_standin import setstripe
from lustre_standin import state as state_mod
from lustre_standin import util

CMD_HELP = 4

HELP = {
    'setstripe': (
        'To create a file with specified striping/composite layout, or\n'
        'create/replace the default layout on an existing directory:\n'
        'usage: setstripe [--component-end|-E COMP_END]\n'
        '                 [--stripe-count|-c STRIPE_COUNT]\n'
        '                 [--stripe-index|-i START_OST_IDX]\n'
        '                 [--stripe-size|-S STRIPE_SIZE]\n'
        '                 [--pool|-p POOL_NAME] [--layout|-L raid0]\n'
        '                 [--mode MODE] <directory|filename>\n'
        'To totally delete the default striping from an existing '
        'directory:\n'
        'usage: setstripe [--delete|-d] <directory>\n'),
    'getstripe': (
        'To list the layout pattern for a given file or files in a\n'
        'directory or recursively for all files in a directory tree.\n'
        'usage: getstripe [--quiet|-q] [--stripe-count|-c]\n'
        '                 [--stripe-index|-i] [--fid|-F] [--pool|-p]\n'
        '                 [--stripe-size|-S] [--directory|-d]\n'
        '                 [--mdt-index|-m] [--recursive|-r] [--raw|-R]\n'
        '                 [--layout|-L] [--generation|-g] [--yaml|-y]\n'
        '                 [--default|-D] [--component-count]\n'
        '                 [--mirror-count|-N] [--help|-h]\n'
        '                 <directory|filename> ...\n'),
    'df': (
        'report filesystem disk space usage or inodes usage of each MDS '
        'and all OSDs or a batch belonging to a specific pool.\n'
        'Usage: df [--inodes|-i] [--human-readable|-h] [--lazy|-l]\n'
        '          [--pool|-p <fsname>[.<pool>]] [path]'),
    'getname': (
        'list instances and specified mount points [for specified path '
        'only]\n'
        'Usage: getname [--help|-h] [--instance|-i] [--fsname|-n] '
        '[path ...]'),
    'pool_list': ('List pools or pool OSTs\n'
                  'usage: pool_list <fsname>[.<pool>] | <pathname>\n'),
    'migrate': (
        'migrate a file to a new layout\n'
        'usage: migrate  [--component-end|-E COMP_END]\n'
        '                 [--stripe-count|-c STRIPE_COUNT]\n'
        '                 [--stripe-index|-i START_OST_IDX]\n'
        '                 [--stripe-size|-S STRIPE_SIZE]\n'
        '                 [--pool|-p POOL_NAME]\n'
        '                 [--block|-b] [--non-block|-n]\n'
        '                 [--non-direct|-D] [--verbose|-v]\n'
        '                 FILENAME\n'),
    'project': project.PROJECT_HELP,
    'quota': project.QUOTA_HELP,
}


class Lfs(object):
    """Context shared by the subcommands."""

    def __init__(self, config):
        self.config = config
        self.state = state_mod.State(config)

    def view(self, path):
        return state_mod.find_view(self.config, self.state, path)

    def views(self, clients_only=True):
        with self.state.locked() as registry:
            found = state_mod.views(self.config, registry,
                                    state_mod.MountTable())
        return [view for view in found
                if not (clients_only and view.is_server)]

    def usage(self, command, lines):
        for line in lines:
            print(line, file=sys.stderr)
        print(HELP.get(command, command), file=sys.stderr)
        return CMD_HELP


def main(argv):
    prog = os.path.basename(argv[0]) or 'lfs'
    config = config_mod.load(prog)
    if config is None:
        return 1
    if len(argv) < 2:
        print('%s: interactive mode is not supported by the Lustre '
              'stand-in' % prog, file=sys.stderr)
        return 1
    command = argv[1]
    if command == '--version':
        print('%s %s' % (prog, config.version))
        return 0
    handler = COMMANDS.get(command)
    if handler is None:
        print('Try interactive use without arguments or use one of:')
        for name in sorted(COMMANDS) + ['--version']:
            print('"%s"' % name)
        print('as argument.')
        return 1
    lfs = Lfs(config)
    try:
        return handler(lfs, argv[1:])
    except util.CommandError as exc:
        return exc.report()
    except config_mod.ConfigError as exc:
        # [fs:NAME] sections are only read when that filesystem is used.
        print('%s: %s' % (prog, exc), file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1


def cmd_help(lfs, args):
    if len(args) > 1 and args[1] in HELP:
        print(HELP[args[1]])
    else:
        print('Available commands: %s' % ' '.join(sorted(COMMANDS)))
    return 0


# ---- lfs getname ---------------------------------------------------------

GETNAME_OPTIONS = [cmdline.Option('h', 'h', ('help',)),
                   cmdline.Option('i', 'i', ('instance',)),
                   cmdline.Option('n', 'n', ('fsname',))]


def cmd_getname(lfs, args):
    parsed = cmdline.parse(args[1:], GETNAME_OPTIONS)
    want_instance = want_fsname = False
    for key, value in parsed.options:
        if key == '?':
            return lfs.usage('getname', ["lfs: unrecognized option '%s'"
                                         % value])
        if key == 'h':
            return lfs.usage('getname', [])
        want_instance |= key == 'i'
        want_fsname |= key == 'n'

    def name_of(view):
        if want_fsname == want_instance:
            return view.name()
        return view.fsname if want_fsname else view.instance

    if not parsed.operands:
        for view in lfs.views():
            print('%s %s' % (name_of(view), view.mountpoint))
        return 0
    # lfs prints the path as given; with a single path and -n or -i it
    # prints the name alone.
    with_path = len(parsed.operands) > 1 or want_instance == want_fsname
    status = 0
    for path in parsed.operands:
        code = 0
        if not os.path.exists(path):
            code = errno.ENOENT
            print("lfs getname: cannot open '%s': %s (%d)"
                  % (path, os.strerror(code), code), file=sys.stderr)
        else:
            view = lfs.view(path)
            if view is None:
                code = errno.ENOTTY
                print('lfs getname: cannot get lov name: %s (%d)'
                      % (os.strerror(code), code), file=sys.stderr)
        if code:
            print("cannot get instance for '%s': %s"
                  % (path, os.strerror(code)), file=sys.stderr)
            status = status or code
            continue
        if with_path:
            print('%s %s' % (name_of(view), path))
        else:
            print(name_of(view))
    return status


# ---- lfs df --------------------------------------------------------------

DF_OPTIONS = [cmdline.Option('h', 'h', ('human-readable',)),
              cmdline.Option('H', 'H', ('si',)),
              cmdline.Option('i', 'i', ('inodes',)),
              cmdline.Option('l', 'l', ('lazy',)),
              cmdline.Option('p', 'p', ('pool',), cmdline.REQUIRED),
              cmdline.Option('v', 'v', ('verbose',))]


class Statfs(object):
    """The fields of a Lustre obd_statfs that lfs df prints."""

    def __init__(self, bsize=1, blocks=0, bfree=0, bavail=0, files=0,
                 ffree=0):
        self.bsize = bsize
        self.blocks = blocks
        self.bfree = bfree
        self.bavail = bavail
        self.files = files
        self.ffree = ffree


class DfFlags(object):
    def __init__(self):
        self.inodes = False
        self.cooked = False
        self.decimal = False


def share(total, parts, index):
    """Split ``total`` into ``parts`` near-equal shares; this is one."""
    return total // parts + (1 if index < total % parts else 0)


def target_stats(view):
    """Statfs of the MDT and of each OST of a filesystem.

    The OSTs share the real statfs of the backing filesystem evenly, so
    the summary equals what statfs(2) on the mount point says.  The MDT
    line is only informative (lfs leaves it out of the summary): it shows
    the backing filesystem's inodes, at 4 KiB of MDT space per inode.
    """
    vfs = os.statvfs(view.mountpoint)
    mdt = Statfs(4096, vfs.f_files, vfs.f_ffree, vfs.f_ffree, vfs.f_files,
                 vfs.f_ffree)
    osts = []
    count = view.fs.osts
    for index in range(count):
        osts.append(Statfs(vfs.f_frsize,
                           share(vfs.f_blocks, count, index),
                           share(vfs.f_bfree, count, index),
                           share(vfs.f_bavail, count, index),
                           share(vfs.f_files, count, index),
                           share(vfs.f_ffree, count, index)))
    return mdt, osts


def ratio(st, inodes):
    if inodes:
        avail, used = st.ffree, st.files - st.ffree
    else:
        avail, used = st.bavail, st.blocks - st.bfree
    value = used / (used + avail) * 100 if avail + used > 0 else 0.0
    # Rounded up, to match df(1).
    return int(value + 1) if value - int(value) > 0 else int(value)


def cook(value, flags):
    base = 1000 if flags.decimal else 1024
    suffix = 'kMGTPEZY' if flags.decimal else 'KMGTPEZY'
    cooked = float(value)
    power = 0
    while cooked > base:
        cooked /= base
        power += 1
    if power:
        return '%8.1f%c' % (cooked, suffix[power - 1])
    return '%11d' % value


def df_line(mntdir, st, uuid, flags, kind=None, index=0):
    if flags.inodes:
        avail, used, total = st.ffree, st.files - st.ffree, st.files
    else:
        shift = 0 if flags.cooked else 10
        avail = (st.bavail * st.bsize) >> shift
        used = ((st.blocks - st.bfree) * st.bsize) >> shift
        total = (st.blocks * st.bsize) >> shift
    if flags.cooked:
        values = [cook(value, flags) for value in (total, used, avail)]
    else:
        values = ['%11d' % value for value in (total, used, avail)]
    line = '%-20s %11s %11s %11s %4s %s' % (
        uuid, values[0], values[1], values[2],
        '%3d%%' % ratio(st, flags.inodes), mntdir)
    if kind:
        line += '[%s:%d]' % (kind, index)
    return line


def mntdf(view, pool, flags):
    """One filesystem's table, as lfs 2.15's mntdf()."""
    poolname = None
    if pool:
        if '.' in pool:
            if not pool.startswith(view.fsname):
                print('filesystem name incorrect', file=sys.stderr)
                return errno.ENODEV
            poolname = pool.split('.', 1)[1]
        else:
            poolname = pool
    mdt, osts = target_stats(view)
    lines = []
    if flags.inodes:
        header = ('UUID', 'Inodes', 'IUsed', 'IFree', 'IUse%')
    else:
        header = ('UUID', 'bytes' if flags.cooked else '1K-blocks', 'Used',
                  'Available', 'Use%')
    lines.append('%-20s %11s %11s %11s %4s %s' % (header + ('Mounted on',)))
    lines.append(df_line(view.mountpoint, mdt, view.fs.mdt_uuid(), flags,
                         'MDT', 0))
    total = Statfs(files=mdt.files, ffree=mdt.ffree)
    ost_files = ost_ffree = 0
    members = view.fs.pools.get(poolname, []) if poolname else None
    for index, st in enumerate(osts):
        if members is not None and index not in members:
            continue
        lines.append(df_line(view.mountpoint, st, view.fs.ost_uuid(index),
                             flags, 'OST', index))
        total.blocks += st.blocks * st.bsize
        total.bfree += st.bfree * st.bsize
        total.bavail += st.bavail * st.bsize
        ost_files += st.files
        ost_ffree += st.ffree
    if ost_files and ost_ffree < total.ffree:
        # lfs caps the inode summary to the objects the OSTs can hold.
        total.files = total.files - total.ffree + ost_ffree
        total.ffree = ost_ffree
    lines.append('')
    lines.append(df_line(view.mountpoint, total, 'filesystem_summary:',
                         flags))
    lines.append('')
    print('\n'.join(lines), flush=True)
    return 0


def cmd_df(lfs, args):
    parsed = cmdline.parse(args[1:], DF_OPTIONS)
    flags = DfFlags()
    pool = None
    for key, value in parsed.options:
        if key == '?':
            return lfs.usage('df', ["lfs: unrecognized option '%s'"
                                    % value])
        if key == 'h':
            flags.cooked, flags.decimal = True, False
        elif key == 'H':
            flags.cooked, flags.decimal = True, True
        elif key == 'i':
            flags.inodes = True
        elif key == 'p':
            pool = value
    if not parsed.operands:
        for view in lfs.views():
            status = mntdf(view, pool, flags)
            if status:
                return status
        return 0
    status = 0
    for path in parsed.operands:
        if not os.path.exists(path):
            code = errno.ENOENT
            print("error: invalid path '%s': %s" % (path, os.strerror(code)),
                  file=sys.stderr)
            status = status or code
            continue
        view = lfs.view(path)
        if view is None:
            # lfs prints this one on stdout.
            print('df:%s Not a Lustre filesystem' % path, flush=True)
            status = status or errno.EOPNOTSUPP
            continue
        code = mntdf(view, pool, flags)
        status = status or code
    return status


# ---- lfs pool_list -------------------------------------------------------

def pool_file(view, pool):
    """Where Lustre 2.15 keeps a pool's member list (named in errors)."""
    return '/proc/fs/lustre/lov/%s-clilov-%s/pools/%s' % (
        view.fsname, view.instance, pool)


def cmd_pool_list(lfs, args):
    if len(args) != 2:
        return lfs.usage('pool_list', [])
    name = args[1]
    if name.startswith('/'):
        view = lfs.view(name) if os.path.exists(name) else None
        if view is None:
            try:
                dev = os.stat(name).st_dev
                where = '%d/%d' % (os.major(dev), os.minor(dev))
                code = errno.ENODEV
                print("lfs pool_list: '%s' dev not on a mounted Lustre "
                      "filesystem" % where, file=sys.stderr)
            except OSError as exc:
                code = exc.errno
                print("lfs pool_list: cannot resolve path '%s': %s (%d)"
                      % (name, exc.strerror, code), file=sys.stderr)
            print("lfs pool_list: '%s' is not on a Lustre filesystem: "
                  '%s (%d)' % (name, os.strerror(code), code),
                  file=sys.stderr)
            return code
        fsname, pool = view.fsname, None
    else:
        fsname, sep, pool = name.partition('.')
        pool = pool if sep else None
        views = [v for v in lfs.views() if v.fsname == fsname]
        if not views:
            # lfs finds no "lov" device for that name and says nothing.
            return errno.ENOENT
        view = views[0]
    if pool is None:
        print('Pools from %s:' % fsname)
        for pool_name in view.fs.pools:
            print('%s.%s' % (fsname, pool_name))
        return 0
    print('Pool: %s.%s' % (fsname, pool), flush=True)
    if pool not in view.fs.pools:
        print('lfs pool_list: cannot open %s: No such file or directory (2)'
              % pool_file(view, pool), file=sys.stderr)
        return errno.ENOENT
    for index in view.fs.pools[pool]:
        print(view.fs.ost_uuid(index))
    return 0


COMMANDS = {
    'setstripe': setstripe.run_setstripe,
    'getstripe': getstripe.run,
    'migrate': setstripe.run_migrate,
    'df': cmd_df,
    'getname': cmd_getname,
    'pool_list': cmd_pool_list,
    'project': project.run_project,
    'quota': project.run_quota,
    'help': cmd_help,
}
