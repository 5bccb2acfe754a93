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
"""What e2e.py needs from Cinder's REST API that the CLIs do not give.

e2e.py acts as the hypervisor: Nova would create an attachment with its
host's connector and receive the connection info; the CLIs print that as a
table, if at all.  Polling for a status through the CLIs costs a Python
start-up per poll.  Stdlib only; credentials from the OS_* variables.
Api.call raises ApiError on an HTTP error, wait() on a wait that ends in
another status.
"""

import json
import os
import time
import urllib.error
import urllib.request

MICROVERSION = '3.54'   # attachments with mode, and os-complete
# What a compute host sends (os-brick's connector properties, reduced).
CONNECTOR = {'platform': 'x86_64', 'os_type': 'linux', 'ip': '127.0.0.1',
             'host': 'demo-hypervisor', 'multipath': False,
             'initiator': 'iqn.2026-11.org.example:demo-hypervisor',
             'do_local_attach': False, 'mountpoint': '/dev/vdb'}


class ApiError(Exception):
    pass


class Api(object):
    def __init__(self):
        body = {'auth': {
            'identity': {'methods': ['password'], 'password': {'user': {
                'name': os.environ['OS_USERNAME'],
                'domain': {'name': os.environ['OS_USER_DOMAIN_NAME']},
                'password': os.environ['OS_PASSWORD']}}},
            'scope': {'project': {
                'name': os.environ['OS_PROJECT_NAME'],
                'domain': {'name': os.environ['OS_PROJECT_DOMAIN_NAME']}}}}}
        req = urllib.request.Request(
            os.environ['OS_AUTH_URL'].rstrip('/') + '/auth/tokens',
            data=json.dumps(body).encode(),
            headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=30) as resp:
            self.token = resp.headers['X-Subject-Token']
            catalog = json.load(resp)['token']['catalog']
        self.endpoints = {svc['type']: ep['url'].rstrip('/')
                          for svc in catalog for ep in svc['endpoints']
                          if ep['interface'] == 'public'}
        self.url = self.endpoints['block-storage']

    def call(self, method, path, body=None, missing_ok=False, url=None,
             version='volume ' + MICROVERSION):
        """A JSON call to Cinder, or to the service at url (Glance, Nova)."""
        req = urllib.request.Request(
            (url or self.url) + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={'X-Auth-Token': self.token,
                     'Content-Type': 'application/json',
                     'OpenStack-API-Version': version})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                text = resp.read()
        except urllib.error.HTTPError as exc:
            if missing_ok and exc.code == 404:
                return None
            raise ApiError('%s %s: HTTP %s %s' % (
                method, path, exc.code, exc.read().decode()[:500]))
        return json.loads(text) if text else None


def attach(api, volume_id):
    # No instance_uuid: deleting an attachment of an instance is checked
    # with Nova (OSSA-2023-003) unless a service token comes with it, and
    # there is no Nova here.
    attachment = api.call('POST', '/attachments', {'attachment': {
        'volume_uuid': volume_id, 'connector': CONNECTOR,
        'mode': 'rw'}})['attachment']
    api.call('POST', '/attachments/%s/action' % attachment['id'],
             {'os-complete': None})
    return {'attachment_id': attachment['id'],
            'connection_info': attachment['connection_info']}


def wait(api, kind, res_id, status, timeout=300):
    deadline = time.time() + float(timeout)
    current = None
    while time.time() < deadline:
        found = api.call('GET', '/%ss/%s' % (kind, res_id),
                         missing_ok=(status == 'deleted'))
        if found is None:   # gone, as asked
            return
        current = found[kind]
        if current['status'] == status:
            return
        if current['status'].startswith('error'):
            break
        time.sleep(1)
    found = current and current['status']
    raise ApiError('%s %s is %s, not %s' % (kind, res_id, found, status))
