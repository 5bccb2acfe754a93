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

"""Install the Lustre drivers into an installed Cinder.

There is no ``cinder/__init__.py`` here: the ``cinder`` distribution owns
the package, and this one only adds modules to it, so that ``pip install .``
grafts the drivers into Cinder and ``pip uninstall`` removes exactly them.
"""

import pathlib

import setuptools


def _requirements(name):
    lines = pathlib.Path(__file__).with_name(name).read_text().splitlines()
    return [line.split('#')[0].strip() for line in lines
            if line.split('#')[0].strip()]


setuptools.setup(install_requires=_requirements('requirements.txt'))
