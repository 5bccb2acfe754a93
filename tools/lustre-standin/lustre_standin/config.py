"""The stand-in's configuration file (INI, see README.rst)."""

import configparser
import os
import sys

from lustre_standin import util

DEFAULT_PATH = '/etc/lustre-standin/standin.conf'
ENV_VAR = 'LUSTRE_STANDIN_CONF'

DEFAULTS = {
    'state_dir': '/var/lib/lustre-standin',
    'version': '2.15.6',
    'image_size': '20G',
    'osts': '4',
    'stripe_count': '1',
    'stripe_size': '1M',
    'strict_pools': 'yes',
    'auto_create': 'yes',
}

# Lustre limits that the configuration must respect too.
MAX_OSTS = 2000
MAX_POOL_NAME = 15


class ConfigError(Exception):
    """The configuration file is unusable."""


def load(prog, path=None):
    """The configuration, or None once ``PROG: why`` is on stderr."""
    try:
        return Config(path)
    except ConfigError as exc:
        print('%s: %s' % (prog, exc), file=sys.stderr)
        return None


class FsConfig(object):
    """Settings of one emulated filesystem (one ``[fs:NAME]`` section)."""

    def __init__(self, name, size, osts, pools, mgs, configured,
                 stripe_count, stripe_size):
        self.name = name
        self.size = size
        self.osts = osts
        self.pools = pools
        self.mgs = mgs
        self.configured = configured
        # The filesystem-wide default layout (what the MDS uses when
        # neither the file nor any parent directory says otherwise).
        self.stripe_count = stripe_count
        self.stripe_size = stripe_size

    def ost_uuid(self, index):
        return '%s-OST%04x_UUID' % (self.name, index)

    def mdt_uuid(self, index=0):
        return '%s-MDT%04x_UUID' % (self.name, index)


class Config(object):
    """The whole configuration, with defaults for anything left out."""

    def __init__(self, path=None):
        self.path = path or os.environ.get(ENV_VAR) or DEFAULT_PATH
        parser = configparser.ConfigParser(interpolation=None)
        try:
            # A missing file is fine: every setting has a default.
            parser.read(self.path)
        except configparser.Error as exc:
            raise ConfigError('%s: %s' % (self.path, exc))
        self._parser = parser
        section = parser['standin'] if parser.has_section('standin') else {}
        values = dict(DEFAULTS)
        values.update(section)
        try:
            self.state_dir = os.path.abspath(values['state_dir'])
            self.version = values['version'].strip()
            self.image_size = util.parse_human_size(values['image_size'])
            self.osts = self._osts(values['osts'])
            self.stripe_count = int(values['stripe_count'])
            self.stripe_size = util.parse_human_size(values['stripe_size'])
            self.strict_pools = self._bool(values['strict_pools'])
            self.auto_create = self._bool(values['auto_create'])
        except ValueError as exc:
            raise ConfigError('%s: [standin]: %s' % (self.path, exc))
        if self.stripe_size % 65536:
            raise ConfigError('%s: stripe_size must be a multiple of 64KiB'
                              % self.path)

    @staticmethod
    def _bool(text):
        value = text.strip().lower()
        if value in ('1', 'yes', 'true', 'on'):
            return True
        if value in ('0', 'no', 'false', 'off'):
            return False
        raise ValueError('not a boolean: %r' % text)

    @staticmethod
    def _osts(text):
        count = int(text)
        if not 1 <= count <= MAX_OSTS:
            raise ValueError('osts must be between 1 and %d' % MAX_OSTS)
        return count

    def version_tuple(self):
        """The emulated Lustre version as a tuple of ints, for comparisons."""
        parts = []
        for part in self.version.split('.'):
            digits = ''.join(c for c in part if c.isdigit())
            parts.append(int(digits or 0))
        return tuple(parts)

    def configured_names(self):
        """Filesystem names that have their own section."""
        return [name[3:] for name in self._parser.sections()
                if name.startswith('fs:')]

    def fs(self, name, extra_pools=None):
        """Return the FsConfig of ``name``, defaults filled in.

        :param extra_pools: pools defined at run time by the admin command,
            which replace configured pools of the same name.
        """
        section_name = 'fs:%s' % name
        configured = self._parser.has_section(section_name)
        section = self._parser[section_name] if configured else {}
        where = '%s: [%s]' % (self.path, section_name)
        try:
            size = util.parse_human_size(section.get('size', '') or
                                         str(self.image_size))
            osts = self._osts(section.get('osts', '') or str(self.osts))
            pools = parse_pools(section.get('pools', ''), osts)
            stripe_count = int(section.get('stripe_count', '') or
                               self.stripe_count)
            stripe_size = util.parse_human_size(
                section.get('stripe_size', '') or str(self.stripe_size))
            if stripe_size % 65536 or not -1 <= stripe_count <= MAX_OSTS:
                raise ValueError('invalid default stripe count or size')
        except ValueError as exc:
            raise ConfigError('%s: %s' % (where, exc))
        for pool, members in (extra_pools or {}).items():
            if members:
                pools[pool] = [idx for idx in members if idx < osts]
            else:
                pools.pop(pool, None)
        mgs = section.get('mgs', '').replace(',', ' ').split()
        return FsConfig(name, size, osts, pools, mgs, configured,
                        stripe_count, stripe_size)


def parse_pools(text, osts):
    """Parse ``flash:0-1 disk:2-7`` into ``{'flash': [0, 1], ...}``."""
    pools = {}
    for item in text.split():
        name, sep, members = item.partition(':')
        if not sep or not name:
            raise ValueError('pool %r is not NAME:OST-RANGE' % item)
        if len(name) > MAX_POOL_NAME or '.' in name:
            raise ValueError('invalid pool name %r' % name)
        indices = util.parse_index_list(members)
        if indices and indices[-1] >= osts:
            raise ValueError('pool %r names OST %d but there are only %d'
                             % (name, indices[-1], osts))
        pools[name] = indices
    return pools
