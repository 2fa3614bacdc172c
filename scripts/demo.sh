#!/usr/bin/env bash
# Run the example site with demo data: venv, migrations, a demo superuser, demo content with
# history, both search indexes, then the development server. Running it again reuses all of
# that: the venv is kept, existing users stay, commits and files imported before are skipped,
# and the indexes are checked and brought up to date, not rebuilt.
#
# Demo content:
#   demo/versioned_items     this project's own git history (every commit a version), or its
#                            source tree when there is no git checkout
#   demo/django/admin        the installed Django's admin app: Python, templates, CSS, JS,
#                            images and translations
#
# Environment: PY (default 3.11), VENV (default .venv), ADDR (default 127.0.0.1:8000),
#              VI_DATA_DIR (default ./data; read by example_project.settings),
#              VI_SEARCH_ENGINE (whoosh or tantivy: installs the tantivy extra; read by
#              example_project.settings).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-3.11}
VENV=${VENV:-.venv}
ADDR=${ADDR:-127.0.0.1:8000}
DATA=${VI_DATA_DIR:-data}

# VI_SEARCH_ENGINE=tantivy (read by example_project.settings) needs the tantivy extra.
extras=""
[ "${VI_SEARCH_ENGINE:-}" = tantivy ] && extras=tantivy
scripts/venv.sh "$PY" "$VENV" "$extras"
manage() { "$VENV/bin/python" manage.py "$@"; }

echo "=== database ==="
manage migrate --noinput -v 0
manage shell -v 0 -c '
from django.contrib.auth import get_user_model
User = get_user_model()
if not User.objects.filter(username="demo").exists():
    User.objects.create_superuser("demo", "demo@example.com", "demo")
    print("Created the superuser demo (password demo).")
'

echo "=== demo content ==="
if git rev-parse --git-dir >/dev/null 2>&1; then
    manage vi_import --git . --under demo/versioned_items
else
    echo "No git checkout here: importing the source tree instead of its history."
    manage vi_import versioned_items --under demo/versioned_items
fi
django_admin=$("$VENV/bin/python" -c 'import os, django.contrib.admin as m; print(os.path.dirname(m.__file__))')
manage vi_import "$django_admin" --under demo/django/admin --user demo

# The imports fed both indexes already (through the outbox). The intelligent update compares
# each index with the database and writes only what differs: everything on a first run whose
# index was lost, nothing on a second run.
echo "=== search indexes ==="
manage vi_update_index

cat <<MSG

  Example site:  http://$ADDR/            (browse: http://$ADDR/browse/demo/)
  Search:        http://$ADDR/search/?q=restore
  Admin:         http://$ADDR/admin/
  Log in with    user demo, password demo
  Data:          $DATA/  (delete it to start over)
  Stop with Ctrl-C.

MSG
exec "$VENV/bin/python" manage.py runserver "$ADDR"
