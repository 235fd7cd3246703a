"""Firewall rules (CloudAPI lib/fwrules.js) and a machine's rules."""

from ..context import caller, empty_response, json_response, omit_networks, params, sim


def list_rules(login):
    return json_response(sim().firewall.list())


def create_rule(login):
    rule = sim().firewall.create(params())
    return json_response(rule, 201,
                         {"Location": f"/{caller().account.login}/fwrules/{rule['id']}"})


def get_rule(login, rid):
    return json_response(sim().firewall.get(rid))


def update_rule(login, rid):
    return json_response(sim().firewall.update(rid, params()))


def enable_rule(login, rid):
    return json_response(sim().firewall.set_enabled(rid, True))


def disable_rule(login, rid):
    return json_response(sim().firewall.set_enabled(rid, False))


def delete_rule(login, rid):
    sim().firewall.delete(rid)
    return empty_response(204)


def rule_machines(login, rid):
    machines = sim().firewall.rule_machines(rid, omit_networks())
    return json_response(machines, headers={"x-resource-count": str(len(machines))})


def machine_rules(login, mid):
    with sim().machines.lock:
        machine = dict(sim().machines.live(mid))
    return json_response(sim().firewall.machine_rules(machine))


ROUTES = [
    ("/<login>/fwrules", "ListFirewallRules", ["GET"], list_rules),
    ("/<login>/fwrules", "CreateFirewallRule", ["POST"], create_rule),
    ("/<login>/fwrules/<rid>", "GetFirewallRule", ["GET"], get_rule),
    ("/<login>/fwrules/<rid>", "UpdateFirewallRule", ["POST"], update_rule),
    ("/<login>/fwrules/<rid>", "DeleteFirewallRule", ["DELETE"], delete_rule),
    ("/<login>/fwrules/<rid>/enable", "EnableFirewallRule", ["POST"], enable_rule),
    ("/<login>/fwrules/<rid>/disable", "DisableFirewallRule", ["POST"], disable_rule),
    ("/<login>/fwrules/<rid>/machines", "ListFirewallRuleMachines", ["GET"], rule_machines),
    ("/<login>/machines/<mid>/fwrules", "ListMachineFirewallRules", ["GET"], machine_rules),
]
