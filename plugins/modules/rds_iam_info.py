#!/usr/bin/python
# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: rds_iam_info
short_description: The AWS side of RDS IAM database authentication, for one database user
version_added: 0.1.0
description:
  - Read-only. For an RDS instance or Aurora cluster, returns whether IAM database
    authentication is enabled, the endpoint, the resource id (C(DbiResourceId) or
    C(DbClusterResourceId)) and the exact C(rds-db:connect) resource ARN for O(db_user).
  - With O(principal_arn) (the role, user or assumed-role session the application runs as),
    says whether its policies allow C(rds-db:connect) on that ARN and which statements decide
    it; V(allowed), V(denied), or V(undecided) with RV(reasons) naming what could not be
    decided. It never answers V(allowed) where AWS might deny.
  - It asks IAM's policy simulator (C(iam:SimulatePrincipalPolicy)); an answer that depended
    on context keys the simulator did not have (C(MissingContextValues)) is V(undecided).
    Where the simulator does not answer, it reads every page of the principal's inline and
    attached policies (and its groups') and evaluates them itself; an explicit Deny wins, then
    an Allow. Undecided there are statements with a C(Condition) or a policy variable, a
    statement that applies only through C(NotAction) or C(NotResource), a wildcard that would
    have to match across a C(:) of the ARN, and an Allow that a permissions boundary, an SCP
    (the account is in an AWS Organization, or that cannot be read) or a session policy (an
    assumed-role ARN) could take away. A V(denied) stays V(denied) whatever those say.
  - For an Aurora cluster, or an instance of one, the ARN names the cluster's
    C(DbClusterResourceId) (C(cluster-...)), and the IAM flag is the cluster's.
  - With O(generate_token), also returns a fresh IAM auth token (15 minutes, new connections
    only). Set C(no_log) on the task when you ask for one.
options:
  db_instance_identifier:
    description: The RDS instance.
    type: str
  db_cluster_identifier:
    description: The Aurora cluster.
    type: str
  db_user:
    description: The database role the application logs in as.
    type: str
    required: true
  principal_arn:
    description: IAM role, user or assumed-role ARN of the application.
    type: str
  generate_token:
    description: Return a token for this host and port (default the endpoint's).
    type: dict
    suboptions:
      host:
        description: Host the client connects to (the token is signed for it).
        type: str
      port:
        description: Port the client connects to.
        type: int
extends_documentation_fragment:
  - credops.pgauth.aws
  - credops.pgauth.attributes
  - credops.pgauth.attributes.info_module
author:
  - credops maintainers (@credops)
"""

EXAMPLES = r"""
- name: May the app's role connect as app_user?
  credops.pgauth.rds_iam_info:
    db_instance_identifier: mydb
    db_user: app_user
    principal_arn: arn:aws:iam::123456789012:role/app
    region: eu-west-1
  register: pgauth_iam
"""

RETURN = r"""
iam_enabled:
  description: IAMDatabaseAuthenticationEnabled of the instance or cluster.
  returned: always
  type: bool
endpoint:
  description: The endpoint address.
  returned: always
  type: str
port:
  description: The endpoint port.
  returned: always
  type: int
resource_id:
  description:
    - The id the connect ARN names, DbiResourceId (C(db-...)), or for Aurora (a cluster or one
      of its instances) the cluster's DbClusterResourceId (C(cluster-...)).
  returned: always
  type: str
  sample: db-ABCDEFGHIJKLMNOPQRSTUVWXY
aurora_cluster:
  description: The Aurora cluster whose resource id and IAM flag an instance's facts use.
  returned: always (null unless db_instance_identifier is an Aurora cluster member)
  type: str
connect_arn:
  description: The resource ARN an IAM policy must allow for rds-db:connect.
  returned: always
  type: str
  sample: arn:aws:rds-db:eu-west-1:123456789012:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXY/app_user
connect_allowed:
  description: Whether O(principal_arn) may connect; null when it cannot be decided.
  returned: when principal_arn is given
  type: bool
decision:
  description: V(allowed), V(denied) (explicitly or implicitly) or V(undecided).
  returned: when principal_arn is given
  type: str
  choices: [allowed, denied, undecided]
reasons:
  description:
    - What could not be decided, when RV(decision) is V(undecided); empty otherwise.
    - V(condition), V(policy_variable), V(not_action), V(not_resource),
      V(wildcard_across_segments), V(wildcard_in_service) (statements),
      V(permissions_boundary), V(scp), V(session_policy), V(cross_account) (what could
      take an Allow away), V(missing_context_values), V(simulator_decision) (the simulator),
      V(principal_in_other_account), V(policies_unreadable), V(listing_incomplete) (reading
      the policies).
  returned: when principal_arn is given
  type: list
  elements: str
  sample: [permissions_boundary]
statements:
  description:
    - The policy statements behind the decision (C(policy), C(sid), C(effect); C(undecided)
      lists a statement's own reasons).
  returned: when principal_arn is given
  type: list
  elements: dict
notes:
  description: How the decision was reached, in words.
  returned: when principal_arn is given
  type: list
  elements: str
method:
  description: V(simulate_principal_policy) or V(local_evaluation).
  returned: when principal_arn is given
  type: str
token:
  description: A fresh IAM auth token. A credential; keep it out of logs.
  returned: when generate_token is given
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.credops.pgauth.plugins.module_utils.aws import (
    AWS_ARGSPEC,
    rds_auth_token,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rds_iam import iam_facts
from ansible_collections.credops.pgauth.plugins.module_utils.runner import run_module


def run(module: AnsibleModule) -> dict:
    params = module.params
    result = {"changed": False, **iam_facts(params, params["db_instance_identifier"],
                                            params["db_cluster_identifier"], params["db_user"],
                                            params["principal_arn"])}
    if not result["iam_enabled"]:
        module.warn("IAM database authentication is disabled on this database: tokens are "
                    "refused whatever the policies say")
    if result.get("decision") == "undecided":
        module.warn(f"whether {params['principal_arn']} may rds-db:connect could not be "
                    f"decided ({', '.join(result.get('reasons') or [])}); see notes")
    if params["generate_token"] is not None:
        host = params["generate_token"].get("host") or result["endpoint"]
        port = params["generate_token"].get("port") or result["port"]
        region = params["region"] or result["region"]
        result["token"] = rds_auth_token({**params, "region": region},
                                         host, port, params["db_user"])
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "db_instance_identifier": {"type": "str"},
            "db_cluster_identifier": {"type": "str"},
            "db_user": {"type": "str", "required": True},
            "principal_arn": {"type": "str"},
            "generate_token": {"type": "dict", "no_log": False, "options": {
                "host": {"type": "str"}, "port": {"type": "int"}}},
            **{name: dict(option) for name, option in AWS_ARGSPEC.items()},
        },
        required_one_of=[("db_instance_identifier", "db_cluster_identifier")],
        mutually_exclusive=[("db_instance_identifier", "db_cluster_identifier")],
        supports_check_mode=True,
    )
    run_module(module, run, f"rds_iam_info {module.params['db_user']!r}")


if __name__ == "__main__":
    main()
