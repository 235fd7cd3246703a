"""joyent_machine_info through ansible-playbook against tritonsim."""

import json


def test_lists_by_tag_across_pages_with_one_call_per_thousand(tritonsim, playbook):
    tritonsim.seed_machines(1200, tags={"role": "worker", "cluster": "a"}, name_prefix="w-")
    tritonsim.seed_machines(5, tags={"role": "master", "cluster": "a"}, name_prefix="m-")
    tritonsim.reset_stats()
    run = playbook(tritonsim, """
        - name: workers
          locustfleet.triton.joyent_machine_info:
            tags: {role: worker, cluster: a}
    """)
    machines = run.result("workers")["machines"]
    assert len(machines) == 1200 and {m["tags"]["role"] for m in machines} == {"worker"}
    assert len({m["id"] for m in machines}) == 1200
    assert set(machines[0]) >= {"id", "name", "state", "primaryIp", "ips", "tags", "image", "package", "created"}
    assert "metadata" not in machines[0]
    assert tritonsim.route_stats("ListMachines") == {"200": 2}
    assert run.recap["changed"] == 0


def test_filters_by_name_and_state(tritonsim, playbook):
    tritonsim.seed_machines(3, tags={"role": "web"}, name_prefix="web-")
    run = playbook(tritonsim, """
        - name: by name
          locustfleet.triton.joyent_machine_info:
            name: web-2
        - name: stopped
          locustfleet.triton.joyent_machine_info:
            tags: {role: web}
            states: [stopped]
    """)
    assert [m["name"] for m in run.result("by name")["machines"]] == ["web-2"]
    assert run.result("stopped")["machines"] == []


def test_module_defaults_group_sets_credentials_once(tritonsim, playbook):
    run = playbook(tritonsim, """
        - name: listed
          locustfleet.triton.joyent_machine_info: {}
          module_defaults:
            group/locustfleet.triton.all:
              url: "{{ sim_url }}"
              account: "{{ sim_account }}"
              key_id: "{{ sim_fp }}"
              private_key_path: "{{ sim_key }}"
    """, extra_vars={"sim_url": tritonsim.url, "sim_account": tritonsim.account, "sim_key": str(tritonsim.key_path),
                     "sim_fp": tritonsim.fingerprint},
                   env={"TRITON_URL": "http://127.0.0.1:9", "TRITON_KEY_ID": "00:" * 15 + "00"})
    assert run.result("listed")["machines"] == []


def test_bad_settings_fail_with_one_line_and_no_traceback(tritonsim, playbook):
    run = playbook(tritonsim, """
        - name: unknown key
          locustfleet.triton.joyent_machine_info:
            key_id: "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"
    """, expect_rc=2)
    result = run.result("unknown key")
    assert result["msg"] == ("no SSH key with fingerprint 00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff in "
                             "ssh-agent or ~/.ssh: load it with ssh-add or set private_key_path")
    assert "Traceback (most recent call last)" not in run.output + json.dumps(result)


def test_unknown_account_key_gives_cloudapi_code_and_request_id(tritonsim, playbook, tmp_path):
    from tritonsim.testing import generate_key

    stranger = generate_key(tmp_path / "k", "stranger")
    run = playbook(tritonsim, """
        - name: stranger
          locustfleet.triton.joyent_machine_info:
            private_key_path: "%s"
            key_id: "%s"
    """ % (stranger.key_path, stranger.fingerprint), expect_rc=2)
    result = run.result("stranger")
    assert "CloudAPI said 401 InvalidCredentials" in result["msg"]
    assert result["error"]["request_id"] and result["error"]["request_id"] in result["msg"]
    assert "\n" not in result["msg"] and "Traceback (most recent call last)" not in run.output
