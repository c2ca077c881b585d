#!/bin/bash
# Run by test/setup-fresh-debian.test.ts inside a fresh Debian 12 root (no
# Node, only git), with the repository at /opt/unionize: another apt holds
# its locks for a while, as on a machine whose daily apt job has just started,
# then the README's set-up runs twice (the second time finds everything there).
set -euo pipefail

# This site's own certificate authorities (a TLS-intercepting proxy, say), as
# any machine here has them: the test copied them into /usr/local/share/ca-certificates.
update-ca-certificates >/dev/null

# Hold apt's and dpkg's locks (fcntl, as apt does) for 20 s. perl-base is in
# every Debian; struct flock on x86_64: short, short, pad, off_t, off_t, pid_t, pad.
perl -e '
  use Fcntl qw(F_SETLK F_WRLCK SEEK_SET O_RDWR O_CREAT);
  my @held;
  for my $f ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock") {
    sysopen(my $fh, $f, O_RDWR | O_CREAT, 0640) or die "$f: $!";
    my $lock = pack("s s x4 q q i x4", F_WRLCK, SEEK_SET, 0, 0, 0);
    fcntl($fh, F_SETLK, $lock) or die "lock $f: $!";
    push @held, $fh;
  }
  sleep 20;
' &
holder=$!
sleep 1

cd /opt/unionize
echo "== first set-up"
bash scripts/setup.sh
echo "== second set-up"
bash scripts/setup.sh
wait "$holder" || true

echo "== checks"
export PATH=/opt/unionize/.node/bin:$PATH
echo "node: $(command -v node) $(node --version)"
node -e "const db = require('better-sqlite3')(':memory:'); console.log('better-sqlite3: sqlite ' + db.prepare('select sqlite_version() v').get().v)"
npx --no-install orchestratorctl --help | head -n 1
if dpkg-query -W -f='${Status}\n' nodejs 2>/dev/null | grep -q 'install ok installed'; then
  echo "Debian's nodejs is installed"
else
  echo "Debian's nodejs: not installed"
fi
