"""module_utils/_rbac.py: key sets, role forms, role tags, the throwaway password; the client's extra headers."""

import base64

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIError
from ansible_collections.locustfleet.triton.plugins.module_utils._client import delete_if_present, get_or_none
from ansible_collections.locustfleet.triton.plugins.module_utils._keys import KeyProblem, md5_fingerprint
from ansible_collections.locustfleet.triton.plugins.module_utils._rbac import (
    LOGIN_RE, get_role_tags, name_problem, parse_role_tags, plan_keys,
    random_password, role_body, role_tag_header, role_view, set_role_tags, wanted_keys)

BLOB_A = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(range(32))
BLOB_B = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(range(1, 33))
LINE_A = "ssh-ed25519 %s alice@laptop" % base64.b64encode(BLOB_A).decode()
LINE_B = "ssh-ed25519 %s" % base64.b64encode(BLOB_B).decode()
FP_A, FP_B = md5_fingerprint(BLOB_A), md5_fingerprint(BLOB_B)


def test_wanted_keys_fingerprint_ignores_the_comment():
    (key,) = wanted_keys([{"name": "w", "key": LINE_A}])
    assert key.fingerprint == FP_A
    assert key.key == LINE_A.rsplit(" ", 1)[0]  # the comment is not sent


@pytest.mark.parametrize("entries, words", [
    ([{"name": "w", "key": ""}], ["keys[0]", "'w'", "has no key"]),
    ([{"name": "w", "key": "ssh-ed25519 !!notbase64"}], ["keys[0]", "'w'", "base64"]),
    ([{"name": "w", "key": "justoneword"}], ["keys[0]", "not an OpenSSH public key line"]),
    ([{"name": "bad name", "key": LINE_A}], ["keys[0].name", "'bad name'"]),
    ([{"name": "w", "key": LINE_A}, {"name": "w", "key": LINE_B}], ["keys[1]", "'w' is given twice"]),
    ([{"name": "w", "key": LINE_A}, {"name": "v", "key": LINE_A}], ["keys[1]", "same key", FP_A]),
])
def test_bad_keys_are_one_line_naming_the_entry(entries, words):
    with pytest.raises(KeyProblem) as info:
        wanted_keys(entries)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_plan_keys_is_exact_and_renames_by_delete_and_add():
    current = [{"name": "w", "fingerprint": FP_A}, {"name": "old", "fingerprint": FP_B}]
    assert plan_keys(current, wanted_keys([{"name": "w", "key": LINE_A}, {"name": "old", "key": LINE_B}])) == ([], [])
    delete, add = plan_keys(current, wanted_keys([{"name": "w", "key": LINE_A}]))
    assert delete == [current[1]] and add == []
    delete, add = plan_keys(current, wanted_keys([{"name": "new", "key": LINE_B}]))
    assert delete == current and [(k.name, k.fingerprint) for k in add] == [("new", FP_B)]
    assert plan_keys(current, []) == (current, [])


def test_role_view_reads_both_api_forms():
    v9 = {"id": "r1", "name": "w", "policies": [{"id": "p1", "name": "stop"}],
          "members": [{"type": "subuser", "id": "u1", "login": "b", "default": True},
                      {"type": "subuser", "id": "u2", "login": "a", "default": False}]}
    v8 = {"id": "r1", "name": "w", "policies": ["stop"], "members": ["b", "a"], "default_members": ["b"]}
    expected = {"id": "r1", "name": "w", "policies": ["stop"], "members": ["a", "b"], "default_members": ["b"]}
    assert role_view(v9) == role_view(v8) == expected
    assert role_view({"name": "empty"})["members"] == []


def test_role_body_makes_every_member_a_default_member():
    assert role_body("w", ["stop"], ["a"]) == {
        "name": "w", "policies": [{"name": "stop"}], "members": [{"type": "subuser", "login": "a", "default": True}]}
    assert role_body("w", None, None) == {"name": "w"}


@pytest.mark.parametrize("header, tags", [(None, []), ("", []), ("a", ["a"]), ("b, a", ["a", "b"]), ("a,,a", ["a"])])
def test_parse_role_tags(header, tags):
    assert parse_role_tags(header) == tags


def test_role_tag_header():
    assert role_tag_header(["a", "b"]) == {"Role-Tag": "a,b"}


def test_names_and_logins():
    assert name_problem("name", "demo-watcher") is None
    assert LOGIN_RE.match("demo-watcher") and not LOGIN_RE.match("1abc") and not LOGIN_RE.match("a b")
    problem = name_problem("login", "1abc", LOGIN_RE, "a login")
    assert "login '1abc'" in problem and "starting with a letter" in problem


def test_random_password_has_every_kind_and_differs():
    passwords = {random_password() for dummy in range(20)}
    assert len(passwords) == 20
    for password in passwords:
        assert len(password) == 32 and password.isalnum()
        assert any(c.islower() for c in password) and any(c.isupper() for c in password)
        assert any(c.isdigit() for c in password)


class FakeClient:
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def _answer(self, *call):
        self.calls.append(call)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get(self, path, query=None, *, expect):
        return self._answer("GET", path)

    def delete(self, path, query=None):
        return self._answer("DELETE", path)

    def put(self, path, body=None, expect=None):
        return self._answer("PUT", path, body)

    def request(self, method, path, query=None, body=None, idempotent=None, expect=None, headers=None):
        return self._answer(method, path)


def test_missing_is_none_other_errors_raise():
    client = FakeClient([CloudAPIError("x", status=404), {"login": "a"}, CloudAPIError("denied", status=403)])
    assert get_or_none(client, "/acct/users/a") is None
    assert get_or_none(client, "/acct/users/a") == {"login": "a"}
    with pytest.raises(CloudAPIError):
        get_or_none(client, "/acct/users/a")


def test_delete_if_present():
    client = FakeClient([None, CloudAPIError("gone", status=404), CloudAPIError("no", status=409)])
    assert delete_if_present(client, "/p") is True
    assert delete_if_present(client, "/p") is False
    with pytest.raises(CloudAPIError):
        delete_if_present(client, "/p")


def test_role_tags_read_from_the_header_and_written_with_put():
    class Reply:
        headers = {"Role-Tag": "w,x"}
    client = FakeClient([Reply(), {"name": "/acct/machines/1", "role-tag": ["w"]}])
    assert get_role_tags(client, "/acct/machines/1") == ["w", "x"]
    set_role_tags(client, "/acct/machines/1", ["w"])
    assert client.calls[-1] == ("PUT", "/acct/machines/1", {"role-tag": ["w"]})
