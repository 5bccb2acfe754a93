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

"""Keep the driver pages true to the code.

For each page named in the ``lustre_doc_checks`` setting, this extension
reads the drivers' source and warns (an error under ``sphinx-build -W``)
when the page does not mention:

* an error message a driver raises: the literal parts of every translated
  message of a ``raise`` statement must appear, in order, in the page (the
  page writes placeholders as it likes, such as ``<share>``);
* a volume-type extra spec the driver reads: every string literal that
  looks like ``provisioning:type`` or ``lustre:...``.

The messages of the code are the troubleshooting entries the page owes its
readers: a new error in the code fails the documentation build until it is
documented.
"""

import ast
import importlib.util
import re

from sphinx.util import logging

LOG = logging.getLogger(__name__)

# A printf placeholder: %s, %d, %(name)s, %(name)d, %%.
_PLACEHOLDER = re.compile(r'%(\([^)]*\))?[-#0 +]*[0-9]*(\.[0-9]+)?[sdifr%]')
_EXTRA_SPEC = re.compile(r'^(provisioning:type|lustre:[a-z_]+)$')
# Placeholders in the page are short: <share>, <MGSNID>, 4M, ...
_GAP = r'.{0,60}?'
# Messages with less literal text than this say nothing by themselves
# (such as '%(source)s: %(reason)s').
_MIN_LITERAL = 12


def _source(module):
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise ValueError('cannot find module %s' % module)
    with open(spec.origin) as f:
        return spec.origin, f.read()


def _translated(node):
    """The string of a ``_('...')`` call, or None."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and
            node.func.id == '_' and len(node.args) == 1 and
            isinstance(node.args[0], ast.Constant) and
            isinstance(node.args[0].value, str)):
        return node.args[0].value
    return None


def raised_messages(module):
    """(line, message) of each translated message in a raise statement."""
    path, text = _source(module)
    found = []
    for node in ast.walk(ast.parse(text, path)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for sub in ast.walk(node.exc):
                message = _translated(sub)
                if message is not None:
                    found.append((path, sub.lineno, message))
    return found


def extra_specs(module):
    path, text = _source(module)
    return sorted({node.value for node in ast.walk(ast.parse(text, path))
                   if isinstance(node, ast.Constant) and
                   isinstance(node.value, str) and
                   _EXTRA_SPEC.match(node.value)})


def _normalize(text):
    return ' '.join(text.split())


def message_pattern(message):
    """A regex finding the message in a page, or None if too generic."""
    parts = [_normalize(part) for part in _PLACEHOLDER.split(message)
             if part and not part.startswith('(') and
             part not in ('.', '%')]
    literal = [part for part in parts if part.strip()]
    if sum(len(part) for part in literal) < _MIN_LITERAL:
        return None
    return re.compile(_GAP.join(re.escape(part.strip())
                                for part in literal))


def check_page(app, docname, source):
    checks = app.config.lustre_doc_checks.get(docname)
    if not checks:
        return
    page = _normalize(source[0])
    for module in checks.get('errors', ()):
        for path, line, message in raised_messages(module):
            pattern = message_pattern(message)
            if pattern is not None and not pattern.search(page):
                LOG.warning('%s does not document the error raised at '
                            '%s:%d: %r', docname, path, line, message,
                            location=docname)
    for module in checks.get('extra_specs', ()):
        for spec in extra_specs(module):
            if spec not in page:
                LOG.warning('%s does not document the extra spec %r read '
                            'by %s', docname, spec, module,
                            location=docname)


def setup(app):
    app.add_config_value('lustre_doc_checks', {}, 'env')
    app.connect('source-read', check_page)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
