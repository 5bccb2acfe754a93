"""``lfs getstripe``."""

import errno
import os
import stat
import sys

from lustre_standin import cmdline
from lustre_standin import dump
from lustre_standin import layout as lay

OPTIONS = [
    cmdline.Option('comp-count', None, ('comp-count', 'component-count')),
    cmdline.Option('comp-flags', None, ('comp-flags', 'component-flags'),
                   cmdline.OPTIONAL),
    cmdline.Option('comp-start', None, ('comp-start', 'component-start'),
                   cmdline.OPTIONAL),
    cmdline.Option('mirror-index', None, ('mirror-index',), cmdline.REQUIRED),
    cmdline.Option('mirror-id', None, ('mirror-id',), cmdline.REQUIRED),
    cmdline.Option('no-follow', None, ('no-follow',)),
    cmdline.Option('c', 'c', ('stripe-count', 'stripe_count')),
    cmdline.Option('d', 'd', ('directory',)),
    cmdline.Option('D', 'D', ('default',)),
    cmdline.Option('E', 'E', ('comp-end', 'component-end'), cmdline.OPTIONAL),
    cmdline.Option('F', 'F', ('fid',)),
    cmdline.Option('g', 'g', ('generation',)),
    cmdline.Option('h', 'h', ('help',)),
    cmdline.Option('i', 'i', ('stripe-index', 'stripe_index')),
    cmdline.Option('I', 'I', ('comp-id', 'component-id'), cmdline.OPTIONAL),
    cmdline.Option('L', 'L', ('layout',)),
    cmdline.Option('m', 'm', ('mdt', 'mdt-index', 'mdt_index')),
    cmdline.Option('M', 'M', ()),
    cmdline.Option('N', 'N', ('mirror-count',)),
    cmdline.Option('O', 'O', ('obd', 'ost'), cmdline.REQUIRED),
    cmdline.Option('p', 'p', ('pool',)),
    cmdline.Option('q', 'q', ('quiet',)),
    cmdline.Option('r', 'r', ('recursive',)),
    cmdline.Option('R', 'R', ('raw',)),
    cmdline.Option('S', 'S', ('stripe-size', 'stripe_size')),
    cmdline.Option('v', 'v', ('verbose',)),
    cmdline.Option('y', 'y', ('yaml',)),
    cmdline.Option('z', 'z', ('extension-size', 'ext-size')),
]
# Single-field options: each shows one field and stops the descent into
# directories (liblustreapi's max_depth = 0).
FIELDS = {'c': dump.VERBOSE_STRIPE_COUNT, 'S': dump.VERBOSE_STRIPE_SIZE,
          'i': dump.VERBOSE_STRIPE_OFFSET, 'p': dump.VERBOSE_POOL,
          'g': dump.VERBOSE_GENERATION, 'L': dump.VERBOSE_PATTERN,
          'F': dump.VERBOSE_DFID, 'N': dump.VERBOSE_MIRROR_COUNT,
          'comp-count': dump.VERBOSE_COMP_COUNT,
          'comp-flags': dump.VERBOSE_COMP_FLAGS,
          'comp-start': dump.VERBOSE_COMP_START,
          'E': dump.VERBOSE_COMP_END, 'I': dump.VERBOSE_COMP_ID}
# Filters and other options the stand-in does not emulate.
UNSUPPORTED = frozenset(('mirror-index', 'mirror-id', 'O', 'v', 'z'))


class Params(object):
    """What to print: liblustreapi's verbose mask, depth and flags."""

    def __init__(self):
        self.verbose = 0
        self.max_depth = 1
        self.yaml = False
        self.raw = False
        self.quiet = False
        self.recursive = False
        self.mdt_index = False
        self.default_lmv = False


def parse(lfs, args):
    """:returns: (params, paths) or an exit status (int) on error."""
    parsed = cmdline.parse(args[1:], OPTIONS)
    params = Params()
    for key, value in parsed.options:
        if key == '?':
            return lfs.usage(args[0], ["lfs: unrecognized option '%s'"
                                       % value])
        if key in UNSUPPORTED or (key in ('comp-flags', 'comp-start', 'E',
                                          'I') and value is not None):
            name = ('-' + key) if len(key) == 1 else ('--' + key)
            print("lfs getstripe: option '%s' is not supported by the "
                  "Lustre stand-in" % name, file=sys.stderr)
            return errno.EOPNOTSUPP
        if key == 'h':
            return lfs.usage(args[0], [])
        if key in FIELDS:
            params.verbose |= FIELDS[key]
            params.max_depth = 0
        elif key == 'd':
            params.max_depth = 0
        elif key == 'D':
            params.default_lmv = True
        elif key in ('m', 'M'):
            params.mdt_index = True
            params.max_depth = 0
        elif key == 'q':
            params.quiet = True
        elif key == 'r':
            params.recursive = True
        elif key == 'R':
            params.raw = True
        elif key == 'y':
            params.yaml = True
    if not parsed.operands:
        return lfs.usage(args[0], ['error: %s: no filename|pathname'
                                   % args[0]])
    if params.recursive:
        params.max_depth = -1
    if not params.verbose:
        params.verbose = dump.VERBOSE_DEFAULT
    if params.quiet:
        params.verbose = dump.VERBOSE_OBJID
    return params, parsed.operands


def run(lfs, args):
    """``lfs getstripe``: returns the exit status."""
    result = parse(lfs, args)
    if isinstance(result, int):
        return result
    params, paths = result
    status = 0
    for path in paths:
        status = show_path(lfs, path, params)
        if status:
            break
    if status:
        # lfs names the last argument here, whichever path failed.
        print('error: getstripe failed for %s.' % args[-1], file=sys.stderr)
    return status


def show_path(lfs, path, params):
    if not os.path.lexists(path):
        return errno.ENOENT
    view = lfs.view(path)
    if view is None:
        print("lfs getstripe: cb_getstripe: '%s' not on a Lustre fs?: "
              "Inappropriate ioctl for device (25)" % path, file=sys.stderr)
        return errno.ENOTTY
    try:
        st = os.stat(path)
    except OSError as exc:
        return exc.errno
    show_entry(lfs, view, path, st, params, 0)
    return 0


def show_entry(lfs, view, path, st, params, depth):
    """Print one file or directory, then descend as far as allowed."""
    out = sys.stdout
    if params.mdt_index:
        out.write('0\n')
    elif params.default_lmv:
        if stat.S_ISDIR(st.st_mode):
            out.write(dump.default_lmv_text(path, params.max_depth))
    elif stat.S_ISDIR(st.st_mode):
        out.write(directory_text(lfs, view, path, st, params))
    elif stat.S_ISREG(st.st_mode):
        out.write(file_text(lfs, view, path, st, params))
    else:
        out.write('%s has no stripe info\n' % path)
    out.flush()
    if not stat.S_ISDIR(st.st_mode) or params.max_depth == 0 or \
            (params.max_depth > 0 and depth >= params.max_depth):
        return
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return
    for name in names:
        child = os.path.join(path, name)
        try:
            child_st = os.stat(child)
        except OSError:
            continue
        if stat.S_ISDIR(child_st.st_mode) and os.path.islink(child):
            # liblustreapi does not descend through symlinks.
            show_entry(lfs, view, child, child_st, params,
                       params.max_depth)
            continue
        show_entry(lfs, view, child, child_st, params, depth + 1)


def has_comp_options(verbose):
    if (verbose & ~dump.VERBOSE_DETAIL) == dump.VERBOSE_DEFAULT:
        return False
    return bool(verbose & dump.VERBOSE_COMP_OPTS)


def file_text(lfs, view, path, st, params):
    fl = lay.file_layout(view, path, st)
    if fl is None:
        return '%s has no stripe info\n' % path
    fid = lay.file_fid(st)
    v216 = lfs.config.version_tuple() >= (2, 16)
    entries = []
    for pos, (comp, init) in enumerate(fl.components):
        if init:
            objects = [(ost, objid, lay.object_fid(ost, objid))
                       for ost, objid in comp.objects]
            lmm = dump.Lmm(len(objects), comp.size, comp.offset, comp.pool,
                           objects, gen=0 if fl.composite else fl.layout.gen,
                           fid=fid)
        else:
            lmm = dump.Lmm(comp.count, comp.size, comp.offset, comp.pool,
                           fid=fid)
        entries.append(dump.Entry(pos + 1, 'init' if init else '0',
                                  comp.start, comp.end, lmm, init))
    if fl.composite:
        return dump.composite_text(entries, fl.layout_gen(), path,
                                   params.max_depth, params.verbose,
                                   yaml=params.yaml, v216=v216)
    if has_comp_options(params.verbose):
        forged = dump.Entry(0, 'init', 0, dump.EOF, entries[0].lmm, True)
        return dump.composite_text([forged], fl.layout.gen, path,
                                   params.max_depth, params.verbose,
                                   yaml=params.yaml, v216=v216, forged=True)
    return dump.lmm_text(entries[0].lmm, path, params.max_depth,
                         params.verbose, yaml=params.yaml)


def directory_text(lfs, view, path, st, params):
    """A directory's default layout (the filesystem default if none)."""
    default, source = lay.directory_default(view, path)
    count, size = lay.fs_default(view)
    if source is None:
        # No default anywhere: liblustreapi fakes an empty one.
        default = lay.Layout([lay.Component()])
    v216 = lfs.config.version_tuple() >= (2, 16)
    entries = []
    for comp in default.comps:
        shown_count = comp.count if (params.raw or comp.count) else count
        shown_size = comp.size if (params.raw or comp.size) else size
        lmm = dump.Lmm(shown_count, shown_size, comp.offset, comp.pool,
                       fid=lay.file_fid(st))
        entries.append(dump.Entry(None, '0', comp.start, comp.end, lmm,
                                  False))
    if default.composite:
        return dump.composite_text(entries, 0, path, params.max_depth,
                                   params.verbose, is_dir=True,
                                   yaml=params.yaml, v216=v216)
    if has_comp_options(params.verbose):
        forged = dump.Entry(0, '0', 0, dump.EOF, entries[0].lmm, False)
        return dump.composite_text([forged], 0, path, params.max_depth,
                                   params.verbose, is_dir=True,
                                   yaml=params.yaml, v216=v216, forged=True)
    return dump.lmm_text(entries[0].lmm, path, params.max_depth,
                         params.verbose, is_dir=True, yaml=params.yaml)
