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

With STESTR_MODULE_WORKERS=N (N > 1), N modules run at a time, the largest
files first, each into a stestr repository of its own (in .stestr-MODULE),
and each module's output is printed when it ends.  The functional suites
use it: their tests mostly wait for mounts, qemu-img and fsync, and are
isolated per test class (a private stand-in configuration, a private
temporary directory and mount point base).

Usage: stestr_modules.py SUITE [STESTR_RUN_ARGS...]
where SUITE is a directory of this repository such as cinder/tests/unit.
"""

import concurrent.futures
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


def stestr_run(suite, name, extra, repo=None):
    cmd = [sys.executable, '-m', 'stestr', '--test-path', './' + suite,
           '--top-dir', './']
    if repo:
        cmd += ['--repo-url', repo]
    return cmd + ['run', '--no-discover', name] + extra


def run_serially(suite, names, extra):
    failed = []
    for name in names:
        print('==> %s' % name, flush=True)
        if subprocess.call(stestr_run(suite, name, extra)) != 0:
            failed.append(name)
    return failed


def run_in_parallel(suite, names, extra, workers):
    def run_one(name):
        print('==> %s (started)' % name, flush=True)
        # stestr makes the repository in that directory, not the directory.
        os.makedirs('.stestr-' + name, exist_ok=True)
        proc = subprocess.run(
            stestr_run(suite, name, extra, repo='.stestr-' + name),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return name, proc.returncode, proc.stdout

    # The largest modules first, so that the small ones fill the gaps.
    names = sorted(names, key=lambda n: -os.path.getsize(
        os.path.join(HERE, n.replace('.', os.sep) + '.py')))
    failed = []
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        done = concurrent.futures.as_completed(
            [pool.submit(run_one, name) for name in names])
        for name, status, output in (future.result() for future in done):
            print('==> %s (exit %d)\n%s' % (name, status, output),
                  flush=True)
            if status != 0:
                failed.append(name)
    return failed


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    suite, extra = argv[1], argv[2:]
    names = modules(suite)
    if not names:
        sys.exit('no test module under %s' % suite)
    workers = int(os.environ.get('STESTR_MODULE_WORKERS') or 1)
    if workers > 1:
        failed = run_in_parallel(suite, names, extra, workers)
    else:
        failed = run_serially(suite, names, extra)
    if failed:
        sys.exit('FAILED: %s' % ', '.join(failed))


if __name__ == '__main__':
    main(sys.argv)
