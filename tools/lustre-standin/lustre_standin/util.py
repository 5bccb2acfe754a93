"""Helpers shared by the stand-in commands."""

import json
import os
import subprocess
import sys

# mount(8), sudo and rootwrap start helpers with a minimal environment; the
# system tools we drive live here whatever PATH the caller had.
TOOL_ENV = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LC_ALL': 'C'}

LUSTRE_EOF = 0xffffffffffffffff


class CommandError(Exception):
    """A failure to report: the lines to print and the exit status."""

    def __init__(self, status, *lines, stream='stderr'):
        message = '\n'.join(lines)
        super().__init__(message)
        self.status = status
        self.lines = lines
        self.stream = stream

    def report(self):
        out = sys.stdout if self.stream == 'stdout' else sys.stderr
        for line in self.lines:
            out.write(line + '\n')
        out.flush()
        return self.status


def run(args, check=True):
    """Run a system tool and return its standard output.

    :raises CommandError: if the tool fails and ``check`` is true.
    """
    proc = subprocess.run(args, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=TOOL_ENV, universal_newlines=True)
    if check and proc.returncode != 0:
        raise CommandError(proc.returncode or 1,
                           '%s failed: %s' % (' '.join(args),
                                              proc.stderr.strip()))
    return proc.stdout


def c_strtol(text):
    """Parse an integer the way C ``strtol(text, &end, 0)`` does.

    Returns ``(value, rest)``: like C, a leading ``0x`` means hex and a
    leading ``0`` means octal, and parsing stops at the first character that
    does not belong to the number.  ``rest`` is what was not consumed.
    """
    pos = 0
    while pos < len(text) and text[pos] in ' \t\n':
        pos += 1
    sign = 1
    if pos < len(text) and text[pos] in '+-':
        sign = -1 if text[pos] == '-' else 1
        pos += 1
    base = 10
    if text[pos:pos + 2].lower() == '0x' and \
            text[pos + 2:pos + 3].lower() in set('0123456789abcdef'):
        base = 16
        pos += 2
    elif text[pos:pos + 1] == '0':
        base = 8
    digits = '0123456789abcdef'[:base]
    start = pos
    while pos < len(text) and text[pos].lower() in digits:
        pos += 1
    if pos == start:
        # No digits at all: C returns 0 and leaves end at the start.
        return 0, text
    return sign * int(text[start:pos], base), text[pos:]


def llapi_parse_size(text, bytes_spec=False):
    """Parse a size the way liblustreapi's ``llapi_parse_size()`` does.

    Accepts a number (C base-0 syntax, optional decimal fraction) and an
    optional suffix: ``b`` (512-byte blocks unless ``bytes_spec``), ``k``,
    ``m``, ``g``, ``t``, ``p``, ``e`` in either case, all binary units.

    :returns: the size in bytes, or None if the text is not a valid size.
    """
    if text.startswith('-'):
        return None
    value, rest = c_strtol(text)
    if value < 0:
        return None
    frac = 0
    frac_div = 1
    if rest.startswith('.'):
        digits = ''
        rest = rest[1:]
        while rest[:1].isdigit():
            digits += rest[0]
            rest = rest[1:]
        if digits:
            frac = int(digits)
            frac_div = 10 ** len(digits)
    units = 1
    if rest:
        shifts = {'k': 10, 'm': 20, 'g': 30, 't': 40, 'p': 50, 'e': 60}
        if rest == 'b':
            units = 1 if bytes_spec else 512
        elif len(rest) == 1 and rest.lower() in shifts:
            units = 1 << shifts[rest.lower()]
        else:
            return None
        if value >> (64 - units.bit_length() + 1):
            return None
    return value * units + frac * units // frac_div


def parse_human_size(text):
    """Parse a configuration size such as ``20G``, ``256M`` or ``1048576``.

    :raises ValueError: if the text is not a positive size.
    """
    size = llapi_parse_size(text.strip(), bytes_spec=True)
    if not size:
        raise ValueError('invalid size %r' % text)
    return size


def write_json_atomic(path, data, mode=0o644):
    """Replace ``path`` with ``data`` as JSON so readers never see half.

    The file stays world-readable because lfs runs as the service user and
    must read the registry.
    """
    tmp = '%s.tmp.%d' % (path, os.getpid())
    with open(tmp, 'w') as out:
        json.dump(data, out, indent=1, sort_keys=True)
        out.write('\n')
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def read_json(path, default):
    """Return the JSON document at ``path``, or ``default`` if absent."""
    try:
        with open(path) as src:
            return json.load(src)
    except FileNotFoundError:
        return default
    except ValueError:
        # A damaged state file must not wedge every command; start over.
        return default


def parse_index_list(text):
    """Parse an OST index list such as ``0-3,6`` into sorted indices.

    :raises ValueError: on malformed input.
    """
    indices = set()
    for part in text.split(','):
        part = part.strip()
        if not part:
            raise ValueError('empty element in %r' % text)
        if '-' in part:
            low, high = part.split('-', 1)
            low, high = int(low), int(high)
            if low > high:
                raise ValueError('bad range %r' % part)
            indices.update(range(low, high + 1))
        else:
            indices.add(int(part))
    if any(index < 0 for index in indices):
        raise ValueError('negative index in %r' % text)
    return sorted(indices)


def format_index_runs(indices):
    """``[2, 3, 0, 1]`` -> ``'2-3,0-1'``, keeping the order."""
    runs = []
    for index in indices:
        if runs and index == runs[-1][1] + 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return ','.join(str(low) if low == high else '%d-%d' % (low, high)
                    for low, high in runs)


def parse_index_runs(text):
    """The inverse of format_index_runs()."""
    indices = []
    for part in text.split(','):
        low, _sep, high = part.partition('-')
        indices.extend(range(int(low), int(high or low) + 1))
    return indices
