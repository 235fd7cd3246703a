"""joyent_user, joyent_policy, joyent_role and joyent_machine's role_tags through ansible-playbook against tritonsim."""

import json
import subprocess

from sim.signer import client_for, md5_fingerprint_of_pub

RBAC_WRITES = ("CreateUser", "UpdateUser", "DeleteUser", "CreateUserKey", "DeleteUserKey", "CreatePolicy",
               "UpdatePolicy", "DeletePolicy", "CreateRole", "UpdateRole", "DeleteRole", "ReplaceMachineRoleTags",
               "CreateMachine")


def writes(sim):
    by_route = sim.stats()["by_route"]
    return {route: by_route[route] for route in RBAC_WRITES if route in by_route}


def keypair(tmp_path, name):
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "c-" + name, "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip(), md5_fingerprint_of_pub(path.with_suffix(".pub"))


def api(sim):
    return client_for(sim)


def one_line_error(run, *words):
    (failed,) = [e["result"] for e in run.entries if e["status"] == "failed"]
    assert "\n" not in failed["msg"]
    for word in words:
        assert word in failed["msg"], failed["msg"]
    return failed


# -- joyent_user ---------------------------------------------------------------------------------------------

def test_user_lifecycle_keys_exact_check_diff_and_no_password_anywhere(tritonsim, playbook, tmp_path):
    pub_a, fp_a = keypair(tmp_path, "a")
    pub_b, fp_b = keypair(tmp_path, "b")
    task = """
        - name: user
          locustfleet.triton.joyent_user:
            login: w1
            email: w1@example.com
            keys: %s
    """
    one = json.dumps([{"name": "a", "key": pub_a}])
    tritonsim.reset_stats()
    check = playbook(tritonsim, task % one, check=True, diff=True)
    result = check.result("user")
    assert result["changed"] is True and writes(tritonsim) == {}
    assert result["diff"] == {"before": {}, "after": {"login": "w1", "email": "w1@example.com", "keys": {"a": fp_a}}}
    assert api(tritonsim).get("/my/users/w1").status_code == 404

    run = playbook(tritonsim, task % one, diff=True)
    result = run.result("user")
    assert result["changed"] is True
    assert result["user"]["login"] == "w1" and result["user"]["id"]
    assert result["user"]["keys"] == [{"name": "a", "fingerprint": fp_a}]
    assert writes(tritonsim) == {"CreateUser": {"201": 1}, "CreateUserKey": {"201": 1}}
    stored = api(tritonsim).get("/my/users/w1/keys").json()
    assert [(k["name"], k["fingerprint"]) for k in stored] == [("a", fp_a)]
    # The generated password is nowhere: not in the result, not in the output.
    assert "password" not in json.dumps(result["user"]) and result["invocation"]["module_args"]["password"] is None

    tritonsim.reset_stats()
    again = playbook(tritonsim, task % one, diff=True)
    assert again.result("user")["changed"] is False and writes(tritonsim) == {}

    # keys are the complete set: b replaces a; email changes.
    tritonsim.reset_stats()
    update = playbook(tritonsim, """
        - name: user
          locustfleet.triton.joyent_user:
            login: w1
            email: w1@example.org
            keys: %s
    """ % json.dumps([{"name": "b", "key": pub_b}]), diff=True)
    result = update.result("user")
    assert result["changed"] is True
    assert result["diff"]["before"]["keys"] == {"a": fp_a} and result["diff"]["after"]["keys"] == {"b": fp_b}
    assert result["diff"]["after"]["email"] == "w1@example.org"
    assert writes(tritonsim) == {"UpdateUser": {"200": 1}, "DeleteUserKey": {"204": 1}, "CreateUserKey": {"201": 1}}
    assert api(tritonsim).get("/my/users/w1").json()["email"] == "w1@example.org"

    # keys omitted: left alone
    tritonsim.reset_stats()
    unchanged = playbook(tritonsim, task.replace("keys: %s", "").replace("example.com", "example.org"))
    assert unchanged.result("user")["changed"] is False and writes(tritonsim) == {}
    assert len(api(tritonsim).get("/my/users/w1/keys").json()) == 1
    tritonsim.reset_stats()
    gone = playbook(tritonsim, """
        - name: absent in check mode
          locustfleet.triton.joyent_user: {login: w1, state: absent}
          check_mode: true
        - name: absent
          locustfleet.triton.joyent_user: {login: w1, state: absent}
        - name: absent again
          locustfleet.triton.joyent_user: {login: w1, state: absent}
    """)
    assert [r["changed"] for r in gone.results] == [True, True, False]
    assert writes(tritonsim) == {"DeleteUser": {"204": 1}}
    assert api(tritonsim).get("/my/users/w1").status_code == 404


def test_user_given_password_is_never_shown(tritonsim, playbook):
    run = playbook(tritonsim, """
        - name: user
          locustfleet.triton.joyent_user:
            login: w2
            email: w2@example.com
            password: Sekr3tSekr3tValue
    """, diff=True)
    assert "Sekr3tSekr3tValue" not in run.output
    assert "Sekr3tSekr3tValue" not in json.dumps(run.entries)


def test_user_bad_input_is_one_line(tritonsim, playbook):
    run = playbook(tritonsim, """
        - name: bad key
          locustfleet.triton.joyent_user:
            login: w3
            email: w3@example.com
            keys: [{name: k, key: "ssh-ed25519 !!!"}]
    """, expect_rc=2)
    one_line_error(run, "keys[0]", "'k'", "base64")
    run = playbook(tritonsim, """
        - name: no email
          locustfleet.triton.joyent_user: {login: w3}
    """, expect_rc=2)
    one_line_error(run, "email is required", "'w3'")
    # CloudAPI refuses the login: its words and request id are in the one line.
    run = playbook(tritonsim, """
        - name: taken by the account
          locustfleet.triton.joyent_user: {login: %s, email: x@example.com}
    """ % tritonsim.account, expect_rc=2)
    failed = one_line_error(run, "creating login '%s'" % tritonsim.account, "CloudAPI said", "request id")
    assert failed["error"]["request_id"]


# -- joyent_policy -------------------------------------------------------------------------------------------

def test_policy_lifecycle(tritonsim, playbook):
    task = """
        - name: policy
          locustfleet.triton.joyent_policy:
            name: stop-only
            description: watcher
            rules: %s
    """
    rules = json.dumps(["CAN getmachine and stopmachine"])
    tritonsim.reset_stats()
    check = playbook(tritonsim, task % rules, check=True, diff=True)
    assert check.result("policy")["changed"] is True and writes(tritonsim) == {}
    assert check.result("policy")["diff"]["after"]["rules"] == ["CAN getmachine and stopmachine"]
    run = playbook(tritonsim, task % rules)
    assert run.result("policy")["changed"] is True and run.result("policy")["policy"]["id"]
    assert writes(tritonsim) == {"CreatePolicy": {"201": 1}}
    tritonsim.reset_stats()
    again = playbook(tritonsim, task % json.dumps(["CAN  getmachine and   stopmachine"]))
    assert again.result("policy")["changed"] is False and writes(tritonsim) == {}
    update = playbook(tritonsim, task % json.dumps(["CAN getmachine and deletemachine"]), diff=True)
    result = update.result("policy")
    assert result["changed"] is True and result["diff"]["before"]["rules"] == ["CAN getmachine and stopmachine"]
    assert writes(tritonsim) == {"UpdatePolicy": {"200": 1}}
    assert api(tritonsim).get("/my/policies/stop-only").json()["rules"] == ["CAN getmachine and deletemachine"]
    tritonsim.reset_stats()
    gone = playbook(tritonsim, """
        - locustfleet.triton.joyent_policy: {name: stop-only, state: absent}
        - locustfleet.triton.joyent_policy: {name: stop-only, state: absent}
    """)
    assert [r["changed"] for r in gone.results] == [True, False]
    assert writes(tritonsim) == {"DeletePolicy": {"204": 1}}


def test_policy_bad_input_is_one_line(tritonsim, playbook):
    run = playbook(tritonsim, """
        - name: no rules
          locustfleet.triton.joyent_policy: {name: p1}
    """, expect_rc=2)
    one_line_error(run, "rules are required", "'p1'")
    run = playbook(tritonsim, """
        - name: bad rule
          locustfleet.triton.joyent_policy: {name: p1, rules: ["MAY fly"]}
    """, expect_rc=2)
    failed = one_line_error(run, "creating policy name 'p1'", "MAY fly", "CloudAPI said", "request id")
    assert failed["error"]["status"] == 409


# -- joyent_role ---------------------------------------------------------------------------------------------

def test_role_lifecycle_members_are_default(tritonsim, playbook, tmp_path):
    playbook(tritonsim, """
        - locustfleet.triton.joyent_user: {login: m1, email: m1@example.com}
        - locustfleet.triton.joyent_user: {login: m2, email: m2@example.com}
        - locustfleet.triton.joyent_policy: {name: p1, rules: ["CAN getmachine"]}
        - locustfleet.triton.joyent_policy: {name: p2, rules: ["CAN stopmachine"]}
    """)
    task = """
        - name: role
          locustfleet.triton.joyent_role:
            name: r1
            policies: %s
            members: %s
    """
    tritonsim.reset_stats()
    check = playbook(tritonsim, task % ('[p1]', '[m1]'), check=True, diff=True)
    assert check.result("role")["changed"] is True and writes(tritonsim) == {}
    run = playbook(tritonsim, task % ('[p1]', '[m1]'), diff=True)
    role = run.result("role")["role"]
    assert role["policies"] == ["p1"] and role["members"] == ["m1"] and role["default_members"] == ["m1"]
    assert writes(tritonsim) == {"CreateRole": {"201": 1}}
    stored = api(tritonsim).get("/my/roles/r1").json()
    assert [(m["login"], m["default"]) for m in stored["members"]] == [("m1", True)]
    tritonsim.reset_stats()
    assert playbook(tritonsim, task % ('[p1]', '[m1]')).result("role")["changed"] is False
    assert writes(tritonsim) == {}
    update = playbook(tritonsim, task % ('[p1, p2]', '[m2]'), diff=True)
    result = update.result("role")
    assert result["changed"] is True
    assert result["diff"]["before"]["members"] == ["m1"] and result["diff"]["after"]["members"] == ["m2"]
    assert result["role"]["policies"] == ["p1", "p2"]
    assert writes(tritonsim) == {"UpdateRole": {"200": 1}}
    tritonsim.reset_stats()
    gone = playbook(tritonsim, """
        - locustfleet.triton.joyent_role: {name: r1, state: absent}
        - locustfleet.triton.joyent_role: {name: r1, state: absent}
    """)
    assert [r["changed"] for r in gone.results] == [True, False]
    assert writes(tritonsim) == {"DeleteRole": {"204": 1}}


def test_role_bad_input_is_one_line(tritonsim, playbook):
    run = playbook(tritonsim, """
        - name: unknown policy
          locustfleet.triton.joyent_role: {name: r2, policies: [nosuch]}
    """, expect_rc=2)
    failed = one_line_error(run, "creating role name 'r2'", "nosuch", "CloudAPI said", "request id")
    assert failed["error"]["request_id"]
    run = playbook(tritonsim, """
        - name: bad member
          locustfleet.triton.joyent_role: {name: r2, members: ["no body"]}
    """, expect_rc=2)
    one_line_error(run, "members[0]", "'no body'")


# -- joyent_machine role_tags --------------------------------------------------------------------------------

def role_tags(sim, machine_id):
    return api(sim).get("/my/machines/%s" % machine_id).headers.get("Role-Tag")


def test_machine_role_tags_at_birth_and_reconciled_in_parallel(tritonsim, playbook):
    playbook(tritonsim, """
        - locustfleet.triton.joyent_role: {name: rt1}
        - locustfleet.triton.joyent_role: {name: rt2}
    """)
    fleet = """
        - name: fleet
          locustfleet.triton.joyent_machine:
            count: %d
            count_tags: {cluster: rt}
            image: debian-12
            package: g1-small
            role_tags: %s
            wait_timeout: 60
    """
    tritonsim.reset_stats()
    run = playbook(tritonsim, fleet % (2, "[rt1]"))
    machines = run.result("fleet")["machines"]
    assert len(machines) == 2 and all(role_tags(tritonsim, m["id"]) == "rt1" for m in machines)
    # Born tagged: no role-tag PUT was needed.
    assert writes(tritonsim) == {"CreateMachine": {"201": 2}}
    tritonsim.reset_stats()
    again = playbook(tritonsim, fleet % (2, "[rt1]"))
    assert again.result("fleet")["changed"] is False and writes(tritonsim) == {}
    check = playbook(tritonsim, fleet % (2, "[rt1, rt2]"), check=True, diff=True)
    result = check.result("fleet")
    assert result["changed"] is True and writes(tritonsim) == {}
    assert all(v == ["rt1"] for v in result["diff"]["before"]["role_tags"].values())
    assert all(v == ["rt1", "rt2"] for v in result["diff"]["after"]["role_tags"].values())
    update = playbook(tritonsim, fleet % (2, "[rt2, rt1]"))
    assert update.result("fleet")["changed"] is True
    assert writes(tritonsim) == {"ReplaceMachineRoleTags": {"200": 2}}
    assert all(sorted(role_tags(tritonsim, m["id"]).split(",")) == ["rt1", "rt2"] for m in machines)


def test_single_machine_role_tags_and_a_missing_role(tritonsim, playbook):
    playbook(tritonsim, "- locustfleet.triton.joyent_role: {name: solo}")
    tritonsim.seed_machines(1, tags={"x": "y"}, name_prefix="solo-")
    (machine,) = api(tritonsim).get("/my/machines?tag.x=y").json()
    task = """
        - name: one
          locustfleet.triton.joyent_machine:
            id: %s
            role_tags: %s
    """
    run = playbook(tritonsim, task % (machine["id"], "[solo]"), diff=True)
    result = run.result("one")
    assert result["changed"] is True and result["diff"]["before"]["role_tags"] == []
    assert result["diff"]["after"]["role_tags"] == ["solo"]
    assert role_tags(tritonsim, machine["id"]) == "solo"
    assert playbook(tritonsim, task % (machine["id"], "[solo]")).result("one")["changed"] is False
    assert playbook(tritonsim, task % (machine["id"], "[]")).result("one")["changed"] is True
    assert not role_tags(tritonsim, machine["id"])
    bad = playbook(tritonsim, task % (machine["id"], "[nosuchrole]"), expect_rc=2)
    failed = one_line_error(bad, machine["id"], "nosuchrole", "request id")
    assert "\n" not in failed["msg"]


def test_rbac_modules_return_what_they_document(tritonsim, playbook, tmp_path):
    from integration.test_return_docs import check_result

    pub, fingerprint = keypair(tmp_path, "docs")
    run = playbook(tritonsim, """
        - name: joyent_user
          locustfleet.triton.joyent_user:
            login: docs-user
            email: docs@example.com
            keys: [{name: k, key: "%s"}]
        - name: joyent_policy
          locustfleet.triton.joyent_policy: {name: docs-policy, rules: ["CAN getmachine"]}
        - name: joyent_policy without description
          locustfleet.triton.joyent_policy: {name: docs-policy}
        - name: joyent_role
          locustfleet.triton.joyent_role: {name: docs-role, policies: [docs-policy], members: [docs-user]}
        - name: joyent_user absent
          locustfleet.triton.joyent_user: {login: nobody, state: absent}
    """ % pub)
    for entry in run.entries:
        check_result(entry["task"].split()[0], entry["result"])
    assert run.result("joyent_user")["user"]["keys"] == [{"name": "k", "fingerprint": fingerprint}]
    assert run.result("joyent_policy without description")["policy"]["description"] is None
