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
"""Count a Tempest run and hold every skip to a written reason.

Reads the run's subunit stream on stdin (``stestr last --subunit``) and the
skip list (tempest-skips.txt: ``REGEX  # reason`` lines); prints the
failures, every skip with Tempest's reason and ours, and a closing
``tempest: N passed, N failed, N skipped`` line.  Exit status 1 if a test
failed, a skip is not in the list, or nothing ran.

Run with the Tempest virtualenv's python (it has subunit and testtools).
"""

import re
import sys

import subunit
import testtools


def load_reasons(path):
    reasons = []
    with open(path) as src:
        for line in src:
            regex, _sep, reason = line.partition('#')
            if regex.strip():
                reasons.append((re.compile(regex.strip()), reason.strip()))
    return reasons


def main(skips_file):
    tests = {}

    def on_test(test):
        tests[test['id']] = test

    result = testtools.StreamToDict(on_test)
    stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer,
                                              non_subunit_name='stdout')
    result.startTestRun()
    stream.run(result)
    result.stopTestRun()

    reasons = load_reasons(skips_file)
    passed = failed = skipped = unlisted = 0
    for test_id in sorted(tests):
        test = tests[test_id]
        status = test['status']
        if status in ('success', 'xfail'):
            passed += 1
        elif status == 'skip':
            skipped += 1
            detail = test['details'].get('reason')
            why_tempest = detail.as_text().strip() if detail else '?'
            ours = next((why for regex, why in reasons
                         if regex.search(test_id)), None)
            if ours is None:
                unlisted += 1
                ours = 'NOT LISTED in %s' % skips_file
            print('SKIP  %s\n      tempest: %s\n      why:     %s'
                  % (test_id, why_tempest, ours))
        elif status in ('fail', 'uxsuccess'):
            failed += 1
            print('FAIL  %s' % test_id)
            for name in ('traceback', 'reason'):
                if name in test['details']:
                    text = test['details'][name].as_text().strip()
                    print('      ' + '\n      '.join(
                        text.splitlines()[-6:]))
    if unlisted:
        print('%d skip(s) have no reason in %s' % (unlisted, skips_file))
    print('tempest: %d passed, %d failed, %d skipped'
          % (passed, failed, skipped))
    return 0 if passed and not failed and not unlisted else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
