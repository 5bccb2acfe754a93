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

"""Sphinx configuration of the Lustre drivers' documentation.

The option references come from the installed drivers (the oslo.config.opts
entry points of this package), so build in an environment where the package
is installed, as ``tox -e docs`` does.
"""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join('..', 'ext')))

project = 'Lustre drivers for Cinder'
copyright = '2026, The Cinder Lustre driver authors'

extensions = [
    'oslo_config.sphinxext',
    'sphinx_feature_classification.support_matrix',
    'lustre_doccheck',
]

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
    # No bug tracker link: the project has no Launchpad page.
    openstackdocs_bug_project = ''
    openstackdocs_bug_tag = ''

master_doc = 'index'
exclude_patterns = ['_build']
pygments_style = 'native'

# The pages must mention every error the drivers raise and every extra
# spec they read (doc/ext/lustre_doccheck.py).
lustre_doc_checks = {
    'configuration/block-storage/drivers/lustre-driver': {
        'errors': ['cinder.volume.drivers.lustre',
                   'cinder.volume.drivers.lustre_client'],
        'extra_specs': ['cinder.volume.drivers.lustre',
                        'cinder.volume.drivers.lustre_client'],
    },
    'configuration/block-storage/backup/lustre-backup-driver': {
        'errors': ['cinder.backup.drivers.lustre'],
    },
}
