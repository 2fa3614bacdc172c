#!/usr/bin/env bash
# Run the example site with demo data: venv, migrations, a demo superuser, demo content, then
# the development server. Running it again reuses all of that.
#
# Environment: PY (default 3.11), VENV (default .venv), ADDR (default 127.0.0.1:8000),
#              VI_DATA_DIR (default ./data; read by example_project.settings).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-3.11}
VENV=${VENV:-.venv}
ADDR=${ADDR:-127.0.0.1:8000}

scripts/venv.sh "$PY" "$VENV"
manage() { "$VENV/bin/python" manage.py "$@"; }

manage migrate --noinput
manage shell -v 0 -c '
from django.contrib.auth import get_user_model
User = get_user_model()
if not User.objects.filter(username="demo").exists():
    User.objects.create_superuser("demo", "demo@example.com", "demo")
    print("Created superuser demo.")
'

# The app's own source tree makes handy demo content. Without the command (an older checkout)
# the site still runs, just empty; a failing import is an error like any other.
if manage help vi_import >/dev/null 2>&1; then
    manage vi_import versioned_items --under demo/versioned_items
else
    echo "Note: no vi_import command; starting without demo data."
fi

cat <<MSG

  Example site:  http://$ADDR/
  Admin:         http://$ADDR/admin/   (user: demo, password: demo)
  Data:          ${VI_DATA_DIR:-data/}
  Stop with Ctrl-C.

MSG
exec "$VENV/bin/python" manage.py runserver "$ADDR"
