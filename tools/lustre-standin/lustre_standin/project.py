"""``lfs project`` and ``lfs quota -p``, with emulated project IDs.

Lustre keeps project IDs in the inode (FS_IOC_FSSETXATTR), like ext4 with
its "project" feature; this machine's kernel has no quota support, so the
stand-in keeps them in the ``user.lustre_standin.project`` xattr instead
("ID P" with the inherit flag, "ID -" without).

Files and directories created in a directory with the inherit flag get
its project ID (and directories the flag too).  Files created by other
programs carry no xattr, so the inherited ID is found by walking up to the
nearest directory that has one, which gives the same answer as long as
the settings do not change after the files were created.

``lfs quota -p`` reports the usage of a project by walking the whole
filesystem and summing the blocks of its files: exact, but O(files).
Limits are always 0 (``lfs setquota`` is not emulated).
"""

import errno
import os
import pwd
import stat
import sys

from lustre_standin import cmdline
from lustre_standin import layout as lay

XATTR_PROJECT = 'user.lustre_standin.project'

PROJECT_HELP = (
    'Change or list project attribute for specified file or directory.\n'
    'usage: project [-d|-r] <file|directory...>\n'
    '         list project ID and flags on file(s) or directories\n'
    '       project [-p id] [-s] [-r] <file|directory...>\n'
    '         set project ID and/or inherit flag for specified file(s) or '
    'directories\n'
    '       project -c [-d|-r [-p id] [-0]] <file|directory...>\n'
    '         check project ID and flags on file(s) or directories, print '
    'outliers\n'
    '       project -C [-d|-r] [-k] <file|directory...>\n'
    '         clear the project inherit flag and ID on the file or '
    'directory\n')
QUOTA_HELP = (
    'Display disk usage and limits.\n'
    'usage: quota [-q] [-h] {-p projid|projname} <filesystem>\n')


def own_setting(path):
    """``(projid, inherit)`` set on ``path`` itself, or None."""
    raw = lay.get_xattr(path, XATTR_PROJECT)
    if raw is None:
        return None
    try:
        ident, flag = raw.decode().split()
        return int(ident), flag == 'P'
    except ValueError:
        return None


def effective(view, path, st):
    """The project ID and inherit flag ``path`` has (see module doc)."""
    mine = own_setting(path)
    if mine is not None:
        return mine
    parent = os.path.dirname(os.path.abspath(path))
    for directory in lay.ancestors(view, parent):
        setting = own_setting(directory)
        if setting is not None:
            projid, inherit = setting
            if not inherit:
                return 0, False
            return projid, stat.S_ISDIR(st.st_mode)
    return 0, False


def store(path, projid, inherit):
    os.setxattr(path, XATTR_PROJECT,
                ('%d %s' % (projid, 'P' if inherit else '-')).encode())


def parse_projid(text):
    """A project ID: a number or a name from /etc/projid (or u:/g:)."""
    try:
        value = int(text, 10)
        if 0 <= value < 0xffffffff:
            return value
        return None
    except ValueError:
        pass
    if text.startswith(('u:', 'user:')):
        try:
            return pwd.getpwnam(text.split(':', 1)[1]).pw_uid
        except KeyError:
            return None
    try:
        with open('/etc/projid') as src:
            for line in src:
                name, _sep, ident = line.strip().partition(':')
                if name == text and ident.isdigit():
                    return int(ident)
    except OSError:
        pass
    return None


class Control(object):
    def __init__(self):
        self.op = 'list'
        self.projid = None
        self.set_inherit = False
        self.dironly = False
        self.recursive = False
        self.keep = False
        self.newline = True


def run_project(lfs, args):
    ctl = Control()
    parsed = cmdline.parse(args[1:], [
        cmdline.Option(char, char, (), cmdline.REQUIRED if char == 'p'
                       else cmdline.NONE) for char in 'pcCsdkr0'])
    for key, value in parsed.options:
        if key == '?':
            return lfs.usage('project', ["lfs: invalid option '%s'"
                                         % value.lstrip('-')[:1]])
        if key in 'cCs':
            if ctl.op != 'list':
                return lfs.usage('project', [
                    "lfs: cannot specify '-c' '-C' '-s' together"])
            ctl.op = {'c': 'check', 'C': 'clear', 's': 'set'}[key]
            ctl.set_inherit = key == 's'
        elif key == 'p':
            ctl.projid = parse_projid(value)
            if ctl.projid is None:
                return lfs.usage('project', ['Invalid project ID: %s'
                                             % value])
        elif key == 'd':
            ctl.dironly = True
        elif key == 'k':
            ctl.keep = True
        elif key == 'r':
            ctl.recursive = True
        elif key == '0':
            ctl.newline = False
    if ctl.projid is not None and ctl.op == 'list':
        ctl.op = 'set'
    if not parsed.operands:
        return lfs.usage('project', [
            'lfs: missing file or directory target(s)'])
    status = 0
    for path in parsed.operands:
        code = iterate(lfs, path, ctl)
        status = status or code
    return status


def iterate(lfs, path, ctl):
    """Apply the operation like lfs: the path, its entries, recursively."""
    try:
        st = os.stat(path)
    except OSError as exc:
        print("lfs: failed to stat '%s': %s" % (path, exc.strerror),
              file=sys.stderr)
        return exc.errno
    view = lfs.view(path)
    if view is None:
        print("lfs: failed to get xattr for '%s': %s"
              % (path, os.strerror(errno.ENOTTY)), file=sys.stderr)
        return errno.ENOTTY
    status = 0
    if ctl.op == 'check' and ctl.projid is None:
        # Check against the top directory's own ID.
        ctl.projid = effective(view, path, st)[0]
    is_dir = stat.S_ISDIR(st.st_mode)
    if not is_dir or ctl.dironly or ctl.op != 'list':
        status = apply(view, path, st, ctl)
    if not is_dir or ctl.dironly or status:
        return status
    pending = [path]
    while pending:
        directory = pending.pop(0)
        for name in sorted(os.listdir(directory)):
            child = os.path.join(directory, name)
            child_st = os.lstat(child)
            code = apply(view, child, child_st, ctl)
            status = status or code
            if ctl.recursive and stat.S_ISDIR(child_st.st_mode):
                pending.append(child)
    return status


def apply(view, path, st, ctl):
    projid, inherit = effective(view, path, st)
    if ctl.op == 'list':
        print('%5u %c %s' % (projid, 'P' if inherit else '-', path))
        return 0
    if ctl.op == 'check':
        end = '\0' if not ctl.newline else '\n'
        if not inherit and stat.S_ISDIR(st.st_mode):
            print(path if not ctl.newline else
                  '%s - project inheritance flag is not set' % path,
                  end=end)
            if not ctl.newline:
                return 0
        if projid != ctl.projid:
            print(path if not ctl.newline else
                  '%s - project identifier is not set (inode=%u, tree=%u)'
                  % (path, projid, ctl.projid), end=end)
        return 0
    if ctl.op == 'clear':
        new = (projid if ctl.keep else 0, False)
    else:
        new = (projid if ctl.projid is None else ctl.projid,
               inherit or ctl.set_inherit)
    if new == (projid, inherit) and own_setting(path) is not None:
        return 0
    try:
        # Like ext4, the inherit flag only sticks on directories.
        store(path, new[0], new[1] and stat.S_ISDIR(st.st_mode))
    except OSError as exc:
        print("lfs: failed to set xattr for '%s': %s"
              % (path, exc.strerror), file=sys.stderr)
        return exc.errno
    return 0


def usage_of(view, projid):
    """Blocks (KiB) and inodes charged to ``projid`` on the filesystem."""
    root = view.server_root or view.mountpoint
    kbytes = files = 0
    pending = [(root, os.stat(root), None)]
    while pending:
        path, st, inherited = pending.pop()
        own = own_setting(path)
        if own is not None:
            current = own
        elif inherited is not None and inherited[1]:
            current = (inherited[0], stat.S_ISDIR(st.st_mode))
        else:
            current = (0, False)
        if current[0] == projid:
            files += 1
            kbytes += (st.st_blocks * 512 + 1023) // 1024
        if stat.S_ISDIR(st.st_mode):
            try:
                names = os.listdir(path)
            except OSError:
                continue
            for name in names:
                child = os.path.join(path, name)
                try:
                    pending.append((child, os.lstat(child), current))
                except OSError:
                    continue
    return kbytes, files


def human(kbytes):
    for shift, suffix in ((40, 'P'), (30, 'T'), (20, 'G'), (10, 'M')):
        if kbytes >> shift:
            return '%5.4g%s' % (kbytes / float(1 << shift), suffix)
    return '%dk' % kbytes


def run_quota(lfs, args):
    parsed = cmdline.parse(args[1:], [
        cmdline.Option('p', 'p', ()), cmdline.Option('q', 'q', ()),
        cmdline.Option('h', 'h', ()), cmdline.Option('u', 'u', ()),
        cmdline.Option('g', 'g', ()), cmdline.Option('v', 'v', ())])
    is_project = quiet = readable = False
    for key, value in parsed.options:
        if key == '?':
            return lfs.usage('quota', ["lfs quota: unrecognized option '%s'"
                                       % value])
        if key in 'ug':
            print("lfs quota: user and group quotas are not emulated by "
                  "the Lustre stand-in", file=sys.stderr)
            return errno.EOPNOTSUPP
        is_project |= key == 'p'
        quiet |= key == 'q'
        readable |= key == 'h'
    if not is_project or len(parsed.operands) != 2:
        return lfs.usage('quota', [
            'lfs quota: name and mount point must be specified'])
    name, mnt = parsed.operands
    projid = parse_projid(name)
    if projid is None:
        return lfs.usage('quota', ["lfs quota: invalid id '%s'" % name])
    view = lfs.view(mnt) if os.path.exists(mnt) else None
    if view is None:
        try:
            dev = os.stat(mnt).st_dev
            print("lfs quota: '%d/%d' dev not on a mounted Lustre "
                  'filesystem' % (os.major(dev), os.minor(dev)),
                  file=sys.stderr)
            return errno.ENODEV
        except OSError as exc:
            print("lfs quota: cannot resolve path '%s': %s (%d)"
                  % (mnt, exc.strerror, exc.errno), file=sys.stderr)
            return exc.errno
    kbytes, files = usage_of(view, projid)
    if not quiet:
        print('Disk quotas for prj %s (pid %u):' % (name, projid))
        print('%15s%8s %7s%8s%8s%8s %7s%8s%8s' % (
            'Filesystem', 'used' if readable else 'kbytes', 'quota',
            'limit', 'grace', 'files', 'quota', 'limit', 'grace'))
    # lfs puts a long mount point on a line of its own.
    head = '%15s' % mnt if len(mnt) <= 15 else '%s\n%15s' % (mnt, '')
    used = human(kbytes) if readable else str(kbytes)
    limit = human(0) if readable else '0'
    print('%s %7s%c %6s %7s %7s %7s%c %6s %7s %7s' % (
        head, used, ' ', limit, limit, '-', files, ' ', 0, 0, '-'))
    return 0
