"""URL rules.  Each rule's endpoint is CloudAPI's route name, which is what
/__sim/stats counts by (POST /:login/machines/:id is renamed per action)."""

from . import (account, catalog, firewall, machine_metadata, machine_tags, machines, role_tags,
               roles, simctl, users)

MODULES = (account, catalog, machines, machine_tags, machine_metadata, firewall, users, roles,
           role_tags, simctl)


def register(app):
    for module in MODULES:
        for rule, name, methods, view in module.ROUTES:
            app.add_url_rule(rule, endpoint=name, view_func=view, methods=methods)
