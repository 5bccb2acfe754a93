# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Figures, ratios and targets of a benchmark run, and their outputs.

A figure is a list of samples, one per run ("round") of its section; it is
reported as its median.  A ratio compares two figures round by round (the
contenders of one round ran back to back, so they saw the same machine)
and is reported as the median of those per-round ratios.  A target is a
threshold on a ratio, met or missed; missing one never fails the run.
"""

import dataclasses
import statistics

GIB = 1024 ** 3
MIB = 1024 ** 2


class Figure(object):

    def __init__(self, key, section, label, unit='s', size=None, note=''):
        self.key = key
        self.section = section
        self.label = label
        self.unit = unit
        self.size = size        # bytes moved, for a throughput column
        self.note = note
        self.samples = {}       # round -> value
        self.extra = {}         # other per-run facts (peak RSS...)

    def add(self, rnd, value, **extra):
        self.samples[rnd] = value
        for name, item in extra.items():
            self.extra.setdefault(name, {})[rnd] = item

    @property
    def values(self):
        return [self.samples[rnd] for rnd in sorted(self.samples)]

    @property
    def n(self):
        return len(self.samples)

    @property
    def median(self):
        return statistics.median(self.values) if self.samples else None

    def extra_median(self, name):
        values = list(self.extra.get(name, {}).values())
        return statistics.median(values) if values else None

    def throughput(self, value=None):
        value = self.median if value is None else value
        if not self.size or not value:
            return None
        return self.size / value

    def as_dict(self):
        data = {'section': self.section, 'label': self.label,
                'unit': self.unit, 'samples': self.values, 'n': self.n,
                'median': self.median,
                'min': min(self.values) if self.samples else None,
                'max': max(self.values) if self.samples else None}
        if self.size:
            data['bytes'] = self.size
            data['throughput_bytes_per_s'] = self.throughput()
            data['throughput_gib_per_s'] = (self.throughput() / GIB
                                            if self.throughput() else None)
        if self.note:
            data['note'] = self.note
        for name, values in self.extra.items():
            data[name] = [values[rnd] for rnd in sorted(values)]
            try:
                data[name + '_median'] = statistics.median(values.values())
            except TypeError:
                pass
        return data


@dataclasses.dataclass
class Ratio(object):
    """``a`` over ``b`` round by round; ``speed`` inverts times to speeds.

    With ``speed`` the ratio is b/a of times (how many times faster ``a``
    is); otherwise a/b of the figures themselves.
    """

    key: str
    section: str
    label: str
    a: Figure
    b: Figure
    speed: bool = False
    chart: bool = True

    @property
    def values(self):
        rounds = sorted(set(self.a.samples) & set(self.b.samples))
        out = []
        for rnd in rounds:
            num, den = self.a.samples[rnd], self.b.samples[rnd]
            if self.speed:
                num, den = den, num
            if den:
                out.append(num / den)
        return out

    @property
    def median(self):
        values = self.values
        return statistics.median(values) if values else None

    def as_dict(self):
        return {'section': self.section, 'label': self.label,
                'of': [self.a.key, self.b.key],
                'kind': 'speed ratio (b time / a time)' if self.speed
                else 'a / b', 'samples': self.values,
                'n': len(self.values), 'median': self.median}


@dataclasses.dataclass
class Target(object):
    """A ratio's median against a threshold (``op``: '>=' or '<=')."""

    key: str
    label: str
    ratio: Ratio
    op: str
    threshold: float
    why: str = ''

    @property
    def met(self):
        value = self.ratio.median
        if value is None:
            return None
        if self.op == '>=':
            return value >= self.threshold
        return value <= self.threshold

    @property
    def verdict(self):
        return {True: 'met', False: 'MISSED', None: 'NOT MEASURED'}[self.met]

    def as_dict(self):
        return {'label': self.label, 'ratio': self.ratio.key,
                'value': self.ratio.median, 'op': self.op,
                'threshold': self.threshold, 'met': self.met,
                'why': self.why}


class Results(object):

    def __init__(self):
        self.figures = {}
        self.ratios = {}
        self.targets = []
        self.sections = []        # (key, title, notes)
        self.errors = []

    def section(self, key, title, notes=()):
        self.sections.append((key, title, list(notes)))

    def note(self, section, text):
        for key, _title, notes in self.sections:
            if key == section:
                notes.append(text)

    def figure(self, key, section, label, **kwargs):
        if key not in self.figures:
            self.figures[key] = Figure(key, section, label, **kwargs)
        return self.figures[key]

    def ratio(self, key, section, label, a, b, speed=False, chart=True):
        self.ratios[key] = Ratio(key, section, label, self.figures[a],
                                 self.figures[b], speed, chart)
        return self.ratios[key]

    def target(self, key, label, ratio, op, threshold):
        self.targets.append(Target(key, label, self.ratios[ratio], op,
                                   threshold))

    def as_dict(self):
        return {
            'sections': [{'key': key, 'title': title, 'notes': notes}
                         for key, title, notes in self.sections],
            'figures': {key: fig.as_dict()
                        for key, fig in self.figures.items()},
            'ratios': {key: ratio.as_dict()
                       for key, ratio in self.ratios.items()},
            'targets': [target.as_dict() for target in self.targets],
            'errors': self.errors,
        }


# The terminal table


def _num(value, unit):
    if value is None:
        return '-'
    if unit == 's':
        if value < 0.01:
            return '%.2f ms' % (value * 1000)
        if value < 10:
            return '%.3f s' % value
        return '%.1f s' % value
    if unit == 'MiB':
        return '%.0f MiB' % value
    return '%.3g %s' % (value, unit)


def _rate(value):
    if value is None:
        return ''
    if value >= GIB:
        return '%.2f GiB/s' % (value / GIB)
    return '%.0f MiB/s' % (value / MIB)


def table(results, section=None):
    """The figures, ratios and targets as fixed-width text."""
    lines = []
    width = 56
    for key, title, notes in results.sections:
        if section and key != section:
            continue
        figures = [f for f in results.figures.values() if f.section == key]
        ratios = [r for r in results.ratios.values() if r.section == key]
        if not figures:
            continue
        lines.append('')
        lines.append('== %s ' % title + '=' * max(0, 92 - len(title)))
        lines.append('%-*s %12s %21s %3s %12s' % (
            width, 'figure', 'median', 'min - max', 'n', 'throughput'))
        for fig in figures:
            values = fig.values
            spread = ('%s - %s' % (_num(min(values), fig.unit),
                                   _num(max(values), fig.unit))
                      if values else '')
            lines.append('%-*s %12s %21s %3d %12s' % (
                width, fig.label[:width], _num(fig.median, fig.unit),
                spread, fig.n, _rate(fig.throughput())))
        if ratios:
            lines.append('%-*s %12s %21s %3s  %s' % (
                width, 'ratio (median of per-round ratios)', 'value',
                'min - max', 'n', 'target'))
        for ratio in ratios:
            values = ratio.values
            targets = [t for t in results.targets if t.ratio is ratio]
            verdict = '  '.join(
                '%s %.2gx: %s' % (t.op, t.threshold, t.verdict)
                for t in targets)
            lines.append('%-*s %12s %21s %3d  %s' % (
                width, ratio.label[:width],
                '%.2fx' % ratio.median if values else '-',
                '%.2f - %.2f' % (min(values), max(values)) if values else '',
                len(values), verdict))
        for note in notes:
            lines.append('  * ' + note)
    return '\n'.join(line.rstrip() for line in lines)


def targets_summary(results):
    lines = ['', '== Targets ' + '=' * 81]
    for target in results.targets:
        value = target.ratio.median
        lines.append('%-12s %-62s %8s  (%s %.2gx)' % (
            target.verdict, target.label[:62],
            '%.2fx' % value if value is not None else '-', target.op,
            target.threshold))
    return '\n'.join(lines)


# The chart


def chart(results, path, title):
    """A PNG of every ratio, log scale, targets marked; None if no plot."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot

    ratios = [r for r in results.ratios.values() if r.values and r.chart]
    if not ratios:
        return None
    height = 1.2 + 0.32 * len(ratios)
    fig, ax = pyplot.subplots(figsize=(11, height))
    labels, values, colours, lows, highs = [], [], [], [], []
    for ratio in ratios:
        targets = [t for t in results.targets if t.ratio is ratio]
        colour = '#8c8c8c'
        if targets:
            colour = '#2e8b57' if all(t.met for t in targets) else '#c0392b'
        labels.append(ratio.label)
        values.append(ratio.median)
        lows.append(ratio.median - min(ratio.values))
        highs.append(max(ratio.values) - ratio.median)
        colours.append(colour)
    positions = list(range(len(ratios)))[::-1]
    # Bars grow from 1x: left of it the driver is slower, right faster
    # (for "speed" ratios) or the time grew (for "time" ratios).
    ax.barh(positions, [value - 1 for value in values], left=1,
            color=colours)
    ax.errorbar(values, positions, xerr=[lows, highs], fmt='none',
                ecolor='#333333', capsize=2, lw=0.8)
    for index, (pos, ratio) in enumerate(zip(positions, ratios)):
        for target in results.targets:
            if target.ratio is ratio:
                ax.plot([target.threshold] * 2, [pos - 0.45, pos + 0.45],
                        color='black', lw=2)
        ax.text(max(ratio.values) * 1.08, pos, '%.2fx' % ratio.median,
                va='center', fontsize=7)
        if index and ratio.section != ratios[index - 1].section:
            ax.axhline(pos + 0.5, color='#333333', lw=0.6)
    ax.set_yticks(positions)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xscale('log')
    ax.axvline(1.0, color='#555555', lw=0.6, ls=':')
    ax.set_xlabel('ratio, median of the per-round ratios (whiskers: min '
                  'to max; black ticks: targets; green met, red missed, '
                  'grey no target)', fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot.close(fig)
    return path
