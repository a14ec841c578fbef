# Shared set-up steps of scripts/demo and scripts/test (sourced, not run).
# Installs missing Debian packages and starts the local services the tests use.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_packages PKG...: installs those that are missing (no network if none are).
ensure_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "Installing: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Packages to build kopplung.
# libxml2-dev and libclang-dev: XSD validation through libxml2 (bindings generated at build).
# fonts-dejavu-core: the font the reference procedure embeds in its decisions (PDF/A), read
# at run time by the demo and its tests.
BUILD_PACKAGES=(build-essential pkg-config libssl-dev openssl libxml2-dev libclang-dev fonts-dejavu-core)
# Packages the tests use besides: the services and the vendor-side tools (xmllint, and a
# Python virtualenv for jwcrypto, which the tests create).
# chromium: the portal's browser tests (driven by playwright-core, never a downloaded browser).
# python3-aiosmtpd: the real SMTP server the portal's mail tests send to (run with
# /usr/bin/python3, not a pyenv python3 on the PATH).
# openjdk-17-jdk-headless and libbcpkix-java: the Java example receiver (examples/receivers/java).
# qpdf: a stock PDF tool that checks the reference procedure's decision opens;
# poppler-utils: pdftotext and pdfinfo read the portal's confirmation as a reader would.
TEST_PACKAGES=(rabbitmq-server postgresql sqlite3 libxml2-utils python3-venv chromium python3-aiosmtpd openjdk-17-jdk-headless libbcpkix-java qpdf poppler-utils)

# FIT-Connect's community Python SDK (PyPI `fitconnect`, pinned) in
# target/fitconnect-venv: a FIT-Connect sender to try the hub's FIT-Connect edge with
# (docs/fit-connect.md). Prints the path of the copy of FIT-Connect's metadata schema it
# carries, which the hub checks every submission's metadata against.
fitconnect_sdk() {
  local venv=target/fitconnect-venv
  if ! "$venv/bin/python" -c 'import fitconnect' >/dev/null 2>&1; then
    echo "Installing FIT-Connect's Python SDK into $venv" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check fitconnect==0.4.2 >&2
  fi
  "$venv/bin/python" -c "import fitconnect, os; print(os.path.join(os.path.dirname(fitconnect.__file__), 'schema', 'metadata.schema.v1.0.0.json'))"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for NAME SECONDS CMD...: polls CMD until it succeeds, fails loudly otherwise.
wait_for() {
  local name=$1 seconds=$2; shift 2
  for _ in $(seq "$seconds"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "ERROR: $name did not come up within ${seconds}s" >&2
  return 1
}

ensure_rabbitmq() {
  if ! port_open 5672; then
    echo "Starting RabbitMQ"
    as_root rabbitmq-server -detached
  fi
  wait_for "RabbitMQ on 127.0.0.1:5672" 90 port_open 5672
  # The port opens before the broker accepts logins: wait for a real answer.
  wait_for "RabbitMQ" 60 as_root rabbitmq-diagnostics -q check_running
}

ensure_postgres() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "Starting PostgreSQL"
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  fi
  wait_for "PostgreSQL on 127.0.0.1:5432" 60 pg_isready -q -h 127.0.0.1 -p 5432
  # The tests connect as `postgres` over TCP to the database `test`. A stock Debian
  # server wants a password there: give the role one for the tests and export it.
  if ! psql -h 127.0.0.1 -U postgres -d test -Atc 'SELECT 1' >/dev/null 2>&1; then
    export PGPASSWORD="${PGPASSWORD:-kopplung-test}"
    if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
      echo "Giving the PostgreSQL role postgres a password for the tests"
      as_root su postgres -c "psql -qc \"ALTER ROLE postgres PASSWORD '$PGPASSWORD'\"" >/dev/null
    fi
    psql -h 127.0.0.1 -U postgres -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
      || psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test'
  fi
}

# Node.js and npm, for the portal's KERN UX assets (npm package @kern-ux/native) and its
# browser tests; Debian's packages unless a Node.js with npm is there already.
ensure_node() {
  if ! command -v npm >/dev/null 2>&1; then
    ensure_packages nodejs npm
  fi
}

# npm_install DIR: installs the locked npm packages of DIR (package-lock.json) if its
# node_modules is missing or older than the lock.
npm_install() {
  local dir=$1
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    echo "Installing npm packages in $dir"
    npm ci --no-audit --no-fund --prefix "$dir" >/dev/null
    touch "$dir/node_modules"
  fi
}

# The portal's fonts, cut to what a German page needs: KERN UX ships Fira Sans as full
# fonts (about 130 KB per weight: Latin, Greek, Cyrillic, …). portal_fonts cuts the three
# weights KERN's stylesheet uses (400, 500, 600) into a Latin and a Latin Extended part
# with Debian's fonttools (pyftsubset; WOFF2 through python3-brotli), beside KERN's fonts
# in the npm folder, so a reinstalled KERN UX gets new ones. The portal declares both
# parts with these ranges (portal/src/web/assets.rs, PARTS): a page loads the second
# only for a character from it. Without the parts the portal serves the full fonts.
PORTAL_FONT_PARTS=(
  "latin U+0000-00FF,U+0131,U+0152-0153,U+02BB-02BC,U+02C6,U+02DA,U+02DC,U+0304,U+0308,U+0329,U+2000-206F,U+20AC,U+2122,U+2191,U+2193,U+2212,U+2215,U+FEFF,U+FFFD"
  "latin-ext U+0100-02BA,U+02BD-02C5,U+02C7-02CC,U+02CE-02D7,U+02DD-02FF,U+0304,U+0308,U+0329,U+1D00-1DBF,U+1E00-1E9F,U+1EF2-1EFF,U+2020,U+20A0-20AB,U+20AD-20C0,U+2113,U+2C60-2C7F,U+A720-A7FF"
)
portal_fonts() {
  local fonts=portal/node_modules/@kern-ux/native/dist/fonts
  local out=$fonts/kopplung-subset
  if [ -f "$out/complete" ]; then return 0; fi
  ensure_packages fonttools python3-brotli
  echo "Cutting the portal's fonts into $out"
  mkdir -p "$out"
  local weight part name ranges
  for weight in Regular Medium SemiBold; do
    for part in "${PORTAL_FONT_PARTS[@]}"; do
      name=${part%% *}
      ranges=${part#* }
      # (Its warning about the fonts' old OS/2 table is of no matter here.)
      pyftsubset "$fonts/fira-sans/FiraSans-$weight.woff2" --flavor=woff2 \
        --unicodes="$ranges" --output-file="$out/FiraSans-$weight.$name.woff2" \
        2> >(grep -v 'fsSelection bits' >&2)
    done
  done
  touch "$out/complete"
}
