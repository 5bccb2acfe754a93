"""Text output of ``lfs getstripe``, byte for byte as Lustre 2.15 prints it.

The rules below follow liblustreapi's layout dump (``verbose`` is its
bitmask of fields to show): a label is printed only when more than one
field is asked for; directory defaults print on one line; every layout
dump ends with an empty line; composite layouts print a header and one
block per component.  Lustre 2.16 changed the YAML form of composite
layouts (``components:`` list instead of ``componentN:`` keys); the
configured version selects which one is printed.
"""

VERBOSE_STRIPE_COUNT = 0x1
VERBOSE_STRIPE_SIZE = 0x2
VERBOSE_STRIPE_OFFSET = 0x4
VERBOSE_POOL = 0x8
VERBOSE_DETAIL = 0x10
VERBOSE_OBJID = 0x20
VERBOSE_GENERATION = 0x40
VERBOSE_MDTINDEX = 0x80
VERBOSE_PATTERN = 0x100
VERBOSE_COMP_COUNT = 0x200
VERBOSE_COMP_FLAGS = 0x400
VERBOSE_COMP_START = 0x800
VERBOSE_COMP_END = 0x1000
VERBOSE_COMP_ID = 0x2000
VERBOSE_DFID = 0x4000
VERBOSE_HASH_TYPE = 0x8000
VERBOSE_MIRROR_COUNT = 0x10000
VERBOSE_MIRROR_ID = 0x20000
VERBOSE_EXT_SIZE = 0x40000
VERBOSE_INHERIT = 0x80000
VERBOSE_INHERIT_RR = 0x100000
VERBOSE_DEFAULT = (
    VERBOSE_STRIPE_COUNT | VERBOSE_STRIPE_SIZE | VERBOSE_STRIPE_OFFSET |
    VERBOSE_POOL | VERBOSE_OBJID | VERBOSE_GENERATION | VERBOSE_PATTERN |
    VERBOSE_HASH_TYPE | VERBOSE_COMP_COUNT | VERBOSE_COMP_FLAGS |
    VERBOSE_COMP_START | VERBOSE_COMP_END | VERBOSE_COMP_ID |
    VERBOSE_MIRROR_COUNT | VERBOSE_MIRROR_ID | VERBOSE_EXT_SIZE |
    VERBOSE_INHERIT | VERBOSE_INHERIT_RR)
VERBOSE_COMP_OPTS = (VERBOSE_COMP_COUNT | VERBOSE_COMP_ID |
                     VERBOSE_COMP_START | VERBOSE_COMP_END |
                     VERBOSE_COMP_FLAGS)

EOF = 0xffffffffffffffff


class Lmm(object):
    """One plain layout (or component sub-layout) ready to print.

    ``objects`` is a list of ``(ost_index, object_id, fid)``, or None when
    the layout has no objects to show (a directory default or a component
    not instantiated yet).
    """

    def __init__(self, count, size, offset, pool, objects=None, gen=0,
                 pattern='raid0', fid=None):
        self.count = count
        self.size = size
        self.offset = offset
        self.pool = pool
        self.objects = objects
        self.gen = gen
        self.pattern = pattern
        self.fid = fid


class Entry(object):
    """One component of a composite layout, ready to print."""

    def __init__(self, comp_id, flags, start, end, lmm, init):
        self.comp_id = comp_id
        self.flags = flags
        self.start = start
        self.end = end
        self.lmm = lmm
        self.init = init


def fid_text(fid, yaml=False):
    text = '%#x:0x%x:0x%x' % fid
    return text if yaml else '[%s]' % text


def lmm_text(lmm, path, depth, verbose, is_dir=False, indent=False,
             yaml=False, skip_objs=False):
    """One plain layout, as liblustreapi's lov_dump_user_lmm_v1v3()."""
    out = []
    prefix = '' if is_dir else 'lmm_'
    space = '      ' if indent else ''
    sep = ''
    if not yaml and not indent and depth and path and \
            (verbose != VERBOSE_OBJID or not is_dir):
        out.append(path + '\n')
    if verbose & (VERBOSE_DETAIL | VERBOSE_DFID) and lmm.fid:
        if verbose & ~VERBOSE_DFID:
            out.append(space + 'lmm_fid:           ')
        out.append(fid_text(lmm.fid, yaml) + '\n')

    def field(flag, label, value, newline_after=False):
        out.append(sep)
        if verbose & ~flag:
            out.append('%s%s%s' % (space, prefix, label))
        out.append(str(value))
        return '\n' if newline_after or yaml or not is_dir else ' '

    if verbose & VERBOSE_STRIPE_COUNT:
        sep = field(VERBOSE_STRIPE_COUNT, 'stripe_count:  ', lmm.count)
    if verbose & VERBOSE_STRIPE_SIZE:
        sep = field(VERBOSE_STRIPE_SIZE, 'stripe_size:   ', lmm.size)
    if verbose & VERBOSE_PATTERN:
        sep = field(VERBOSE_PATTERN, 'pattern:       ', lmm.pattern)
    if verbose & VERBOSE_GENERATION and not is_dir:
        sep = field(VERBOSE_GENERATION, 'layout_gen:    ',
                    0 if skip_objs else lmm.gen, newline_after=True)
    if verbose & VERBOSE_STRIPE_OFFSET:
        offset = lmm.offset
        if not is_dir and not skip_objs and lmm.objects:
            offset = lmm.objects[0][0]
        sep = field(VERBOSE_STRIPE_OFFSET, 'stripe_offset: ', offset)
    if verbose & VERBOSE_POOL and lmm.pool and lmm.pool != 'ignore':
        sep = field(VERBOSE_POOL, 'pool:          ', lmm.pool)
    if sep:
        out.append('\n')
    if not is_dir and not skip_objs and verbose & VERBOSE_OBJID and \
            lmm.objects is not None:
        if indent:
            out.append('      lmm_objects:\n')
        elif yaml:
            out.append('lmm_objects:\n')
        else:
            out.append('\tobdidx\t\t objid\t\t objid\t\t group\n')
        for number, (index, objid, fid) in enumerate(lmm.objects):
            if yaml:
                out.append('      - l_ost_idx: %d\n' % index)
                out.append('        l_fid:     %s\n' % fid_text(fid, True))
            elif indent:
                out.append('      - %d: { l_ost_idx: %d, l_fid: %s }\n'
                           % (number, index, fid_text(fid)))
            else:
                # IDIF objects live in the MDT0 sequence: group prints 0.
                out.append('\t%6u\t%14u\t%#13x\t%14u\n'
                           % (index, objid, objid, 0))
    out.append('\n')
    return ''.join(out)


def entry_text(entry, index, verbose, yaml, v216):
    """The lcme_* lines of one component."""
    out = []
    sep = ''
    if yaml and not v216:
        out.append('  component%d:\n' % index)
    if verbose & VERBOSE_COMP_ID or (yaml and v216):
        if yaml and v216:
            out.append('  - lcme_id:             ')
        elif verbose & ~VERBOSE_COMP_ID:
            out.append('    lcme_id:             ')
        out.append('N/A' if entry.comp_id is None else str(entry.comp_id))
        sep = '\n'

    def field(flag, label, value):
        out.append(sep)
        if verbose & ~flag:
            out.append('    %s' % label)
        out.append(value)
        return '\n'

    if verbose & VERBOSE_MIRROR_ID:
        sep = field(VERBOSE_MIRROR_ID, 'lcme_mirror_id:      ',
                    'N/A' if entry.comp_id is None else '0')
    if verbose & VERBOSE_COMP_FLAGS:
        sep = field(VERBOSE_COMP_FLAGS, 'lcme_flags:          ',
                    entry.flags)
    if verbose & VERBOSE_COMP_START:
        sep = field(VERBOSE_COMP_START, 'lcme_extent.e_start: ',
                    str(entry.start))
    if verbose & VERBOSE_COMP_END:
        sep = field(VERBOSE_COMP_END, 'lcme_extent.e_end:   ',
                    'EOF' if entry.end == EOF else str(entry.end))
    out.append(sep)
    if yaml:
        out.append('    sub_layout:\n')
    return ''.join(out)


def composite_text(entries, layout_gen, path, depth, verbose, is_dir=False,
                   yaml=False, v216=False, forged=False):
    """A composite layout, as liblustreapi's lov_dump_comp_v1().

    ``forged`` is a plain layout shown as a one-component composite, which
    liblustreapi does when a component option (--component-count...) is
    asked for on a plain file: it then reports 0 components.
    """
    out = []
    if depth and path and (verbose != VERBOSE_OBJID or not is_dir) and \
            not yaml:
        out.append(path + '\n')
    lead = '' if (yaml and v216) else '  '
    for flag, label, value in (
            (VERBOSE_GENERATION, 'lcm_layout_gen:    ', layout_gen),
            (VERBOSE_MIRROR_COUNT, 'lcm_mirror_count:  ', 1),
            (VERBOSE_COMP_COUNT, 'lcm_entry_count:   ',
             0 if forged else len(entries))):
        if verbose & flag:
            if verbose & ~flag:
                out.append(lead + label)
            out.append('%u\n' % value)
    if yaml and v216:
        out.append('components:\n')
    if (verbose & VERBOSE_DEFAULT) != VERBOSE_DEFAULT:
        # Asked for some fields only: show the last instantiated component.
        index = len(entries)
        for pos, entry in enumerate(entries):
            if not entry.init:
                index = pos
                break
        index = len(entries) - 1 if index == 0 else index - 1
        chosen = [(index, entries[index], False)]
    else:
        chosen = [(pos, entry, not entry.init)
                  for pos, entry in enumerate(entries)]
    for pos, entry, skip_objs in chosen:
        out.append(entry_text(entry, pos, verbose, yaml, v216))
        out.append(lmm_text(entry.lmm, path, depth, verbose, is_dir=is_dir,
                            indent=True, yaml=yaml, skip_objs=skip_objs))
    return ''.join(out)


def default_lmv_text(path, depth):
    """``lfs getstripe -D`` on a directory in Lustre 2.15.

    2.15's getstripe -D reports the default *directory* striping (LMV), not
    the default file layout.  The stand-in has one MDT and no striped
    directories, so this is always the "no default" answer 2.15 fakes.
    """
    out = []
    if depth and path:
        out.append('(Default)%s\n' % path)
    out.append('lmv_stripe_count: 0 lmv_stripe_offset: -1 '
               'lmv_hash_type: none lmv_max_inherit: -1 '
               'lmv_max_inherit_rr: 0\n')
    return ''.join(out)
