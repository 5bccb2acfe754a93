"""``lfs setstripe`` and ``lfs migrate``.

Both take the same layout options.  The checks and messages follow lfs
2.15: option syntax is checked first (usage errors, exit 4 with the help
text), then the layout as a whole, then what the MDS checks when the
layout is applied (an OST index must exist and be in the pool; errors
come back as EINVAL after the file was already created, exactly like
real Lustre leaves an empty, layout-less file behind).

Note the doubled command name in some messages ("lfs setstripe
setstripe: invalid stripe count"): lfs 2.15 prints that.
"""

import errno
import fcntl
import os
import stat
import sys

from lustre_standin import cmdline
from lustre_standin import layout as lay
from lustre_standin import util

R = cmdline.REQUIRED
OPTIONS = [
    cmdline.Option('b', 'b', ('block',)),
    cmdline.Option('c', 'c', ('stripe-count', 'stripe_count', 'mdt-count'),
                   R),
    cmdline.Option('C', 'C', ('overstripe-count',), R),
    cmdline.Option('d', 'd', ('delete', 'destroy', 'directory')),
    cmdline.Option('D', 'D', ('non-direct',)),
    cmdline.Option('E', 'E', ('comp-end', 'component-end'), R),
    cmdline.Option('f', 'f', ('file',), R),
    cmdline.Option('h', 'h', ('help',)),
    cmdline.Option('H', 'H', ('mdt-hash',), R),
    cmdline.Option('i', 'i', ('stripe-index', 'stripe_index'), R),
    cmdline.Option('I', 'I', ('comp-id', 'component-id'), R),
    cmdline.Option('L', 'L', ('layout',), R),
    cmdline.Option('m', 'm', ('mdt', 'mdt-index', 'mdt_index'), R),
    cmdline.Option('n', 'n', ('non-block',)),
    cmdline.Option('N', 'N', ('mirror-count',), cmdline.OPTIONAL),
    cmdline.Option('o', 'o', ('ost', 'ost-list', 'ost_list'), R),
    cmdline.Option('p', 'p', ('pool',), R),
    cmdline.Option('S', 'S', ('stripe-size', 'stripe_size'), R),
    cmdline.Option('v', 'v', ('verbose',)),
    cmdline.Option('x', 'x', ('xattr',), R),
    cmdline.Option('y', 'y', ('yaml',), R),
    cmdline.Option('z', 'z', ('ext-size', 'extension-size'), R),
    cmdline.Option('comp-add', None, ('comp-add', 'component-add')),
    cmdline.Option('comp-del', None, ('comp-del', 'component-del')),
    cmdline.Option('comp-set', None, ('comp-set', 'component-set')),
    cmdline.Option('comp-flags', None, ('comp-flags', 'component-flags'),
                   R),
    cmdline.Option('no-verify', None, ('no-verify',)),
    cmdline.Option('flags', None, ('flags',), R),
    cmdline.Option('foreign', None, ('foreign',), cmdline.OPTIONAL),
    cmdline.Option('mirror-id', None, ('mirror-id',), R),
    cmdline.Option('mode', None, ('mode',), R),
    cmdline.Option('copy', None, ('copy',), R),
]
# Real options the stand-in does not emulate (mirrors, overstriping,
# self-extending and foreign layouts, OST lists, templates, MDT migration).
UNSUPPORTED = frozenset(('C', 'f', 'H', 'I', 'N', 'o', 'x', 'y', 'z',
                         'comp-add', 'comp-del', 'comp-set', 'comp-flags',
                         'no-verify', 'flags', 'foreign', 'mirror-id',
                         'copy'))
MIGRATE_ONLY = {'b': '-b|--block valid only for migrate command',
                'D': '-D|--non-direct is valid only for migrate command',
                'n': '-n|--non-block valid only for migrate command',
                'v': '-v|--verbose valid only for migrate command',
                'm': '-m|--mdt-index is valid only for migrate command'}

F_SETLEASE = getattr(fcntl, 'F_SETLEASE', 1024)


class Usage(Exception):
    """Print these lines, then the command's help, and exit with 4."""

    def __init__(self, *lines):
        message = '\n'.join(lines)
        super().__init__(message)
        self.lines = lines


class Request(object):
    """Stripe options as typed (None: not given, inherit)."""

    def __init__(self):
        self.count = None
        self.size = None
        self.offset = None
        self.pool = None
        self.end = 0

    def specified(self):
        return (self.count is not None or self.size is not None or
                self.offset is not None or self.end != 0)

    def next_component(self):
        """Later components inherit size, count and pool (lfs does)."""
        following = Request()
        following.count = self.count
        following.size = self.size
        following.pool = self.pool
        return following


class Args(object):
    """The parsed command line of setstripe or migrate."""

    def __init__(self):
        self.plain = Request()
        self.comps = []
        self.delete = False
        self.block = False
        self.nonblock = False
        self.verbose = False
        self.mode = 0o666
        self.files = []
        self.keep_layout = False

    @property
    def composite(self):
        return bool(self.comps)


def arg_is_eof(text):
    return text.startswith(('-1', 'EOF', 'eof'))


def parse_args(args, migrate):
    """Parse setstripe/migrate arguments (``args[0]`` is the command).

    :raises Usage: for errors lfs answers with its help text.
    :raises util.CommandError: for the other errors.
    """
    cmd = args[0]
    prog = 'lfs ' + cmd
    parsed = cmdline.parse(args[1:], OPTIONS)
    result = Args()
    req = result.plain
    for key, value in parsed.options:
        if key == '?':
            raise Usage("%s: unrecognized option '%s'" % (prog, value))
        if key in UNSUPPORTED:
            raise util.CommandError(
                errno.EOPNOTSUPP, "%s: option '%s' is not supported by the "
                "Lustre stand-in" % (prog, option_text(key)))
        if key in MIGRATE_ONLY and not migrate:
            raise Usage('%s %s: %s' % (prog, cmd, MIGRATE_ONLY[key]))
        if key == 'E':
            if req.end != 0:
                add_component(result, req, last=False, prog=prog)
                req = req.next_component()
            req.end = parse_comp_end(value, prog, cmd)
        else:
            apply_option(result, req, key, value, prog, cmd, migrate)
    result.files = parsed.operands
    if not result.files:
        raise Usage('%s %s: FILE must be specified' % (prog, cmd))
    if migrate and not result.composite and req.end == 0 and \
            not req.specified() and req.pool is None:
        # "lfs migrate FILE" re-creates the file with its own layout.
        result.keep_layout = True
    if result.delete and (req.specified() or result.comps):
        raise Usage('%s %s: option -d is mutually exclusive with -s, -c, '
                    '-o, -p, -I, -F and -E options' % (prog, cmd))
    if result.block and result.nonblock:
        raise Usage('%s %s: options --non-block and --block are mutually '
                    'exclusive' % (prog, cmd))
    if req.end != 0:
        add_component(result, req, last=True, prog=prog)
    else:
        result.plain = req
    return result


def apply_option(result, req, key, value, prog, cmd, migrate):
    """Record one option other than -E (which starts a component)."""
    if key == 'h':
        raise Usage()
    elif key == 'c':
        count, rest = util.c_strtol(value)
        if rest or not -1 <= count <= lay.MAX_STRIPE_COUNT:
            raise Usage("%s %s: invalid stripe count '%s'"
                        % (prog, cmd, value))
        req.count = count
    elif key == 'S':
        size = util.llapi_parse_size(value)
        if size is not None and size < 4096:
            # Values below 4096 are KiB.
            size *= 1024
        if size is None or size % lay.MIN_STRIPE_SIZE:
            raise Usage("%s %s: invalid stripe size '%s'"
                        % (prog, cmd, value))
        req.size = size
    elif key == 'i':
        index, rest = util.c_strtol(value)
        if rest or not -1 <= index <= 65532:
            raise Usage("%s %s: invalid stripe offset '%s'"
                        % (prog, cmd, value))
        req.offset = None if index == -1 else index
    elif key == 'p':
        req.pool = None if value in ('', 'inherit', 'none') else value
    elif key == 'L':
        if value == 'mdt':
            raise util.CommandError(
                errno.EOPNOTSUPP, "%s: layout 'mdt' (Data-on-MDT) is not "
                "supported by the Lustre stand-in" % prog)
        if value != 'raid0':
            raise util.CommandError(
                errno.EINVAL, "error: layout '%s' is unknown, supported "
                "layouts are: 'mdt', 'raid0'" % value)
    elif key == 'd':
        # "lfs migrate -d" belongs to MDT migration: nothing to do.
        result.delete = not migrate
    elif key == 'm':
        raise util.CommandError(
            errno.EOPNOTSUPP, '%s: MDT migration (-m) is not supported by '
            'the Lustre stand-in' % prog)
    elif key == 'b':
        result.block = True
    elif key == 'n':
        result.nonblock = True
    elif key == 'v':
        result.verbose = True
    elif key == 'mode':
        mode, rest = util.c_strtol('0' + value)
        if rest or mode < 0:
            raise Usage("%s %s: bad mode '%s'" % (prog, cmd, value))
        result.mode = mode


def option_text(key):
    return ('--' + key) if len(key) > 1 else ('-' + key)


def parse_comp_end(value, prog, cmd):
    if arg_is_eof(value):
        return lay.EOF
    end = util.llapi_parse_size(value)
    if end is not None and end < 4096:
        end *= 1024
    if end is None or end % lay.MIN_STRIPE_SIZE:
        raise Usage("%s %s: invalid component end '%s'" % (prog, cmd, value))
    return end


def add_component(result, req, last, prog):
    """Close one -E component, checking what lfs checks at that point."""
    start = result.comps[-1].end if result.comps else 0
    problem = None
    if start > req.end:
        problem = 'Set extent [%d, %d) failed. Invalid argument' % (
            start, req.end)
    elif req.size is not None and req.size >= 1 << 32:
        problem = 'Set stripe size %d failed: Invalid argument' % req.size
    elif req.pool is not None and not pool_name_ok(req.pool):
        problem = 'Set pool name: %s failed. Invalid argument' % req.pool
    if problem:
        if last:
            raise util.CommandError(errno.EINVAL, problem,
                                    'error: %s: invalid layout' % prog)
        raise Usage(problem, '%s: invalid layout' % prog)
    result.comps.append(req)


def pool_name_ok(pool):
    return len(strip_fsname(pool)) <= lay.MAX_POOL_NAME


def strip_fsname(pool):
    """liblustreapi accepts FSNAME.POOL and keeps only POOL."""
    return pool.split('.', 1)[1] if '.' in pool else pool


def layout_sanity(comps):
    """Whole-layout checks of liblustreapi (llapi_layout_sanity).

    :returns: the message lfs prints (on stdout), or None.
    """
    for pos, comp in enumerate(comps):
        start = comps[pos - 1].end if pos else 0
        if pos and comp.end < comps[pos - 1].end:
            return 'Component end is before end of previous component'
        if start == comp.end:
            return 'Zero length components must be followed by extension'
        if comp.size is not None and comp.end != lay.EOF and \
                comp.end % comp.size:
            return 'The component end must be aligned by the stripe size'
    return None


def check_pool(lfs, view, pool, prog):
    """The stand-in's pool existence check (see strict_pools).

    Lustre 2.15 stores an unknown pool name and allocates from all OSTs;
    older lfs refused it with these messages, which the stand-in uses.
    """
    if pool is None or pool == 'ignore':
        return None
    if '.' in pool and pool.split('.', 1)[0] != view.fsname:
        return ("%s: Pool '%s' is not on filesystem '%s': Invalid argument "
                "(22)" % (prog, pool, view.fsname))
    name = strip_fsname(pool)
    if lfs.config.strict_pools and name not in view.fs.pools:
        return ("%s: pool '%s.%s' does not exist: Invalid argument (22)"
                % (prog, view.fsname, name))
    return None


def mds_check(view, comps):
    """What the MDS refuses with EINVAL: a bad start OST index."""
    for comp in comps:
        if comp.offset is None or comp.offset < 0:
            continue
        if comp.offset >= view.fs.osts:
            return False
        pool = strip_fsname(comp.pool) if comp.pool else None
        members = view.fs.pools.get(pool) if pool else None
        if members and comp.offset not in members:
            return False
    return True


def build_layout(view, args, dirpath, for_directory):
    """Turn the requested options into a Layout.

    For a directory the values are kept as given (0/-1 mean "inherit");
    for a file, unspecified values are inherited the way the MDS does:
    from the parent directory's default, then the filesystem default.
    """
    requests = args.comps or [args.plain]
    if for_directory:
        comps = []
        start = 0
        for req in requests:
            comps.append(lay.Component(
                start, req.end if args.composite else lay.EOF,
                req.count or 0, req.size or 0,
                -1 if req.offset is None else req.offset,
                strip_fsname(req.pool) if req.pool else ''))
            start = req.end
        return lay.Layout(comps, composite=args.composite)
    default, _src = lay.directory_default(view, dirpath)
    count, size = lay.fs_default(view)
    parent = default.comps[0]
    comps = []
    start = 0
    for pos, req in enumerate(requests):
        comp = lay.Component(start, req.end if args.composite else lay.EOF)
        if args.composite:
            comp.count = req.count or count
            comp.size = req.size or size
        else:
            plain_parent = not default.composite
            comp.count = req.count or (plain_parent and parent.count) or \
                count
            comp.size = req.size or (plain_parent and parent.size) or size
        if req.offset is not None:
            comp.offset = req.offset
        elif not args.composite and not default.composite:
            comp.offset = parent.offset
        if req.pool is not None:
            comp.pool = '' if req.pool == 'ignore' else \
                strip_fsname(req.pool)
        elif pos == 0:
            comp.pool = parent.pool
        comps.append(comp)
        start = req.end
    return lay.Layout(comps, composite=args.composite)


def instantiate(view, layout, st, gen):
    """Allocate the objects that exist from creation (first component)."""
    layout.gen = gen
    count = lay.fs_default(view)[0]
    for pos, comp in enumerate(layout.comps):
        comp.objects = None
        if pos == 0:
            comp.objects = lay.allocate(view.fs, comp, st.st_ino, pos, gen,
                                        count)


def run_setstripe(lfs, args):
    """``lfs setstripe``: returns the exit status."""
    return run_each(lfs, args, setstripe_one, migrate=False)


def run_each(lfs, args, one, migrate):
    """Parse the arguments, then ``one(lfs, path, parsed)`` for each file.

    :returns: the first failing file's status, else 0.
    """
    try:
        parsed = parse_args(args, migrate=migrate)
    except Usage as exc:
        return lfs.usage(args[0], exc.lines)
    statuses = [one(lfs, path, parsed) for path in parsed.files]
    return next((status for status in statuses if status), 0)


def fail(status, *lines, stdout=()):
    """Print an error and return the status (stdout lines first)."""
    for line in stdout:
        print(line, flush=True)
    return util.CommandError(status, *lines).report()


def setstripe_one(lfs, path, args):
    """Apply a parsed setstripe to one path; returns the exit status."""
    prog = 'lfs setstripe'
    composite = args.composite
    sanity = layout_sanity(args.comps) if composite else None
    if sanity:
        return fail(1, "%s: cannot create composite file '%s': %s"
                    % (prog, path, os.strerror(errno.EINVAL)),
                    stdout=['Invalid layout: ' + sanity])
    plain_size = args.plain.size
    if not composite and plain_size is not None and plain_size >= 1 << 32:
        return fail(errno.EINVAL, "%s: error: stripe size '%d' over 4GB "
                    "limit: Invalid argument (22)" % (prog, plain_size))
    if not composite and args.plain.pool is not None and \
            not pool_name_ok(args.plain.pool):
        return fail(errno.EINVAL, "%s: Invalid Poolname '%s': Invalid "
                    "argument (22)" % (prog, args.plain.pool))

    def layout_error(code, is_dir=False):
        if composite:
            what = 'set default composite layout for' if is_dir else \
                'create composite file'
            return fail(1, "%s: cannot %s '%s': %s"
                        % (prog, what, path, os.strerror(code)))
        return fail(code, "%s: setstripe error for '%s': %s"
                    % (prog, path, 'stripe already set'
                       if code == errno.EEXIST else os.strerror(code)))

    view = lfs.view(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        return open_error(prog, path, exc, composite)
    is_dir = st is not None and stat.S_ISDIR(st.st_mode)
    if view is not None:
        for req in args.comps or [args.plain]:
            message = check_pool(lfs, view, req.pool, prog)
            if message:
                if composite:
                    print(message, file=sys.stderr)
                    return layout_error(errno.EINVAL, is_dir)
                return fail(errno.EINVAL, message)
    created = False
    if st is None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         args.mode)
        except OSError as exc:
            return open_error(prog, path, exc, composite)
        os.close(fd)
        st = os.stat(path)
        created = True
    if view is None:
        # What the layout ioctl (or the lustre.lov xattr) answers on a
        # filesystem that is not Lustre; the file was created all the same.
        return layout_error(errno.ENOTTY, is_dir)
    if is_dir:
        return set_directory_default(view, path, args, layout_error)
    if not stat.S_ISREG(st.st_mode):
        return layout_error(errno.EINVAL)
    if not created and lay.has_layout(path, st):
        # A composite layout goes through the lustre.lov xattr, and the
        # kernel silently ignores EEXIST there: real lfs reports success
        # and leaves the existing layout alone.
        return 0 if composite else layout_error(errno.EEXIST)
    layout = build_layout(view, args, os.path.dirname(path), False)
    if not mds_check(view, layout.comps):
        mark_no_layout(path)
        return layout_error(errno.EINVAL)
    instantiate(view, layout, st, 0)
    try:
        lay.store(path, layout)
        lay.remove(path, lay.XATTR_NOLAYOUT)
    except OSError as exc:
        mark_no_layout(path)
        return layout_error(exc.errno)
    return 0


def mark_no_layout(path):
    """Remember that a file was created without a layout."""
    try:
        os.setxattr(path, lay.XATTR_NOLAYOUT, b'1')
    except OSError:
        pass


def open_error(prog, path, exc, composite):
    """Report a failed open(O_CREAT) the way lfs does."""
    if composite:
        return fail(1, "%s: cannot create composite file '%s': %s"
                    % (prog, path, exc.strerror))
    return fail(exc.errno, "%s: unable to open '%s': %s (%d)"
                % (prog, path, exc.strerror, exc.errno))


def set_directory_default(view, path, args, layout_error):
    """Set, replace or delete a directory's default layout."""
    layout = build_layout(view, args, path, True)
    comp = layout.comps[0]
    try:
        if args.delete or (not layout.composite and not comp.count and
                           not comp.size and comp.offset == -1 and
                           not comp.pool):
            # An all-default layout deletes the default, as on Lustre.
            lay.remove(path, lay.XATTR_DEFAULT)
            return 0
        if not mds_check(view, args.comps or [args.plain]):
            return layout_error(errno.EINVAL, True)
        lay.store(path, layout, lay.XATTR_DEFAULT)
    except OSError as exc:
        return layout_error(exc.errno, True)
    return 0


def run_migrate(lfs, args):
    """``lfs migrate``: returns the exit status."""
    return run_each(lfs, args, migrate_one, migrate=True)


def migrate_one(lfs, path, args):
    """Give one file a new layout; the data stays where it is."""
    prog = 'lfs migrate'

    def error(code, where):
        return fail(code, 'error: %s: %s: %s: %s'
                    % (prog, path, where, os.strerror(code)))

    try:
        fd = os.open(path, os.O_RDWR | os.O_NOATIME)
    except PermissionError:
        # O_NOATIME needs ownership; lfs would still open the file.
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError as exc:
            return error(exc.errno, 'cannot open source file')
    except OSError as exc:
        return error(exc.errno, 'cannot open source file')
    try:
        view = lfs.view(path)
        if view is None:
            return error(errno.ENOTTY, 'cannot get MDT index')
        st = os.fstat(fd)
        if args.composite and layout_sanity(args.comps):
            print('Invalid layout: ' + layout_sanity(args.comps), flush=True)
            return error(errno.EINVAL, 'cannot create volatile file')
        if args.keep_layout:
            current = lay.file_layout(view, path, st)
            layout = current.layout.copy() if current else \
                build_layout(view, args, os.path.dirname(path), False)
        else:
            for req in args.comps or [args.plain]:
                message = check_pool(lfs, view, req.pool, prog)
                if message:
                    print(message, file=sys.stderr)
                    return error(errno.EINVAL, 'cannot create volatile file')
            if not args.composite and args.plain.size is not None and \
                    args.plain.size >= 1 << 32:
                return error(errno.EINVAL, 'cannot create volatile file')
            layout = build_layout(view, args, os.path.dirname(path), False)
        if not mds_check(view, layout.comps):
            return error(errno.EINVAL, 'cannot create volatile file')
        if args.nonblock and is_busy(fd, st):
            return error(errno.EBUSY, 'cannot get lease')
        current = lay.load(path)
        instantiate(view, layout, st, (current.gen if current else 0) + 1)
        try:
            lay.store(path, layout)
            lay.remove(path, lay.XATTR_NOLAYOUT)
        except OSError as exc:
            return error(exc.errno, 'cannot swap layout')
    finally:
        os.close(fd)
    if args.verbose:
        print(path, flush=True)
    return 0


def is_busy(fd, st):
    """Whether another open file description exists for the file.

    A write lease is refused (EAGAIN) while anyone else has the file open,
    which is what Lustre's lease in ``lfs migrate --non-block`` detects.
    Leases need ownership (or CAP_LEASE); otherwise scan /proc.
    """
    try:
        fcntl.fcntl(fd, F_SETLEASE, fcntl.F_WRLCK)
    except OSError as exc:
        if exc.errno == errno.EAGAIN:
            return True
        return opened_elsewhere(st)
    fcntl.fcntl(fd, F_SETLEASE, fcntl.F_UNLCK)
    return False


def opened_elsewhere(st):
    """Whether another process has the file open (/proc/*/fd)."""
    me = str(os.getpid())
    for pid in os.listdir('/proc'):
        if not pid.isdigit() or pid == me:
            continue
        fd_dir = '/proc/%s/fd' % pid
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                other = os.stat(os.path.join(fd_dir, name))
            except OSError:
                continue
            if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                return True
    return False
