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

"""Strict interface compliance of the Lustre drivers.

Cinder's own compliance tests assert ``issubclass(driver, interface)``,
which is always true on Python 3 (the interfaces collect their methods with
``inspect.ismethod``, which finds no plain functions on a class), and they
silently skip a driver module that fails to import.  These tests import the
Lustre drivers directly and check, method by method, that every method of
every interface the drivers claim is really implemented: present, not the
interface's own stub, not a base class stub that only raises
NotImplementedError, and callable with the interface's parameters.  They
also look for base class hooks the drivers forgot to provide.
"""

import ast
import inspect
import textwrap

import ddt

from cinder.backup.drivers import lustre as lustre_backup
from cinder.interface import backup_driver
from cinder.interface import base
from cinder.interface import util
from cinder.interface import volume_driver
from cinder.interface import volume_manageable_driver
from cinder.interface import volume_snapshot_revert
from cinder.tests.unit import test
from cinder.volume.drivers import lustre
from cinder.volume.drivers import remotefs

# The interfaces each driver claims to implement.
CLAIMS = [
    (lustre.LustreDriver, volume_driver.VolumeDriverCore),
    (lustre.LustreDriver, volume_snapshot_revert.VolumeSnapshotRevertDriver),
    (lustre.LustreDriver, volume_manageable_driver.VolumeManagementDriver),
    (lustre_backup.LustreBackupDriver, backup_driver.BackupDriver),
]

# Interface methods for which doing nothing is the right implementation for
# a driver whose volumes are files on a filesystem every host mounts.
NOOPS = {
    'before_volume_copy': 'no preparation needed before a generic copy',
    'after_volume_copy': 'no clean-up needed after a generic copy',
    'unmanage': 'the file stays on the share, under the volume name',
}

# Base class methods that only raise NotImplementedError and that the
# Lustre volume driver deliberately leaves so, with the reason.

UNSUPPORTED = {
    lustre.LustreDriver: {
        'create_group': 'generic groups are done by the manager',
        'create_group_from_src': 'generic groups are done by the manager',
        'create_group_snapshot': 'generic groups are done by the manager',
        'delete_group': 'generic groups are done by the manager',
        'delete_group_snapshot': 'generic groups are done by the manager',
        'update_group': 'generic groups are done by the manager',
        'create_volume_from_backup': 'restores go through cinder-backup',
        'disable_replication': 'no replication',
        'enable_replication': 'no replication',
        'failover_completed': 'no replication',
        'failover_host': 'no replication',
        'failover_replication': 'no replication',
    },
    lustre_backup.LustreBackupDriver: {},
}

# The base classes whose stubs are hooks for their subclasses to fill: a
# stub of these the drivers do not override is a hook they forgot.  Stubs
# of Cinder's generic driver classes are optional features.
HOOK_MODULES = {'cinder.volume.drivers.remotefs',
                'cinder.backup.chunkeddriver',
                'cinder.backup.drivers.posix'}


def _function(attr):
    """The plain function behind a class attribute, unwrapping decorators."""
    if isinstance(attr, (staticmethod, classmethod)):
        attr = attr.__func__
    if isinstance(attr, property):
        attr = attr.fget
    return inspect.unwrap(attr) if callable(attr) else None


def _body(func):
    """The statements of a function, without its docstring."""
    source = textwrap.dedent(inspect.getsource(func))
    body = ast.parse(source).body[0].body
    if (body and isinstance(body[0], ast.Expr) and
            isinstance(body[0].value, ast.Constant) and
            isinstance(body[0].value.value, str)):
        body = body[1:]
    return body


def _is_noop(func):
    """Whether a function does nothing at all."""
    body = _body(func)
    return not body or (len(body) == 1 and isinstance(body[0], ast.Pass))


def _is_stub(func):
    """Whether a function only raises NotImplementedError."""
    body = _body(func)
    if len(body) == 1 and isinstance(body[0], ast.Raise):
        exc = body[0].exc
        if isinstance(exc, ast.Call):
            exc = exc.func
        return isinstance(exc, ast.Name) and exc.id == 'NotImplementedError'
    # "msg = ...; raise NotImplementedError(msg)"
    return (len(body) == 2 and isinstance(body[1], ast.Raise) and
            isinstance(body[1].exc, ast.Call) and
            getattr(body[1].exc.func, 'id', None) == 'NotImplementedError')


def _interface_methods(interface):
    return {name: func for name, func in vars(interface).items()
            if inspect.isfunction(func) and not name.startswith('__')}


def _owner(cls, name):
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass
    return None


# Parameters the managers pass that the interface definitions lack.
CALLED_WITH = {
    # BackupManager passes volume_is_new since the Zed release.
    (backup_driver.BackupDriver, 'restore'): 1,
}


def _accepts(impl, spec, extra=0):
    """Whether ``impl`` can be called as the managers call ``spec``.

    They pass the interface's required parameters by position (their
    names differ between base classes: ``size_gb``, ``new_size``), plus
    ``extra`` ones the interface does not list.
    """
    required = [p for p in inspect.signature(spec).parameters.values()
                if p.default is p.empty and
                p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    try:
        inspect.signature(impl).bind(*[None] * (len(required) + extra))
    except TypeError:
        return False
    return True


def _stubs(cls):
    """Methods of a driver class that only raise NotImplementedError."""
    stubs = set()
    for name in dir(cls):
        if name.startswith('__'):
            continue
        owner = _owner(cls, name)
        func = _function(vars(owner)[name])
        if inspect.isfunction(func) and _is_stub(func):
            stubs.add(name)
    return stubs


@ddt.ddt
class LustreInterfaceComplianceTestCase(test.TestCase):

    def test_volume_driver_is_registered(self):
        drivers = [d.cls for d in util.get_volume_drivers()]
        self.assertIn(lustre.LustreDriver, drivers)

    def test_backup_driver_is_registered(self):
        drivers = [d.cls for d in util.get_backup_drivers()]
        self.assertIn(lustre_backup.LustreBackupDriver, drivers)

    @ddt.data(*CLAIMS)
    @ddt.unpack
    def test_every_interface_method_is_implemented(self, cls, interface):
        problems = []
        for name, spec in sorted(_interface_methods(interface).items()):
            owner = _owner(cls, name)
            if owner is None:
                problems.append('%s is missing' % name)
                continue
            impl = _function(vars(owner)[name])
            if impl is None:
                problems.append('%s is not callable' % name)
            elif base.CinderInterface in owner.__mro__:
                problems.append('%s is the interface stub' % name)
            elif _is_stub(impl) and name not in UNSUPPORTED.get(cls, {}):
                problems.append('%s is a stub of %s' % (
                    name, owner.__name__))
            elif _is_noop(impl) and name not in NOOPS:
                problems.append('%s of %s does nothing' % (
                    name, owner.__name__))
            elif not _accepts(impl, spec,
                              CALLED_WITH.get((interface, name), 0)):
                problems.append('%s%s does not accept %s%s' % (
                    name, inspect.signature(impl), name,
                    inspect.signature(spec)))
        self.assertEqual([], problems,
                         '%s does not implement %s' % (cls.__name__,
                                                       interface.__name__))

    @ddt.data(*UNSUPPORTED)
    def test_no_forgotten_base_class_hooks(self, cls):
        self.assertEqual(set(), {name for name in _stubs(cls)
                                 if _owner(cls, name).__module__ in
                                 HOOK_MODULES})

    @ddt.data(*UNSUPPORTED)
    def test_unsupported_features_are_still_stubs(self, cls):
        # The list says why each stub stays; it must not outlive the stub.
        self.assertEqual(set(), set(UNSUPPORTED[cls]) - _stubs(cls))

    def test_noops_are_still_noops(self):
        # The list says why doing nothing is right; it must name interface
        # methods the drivers really leave empty.
        noops = set()
        for cls, interface in CLAIMS:
            for name in _interface_methods(interface):
                owner = _owner(cls, name)
                if owner and _is_noop(_function(vars(owner)[name])):
                    noops.add(name)
        self.assertEqual(set(), set(NOOPS) - noops)

    def test_forgotten_hook_is_found(self):
        class Forgetful(lustre.LustreDriver):
            _extend_volume = remotefs.RemoteFSSnapDriverBase._extend_volume

        self.assertIn('_extend_volume', _stubs(Forgetful))
        self.assertNotIn('_extend_volume', _stubs(lustre.LustreDriver))

    def test_stub_detection(self):
        def raises():
            """Doc."""
            raise NotImplementedError()

        def raises_msg():
            msg = 'no'
            raise NotImplementedError(msg)

        def passes():
            pass

        def works():
            return 1

        self.assertTrue(_is_stub(raises))
        self.assertTrue(_is_stub(raises_msg))
        self.assertFalse(_is_stub(passes))
        self.assertTrue(_is_noop(passes))
        self.assertFalse(_is_stub(works))
        self.assertFalse(_is_noop(works))
        self.assertTrue(_is_noop(backup_driver.BackupDriver.backup))
