# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host name or IP address of the PostgreSQL server.
      - Falls back to the E(PGHOST) environment variable.
    type: str
  login_port:
    description:
      - TCP port of the PostgreSQL server. Falls back to E(PGPORT).
    type: int
    default: 5432
  login_user:
    description:
      - Role to log in as. Falls back to E(PGUSER).
    type: str
  login_password:
    description:
      - Password of O(login_user). Falls back to E(PGPASSWORD).
    type: str
  login_db:
    description:
      - Database to connect to. Falls back to E(PGDATABASE), then V(postgres).
    type: str
  login_unix_socket:
    description:
      - Directory of the server's Unix socket; used instead of O(login_host) when set.
    type: str
  ssl_mode:
    description:
      - libpq C(sslmode). Falls back to E(PGSSLMODE).
      - Without it, V(verify-full) when O(ssl_rootcert) is given, else V(prefer).
        community.postgresql defaults to V(prefer) in every case; this collection does not,
        because its logins carry admin passwords, new passwords and IAM tokens, and only
        V(verify-full) proves who receives them.
      - Over anything weaker than V(verify-full) (and over Unix sockets), a server's request
        for the password in cleartext is refused (libpq C(require_auth=!password)), so an
        attacker who answers "no TLS" learns nothing; SCRAM and md5 logins work as usual.
      - Use V(verify-full) with O(ssl_rootcert) against RDS; IAM tokens travel in cleartext
        and are only sent over V(verify-full) (see O(iam_allow_unverified_tls)).
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ssl_rootcert:
    description:
      - CA bundle that signed the server certificate. Falls back to E(PGSSLROOTCERT).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the connection before giving up.
    type: int
    default: 10
  login_iam:
    description:
      - Log in with a freshly generated RDS IAM auth token for O(login_user) instead of a
        password. The token is made with the AWS options (O(region), O(profile), ...) and lives
        15 minutes; it is used for this one connection only.
      - Needs O(ssl_mode=verify-full) (or O(iam_allow_unverified_tls)) and a role that is a
        member of C(rds_iam).
    type: bool
    default: false
  iam_allow_unverified_tls:
    description:
      - Send IAM tokens over a connection that does not verify the server (O(ssl_mode) other
        than V(verify-full)). A token is a bearer credential for 15 minutes; whoever can
        intercept the connection can replay it. Each login that uses this says so in a
        warning.
    type: bool
    default: false
requirements:
  - psycopg2 (psycopg2-binary)
"""
