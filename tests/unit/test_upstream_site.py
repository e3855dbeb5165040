"""The upstream index in the rendered nginx site and the upstream role's unit (Ansible's own templar, as in
test_shared_facts): private pages first, the same access as private reads, the caches and their cap, and off
leaving no trace."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.unit.test_shared_facts import _defaults, nginx_site, render


def location(site: str, name: str) -> str:
    """The body of one location block (no nested blocks but `if` and `types`)."""
    match = re.search(rf"\n    location {re.escape(name)} \{{\n(.*?)\n    \}}\n", site, re.S)
    assert match, f"no location {name}"
    return match[1]


def upstream_unit(**inventory: Any) -> str:
    return render("upstream", "pyhost-upstream.service.j2", {**_defaults("upstream"), **inventory})


def test_a_private_page_is_served_first_and_only_then_upstream() -> None:
    simple = location(nginx_site(), "/simple/")
    assert "try_files $pyhost_read_file @pyhost_upstream_page;" in simple
    # /packages/ never falls through to upstream.
    assert "try_files $pyhost_read_file =404;" in location(nginx_site(), "/packages/")


@pytest.mark.parametrize("inventory", [{}, {"nginx_read_passwords": True}], ids=["tokens", "passwords"])
def test_upstream_files_need_the_same_credentials_as_private_reads(inventory: dict[str, Any]) -> None:
    site = nginx_site(**inventory)
    files, packages = location(site, "/upstream-files/"), location(site, "/packages/")
    auth = re.findall(r"^\s*(auth_basic\S*|error_page 401) .*$", packages, re.M)
    assert auth and auth == re.findall(r"^\s*(auth_basic\S*|error_page 401) .*$", files, re.M)
    # The reader's credentials never go to the filter.
    assert 'proxy_set_header Authorization "";' in files


def test_a_private_name_has_no_upstream_files_and_says_so_only_to_readers() -> None:
    site = nginx_site()
    files = location(site, "/upstream-files/")
    assert re.search(
        r"if \(-f \$pyhost_upstream_private_page\) \{\s*rewrite \^ /\.pyhost/private-name last;", files
    )
    assert '"/srv/pypi/simple/$pyhost_upstream_project/index.html"' in site
    private = location(site, "= /.pyhost/private-name")
    assert "internal;" in private and "try_files $uri =404;" in private
    assert "auth_basic_user_file /etc/pyhost/read-tokens.htpasswd;" in private
    # Nothing in that location answers before the access check (return runs before it).
    assert "return" not in private


def test_the_file_cache_is_capped_and_pages_are_served_stale() -> None:
    site = nginx_site(pyhost_upstream_cache_max_gb=0.02)
    assert re.search(r"proxy_cache_path /var/cache/pyhost-upstream/files .*max_size=20m ", site)
    pages = location(site, "@pyhost_upstream_page")
    assert "proxy_cache pyhost_upstream_pages;" in pages
    assert "proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;" in pages
    assert 'proxy_cache_key "$uri|$pyhost_simple_page";' in pages  # HTML and JSON cached apart
    assert "proxy_cache pyhost_upstream_files;" in location(site, "/upstream-files/")


def test_both_upstream_locations_proxy_to_where_the_filter_listens() -> None:
    inventory = {"pyhost_upstream_socket": "/run/up/sock/up.sock"}
    site, unit = nginx_site(**inventory), upstream_unit(**inventory)
    for name in ("@pyhost_upstream_page", "/upstream-files/"):
        assert "proxy_pass http://unix:/run/up/sock/up.sock:;" in location(site, name)
    assert "--unix-socket /run/up/sock/up.sock" in unit
    assert re.search(r"^RuntimeDirectory=up$", unit, re.M)


def test_off_leaves_no_trace_in_the_site() -> None:
    site = nginx_site(pyhost_upstream_url="")
    assert "upstream-files" not in site and "pyhost_upstream" not in site
    assert "try_files $pyhost_read_file =404;" in location(site, "/simple/")


def test_the_unit_carries_the_policy_and_pypiservers_bounds() -> None:
    unit = upstream_unit(
        pyhost_private_names=["acme-*", "internal"],
        upstream_exempt=["urgent"],
        upstream_cutoff="2026-11-01",
        pyhost_upstream_min_age="7d",
        pyhost_upstream_url="https://mirror.example/simple/",
    )
    assert "--upstream-url https://mirror.example/simple/" in unit
    assert "--reserved 'acme-*'" in unit and "--reserved 'internal'" in unit
    assert "--exempt 'urgent'" in unit
    assert "--cutoff '2026-11-01'" in unit
    assert "--min-age 7d" in unit
    assert "--credentials-file" not in unit
    pypiserver = render("pypiserver", "pypiserver.service.j2", {})
    for bound in ("MemoryMax", "TasksMax", "CPUQuota"):
        assert re.findall(rf"^{bound}=.*$", unit, re.M) == re.findall(rf"^{bound}=.*$", pypiserver, re.M)
