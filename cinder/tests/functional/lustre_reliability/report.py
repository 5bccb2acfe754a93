# Copyright (c) 2026 The Cinder Lustre driver authors
# All Rights Reserved.
#
#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""The figures of the reliability suite.

Each test records what it tried (a bad input, an injected fault, a load)
and what came of it, one JSON line each, in the file named by the
environment variable LUSTRE_RELIABILITY_REPORT.  Run as a program, this
module prints the totals:

    python -m cinder.tests.functional.lustre_reliability.report FILE
"""

import collections
import json
import os
import sys

ENV = 'LUSTRE_RELIABILITY_REPORT'


def record(kind, item, **figures):
    """Record one case: 'input', 'hostile', 'fault', 'load' or 'cluster'.

    Figures: ``refused`` (a bad input got a clear error), ``operations``
    (how many operations a hostile share case tried), ``bytes_lost``,
    ``leftovers`` (files or mounts left behind), and anything measured.
    """
    path = os.environ.get(ENV)
    if not path:
        return
    with open(path, 'a') as f:
        f.write(json.dumps(dict(kind=kind, item=item, **figures)) + '\n')


def summarize(lines):
    cases = [json.loads(line) for line in lines if line.strip()]
    by_kind = collections.defaultdict(list)
    for case in cases:
        by_kind[case['kind']].append(case)
    out = []
    inputs = by_kind['input']
    refused = sum(1 for case in inputs if case.get('refused'))
    out.append('Bad inputs tried:        %d, refused with a clear error: %d'
               % (len(inputs), refused))
    hostile = by_kind['hostile']
    hostile_refused = sum(1 for case in hostile if case.get('refused'))
    out.append('Hostile share cases:     %d (%d operations), every '
               'operation refused and the canary outside untouched: %d'
               % (len(hostile), sum(case.get('operations', 0)
                                    for case in hostile), hostile_refused))
    faults = by_kind['fault']
    cluster = by_kind['cluster']
    lost = sum(case.get('bytes_lost', 0) for case in faults + cluster)
    leftovers = sum(case.get('leftovers', 0) for case in cases)
    out.append('Faults injected:         %d, bytes of data lost: %d'
               % (len(faults) + sum(case.get('faults', 0)
                                    for case in cluster), lost))
    out.append('Files or mounts left:    %d' % leftovers)
    if cluster:
        out.append('Active/active cases:     %d (%d operations from two '
                   'nodes through etcd)'
                   % (len(cluster), sum(case.get('operations', 0)
                                        for case in cluster)))
    for case in cluster:
        figures = ', '.join('%s=%s' % (key, value)
                            for key, value in sorted(case.items())
                            if key not in ('kind', 'item'))
        out.append('Cluster: %s: %s' % (case['item'], figures))
    for case in by_kind['load']:
        figures = ', '.join('%s=%s' % (key, value)
                            for key, value in sorted(case.items())
                            if key not in ('kind', 'item'))
        out.append('Load: %s: %s' % (case['item'], figures))
    ok = (refused == len(inputs) and hostile_refused == len(hostile) and
          lost == 0 and leftovers == 0)
    return out, ok, len(cases)


def main(argv):
    path = argv[1] if len(argv) > 1 else os.environ.get(ENV)
    try:
        with open(path) as f:
            lines, ok, count = summarize(f)
    except (OSError, TypeError):
        sys.stdout.write('No reliability figures were recorded.\n')
        return 1
    sys.stdout.write('\nReliability figures (%d cases)\n' % count)
    for line in lines:
        sys.stdout.write('  %s\n' % line)
    return 0 if ok and count else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv))
