"""Stand-in for ansible-test's downloaded get-pip script (that host is unreachable here).

ansible-test runs it inside each fresh sanity/units venv with pip's own arguments.
We bootstrap pip from the interpreter's bundled wheel, then install what was asked
from the configured package index.
"""
import subprocess
import sys

IGNORED = {"--no-setuptools", "--no-wheel"}

args = [arg for arg in sys.argv[1:] if arg not in IGNORED]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"],
                      stdout=subprocess.DEVNULL)
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
