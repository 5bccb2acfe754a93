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

"""List the drivers Cinder's compliance suite finds; fail without ours.

Cinder's compliance tests are named by position, not by driver, and skip a
driver module that fails to import without a word.  Run from the directory
that holds the installed cinder package, like the compliance suite.
"""

import sys

from cinder.interface import util
# Imported by the compliance suite too: it registers the objects and the
# options that some drivers' get_driver_options() read.
from cinder.tests.unit import test  # noqa: F401

OURS = ('LustreDriver', 'LustreBackupDriver')


def main():
    found = {}
    for kind, drivers in (('volume', util.get_volume_drivers()),
                          ('backup', util.get_backup_drivers())):
        for driver in drivers:
            found[driver.class_name] = driver.class_fqn
        print('%d %s drivers tested' % (len(drivers), kind))
    for name in OURS:
        print('%s: %s' % (name, found.get(name, 'NOT FOUND')))
    missing = [name for name in OURS if name not in found]
    if missing:
        sys.exit('Cinder does not find %s' % ', '.join(missing))


if __name__ == '__main__':
    main()
