#!/bin/bash
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
#
# The main job: bring up a real Cinder on Lustre (tools/stack/stack.sh up),
# then walk the end-to-end journey of e2e.py on the first backend, thin and
# thick, showing each step as the operator's openstack or cinder command and
# acting as the hypervisor to write and read guest data; with Nova, then
# volumes attached to a real guest, and encrypted ones.  Tempest checks
# statuses; this checks the data.  The stack stays up.
#
# Usage (as root):  tools/stack/demo.sh       exit status 0 if all passed

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BASE=${STACK_BASE:-/var/tmp/cinder-lustre-stack}

"$HERE/stack.sh" up
status=0
/usr/bin/python3 "$HERE/e2e.py" demo || status=$?
cat <<MSG

The stack is still running.  Use it with:
    source $BASE/openrc
    openstack volume service list; openstack volume create --size 1 myvol; cinder get-pools
Logs: $BASE/logs.   Stop it with:  $HERE/stack.sh down
MSG
exit $status
