# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Loads the plugins every task's worker would load once, in ansible-playbook's own process."""

from __future__ import annotations

DOCUMENTATION = r"""
name: preload
type: aggregate
short_description: Loads the Jinja2 and lookup plugins once, before Ansible forks a worker per task
version_added: 0.1.0
author:
  - wsfleet maintainers (!UNKNOWN)
description:
  - Ansible runs every task of every host in a worker process forked from C(ansible-playbook). On its
    first filter, a worker loads every built-in Jinja2 filter plugin (and on its first test, every
    test plugin) with their modules, then each lookup and collection plugin it uses; it exits after
    its one task, so the next worker loads them all again. This callback loads them in
    C(ansible-playbook)'s own process when a play starts - the built-in filter, test and lookup
    plugins and this collection's own filter, test and lookup plugins - so every worker forked after
    that starts with them loaded. It changes no task and prints nothing.
  - A re-run of C(site.yml) on 3 hosts with nothing to change used a tenth to a seventh less controller
    CPU with it (C(docs/benchmarks.md), "The controller's plugins, loaded once").
requirements:
  - Enabled in C(ansible.cfg) (C(callbacks_enabled = wsfleet.fleet.preload), with any others) or
    with C(ANSIBLE_CALLBACKS_ENABLED).
notes:
  - A plugin that fails to load here is left to the worker that uses it, which reports the error as
    it would without this callback.
"""

import functools
from pathlib import Path

from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import filter_loader, lookup_loader, test_loader

# This collection's name and its plugin directories, from this file's place in it (plugins/callback/).
_PLUGINS = Path(__file__).resolve().parent.parent
_COLLECTION = ".".join(__name__.split(".")[1:3])  # ansible_collections.wsfleet.fleet.plugins.callback.preload


def _quietly(function, *args, **kwargs) -> None:
    """Runs one load; a plugin that fails is left to the worker that uses it, which reports the error."""
    try:
        function(*args, **kwargs)
    except Exception:  # noqa: BLE001 - reported by the worker that uses the plugin
        pass


@functools.cache  # once per process, whatever the number of plays (site.yml has three)
def preload() -> None:
    """Loads, in this process, the built-in Jinja2 filter, test and lookup plugins (all() loads each
    and the loader keeps them), then this collection's own."""
    for directory, loader, kwargs in (("filter", filter_loader, {}), ("test", test_loader, {}),
                                      ("lookup", lookup_loader, {"class_only": True})):
        _quietly(list, loader.all(**kwargs))  # a generator: it loads as list() walks it, inside _quietly
        for path in sorted((_PLUGINS / directory).glob("[!_]*.py")):
            _quietly(loader.get, f"{_COLLECTION}.{path.stem}", **kwargs)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "wsfleet.fleet.preload"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_play_start(self, play) -> None:
        preload()
