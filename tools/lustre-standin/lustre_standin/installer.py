"""Installing and removing the stand-in.

``install`` puts the helpers where the system looks for them
(/sbin/mount.lustre for mount(8), /usr/bin/lfs, /usr/local/sbin for the
admin command), the library under /usr/local/lib/lustre-standin, and a
default configuration if there is none.  It never overwrites a mount.lustre
or lfs that is not its own: that would be a real Lustre client.  Every
path it creates goes into a manifest, so that ``uninstall`` can put the
machine back as it was.  ``--prefix`` installs under another root (tests).
"""

import os
import shutil
import sys

from lustre_standin import config as config_mod
from lustre_standin import MARKER
from lustre_standin import server
from lustre_standin import state as state_mod
from lustre_standin import util

SCRIPTS = (('mount.lustre', 'sbin/mount.lustre'),
           ('lfs', 'usr/bin/lfs'),
           ('lustre-standin', 'usr/local/sbin/lustre-standin'))
LIBDIR = 'usr/local/lib/lustre-standin'
PACKAGE = 'lustre_standin'
CONF = 'etc/lustre-standin/standin.conf'
MANIFEST = LIBDIR + '/MANIFEST.json'

DEFAULT_CONFIG = """\
# Configuration of the Lustre stand-in (tests and demos only); see
# tools/lustre-standin/README.rst.  Written by tools/lustre-standin/install,
# removed by tools/lustre-standin/uninstall.

[standin]
# Images, mount points and the mount registry live here.
state_dir = %(state_dir)s
# Version reported by "lfs --version" and "mount.lustre -V".
version = 2.15.6
# Size of each filesystem's sparse image, and its number of OSTs.
image_size = 20G
osts = 4
# Filesystem default layout.
stripe_count = 1
stripe_size = 1M
# Refuse "lfs setstripe -p POOL" for a pool that does not exist (Lustre
# 2.15 itself would accept it and allocate from all OSTs).
strict_pools = yes
# Create a filesystem on first mount of any valid name; with "no" only
# names that have an [fs:NAME] section mount (others fail with ENOENT).
auto_create = yes

# One section per filesystem, all keys optional:
# [fs:lfs01]
# size = 50G
# osts = 8
# pools = flash:0-1 disk:2-7
# mgs = 10.0.0.1@tcp 10.0.0.2@tcp
"""


class InstallError(Exception):
    pass


def under(prefix, rel):
    return os.path.join(prefix, rel)


def is_ours(path):
    """Whether an existing file was written by this installer."""
    try:
        with open(path, 'rb') as src:
            return MARKER.encode() in src.read(4096)
    except OSError:
        return False


def make_dirs(path, created):
    """os.makedirs that records the directories it creates."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        os.mkdir(directory, 0o755)
        os.chmod(directory, 0o755)
        created.append(directory)


def script_text(source, libdir, python):
    """The script with an absolute interpreter and library directory.

    mount(8), sudo and rootwrap run helpers with a minimal PATH, so
    "#!/usr/bin/env python3" is not good enough; -I keeps PYTHONPATH and
    the user's site packages out of a root helper.
    """
    lines = open(source).read().splitlines(True)
    lines[0] = '#!%s -I\n' % python
    for pos, line in enumerate(lines):
        if line.startswith('LIBDIR = '):
            lines[pos] = 'LIBDIR = %r\n' % libdir
    return ''.join(lines)


def install(source_dir, prefix='/', python='/usr/bin/python3'):
    """Install (or update) the stand-in; idempotent.

    :raises InstallError: if a foreign mount.lustre or lfs is in the way.
    """
    if not os.access(python, os.X_OK):
        raise InstallError('%s is not an executable interpreter' % python)
    targets = [(name, under(prefix, rel)) for name, rel in SCRIPTS]
    for _name, target in targets:
        if os.path.lexists(target) and not is_ours(target):
            raise InstallError(
                'refusing to overwrite %s: it is not part of the Lustre '
                'stand-in (a real Lustre client is installed?)' % target)
    manifest_path = under(prefix, MANIFEST)
    manifest = util.read_json(manifest_path, {'files': [], 'dirs': [],
                                              'config': None})
    files = set(manifest['files'])
    dirs = list(manifest['dirs'])
    libdir = under(prefix, LIBDIR)
    make_dirs(os.path.join(libdir, PACKAGE), dirs)
    package_src = os.path.join(source_dir, PACKAGE)
    for name in sorted(os.listdir(package_src)):
        if name.endswith('.py'):
            target = os.path.join(libdir, PACKAGE, name)
            shutil.copyfile(os.path.join(package_src, name), target)
            os.chmod(target, 0o644)
            files.add(target)
    for name, target in targets:
        make_dirs(os.path.dirname(target), dirs)
        tmp = target + '.standin-new'
        with open(tmp, 'w') as out:
            out.write(script_text(os.path.join(source_dir, name), libdir,
                                  python))
        os.chmod(tmp, 0o755)
        os.rename(tmp, target)
        files.add(target)
    conf = under(prefix, CONF)
    if not os.path.exists(conf):
        make_dirs(os.path.dirname(conf), dirs)
        state_dir = under(prefix, 'var/lib/lustre-standin')
        with open(conf, 'w') as out:
            out.write(DEFAULT_CONFIG % {'state_dir': state_dir})
        os.chmod(conf, 0o644)
        manifest['config'] = conf
    manifest['files'] = sorted(files)
    manifest['dirs'] = dirs
    util.write_json_atomic(manifest_path, manifest)
    return [target for _name, target in targets]


def uninstall(prefix='/'):
    """Unmount everything, remove state and every installed file.

    Works without a manifest too (then only files carrying our marker are
    removed), and when mounts are already gone.

    :returns: a list of warnings.
    """
    warnings = []
    manifest_path = under(prefix, MANIFEST)
    manifest = util.read_json(manifest_path, None)
    conf = under(prefix, CONF)
    try:
        config = config_mod.Config(conf if os.path.exists(conf) else
                                   os.devnull)
        if not os.path.exists(conf) and prefix != '/':
            config.state_dir = under(prefix, 'var/lib/lustre-standin')
        warnings += remove_state(config)
    except config_mod.ConfigError as exc:
        warnings.append('cannot read %s: %s' % (conf, exc))
    if manifest is None:
        for _name, rel in SCRIPTS:
            target = under(prefix, rel)
            if is_ours(target):
                os.unlink(target)
        libdir = under(prefix, LIBDIR)
        if is_ours(os.path.join(libdir, PACKAGE, '__init__.py')):
            shutil.rmtree(libdir)
        return warnings
    for path in manifest['files']:
        if os.path.lexists(path):
            os.unlink(path)
    if manifest.get('config') and os.path.exists(manifest['config']):
        os.unlink(manifest['config'])
    os.unlink(manifest_path)
    for path in reversed(manifest['dirs']):
        pycache = os.path.join(path, '__pycache__')
        if os.path.isdir(pycache):
            shutil.rmtree(pycache)
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError:
            warnings.append('%s is not empty, left in place' % path)
    return warnings


def remove_state(config):
    """Unmount the stand-in's mounts and delete its state directory."""
    state = state_mod.State(config)
    if not os.path.isdir(state.root):
        return []
    with state.locked(exclusive=True) as registry:
        warnings = server.cleanup(state, registry)
    marker = os.path.join(state.root, state_mod.STATE_MARKER)
    if not os.path.exists(marker):
        return warnings + ['%s has no %s marker, left in place'
                           % (state.root, state_mod.STATE_MARKER)]
    busy = [m.mountpoint for m in state_mod.MountTable().mounts
            if m.mountpoint.startswith(state.root + '/')]
    if busy:
        return warnings + ['still mounted: %s; %s left in place'
                           % (' '.join(busy), state.root)]
    shutil.rmtree(state.root)
    return warnings


def main_install(argv, source_dir):
    prefix, python = '/', '/usr/bin/python3'
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        if arg == '--prefix' and args:
            prefix = os.path.abspath(args.pop(0))
        elif arg == '--python' and args:
            python = args.pop(0)
        else:
            print('usage: install [--prefix DIR] [--python PATH]',
                  file=sys.stderr)
            return 2
    try:
        installed = install(source_dir, prefix, python)
    except (InstallError, OSError) as exc:
        print('install: %s' % exc, file=sys.stderr)
        return 1
    for path in installed:
        print('installed %s' % path)
    return 0


def main_uninstall(argv):
    prefix = '/'
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        if arg == '--prefix' and args:
            prefix = os.path.abspath(args.pop(0))
        else:
            print('usage: uninstall [--prefix DIR]', file=sys.stderr)
            return 2
    try:
        warnings = uninstall(prefix)
    except OSError as exc:
        print('uninstall: %s' % exc, file=sys.stderr)
        return 1
    for warning in warnings:
        print('uninstall: warning: %s' % warning, file=sys.stderr)
    return 0
