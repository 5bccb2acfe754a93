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

"""Sphinx configuration of the release notes (built by reno's extension)."""

project = 'Lustre drivers for Cinder release notes'
copyright = '2026, The Cinder Lustre driver authors'

extensions = ['reno.sphinxext']

try:
    import openstackdocstheme  # noqa: F401
except ImportError:
    html_theme = 'alabaster'
else:
    extensions.append('openstackdocstheme')
    html_theme = 'openstackdocs'
    openstackdocs_repo_name = 'cinder-lustre'
    openstackdocs_use_storyboard = False
    openstackdocs_auto_name = False
    openstackdocs_bug_project = ''
    openstackdocs_bug_tag = ''

master_doc = 'index'
exclude_patterns = ['_build']
pygments_style = 'native'
