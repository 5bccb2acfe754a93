"""The ``mount.lustre`` helper.

mount(8) runs ``mount.lustre SPEC MOUNTPOINT [-sfnv] -o OPTIONS``.  The
real helper checks the NIDs itself and leaves the rest to mount(2), whose
errno it reports ("mount.lustre: mount SPEC at MP failed: <strerror>" and
some hints), exiting with that errno.  The stand-in does the same checks
in the same order, then bind-mounts the filesystem's one server mount.
"""

import errno
import os
import sys
import time

from lustre_standin import cmdline
from lustre_standin import config as config_mod
from lustre_standin import server
from lustre_standin import spec as spec_mod
from lustre_standin import state as state_mod
from lustre_standin import util

USAGE = """
This mount helper should only be invoked via the mount (8) command,
e.g. mount -t lustre dev dir

usage: %(prog)s [-fhnvV] [-o <cliopt>] <mgstarget> <mountpt>
\t<mgstarget>: the server MGS and filesystem for a client:
\t\t<mgsnid>[:<altmgsnid>...]:/<filesystem>[/<subdir>]
\t\t\t<mgsnid>: MGS LNet Node Identifier (e.g. mgs01@o2ib)
\t\t\t<filesystem>: Lustre filesystem name (e.g. lustre1)
\t\t\t<subdir>: subdirectory of the filesystem to mount
\t<mountpt>: filesystem mountpoint (e.g. /mnt/lustre)
\t-f|--fake: fake mount (only update /etc/mtab)
\t-o force|--force: force mount even if already in /etc/mtab
\t-h|--help: print this usage message
\t-n|--nomtab: do not update /etc/mtab after mount
\t-v|--verbose: print verbose config settings
\t-V|--version: output build version of the utility and exit
\t<cliopt>: one or more comma separated client options:
\t\t(no)flock, localflock, (no)user_xattr, (no)lazystatfs,
\t\t(no)user_fid2path, (no)verbose, always_ping, noencrypt,
\t\tnetwork=<net>, mgssec=<flavor>, exclude=<ostname>[:<ostname>],
\t\tretry=<num>: number of times mount is retried by client
(This is the mount.lustre of the Lustre stand-in: tests and demos only.)"""

OPTIONS = [cmdline.Option('force', None, ('force',)),
           cmdline.Option('f', 'f', ('fake',)),
           cmdline.Option('h', 'h', ('help',)),
           cmdline.Option('n', 'n', ('nomtab',)),
           # mount(8) passes -s for "mount -s" (sloppy); the 2.15 helper
           # would refuse it, but ignoring it is what helpers should do.
           cmdline.Option('s', 's', ()),
           cmdline.Option('o', 'o', ('options',), cmdline.REQUIRED),
           cmdline.Option('v', 'v', ('verbose',)),
           cmdline.Option('V', 'V', ('version',))]

HINTS = {
    errno.EBUSY: ['Is the backend filesystem mounted?',
                  ' Check /etc/mtab and /proc/mounts'],
    errno.ENOENT: ['Is the MGS specification correct?',
                   'Is the filesystem name correct?',
                   'If upgrading, is the copied client log valid? (see '
                   'upgrade docs)'],
    errno.EIO: ['Is the MGS running?'],
}


class MountError(Exception):
    """What mount(2) would fail with, and why (for the log)."""

    def __init__(self, code, detail):
        super().__init__(detail)
        self.code = code
        self.detail = detail


def usage(prog, out):
    print(USAGE % {'prog': prog}, file=out)


class CommandLine(object):
    """What mount(8) asked for."""

    def __init__(self):
        self.options_text = ''
        self.verbose = False
        self.fake = False
        self.operands = []


def parse_command_line(prog, argv, config):
    """:returns: a CommandLine, or the exit status if already done."""
    parsed = cmdline.parse(argv[1:], OPTIONS)
    line = CommandLine()
    for key, value in parsed.options:
        if key == '?':
            print("%s: invalid option -- '%s'" % (prog, value.lstrip('-')),
                  file=sys.stderr)
            print("%s: unknown option '?'" % prog, file=sys.stderr)
            usage(prog, sys.stderr)
            return errno.EINVAL
        if key == 'h':
            usage(prog, sys.stdout)
            return 0
        if key == 'V':
            print('%s %s (libmount)' % (prog, config.version))
            return 0
        if key == 'o':
            # Like the real helper, the last -o wins (mount(8) always
            # passes a single one).
            line.options_text = value
        elif key == 'v':
            line.verbose = True
        elif key in ('f', 'n', 'force'):
            # The real helper announces these on stdout.
            print('%s: 1' % {'f': 'fake', 'n': 'nomtab'}.get(key, key))
            line.fake |= key == 'f'
    line.operands = parsed.operands
    if len(line.operands) < 2:
        print('%s: too few arguments' % prog, file=sys.stderr)
        usage(prog, sys.stderr)
        return errno.EINVAL
    return line


def main(argv):
    prog = os.path.basename(argv[0]) or 'mount.lustre'
    config = config_mod.load(prog)
    if config is None:
        return errno.EINVAL
    line = parse_command_line(prog, argv, config)
    if isinstance(line, int):
        return line
    source, target = line.operands[:2]
    spec, spec_error = None, None
    try:
        spec = spec_mod.parse_spec(source)
    except spec_mod.SpecError as exc:
        if exc.nid_error:
            print("%s: Can't parse NID '%s'" % (prog, exc), file=sys.stderr)
            usage(prog, sys.stderr)
            return errno.EINVAL
        spec_error = exc
    if not os.path.exists(target):
        print('warning: %s: cannot resolve: %s'
              % (target, os.strerror(errno.ENOENT)), file=sys.stderr)
        return errno.ENOENT
    target = os.path.realpath(target)
    if line.verbose:
        print('source = %s (%s), target = %s' % (source, source, target))
        print('options = %s' % line.options_text)
    if ':/' not in source:
        print('%s: cannot mount %s: no server support' % (prog, source),
              file=sys.stderr)
        return errno.EINVAL
    state = state_mod.State(config)
    try:
        options = spec_mod.parse_options(line.options_text)
        problem = spec_error
    except spec_mod.SpecError as exc:
        options, problem = None, exc
    if problem is None:
        message = check_mtab(state, source, target, options.remount, prog)
        if message:
            print(message[1], file=sys.stderr)
            return message[0]
    attempts = 1 + (options.retry if options else 0)
    for attempt in range(attempts):
        try:
            if problem:
                # What the kernel refuses comes back from mount(2).
                raise MountError(problem.code, str(problem))
            if not line.fake:
                mount(config, state, spec, target, options,
                      line.options_text)
            return 0
        except config_mod.ConfigError as exc:
            print('%s: %s' % (prog, exc), file=sys.stderr)
            return errno.EINVAL
        except MountError as exc:
            failure = exc
            log(state, 'mount %s at %s: %s' % (source, target, exc.detail))
            if attempt + 1 < attempts and line.verbose:
                print('%s: mount -t lustre %s at %s failed: %s retries '
                      'left: %d' % (prog, source, target,
                                    os.strerror(exc.code),
                                    attempts - attempt - 1),
                      file=sys.stderr)
    report(prog, source, target, failure.code)
    return failure.code


def report(prog, source, target, code):
    print('%s: mount %s at %s failed: %s'
          % (prog, source, target, os.strerror(code)), file=sys.stderr)
    lines = HINTS.get(code, [])
    if code == errno.EINVAL:
        lines = ['This may have multiple causes.']
        # The real helper names what follows the last ':/' here.
        tail = source[source.rfind(':') + 2:] if ':' in source else ''
        if len(source[source.rfind(':'):]) > 2:
            lines.append("Is '%s' the correct filesystem name?" % tail)
        lines += ['Are the mount options correct?',
                  'Check the syslog for more info.']
    for line in lines:
        print(line, file=sys.stderr)


def log(state, message):
    """Keep the kernel-side reason, which the real client puts in dmesg."""
    try:
        state.create()
        with open(os.path.join(state.root, 'standin.log'), 'a') as out:
            out.write('%s mount.lustre[%d]: %s\n'
                      % (time.strftime('%Y-%m-%d %H:%M:%S'), os.getpid(),
                         message))
    except OSError:
        pass


def check_mtab(state, source, target, remount, prog):
    """mount.lustre refuses to mount the same thing twice on a target."""
    with state.locked() as registry:
        table = state_mod.MountTable()
        mounted = any(entry['mountpoint'] == target and
                      entry['spec'] == source and
                      state_mod.client_is_live(entry, table)
                      for entry in registry['clients'])
    if mounted and not remount:
        return errno.EEXIST, ('%s: according to /etc/mtab %s is already '
                              'mounted on %s' % (prog, source, target))
    if remount and not mounted:
        return errno.ENOENT, ('%s: according to /etc/mtab %s is not already '
                              'mounted on %s' % (prog, source, target))
    return None


def normalise_nid(nid):
    address, _sep, net = nid.partition('@')
    parsed = spec_mod.parse_net(net) if net else ('tcp', 0)
    if parsed is None:
        return nid
    name, number = parsed
    return '%s@%s%s' % (address, name, number if number else '')


def take_faults(state, fsname):
    """Consume one injected fault: returns (hang_seconds, fail)."""
    with state.locked(exclusive=True) as registry:
        fault = registry['faults'].get(fsname, {})
        hang = 0
        if fault.get('hang_count', 0) > 0:
            fault['hang_count'] -= 1
            hang = fault.get('hang', 0)
        fail = False
        if fault.get('fail', 0) > 0:
            fault['fail'] -= 1
            fail = True
        if fault and not (fault.get('fail') or fault.get('hang_count')):
            registry['faults'].pop(fsname, None)
    return hang, fail


def mount(config, state, spec, target, options, options_text):
    """What mount(2) does for a Lustre client, stand-in style.

    :raises MountError: with the errno the real client would report.
    """
    if options.remount:
        remount(state, target, options)
        return
    if os.geteuid() != 0:
        raise MountError(errno.EPERM, 'only root can mount')
    if not os.path.isdir(target):
        raise MountError(errno.ENOTDIR, '%s is not a directory' % target)
    hang, fail = take_faults(state, spec.fsname)
    if hang:
        # Outside the lock: a hung mount must not block other mounts.
        time.sleep(hang)
    if fail:
        raise MountError(errno.EIO, 'injected fault: MGS unreachable')
    with state.locked() as registry:
        fs = config.fs(spec.fsname, registry['pools'].get(spec.fsname))
    if fs.mgs:
        wanted = set(normalise_nid(nid) for nid in fs.mgs)
        if not wanted & set(normalise_nid(nid) for nid in spec.nids()):
            raise MountError(errno.EIO, 'no MGS of %s among %s'
                             % (fs.name, ' '.join(spec.nids())))
    if not fs.configured and not config.auto_create:
        raise MountError(errno.ENOENT, 'no filesystem %s' % fs.name)
    with state.locked(exclusive=True) as registry:
        try:
            entry = server.ensure_server(state, registry, fs)
            mount = server.bind_client(entry, spec.subdir, target, options)
        except server.ServerError as exc:
            raise MountError(exc.code, str(exc))
        except util.CommandError as exc:
            raise MountError(errno.EIO, str(exc))
        registry['clients'].append({
            'mountpoint': target, 'spec': spec.text, 'fsname': fs.name,
            'subdir': spec.subdir, 'options': options_text,
            'readonly': options.readonly, 'mount_id': mount.mount_id,
            'dev': mount.dev,
            'instance': state_mod.instance_id(fs.name, mount.mount_id)})


def remount(state, target, options):
    """Change the read-only flag (and friends) of a client mount."""
    flags = ['ro' if options.readonly else 'rw'] + options.flags
    try:
        util.run(['mount', '-o', 'remount,bind,' + ','.join(flags), target])
    except util.CommandError as exc:
        raise MountError(errno.EINVAL, str(exc))
    with state.locked(exclusive=True) as registry:
        for entry in registry['clients']:
            if entry['mountpoint'] == target:
                entry['readonly'] = options.readonly
