"""pgserver.py - a throwaway PostgreSQL for the tests: initdb in a temporary directory, the
server on a free loopback port, stopped and removed at the end (also after a failure, SIGTERM or
SIGINT).

PostgreSQL refuses to run as root, so as root the cluster belongs to an unprivileged user
(SEGLOSS_PG_USER, default "nobody", which Debian always has) and its commands run through
runuser(1) (util-linux, in every Debian); as any other user they run directly. The superuser
"segloss" has a random password (scram-sha-256 over TCP), which the clients get from a file or
PGPASSWORD, never from a URI. fsync is off: the tests kill seglossd, never this server.

  python3 tests/pg/pgserver.py run CMD [ARG...]
      starts a cluster, runs CMD with SEGLOSS_TEST_PG=postgresql://segloss@127.0.0.1:PORT (no
      database: the test makes its own) and PGPASSWORD set, stops the cluster, exits with CMD's
      status.

Python 3 standard library; the binaries of Debian's postgresql (/usr/lib/postgresql/N/bin, or
SEGLOSS_PG_BIN)."""

import atexit
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def pg_bindir():
    """The directory holding initdb and pg_ctl: SEGLOSS_PG_BIN, else Debian's newest."""
    env = os.environ.get("SEGLOSS_PG_BIN")
    if env:
        return env
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                  key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if dirs:
        return os.path.dirname(dirs[-1])
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    raise RuntimeError("no PostgreSQL server binaries (Debian: apt-get install postgresql; or "
                       "set SEGLOSS_PG_BIN to the directory holding initdb and pg_ctl)")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PgCluster:
    """A running PostgreSQL; .uri(db), .password, .password_file, .createdb(name), .stop()."""

    def __init__(self):
        self.bindir = pg_bindir()
        self.root = tempfile.mkdtemp(prefix="segloss-pg-")
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "server.log")
        self.running = False
        self.prefix = []
        owner = None
        if os.geteuid() == 0:
            user = os.environ.get("SEGLOSS_PG_USER", "nobody")
            owner = pwd.getpwnam(user)
            self.prefix = ["runuser", "-u", user, "--"]
        # the cluster's directory and log belong to the user that runs it
        os.chmod(self.root, 0o755)
        os.mkdir(self.data, 0o700)
        open(self.log, "w").close()
        self.password = secrets.token_hex(16)
        init_pw = os.path.join(self.root, "initpw")
        with open(init_pw, "w") as f:
            f.write(self.password + "\n")
        # the clients' copy (the test's own user)
        self.password_file = os.path.join(self.root, "password")
        with open(self.password_file, "w") as f:
            f.write(self.password + "\n")
        os.chmod(self.password_file, 0o600)
        if owner:
            for p in (self.data, self.log, init_pw):
                os.chown(p, owner.pw_uid, owner.pw_gid)
        self._arm()
        try:
            self._pg("initdb", "-D", self.data, "-U", "segloss", "--pwfile", init_pw,
                     "--auth-local", "trust", "--auth-host", "scram-sha-256", "-E", "UTF8",
                     "--no-sync")
            os.unlink(init_pw)
            self.port = free_port()
            opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                    "-c unix_socket_directories='' -c fsync=off -c full_page_writes=off "
                    "-c max_connections=200")
            self._pg("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "-o", opts,
                     "start")
            self.running = True
        except Exception:
            self.stop()
            raise

    def _arm(self):
        """Stops the cluster at exit and on SIGTERM/SIGINT."""
        atexit.register(self.stop)
        for sig in (signal.SIGTERM, signal.SIGINT):
            old = signal.getsignal(sig)

            def handler(signum, frame, old=old):
                self.stop()
                if callable(old):
                    old(signum, frame)
                sys.exit(128 + signum)
            signal.signal(sig, handler)

    def _pg(self, tool, *args):
        cmd = self.prefix + [os.path.join(self.bindir, tool), *args]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           cwd=self.root, timeout=120)
        if r.returncode != 0:
            log = ""
            if os.path.exists(self.log):
                with open(self.log) as f:
                    log = f.read()[-2000:]
            raise RuntimeError(f"{tool} failed ({r.returncode}): {r.stdout[-2000:]}\n{log}")
        return r.stdout

    def base(self):
        """The server's URI without a database: postgresql://segloss@127.0.0.1:PORT."""
        return f"postgresql://segloss@127.0.0.1:{self.port}"

    def uri(self, db):
        return f"{self.base()}/{db}"

    def client_env(self):
        env = dict(os.environ)
        env["PGPASSWORD"] = self.password
        return env

    def psql(self, db, sql):
        """Runs sql on database db with psql; returns its output (unaligned, tuples only)."""
        psql = os.path.join(self.bindir, "psql")
        r = subprocess.run([psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.uri(db),
                            "-c", sql], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env=self.client_env(), timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"psql: {r.stdout}")
        return r.stdout.strip()

    def createdb(self, name):
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return self.uri(name)

    def stop(self):
        if self.running:
            self.running = False
            try:
                self._pg("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
            except Exception as e:  # still remove what can be removed
                print(f"pgserver: stopping: {e}", file=sys.stderr)
        if self.root and os.path.isdir(self.root):
            shutil.rmtree(self.root, ignore_errors=True)
        self.root = None


def main():
    if len(sys.argv) < 3 or sys.argv[1] != "run":
        print(__doc__, file=sys.stderr)
        return 2
    t0 = time.monotonic()
    pg = PgCluster()
    try:
        print(f"pgserver: PostgreSQL on 127.0.0.1:{pg.port} in {time.monotonic() - t0:.1f} s "
              f"({'as ' + pg.prefix[2] if pg.prefix else 'as this user'})", flush=True)
        env = pg.client_env()
        env["SEGLOSS_TEST_PG"] = pg.base()
        return subprocess.run(sys.argv[2:], env=env).returncode
    finally:
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
