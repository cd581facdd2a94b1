"""The sandbox playing a public app's many workspaces: a token each, a rate limit each,
revoking one; and `hookstream sandbox --workspaces-file`."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hookstream.cli import main
from hookstream.sandbox import SandboxConfig
from tests.sandbox.test_api import FakeClock, assert_error, event, post, sandbox_client

WORKSPACES = {
    "ws-a": {"token": "token-a", "region": "eu", "window_limit": 2},
    "ws-b": {"token": "token-b", "region": "au"},
}


def config() -> SandboxConfig:
    return SandboxConfig.model_validate({"window_limit": 5, "workspaces": WORKSPACES})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_each_workspace_has_its_own_token_window_and_headers() -> None:
    async with sandbox_client(config(), FakeClock()) as api:
        answers = [await post(api, event(created_at=n), **bearer("token-a")) for n in range(3)]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert answers[0].headers["x-ratelimit-limit"] == "2"
        other = await post(api, event(), **bearer("token-b"))  # not held by ws-a's window
        assert other.status_code == 202
        assert other.headers["x-ratelimit-limit"] == "5"
        assert other.headers["x-ratelimit-remaining"] == "4"
        assert (await post(api, event())).status_code == 202  # the default workspace's token
        assert_error(await post(api, event(), **bearer("token-c")), 401, "unauthorized")
        stats = (await api.get("/sandbox/stats")).json()["workspaces"]
        accepted = (await api.get("/sandbox/accepted")).json()["events"]
    assert stats["ws-a"]["by_status"] == {"202": 2, "429": 1}
    assert stats["ws-a"]["region"] == "eu"
    assert stats["ws-b"]["accepted"] == 1
    assert stats["default"]["accepted"] == 1
    assert [entry["workspace"] for entry in accepted] == ["ws-a", "ws-a", "ws-b", "default"]
    assert not any(entry["duplicate"] for entry in accepted)  # same event, two workspaces


async def test_a_revoked_workspace_answers_401_and_the_others_do_not() -> None:
    async with sandbox_client(config(), FakeClock()) as api:
        revoked = await api.post("/sandbox/workspaces/ws-b/revoke")
        assert revoked.status_code == 200
        assert_error(await post(api, event(), **bearer("token-b")), 401, "unauthorized")
        assert (await post(api, event(), **bearer("token-a"))).status_code == 202
        assert (await api.post("/sandbox/workspaces/nope/revoke")).status_code == 404
        rotated = await api.post(
            "/sandbox/workspaces/ws-b", json={"token": "new", "revoked": False}
        )
        assert rotated.status_code == 200
        assert (await post(api, event(), **bearer("new"))).status_code == 202
        assert_error(await post(api, event(), **bearer("token-b")), 401, "unauthorized")
        bad = await api.post("/sandbox/workspaces/ws-b", json={"region": "mars"})
        assert bad.status_code == 422
        stats = (await api.get("/sandbox/stats")).json()["workspaces"]
    assert stats["ws-b"]["by_status"] == {"202": 1, "401": 1}  # the old token is nobody's


def test_the_sandbox_refuses_a_malformed_workspaces_file_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text("workspaces:\n  ws-a: {region: us}\n")
    result = CliRunner().invoke(main, ["sandbox", "--workspaces-file", str(path)])
    assert result.exit_code == 2
    assert str(path) in result.output
