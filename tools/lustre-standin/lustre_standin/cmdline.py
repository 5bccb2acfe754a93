"""A getopt_long(3) work-alike for the emulated commands.

The real tools parse their arguments with glibc's getopt_long(), and
callers rely on its details: clustered short options (``-cq``), attached
values (``-c2``, ``--stripe-count=2``), values that start with a dash
(``-c -1``), unambiguous abbreviations of long options and options after
operands.  Python's getopt module lacks optional arguments and
abbreviations, hence this small parser.
"""

NONE = 0
REQUIRED = 1
OPTIONAL = 2


class Option(object):
    """One option: a key, its short letter and long names, its argument."""

    def __init__(self, key, short=None, longs=(), arg=NONE):
        self.key = key
        self.short = short
        self.longs = tuple(longs)
        self.arg = arg


class Parsed(object):
    """The result: options in command-line order, and the operands.

    Errors are reported in order too, as ``('?', text)`` items, where text
    is the offending argument, so the caller can print the message the
    real tool prints and stop at the right point.
    """

    def __init__(self):
        self.options = []
        self.operands = []


def parse(args, spec):
    """Parse ``args`` (without the command name) against ``spec``."""
    shorts = {opt.short: opt for opt in spec if opt.short}
    result = Parsed()
    pos = 0
    while pos < len(args):
        arg = args[pos]
        pos += 1
        if arg == '--':
            result.operands.extend(args[pos:])
            break
        if arg.startswith('--'):
            pos = _parse_long(arg, args, pos, spec, result)
        elif arg.startswith('-') and arg != '-':
            pos = _parse_short(arg, args, pos, shorts, result)
        else:
            result.operands.append(arg)
    return result


def _match_long(name, spec):
    exact = [opt for opt in spec if name in opt.longs]
    if exact:
        return exact[0]
    prefixed = [opt for opt in spec
                if any(long.startswith(name) for long in opt.longs)]
    if len(set(opt.key for opt in prefixed)) == 1:
        return prefixed[0]
    return None


def _parse_long(arg, args, pos, spec, result):
    name, sep, value = arg[2:].partition('=')
    opt = _match_long(name, spec)
    if opt is None or (sep and opt.arg == NONE):
        result.options.append(('?', arg))
        return pos
    if opt.arg == REQUIRED and not sep:
        if pos >= len(args):
            result.options.append(('?', arg))
            return pos
        value = args[pos]
        pos += 1
    elif not sep:
        value = None
    result.options.append((opt.key, value))
    return pos


def _parse_short(arg, args, pos, shorts, result):
    index = 1
    while index < len(arg):
        char = arg[index]
        index += 1
        opt = shorts.get(char)
        if opt is None:
            result.options.append(('?', arg))
            continue
        if opt.arg == NONE:
            result.options.append((opt.key, None))
            continue
        rest = arg[index:]
        if rest:
            result.options.append((opt.key, rest))
        elif opt.arg == OPTIONAL:
            result.options.append((opt.key, None))
        elif pos < len(args):
            result.options.append((opt.key, args[pos]))
            pos += 1
        else:
            result.options.append(('?', arg))
        break
    return pos
