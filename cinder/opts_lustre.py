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

"""Configuration options of the Lustre drivers, for oslo.config's tools.

Installed as an add-on, the drivers are not in the ``cinder/opts.py`` of
the Cinder they are grafted into, so ``oslo-config-generator`` and the
``show-options`` Sphinx directive find their options through the
``oslo.config.opts`` entry points ``cinder.lustre.volume`` and
``cinder.lustre.backup`` that point here.  Upstream, the generated
``cinder/opts.py`` lists the drivers' modules and this module is not needed.

Each driver's ``get_driver_options()`` is the list of options it honours, so
this module lists nothing of its own.
"""

from cinder.backup.drivers import lustre as lustre_backup
from cinder.volume import configuration
from cinder.volume.drivers import lustre as lustre_volume


def list_volume_opts():
    """Options of the volume driver, set in a backend's section.

    They are listed under ``backend_defaults``, as Cinder's own sample
    configuration lists every volume driver option.
    """
    return [(configuration.SHARED_CONF_GROUP,
             lustre_volume.LustreDriver.get_driver_options())]


def list_backup_opts():
    """Options of the backup driver, set in ``[DEFAULT]``."""
    return [('DEFAULT',
             lustre_backup.LustreBackupDriver.get_driver_options())]
