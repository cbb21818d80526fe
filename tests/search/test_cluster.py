"""search.cluster and the CLI's dashboard default: local only unless asked, with a warning."""
from search import cluster
from search.run import parse_args


def test_cli_default_dashboard_host_is_loopback():
    assert parse_args([]).dashboard_host == "127.0.0.1"
    assert parse_args([]).storage_path == "./runs"


def test_local_head_binds_dashboard_to_loopback():
    kwargs = cluster.init_kwargs(address=None)
    assert kwargs["address"] == "local"  # a new instance, never a cluster left running here
    assert kwargs["include_dashboard"] is True
    assert kwargs["dashboard_host"] == "127.0.0.1"


def test_other_host_warns_and_loopback_does_not():
    assert cluster.check_dashboard_host("127.0.0.1") is None
    assert cluster.check_dashboard_host("localhost") is None
    warning = cluster.check_dashboard_host("0.0.0.0")
    assert "0.0.0.0" in warning and "SSH tunnel" in warning


def test_joining_a_cluster_passes_only_the_address():
    assert cluster.init_kwargs(address="127.0.0.1:6399", dashboard_host="0.0.0.0") == {"address": "127.0.0.1:6399"}


def _loopback(address: str) -> bool:
    import ipaddress

    ip = ipaddress.ip_address(address.rsplit(":", 1)[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def test_a_local_search_listens_on_loopback_only(killed_search):
    """Every TCP listener of the Ray processes a local smoke search started (sampled from /proc
    while it ran): GCS, raylet, workers, agents, dashboard — all on 127.0.0.1 / ::1."""
    listeners = killed_search.listeners
    names = {key[1].split(":")[0] for key in listeners}
    assert {"gcs_server", "raylet"} <= names, names  # the sample saw the cluster's core
    wide = sorted(key[1] for key, address in listeners.items() if not _loopback(address))
    assert not wide, f"listening beyond loopback: {wide}"
