"""Where settings come from: option > TRITON_* > SDC_* > node-triton profile."""

import json

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._config import ConfigProblem, resolve

FP = "aa:" * 15 + "aa"


@pytest.fixture
def home(tmp_path):
    (tmp_path / ".triton" / "profiles.d").mkdir(parents=True)
    return tmp_path


def write_profile(home, name, selected=True, **fields):
    (home / ".triton" / "profiles.d" / (name + ".json")).write_text(json.dumps(fields))
    if selected:
        (home / ".triton" / "config.json").write_text(json.dumps({"profile": name}))


def test_option_beats_triton_beats_sdc_beats_profile(home):
    write_profile(home, "east", url="https://profile", account="p", keyId=FP, user="pu", insecure=True)
    env = {"HOME": str(home), "TRITON_URL": "https://triton", "SDC_URL": "https://sdc",
           "SDC_ACCOUNT": "sdc-account", "TRITON_USER": "tu"}
    config = resolve({"url": "https://option"}, env)
    assert config.url == "https://option"
    assert config.account == "sdc-account"
    assert config.key_id == FP and config.sources["key_id"] == "triton profile east"
    assert config.user == "tu"
    assert config.insecure is True
    assert resolve({}, env).url == "https://triton"
    assert resolve({}, dict(env, TRITON_URL="")).url == "https://sdc"


def test_triton_profile_env_var_selects_a_profile_over_config_json(home):
    write_profile(home, "east", url="https://east", account="a", keyId=FP)
    write_profile(home, "west", selected=False, url="https://west", account="a", keyId=FP)
    assert resolve({}, {"HOME": str(home), "TRITON_PROFILE": "west"}).url == "https://west"
    assert resolve({}, {"HOME": str(home)}).url == "https://east"


def test_xdg_config_home_is_where_node_triton_looks_first(tmp_path):
    (tmp_path / "xdg" / "triton" / "profiles.d").mkdir(parents=True)
    (tmp_path / "xdg" / "triton" / "profiles.d" / "x.json").write_text(
        json.dumps({"url": "https://x", "account": "a", "keyId": FP}))
    config = resolve({}, {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "TRITON_PROFILE": "x"})
    assert config.url == "https://x"


@pytest.mark.parametrize("missing,message", [
    ("url", "no CloudAPI url: set the 'url' option, TRITON_URL or SDC_URL"),
    ("account", "no CloudAPI account: set the 'account' option, TRITON_ACCOUNT or SDC_ACCOUNT"),
    ("key_id", "no CloudAPI key id: set the 'key_id' option, TRITON_KEY_ID or SDC_KEY_ID"),
])
def test_missing_setting_says_what_to_set(home, missing, message):
    options = {"url": "https://u", "account": "a", "key_id": FP}
    del options[missing]
    with pytest.raises(ConfigProblem) as error:
        resolve(options, {"HOME": str(home)})
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_key_id_may_come_from_the_private_key(home):
    config = resolve({"url": "https://u", "account": "a", "private_key_path": "/k"}, {"HOME": str(home)})
    assert config.key_id is None


def test_selected_profile_that_does_not_exist_is_named(home):
    with pytest.raises(ConfigProblem, match="triton profile 'ghost' is selected but .*ghost.json does not exist"):
        resolve({}, {"HOME": str(home), "TRITON_PROFILE": "ghost"})


@pytest.mark.parametrize("env,insecure", [
    ({}, False), ({"TRITON_TLS_INSECURE": "true"}, True), ({"TRITON_TLS_INSECURE": "0"}, False),
    ({"SDC_TLS_INSECURE": "1"}, True), ({"SDC_TESTING": "anything"}, True),
    ({"TRITON_TLS_INSECURE": "false", "SDC_TESTING": "1"}, False),
])
def test_tls_insecure_sources(home, env, insecure):
    env = dict(env, HOME=str(home), TRITON_URL="https://u", TRITON_ACCOUNT="a", TRITON_KEY_ID=FP)
    assert resolve({}, env).insecure is insecure
    assert resolve({"validate_certs": True}, env).insecure is False


def test_url_must_be_http(home):
    with pytest.raises(ConfigProblem, match="must start with https:// or http://"):
        resolve({"url": "cloudapi.example", "account": "a", "key_id": FP}, {"HOME": str(home)})


def test_repr_never_shows_the_passphrase(home):
    config = resolve({"url": "https://u", "account": "a", "key_id": FP, "private_key_passphrase": "hunter2"},
                     {"HOME": str(home)})
    assert "hunter2" not in repr(config)
