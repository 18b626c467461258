"""``fetch.allowedCidrs``: the networks fetches caused by a client's content (a package URL, an
OCI reference, a chart's dependency repositories) may reach — validated by ``config check``,
shown in its summary, handed by the loader to every adapter instance (``gateway_fetch``),
and applied by :class:`netweave.fetching.FetchPolicy`."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from netweave.adapters import AdapterConfig, DMSAdapter
from netweave.cli.main import main
from netweave.config import AdapterInstanceSettings, FetchSettings, Settings
from netweave.config.loading import build_config, construct
from netweave.errors import Unprocessable
from netweave.fetching import FetchPolicy


def check(tmp_path: Path, text: str) -> Any:
    config = tmp_path / "gw.yaml"
    config.write_text(text)
    return CliRunner().invoke(main, ["config", "check", "--config", str(config)])


def test_config_check_shows_the_allow_list(tmp_path: Path) -> None:
    result = check(
        tmp_path, "plugins: {dms: []}\nfetch: {allowedCidrs: [10.20.0.0/16, 'fd00:1::/64']}\n"
    )
    assert result.exit_code == 0, result.output
    assert (
        "fetches caused by clients: public addresses and fetch.allowedCidrs "
        "10.20.0.0/16, fd00:1::/64"
    ) in result.stdout

    result = check(tmp_path, "plugins: {dms: []}\n")
    assert result.exit_code == 0, result.output
    assert "fetches caused by clients: public addresses only" in result.stdout


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "fetch: {allowedCidrs: [10.20.0.0/16, nonsense]}\n",
            "fetch: allowedCidrs[1] is not an IP network",
        ),
        (
            "fetch: {allowedCidr: [10.0.0.0/8]}\n",
            "fetch.allowedCidr: Extra inputs are not permitted",
        ),
    ],
)
def test_config_check_refuses_a_bad_allow_list(tmp_path: Path, text: str, line: str) -> None:
    result = check(tmp_path, "plugins: {dms: []}\n" + text)
    assert result.exit_code == 2
    assert f"  - {line}" in result.stderr.splitlines()


class _Fetching(AdapterConfig):
    fetch: FetchSettings | None = None


class _FetchingAdapter(DMSAdapter[_Fetching]):
    TYPE = "fetching"
    DISTRIBUTION = "netweave-core"
    Config = _Fetching


class _Legacy(DMSAdapter):
    """An adapter written against contract 1.0: its own ``__init__`` takes neither keyword."""

    TYPE = "legacy"
    DISTRIBUTION = "netweave-core"

    def __init__(self, name: str, config: AdapterConfig) -> None:
        super().__init__(name, config)


def test_the_loader_hands_every_instance_the_gateway_allow_list(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {"fetch": {"allowedCidrs": ["10.20.0.0/16"]}, "dataDir": str(tmp_path)}
    )
    instance = AdapterInstanceSettings(name="f", type="fetching")
    config, problems = build_config(_FetchingAdapter, settings, instance, 0)
    assert problems == [] and isinstance(config, _Fetching)
    # Nothing is written into the instance's config; the gateway's block is handed over.
    assert config.fetch is None
    adapter = construct(
        _FetchingAdapter, "f", config, data_dir=tmp_path / "f", fetch=settings.fetch
    )
    assert adapter.gateway_fetch == FetchSettings(allowedCidrs=["10.20.0.0/16"])
    assert adapter.data_dir == tmp_path / "f"

    # An instance's own block is validated like the gateway's (the adapter decides which wins).
    own = AdapterInstanceSettings(
        name="f", type="fetching", config={"fetch": {"allowedCidrs": ["192.168.7.0/24"]}}
    )
    config, _ = build_config(_FetchingAdapter, settings, own, 0)
    assert isinstance(config, _Fetching) and config.fetch is not None
    assert config.fetch.allowed_cidrs == ["192.168.7.0/24"]
    bad = AdapterInstanceSettings(
        name="f", type="fetching", config={"fetch": {"allowedCidrs": ["300.1.1.1/8"]}}
    )
    config, problems = build_config(_FetchingAdapter, settings, bad, 3)
    assert config is None
    assert problems == ["plugins.dms[3] (f).config.fetch: allowedCidrs[0] is not an IP network"]


def test_an_adapter_written_before_the_keywords_still_loads(tmp_path: Path) -> None:
    legacy = construct(
        _Legacy, "l", AdapterConfig(), data_dir=tmp_path / "l", fetch=FetchSettings()
    )
    assert legacy.name == "l" and legacy.data_dir is None and legacy.gateway_fetch is None
    # Without the filter the same construction fails: the check above is not vacuous.
    with pytest.raises(TypeError, match="data_dir"):
        _Legacy("l", AdapterConfig(), data_dir=tmp_path / "l")  # type: ignore[call-arg]


def test_the_policy_allows_the_listed_networks_and_names_the_setting() -> None:
    policy = FetchPolicy.from_settings(
        FetchSettings(allowedCidrs=["10.20.0.0/16", "169.254.169.254/32"]),
        allow_hint="allowPrivatePackageUris in the adapter's config",
    )
    assert policy.refusal(ipaddress.ip_address("10.20.3.4")) is None
    # Listed explicitly, even the metadata address is allowed (as notifications.allowedCidrs).
    assert policy.refusal(ipaddress.ip_address("169.254.169.254")) is None
    assert policy.refusal(ipaddress.ip_address("10.21.0.1")) == "private"
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) == "loopback"
    assert policy.refusal(ipaddress.ip_address("169.254.1.1")) is not None
    assert policy.refusal(ipaddress.ip_address("93.184.216.34")) is None


async def test_a_refusal_names_the_allow_list() -> None:
    policy = FetchPolicy.from_settings(FetchSettings(), allow_hint="allowPrivatePackageUris")
    with pytest.raises(Unprocessable) as caught:
        await policy.check("http://127.0.0.1:9/chart.tgz", field="packageUri")
    assert "fetch.allowedCidrs (or allowPrivatePackageUris)" in caught.value.message
    assert caught.value.details["field"] == "packageUri"
