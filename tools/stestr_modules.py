#!/usr/bin/env python3
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

"""Run this project's test modules with stestr, from the installed Cinder.

Our tests are installed among Cinder's own, and run from there.  stestr's
discovery would import every test module of Cinder's tree, which needs
Cinder's whole test toolchain and takes minutes; instead each of our test
modules under SUITE is run by name (``stestr run --no-discover``), so the
results still land in one stestr repository.

Usage: stestr_modules.py SUITE [STESTR_RUN_ARGS...]
where SUITE is a directory of this repository such as cinder/tests/unit.
"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def modules(suite):
    found = []
    for root, _dirs, files in os.walk(os.path.join(HERE, suite)):
        for name in files:
            if name.startswith('test_') and name.endswith('.py'):
                path = os.path.relpath(os.path.join(root, name[:-3]), HERE)
                found.append(path.replace(os.sep, '.'))
    return sorted(found)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    suite, extra = argv[1], argv[2:]
    names = modules(suite)
    if not names:
        sys.exit('no test module under %s' % suite)
    failed = []
    for name in names:
        print('==> %s' % name, flush=True)
        cmd = [sys.executable, '-m', 'stestr', '--test-path', './' + suite,
               '--top-dir', './', 'run', '--no-discover', name] + extra
        if subprocess.call(cmd) != 0:
            failed.append(name)
    if failed:
        sys.exit('FAILED: %s' % ', '.join(failed))


if __name__ == '__main__':
    main(sys.argv)
