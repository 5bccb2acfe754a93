"""A stand-in for the Lustre client, for tests and demos only.

Only two things on a machine come from a Lustre client: the ``mount.lustre``
helper that ``mount -t lustre`` runs, and the ``lfs`` tool.  This package
emulates both at the process boundary (arguments, output, messages, exit
codes), backed by a real ext4 image per filesystem name, so that code which
drives them cannot tell it is not talking to Lustre.  See README.rst.
"""

# Every file the installer writes carries this marker, so that install can
# refuse to overwrite a real Lustre client and uninstall only removes what
# is ours.
MARKER = 'LUSTRE-STANDIN-MARKER'
